// Integer dot products of weight blocks with x quantized to int8, for matmul_vec_q.comp.
//
// The including shader includes quant.glsl first (byte readers w_u32/w_f16, the MXFP4/IQ4_NL
// grids) and declares the quantized x of the current unit as private globals:
//   uint xq[NXB * 8]   int8x4 words of NXB 32-value blocks of x, in value order (the table
//                      types reorder them once per unit: grid_order)
//   float xd[NXB]      their scales (x ~= xd * q)
//   uint xr[NXB * 8], float xe[NXB]  the residual x - xd * q as int8 and scale (X_RESIDUAL)
//   float xs[NXB * 2]  the float sums of x over each 16-value half
// A unit is QU consecutive values of a weight block (one 32-value block, or two sub-blocks of
// a K-quant that share their bytes); x_offset(u, b) is where x block b of unit u starts.
// dot_unit(bb, j) returns the unit's contribution to the row's dot product, where bb is the
// block's byte offset and j the unit within the block: integer sums of int8x4 products, with
// the block's scale (and min) applied once per 32 or 16 values.

// dot4: the sum of the four products of packed signed bytes; one instruction (OpSDot) where
// the device has shaderIntegerDotProduct, byte extraction otherwise.
#if INT_DOT
// (the including shader enables GL_EXT_spirv_intrinsics) OpSDot (4450) with PackedVectorFormat4x8Bit: capabilities DotProduct, DotProductInput4x8BitPacked
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450) int sdot_packed(uint a, uint b, spirv_literal int format);
int dot4(uint a, uint b) { return sdot_packed(a, b, 0); }
// OpSUDot (4452): a's bytes signed, b's unsigned (weights of 0..255, such as nibbles left in
// place at bits 4-7).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4452) int sudot_packed(uint a, uint b, spirv_literal int format);
int dot4_su(uint a, uint b) { return sudot_packed(a, b, 0); }
#else
ivec4 s8x4i(uint a) { return ivec4(uvec4(a) << uvec4(24u, 16u, 8u, 0u)) >> 24; }
int dot4(uint a, uint b) {
  const ivec4 va = s8x4i(a), vb = s8x4i(b);
  return va.x * vb.x + va.y * vb.y + va.z * vb.z + va.w * vb.w;
}
int dot4_su(uint a, uint b) {
  const ivec4 va = s8x4i(a), vb = ivec4((uvec4(b) >> uvec4(0u, 8u, 16u, 24u)) & 0xFFu);
  return va.x * vb.x + va.y * vb.y + va.z * vb.z + va.w * vb.w;
}
#endif

// The products of weight word a with x word i, for the int8 x and (X_RESIDUAL) for the int8
// rounding of what the first left over; xmul scales such a pair by x block b's two scales.
ivec2 dotx(uint a, uint i) {
#if X_RESIDUAL
  return ivec2(dot4(a, xq[i]), dot4(a, xr[i]));
#else
  return ivec2(dot4(a, xq[i]), 0);
#endif
}
// dotx for weight bytes of 0..255.
ivec2 dotx_u(uint a, uint i) {
#if X_RESIDUAL
  return ivec2(dot4_su(xq[i], a), dot4_su(xr[i], a));
#else
  return ivec2(dot4_su(xq[i], a), 0);
#endif
}
float xmul(uint b, ivec2 s) { return xd[b] * float(s.x) + xe[b] * float(s.y); }

// funnel(lo, hi, s): bits s..s+31 of the 64 bits hi:lo (s < 32). With SHADER_INT64 a 64-bit
// shift, one funnel-shift instruction where the device has one; else (hi << 1) << (31 - s),
// which is hi << (32 - s) without a shift by 32 when s = 0.
#if SHADER_INT64
uint funnel(uint lo, uint hi, uint s) { return uint(packUint2x32(uvec2(lo, hi)) >> s); }
#else
uint funnel(uint lo, uint hi, uint s) { return (lo >> s) | ((hi << 1) << (31u - s)); }
#endif

// 16 bytes from any byte offset: five word loads and funnel shifts, no branch (blocks of 17,
// 18, 22, 34, 210 bytes sit at every alignment). When s = 0 the fifth word is unused, so its
// index is clamped to the binding (which may end at the block's last word).
uvec4 w_u128(uint b) {
  const uint i = b >> 2, s = (b & 3u) * 8u;
  const uint w0 = W_WORD(i), w1 = W_WORD(i + 1u), w2 = W_WORD(i + 2u), w3 = W_WORD(i + 3u);
  const uint w4 = W_WORD(min(i + 4u, uint(w.length()) - 1u));
  return uvec4(funnel(w0, w1, s), funnel(w1, w2, s), funnel(w2, w3, s), funnel(w3, w4, s));
}

const uint M4 = 0x0F0F0F0Fu;
// Bits 0..3 of h to bit 4 of bytes 0..3 (the multiply places bit i at 8i; no carries).
uint spread4(uint h) { return (((h & 0xFu) * 0x00204081u) & 0x01010101u) << 4; }
int sext8(uint b) { return int(b << 24) >> 24; }

#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1) || \
    defined(TYPE_Q8_0) || defined(TYPE_MXFP4) || defined(TYPE_IQ4_NL) || defined(TYPE_IQ4_XS)
// (IQ4_XS: a unit is one of a block's eight 32-value sub-blocks.)
#define QU 32u
uint x_offset(uint u, uint b) { return u * 32u; }
#endif

// Sum over the 32 values of one block whose qs[j] holds value j (low nibble) and j + 16 (high):
// the nibbles as words lo/hi, plus a 5th bit per value for Q5_0/Q5_1.
ivec2 dot_nibbles(uvec4 q, uint qh) {
  ivec2 s = ivec2(0);
  for (uint c = 0u; c < 4u; ++c) {
    const uint lo = (q[c] & M4) | spread4(qh >> (4u * c));
    const uint hi = ((q[c] >> 4) & M4) | spread4(qh >> (16u + 4u * c));
    s += dotx(lo, c) + dotx(hi, 4u + c);
  }
  return s;
}

#if defined(TYPE_Q4_0)
// block_q4_0: f16 d, qs[16]; v = d * (q - 8).
float dot_unit(uint bb, uint j) {
  return w_f16(bb) * (xmul(0u, dot_nibbles(w_u128(bb + 2u), 0u)) - 8.0 * (xs[0] + xs[1]));
}
#elif defined(TYPE_Q4_1)
// block_q4_1: f16 d, f16 m, qs[16]; v = d * q + m.
float dot_unit(uint bb, uint j) {
  const vec2 dm = unpackHalf2x16(w_u32(bb));
  return dm.x * xmul(0u, dot_nibbles(w_u128(bb + 4u), 0u)) + dm.y * (xs[0] + xs[1]);
}
#elif defined(TYPE_Q5_0)
// block_q5_0: f16 d, u32 qh, qs[16]; v = d * (q - 16).
float dot_unit(uint bb, uint j) {
  const ivec2 s = dot_nibbles(w_u128(bb + 6u), w_u32(bb + 2u));
  return w_f16(bb) * (xmul(0u, s) - 16.0 * (xs[0] + xs[1]));
}
#elif defined(TYPE_Q5_1)
// block_q5_1: f16 d, f16 m, u32 qh, qs[16]; v = d * q + m.
float dot_unit(uint bb, uint j) {
  const vec2 dm = unpackHalf2x16(w_u32(bb));
  const ivec2 s = dot_nibbles(w_u128(bb + 8u), w_u32(bb + 4u));
  return dm.x * xmul(0u, s) + dm.y * (xs[0] + xs[1]);
}
#elif defined(TYPE_Q8_0)
// block_q8_0: f16 d, int8 qs[32]: the bytes are already int8x4 words.
struct WUnit {
  uvec4 a, b;
  float d;
};
WUnit load_unit(uint bb, uint j) { return WUnit(w_u128(bb + 2u), w_u128(bb + 18u), w_f16(bb)); }
float dot_loaded(WUnit u, uint j) {
  ivec2 s = ivec2(0);
  for (uint c = 0u; c < 4u; ++c) s += dotx(u.a[c], c) + dotx(u.b[c], 4u + c);
  return u.d * xmul(0u, s);
}
#elif defined(TYPE_MXFP4) || defined(TYPE_IQ4_NL) || defined(TYPE_IQ4_XS)
// The grid through a 256-entry table in shared memory indexed by a whole qs byte: entry =
// grid[low nibble] | grid[high nibble] << 16, so two lookups, the second shifted by 8, give
// the word of values j, j + 1, j + 16, j + 17 (filled by fill_lut at the top of main). x's
// words are put in that order once per unit (grid_order) instead of the table's words in
// value order once per row.
shared uint lut[256];
uint grid_byte(uint n) { return (kgrid[n >> 2] >> ((n & 3u) * 8u)) & 0xFFu; }
void fill_lut() {
  for (uint b = gl_LocalInvocationID.x; b < 256u; b += gl_WorkGroupSize.x)
    lut[b] = grid_byte(b & 15u) | (grid_byte(b >> 4) << 16);
  barrier();
}
#define GRID_ORDER 1
// x block b's words c = 0..3 to values 4c, 4c + 1, 4c + 16, 4c + 17 and 4 + c to 4c + 2,
// 4c + 3, 4c + 18, 4c + 19.
uvec2 grid_pair(uint lo, uint hi) {
  return uvec2((lo & 0xFFFFu) | (hi << 16), (lo >> 16) | (hi & 0xFFFF0000u));
}
void grid_order(uint b) {
  for (uint c = 0u; c < 4u; ++c) {
    const uvec2 q = grid_pair(xq[8u * b + c], xq[8u * b + 4u + c]);
    xq[8u * b + c] = q.x;
    xq[8u * b + 4u + c] = q.y;
#if X_RESIDUAL
    const uvec2 r = grid_pair(xr[8u * b + c], xr[8u * b + 4u + c]);
    xr[8u * b + c] = r.x;
    xr[8u * b + 4u + c] = r.y;
#endif
  }
}
// The lookups' bytes do not overlap: + lets one shift-and-add instruction do the or.
ivec2 dot_grid(uvec4 q) {
  ivec2 s = ivec2(0);
  for (uint c = 0u; c < 4u; ++c) {
    const uint p01 = lut[q[c] & 0xFFu] + (lut[(q[c] >> 8) & 0xFFu] << 8);
    const uint p23 = lut[(q[c] >> 16) & 0xFFu] + (lut[q[c] >> 24] << 8);
    s += dotx(p01, c) + dotx(p23, 4u + c);
  }
  return s;
}
#if defined(TYPE_MXFP4)
// block_mxfp4: E8M0 e, qs[16]; doubled E2M1 grid times 2^(e - 128) (ggml_e8m0_to_fp32_half).
float dot_unit(uint bb, uint j) {
  const uint e = w_u8(bb);
  const float d = uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
  return d * xmul(0u, dot_grid(w_u128(bb + 1u)));
}
#elif defined(TYPE_IQ4_NL)
// block_iq4_nl: f16 d, qs[16]; v = d * kvalues_iq4nl[q].
float dot_unit(uint bb, uint j) {
  return w_f16(bb) * xmul(0u, dot_grid(w_u128(bb + 2u)));
}
#else
// block_iq4_xs: f16 d, u16 scales_h, scales_l[4], qs[128]; sub-block j's 16 qs bytes as
// iq4_nl's, its 6-bit scale ls = nibble j % 2 of scales_l[j / 2] | bits 2j, 2j + 1 of
// scales_h << 4; v = d * (ls - 32) * kvalues_iq4nl[q].
float dot_unit(uint bb, uint j) {
  const uint h = w_u32(bb);  // d, scales_h
  const uint ls = ((w_u8(bb + 4u + j / 2u) >> (4u * (j % 2u))) & 0xFu) |
                  (((h >> (16u + 2u * j)) & 3u) << 4);
  return unpackHalf2x16(h).x * float(int(ls) - 32) * xmul(0u, dot_grid(w_u128(bb + 8u + 16u * j)));
}
#endif
#elif defined(TYPE_Q2_K) || defined(TYPE_Q3_K)
// A unit is the 64 values that share 32 qs bytes and one pair of shifts: half n = j / 2 of
// the block (values 128n..128n+127), 32-value rows g0 = 2 (j % 2) and g0 + 1 (bits 2g of
// byte l hold value 128n + 32g + l); a scale per 16 values.
#define QU 64u
uint x_offset(uint u, uint b) { return u * 64u + b * 32u; }
// The four 16-value sums of the unit's integers q(w) with x: rows g0, g0 + 1, halves 0, 1.
// With Q3_K, bit 4n + g of hmask[l] is the third bit (q - 4 where it is clear).
ivec2[4] dot_rows(uvec4 qa, uvec4 qb, uvec4 ha, uvec4 hb, uint n, uint g0) {
  ivec2 s[4] = ivec2[4](ivec2(0), ivec2(0), ivec2(0), ivec2(0));
  for (uint c = 0u; c < 4u; ++c)
    for (uint r = 0u; r < 2u; ++r) {
      const uint g = g0 + r;
      uint a = (qa[c] >> (2u * g)) & 0x03030303u, b = (qb[c] >> (2u * g)) & 0x03030303u;
#if defined(TYPE_Q3_K)
      a |= ((ha[c] >> (4u * n + g)) & 0x01010101u) << 2;
      b |= ((hb[c] >> (4u * n + g)) & 0x01010101u) << 2;
#endif
      s[2u * r] += dotx(a, 8u * r + c);
      s[2u * r + 1u] += dotx(b, 8u * r + 4u + c);
    }
  return s;
}
#if defined(TYPE_Q2_K)
// block_q2_K (84 bytes): scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16
// dmin; scale 8n + 2g + half; v = d * sc * q - dmin * m.
float dot_unit(uint bb, uint j) {
  const uint n = j >> 1, g0 = 2u * (j & 1u);
  const uvec4 z = uvec4(0u);
  const ivec2 s[4] = dot_rows(w_u128(bb + 16u + 32u * n), w_u128(bb + 32u + 32u * n), z, z, n, g0);
  const uint sc = w_u32(bb + 8u * n + 2u * g0);  // the unit's four scale bytes
  const vec2 dm = unpackHalf2x16(w_u32(bb + 80u));
  float r = 0.0, m = 0.0;
  for (uint k = 0u; k < 4u; ++k) {
    const uint b = (sc >> (8u * k)) & 0xFFu;
    r += float(b & 0xFu) * xmul(k / 2u, s[k]);
    m += float(b >> 4) * xs[k];
  }
  return dm.x * r - dm.y * m;
}
#else
// block_q3_K (110 bytes): hmask[32], qs[64], scales[12], f16 d; scale s = 8n + 2g + half has
// its low 4 bits in nibble n of scales[s % 8] and its high 2 in bits 2(s / 4) of
// scales[8 + s % 4]; v = d * (scale - 32) * (q - 4 where the hmask bit is clear).
float dot_unit(uint bb, uint j) {
  const uint n = j >> 1, g0 = 2u * (j & 1u);
  const ivec2 s[4] = dot_rows(w_u128(bb + 32u + 32u * n), w_u128(bb + 48u + 32u * n),
                              w_u128(bb), w_u128(bb + 16u), n, g0);
  // Scales 8n + 2 g0 + k, k = 0..3: low nibbles bytes 2 g0 + k of scales[0..7] (nibble n),
  // high bits pair 2n + g0 / 2 of scales[8 + k].
  const uint lo = (w_u32(bb + 96u + 2u * g0) >> (4u * n)) & 0x0F0F0F0Fu;
  const uint hi = (w_u32(bb + 104u) >> (2u * (2u * n + g0 / 2u))) & 0x03030303u;
  const uint sc = lo | (hi << 4);
  float r = 0.0;
  for (uint k = 0u; k < 4u; ++k)
    r += float(int((sc >> (8u * k)) & 0xFFu) - 32) * (xmul(k / 2u, s[k]) - 4.0 * xs[k]);
  return w_f16(bb + 108u) * r;
}
#endif
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// A unit is the 64 values that share 32 qs bytes: sub-block 2j (low nibbles) and 2j + 1 (high).
#define QU 64u
uint x_offset(uint u, uint b) { return u * 64u + b * 32u; }
// get_scale_min_k4 for sub-blocks 2j and 2j + 1 at once, on the 12 scale bytes held in three
// words: their two bytes sit at the same place (bits sh..sh+15) of each word. Sub-blocks 0-3
// keep 6 bits of scales[0..3] (scale) and [4..7] (min); 4-7 take the low and high nibbles
// of scales[8..11] with the top two bits of [0..3] and [4..7] above. Returns (scale, min)
// of 2j in xy, of 2j + 1 in zw; both forms computed and one selected (j differs between the
// invocations of a subgroup), two bytes per word operation.
vec4 scale_min_pair(uvec3 s, uint j) {
  const uint sh = 16u * (j & 1u);
  const uint y = s.x >> sh, z = s.y >> sh, x = s.z >> sh;
  const uint sc = j < 2u ? y & 0x3F3Fu : (x & 0x0F0Fu) | ((y >> 2) & 0x3030u);
  const uint m = j < 2u ? z & 0x3F3Fu : ((x >> 4) & 0x0F0Fu) | ((z >> 2) & 0x3030u);
  return vec4(uvec4(sc & 0xFFu, m & 0xFFu, (sc >> 8) & 0xFFu, (m >> 8) & 0xFFu));
}
// block_q4_K: f16 d, f16 dmin, scales[12], (q5_K: qh[32]), qs[128]; v = d * sc * q - dmin * m.
#if W_ALIGNED16
#define W_U128(b) w4[(b) >> 4]
#else
#define W_U128(b) w_u128(b)
#endif
// The unit's words: head = f16 d, f16 dmin, scales[12]; qa, qb its 32 qs bytes; (Q5_K) ha,
// hb the block's qh[32] (bits 2j, 2j + 1 of byte l are the unit's fifth bits).
struct WUnit {
  uvec4 head, qa, qb;
#if defined(TYPE_Q5_K)
  uvec4 ha, hb;
#endif
};
WUnit load_unit(uint bb, uint j) {
#if defined(TYPE_Q4_K)
  const uint qs = bb + 16u + 32u * j;
  return WUnit(W_U128(bb), W_U128(qs), W_U128(qs + 16u));
#else
  const uint qs = bb + 48u + 32u * j;
  return WUnit(W_U128(bb), W_U128(qs), W_U128(qs + 16u), W_U128(bb + 16u), W_U128(bb + 32u));
#endif
}
float dot_loaded(WUnit u, uint j) {
  const vec4 sm = scale_min_pair(u.head.yzw, j);
  const vec2 sm0 = sm.xy, sm1 = sm.zw;
  ivec2 s0 = ivec2(0), s1 = ivec2(0);
#if defined(TYPE_Q5_K)
  for (uint c = 0u; c < 4u; ++c) {
    uint a0 = u.qa[c] & M4, b0 = u.qb[c] & M4, a1 = (u.qa[c] >> 4) & M4, b1 = (u.qb[c] >> 4) & M4;
    a0 |= ((u.ha[c] >> (2u * j)) & 0x01010101u) << 4;
    b0 |= ((u.hb[c] >> (2u * j)) & 0x01010101u) << 4;
    a1 |= ((u.ha[c] >> (2u * j + 1u)) & 0x01010101u) << 4;
    b1 |= ((u.hb[c] >> (2u * j + 1u)) & 0x01010101u) << 4;
    s0 += dotx(a0, c) + dotx(b0, 4u + c);
    s1 += dotx(a1, 8u + c) + dotx(b1, 12u + c);
  }
  const float hi = 1.0;
#else
  // The high nibbles stay at bits 4-7 (16 q, unsigned): one mask per word instead of a shift
  // and a mask; their sum is scaled by 1/16 (exact) with the sub-block's scale.
  for (uint c = 0u; c < 4u; ++c) {
    s0 += dotx(u.qa[c] & M4, c) + dotx(u.qb[c] & M4, 4u + c);
    s1 += dotx_u(u.qa[c] & ~M4, 8u + c) + dotx_u(u.qb[c] & ~M4, 12u + c);
  }
  const float hi = 1.0 / 16.0;
#endif
  const vec2 dm = unpackHalf2x16(u.head.x);
  return dm.x * (sm0.x * xmul(0u, s0) + (hi * sm1.x) * xmul(1u, s1)) -
         dm.y * (sm0.y * (xs[0] + xs[1]) + sm1.y * (xs[2] + xs[3]));
}
#elif defined(TYPE_Q6_K)
// A unit is the 64 values that share 32 ql bytes: quarter c0 = j % 2 of half n = j / 2 (low
// nibbles) and quarter c0 + 2 (high nibbles), 64 values apart; both take 2 bits from the
// half's qh[32] (bits 2c..2c+1) and a scale per 16 values.
#define QU 64u
uint x_offset(uint u, uint b) {
  return (u >> 2) * 256u + ((u >> 1) & 1u) * 128u + (u & 1u) * 32u + b * 64u;
}
// block_q6_K: ql[128], qh[64], int8 scales[16], f16 d; v = d * sc * (q - 32).
// The unit's words: la, lb its 32 ql bytes, ha, hb the half's qh[32], sa, sb its four scales.
struct WUnit {
  uvec4 la, lb, ha, hb;
  uint sa, sb;
  float d;
};
WUnit load_unit(uint bb, uint j) {
  const uint n = j >> 1, c0 = j & 1u;
  const uint ql = bb + 64u * n + 32u * c0, qh = bb + 128u + 32u * n;
  // scales 8n + 2c + (l >= 16): quarter c0 at bytes 2c0, 2c0 + 1; quarter c0 + 2 four on.
  return WUnit(w_u128(ql), w_u128(ql + 16u), w_u128(qh), w_u128(qh + 16u),
               w_u16(bb + 192u + 8u * n + 2u * c0), w_u16(bb + 196u + 8u * n + 2u * c0),
               w_f16(bb + 208u));
}
float dot_loaded(WUnit u, uint j) {
  // The two qh bits of quarter c0 at bits 4-5 of every byte: for the low nibbles shifted up
  // by 4 - 2 c0, for the high ones (bits 4 + 2 c0) down by 2 c0.
  const uint up = 4u - 2u * (j & 1u), down = 2u * (j & 1u);
  const uint M2 = 0x30303030u;
  ivec2 s[4] = ivec2[4](ivec2(0), ivec2(0), ivec2(0), ivec2(0));  // quarter c0 halves 0 and 1, quarter c0 + 2 halves 0 and 1
  for (uint c = 0u; c < 4u; ++c) {
    s[0] += dotx((u.la[c] & M4) | ((u.ha[c] << up) & M2), c);
    s[1] += dotx((u.lb[c] & M4) | ((u.hb[c] << up) & M2), 4u + c);
    s[2] += dotx(((u.la[c] >> 4) & M4) | ((u.ha[c] >> down) & M2), 8u + c);
    s[3] += dotx(((u.lb[c] >> 4) & M4) | ((u.hb[c] >> down) & M2), 12u + c);
  }
  const float r = float(sext8(u.sa)) * (xmul(0u, s[0]) - 32.0 * xs[0]) +
                  float(sext8(u.sa >> 8)) * (xmul(0u, s[1]) - 32.0 * xs[1]) +
                  float(sext8(u.sb)) * (xmul(1u, s[2]) - 32.0 * xs[2]) +
                  float(sext8(u.sb >> 8)) * (xmul(1u, s[3]) - 32.0 * xs[3]);
  return u.d * r;
}
#else
#error "quant_dot.glsl: no integer dot product for this type"
#endif

// Types that split a unit into its loads (WUnit, load_unit) and their use (dot_loaded):
// matmul_vec_q.comp's FORM 2 loads every row's words before the first product.
#if defined(TYPE_Q8_0) || defined(TYPE_Q4_K) || defined(TYPE_Q5_K) || defined(TYPE_Q6_K)
#define HAS_LOAD_UNIT 1
float dot_unit(uint bb, uint j) { return dot_loaded(load_unit(bb, j), j); }
#endif
