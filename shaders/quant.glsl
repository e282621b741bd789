// Block decode for every weight type, shared by matmul_vec, matmul_tiled and dequant.
//
// The including shader declares `buffer W { uint w[]; }` holding raw GGUF bytes (or defines
// W_WORD, below), and defines
// one TYPE_<ggml name>, QK (values per block; 8 for the float types, whose "block" is 8
// values) and BLOCK_BYTES. Blocks of 17, 18, 22, 34... bytes are not 4-byte aligned, so
// bytes are read from uint words with shifts (w_u8/w_u16/w_u32 take byte offsets).
//
// dequant8(bb, j, lo, hi) returns values 8j..8j+7 of the block at byte bb, in ggml's order
// (ggml-common.h layouts, ggml-quants.c dequantize_row_*). Every type stores 8 consecutive
// values in 8 consecutive bytes (or nibbles, or bit pairs) so a group is two word reads.

// W_WORD(i) is the i-th 32-bit word of the weight bytes; a shader that stages the bytes in
// shared memory defines it to read there instead.
#ifndef W_WORD
#define W_WORD(i) w[i]
#endif
uint w_u8(uint b) { return (W_WORD(b >> 2) >> ((b & 3u) * 8u)) & 0xFFu; }
uint w_u16(uint b) {
  const uint s = (b & 3u) * 8u;
  uint v = W_WORD(b >> 2) >> s;
  if (s == 24u) v |= W_WORD((b >> 2) + 1u) << 8u;
  return v & 0xFFFFu;
}
uint w_u32(uint b) {
  const uint s = (b & 3u) * 8u;
  const uint lo = W_WORD(b >> 2);
  return s == 0u ? lo : (lo >> s) | (W_WORD((b >> 2) + 1u) << (32u - s));
}
float w_f16(uint b) { return unpackHalf2x16(w_u16(b)).x; }

vec4 nib_lo(uint q) { return vec4(uvec4(q, q >> 8, q >> 16, q >> 24) & 0xFu); }
vec4 nib_hi(uint q) { return vec4(uvec4(q >> 4, q >> 12, q >> 20, q >> 28) & 0xFu); }
vec4 s8x4(uint q) { return vec4(ivec4(q << 24, q << 16, q << 8, q) >> 24); }
vec4 bit4(uint h) { return vec4(uvec4(h, h >> 1, h >> 2, h >> 3) & 1u); }
vec4 pair4(uint q, uint shift) { return vec4((uvec4(q, q >> 8, q >> 16, q >> 24) >> shift) & 3u); }
vec4 bits4(uint q, uint shift) { return vec4((uvec4(q, q >> 8, q >> 16, q >> 24) >> shift) & 1u); }

// Low nibbles for the first half of a 32-value block, high nibbles for the second
// (block_q4_0/q4_1/q5_0/q5_1/iq4_nl/mxfp4: qs[j] holds values j and j + 16).
void nibbles16(uint qs, uint j, out vec4 lo, out vec4 hi) {
  const uint b = qs + (j & 1u) * 8u;
  const uint q0 = w_u32(b), q1 = w_u32(b + 4u);
  if (j < 2u) {
    lo = nib_lo(q0); hi = nib_lo(q1);
  } else {
    lo = nib_hi(q0); hi = nib_hi(q1);
  }
}

#if defined(TYPE_F32)
// 8 little-endian floats.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  lo = uintBitsToFloat(uvec4(w_u32(bb), w_u32(bb + 4u), w_u32(bb + 8u), w_u32(bb + 12u)));
  hi = uintBitsToFloat(uvec4(w_u32(bb + 16u), w_u32(bb + 20u), w_u32(bb + 24u), w_u32(bb + 28u)));
}
float dequant1(uint b) { return uintBitsToFloat(w_u32(b)); }
#define ELEMENT_BYTES 4u
#elif defined(TYPE_F16)
// 8 IEEE halves.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  lo = vec4(unpackHalf2x16(w_u32(bb)), unpackHalf2x16(w_u32(bb + 4u)));
  hi = vec4(unpackHalf2x16(w_u32(bb + 8u)), unpackHalf2x16(w_u32(bb + 12u)));
}
float dequant1(uint b) { return unpackHalf2x16(w_u16(b)).x; }
#define ELEMENT_BYTES 2u
#elif defined(TYPE_BF16)
// bfloat16: the top half of an f32.
vec2 bf16x2(uint q) { return vec2(uintBitsToFloat(q << 16), uintBitsToFloat(q & 0xFFFF0000u)); }
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  lo = vec4(bf16x2(w_u32(bb)), bf16x2(w_u32(bb + 4u)));
  hi = vec4(bf16x2(w_u32(bb + 8u)), bf16x2(w_u32(bb + 12u)));
}
float dequant1(uint b) { return uintBitsToFloat(w_u16(b) << 16); }
#define ELEMENT_BYTES 2u
#elif defined(TYPE_Q4_0)
// block_q4_0 (18 bytes): f16 d, qs[16]; v = (nibble - 8) * d.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const float d = w_f16(bb);
  nibbles16(bb + 2u, j, lo, hi);
  lo = (lo - 8.0) * d; hi = (hi - 8.0) * d;
}
#elif defined(TYPE_Q4_1)
// block_q4_1 (20 bytes): f16 d, f16 m, qs[16]; v = nibble * d + m.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const float d = w_f16(bb), m = w_f16(bb + 2u);
  nibbles16(bb + 4u, j, lo, hi);
  lo = lo * d + m; hi = hi * d + m;
}
#elif defined(TYPE_Q5_0)
// block_q5_0 (22 bytes): f16 d, u32 qh (bit i = 5th bit of value i), qs[16];
// v = (nibble | bit << 4) - 16) * d.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const float d = w_f16(bb);
  const uint h = w_u32(bb + 2u) >> (8u * j);
  nibbles16(bb + 6u, j, lo, hi);
  lo = (lo + bit4(h) * 16.0 - 16.0) * d; hi = (hi + bit4(h >> 4) * 16.0 - 16.0) * d;
}
#elif defined(TYPE_Q5_1)
// block_q5_1 (24 bytes): f16 d, f16 m, u32 qh, qs[16]; v = (nibble | bit << 4) * d + m.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const float d = w_f16(bb), m = w_f16(bb + 2u);
  const uint h = w_u32(bb + 4u) >> (8u * j);
  nibbles16(bb + 8u, j, lo, hi);
  lo = (lo + bit4(h) * 16.0) * d + m; hi = (hi + bit4(h >> 4) * 16.0) * d + m;
}
#elif defined(TYPE_Q8_0)
// block_q8_0 (34 bytes): f16 d, int8 qs[32]; v = q * d.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const float d = w_f16(bb);
  const uint b = bb + 2u + 8u * j;
  lo = s8x4(w_u32(b)) * d; hi = s8x4(w_u32(b + 4u)) * d;
}
#elif defined(TYPE_Q2_K)
// block_q2_K (84 bytes): scales[16] (low nibble scale, high nibble min), qs[64] (2-bit values,
// four 32-value rows per byte column), f16 d, f16 dmin. Value v of the 256: half n = v/128,
// shift 2*((v%128)/32), byte qs[32n + v%32], scale index 8n + 2*((v%128)/32) + (v%32)/16.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint n = j / 16u, jj = (j % 16u) / 4u, l = (j % 4u) * 8u;
  const uint sc = w_u8(bb + n * 8u + jj * 2u + l / 16u);
  const float dl = w_f16(bb + 80u) * float(sc & 0xFu), ml = w_f16(bb + 82u) * float(sc >> 4);
  const uint b = bb + 16u + n * 32u + l;
  lo = pair4(w_u32(b), 2u * jj) * dl - ml;
  hi = pair4(w_u32(b + 4u), 2u * jj) * dl - ml;
}
#elif defined(TYPE_Q3_K)
// block_q3_K (110 bytes): hmask[32] (high bit, inverted: set means +0, clear means -4), qs[64]
// (low 2 bits, as q2_K), scales[12] (16 6-bit scales: low 4 bits in bytes 0..7, nibble by
// index/8; high 2 bits in bytes 8..11, pair by index/4), f16 d; v = d * (scale - 32) * q.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint n = j / 16u, jj = (j % 16u) / 4u, l = (j % 4u) * 8u;
  const uint s = n * 8u + jj * 2u + l / 16u;
  const uint sl = (w_u8(bb + 96u + s % 8u) >> (4u * (s / 8u))) & 0xFu;
  const uint sh = (w_u8(bb + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
  const float dl = w_f16(bb + 108u) * float(int(sl | (sh << 4)) - 32);
  const uint b = bb + 32u + n * 32u + l, bit = n * 4u + jj;
  const uint m0 = w_u32(bb + l), m1 = w_u32(bb + l + 4u);
  lo = (pair4(w_u32(b), 2u * jj) - 4.0 * (1.0 - bits4(m0, bit))) * dl;
  hi = (pair4(w_u32(b + 4u), 2u * jj) - 4.0 * (1.0 - bits4(m1, bit))) * dl;
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// get_scale_min_k4: 8 6-bit scales and mins packed in 12 bytes; the first four of each in the
// low 6 bits of bytes 0..7, the last four split over bytes 8..11 and the top 2 bits of 0..7.
void scale_min_k4(uint sb, uint is, out float sc, out float m) {
  if (is < 4u) {
    sc = float(w_u8(sb + is) & 63u);
    m = float(w_u8(sb + is + 4u) & 63u);
  } else {
    const uint q4 = w_u8(sb + is + 4u);
    sc = float((q4 & 0xFu) | ((w_u8(sb + is - 4u) >> 6) << 4));
    m = float((q4 >> 4) | ((w_u8(sb + is) >> 6) << 4));
  }
}
#if defined(TYPE_Q4_K)
// block_q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]; 64-value groups g use bytes
// qs[32g..32g+32), low nibbles first (scale 2g) then high nibbles (scale 2g+1);
// v = d * sc * q - dmin * m.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint g = j / 8u, h = (j % 8u) / 4u, l = (j % 4u) * 8u;
  float sc, m;
  scale_min_k4(bb + 4u, 2u * g + h, sc, m);
  const float d = w_f16(bb) * sc, dm = w_f16(bb + 2u) * m;
  const uint b = bb + 16u + g * 32u + l;
  const uint q0 = w_u32(b), q1 = w_u32(b + 4u);
  lo = (h == 0u ? nib_lo(q0) : nib_hi(q0)) * d - dm;
  hi = (h == 0u ? nib_lo(q1) : nib_hi(q1)) * d - dm;
}
#else
// block_q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]; as q4_K with a 5th
// bit from qh[l], bit 2g + h for the half h of group g.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint g = j / 8u, h = (j % 8u) / 4u, l = (j % 4u) * 8u;
  float sc, m;
  scale_min_k4(bb + 4u, 2u * g + h, sc, m);
  const float d = w_f16(bb) * sc, dm = w_f16(bb + 2u) * m;
  const uint b = bb + 48u + g * 32u + l;
  const uint q0 = w_u32(b), q1 = w_u32(b + 4u);
  const uint bit = 2u * g + h;
  lo = ((h == 0u ? nib_lo(q0) : nib_hi(q0)) + 16.0 * bits4(w_u32(bb + 16u + l), bit)) * d - dm;
  hi = ((h == 0u ? nib_lo(q1) : nib_hi(q1)) + 16.0 * bits4(w_u32(bb + 20u + l), bit)) * d - dm;
}
#endif
#elif defined(TYPE_Q6_K)
// block_q6_K (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d.
// In each 128-value half n, quarter c (32 values) takes nibble c/2 of ql[64n + 32(c%2) + l]
// and bits 2c..2c+1 of qh[32n + l]; scale 8n + l/16 + 2c; v = d * scale * (q - 32).
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint n = j / 16u, c = (j % 16u) / 4u, l = (j % 4u) * 8u;
  const float d = w_f16(bb + 208u) * float(int(w_u8(bb + 192u + n * 8u + l / 16u + 2u * c) << 24) >> 24);
  const uint b = bb + n * 64u + 32u * (c & 1u) + l;
  const uint q0 = w_u32(b), q1 = w_u32(b + 4u);
  const uint hb = bb + 128u + n * 32u + l;
  lo = ((c < 2u ? nib_lo(q0) : nib_hi(q0)) + 16.0 * pair4(w_u32(hb), 2u * c) - 32.0) * d;
  hi = ((c < 2u ? nib_lo(q1) : nib_hi(q1)) + 16.0 * pair4(w_u32(hb + 4u), 2u * c) - 32.0) * d;
}
#elif defined(TYPE_MXFP4) || defined(TYPE_IQ4_NL) || defined(TYPE_IQ4_XS)
// The 16-entry grid as int8 bytes packed in 4 words, picked with selects and shifts: a
// dynamically indexed const array would live in local memory on NVIDIA (10x slower).
#if defined(TYPE_MXFP4)
// kvalues_mxfp4: FP4 E2M1 values doubled {0 1 2 3 4 6 8 12 0 -1 -2 -3 -4 -6 -8 -12}, paired
// with the halved E8M0 scale below.
const uvec4 kgrid = uvec4(0x03020100u, 0x0C080604u, 0xFDFEFF00u, 0xF4F8FAFCu);
#else
// kvalues_iq4nl {-127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113}: the non-linear
// 4-bit grid of IQ4_NL and IQ4_XS.
const uvec4 kgrid = uvec4(0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);
#endif
vec4 lookup(vec4 nf) {
  const uvec4 n = uvec4(nf);
  const uvec4 lo = mix(uvec4(kgrid.x), uvec4(kgrid.y), greaterThanEqual(n, uvec4(4u)));
  const uvec4 hi = mix(uvec4(kgrid.z), uvec4(kgrid.w), greaterThanEqual(n, uvec4(12u)));
  const uvec4 w = mix(lo, hi, greaterThanEqual(n, uvec4(8u)));
  return vec4(ivec4(w << (uvec4(24u) - (n & 3u) * 8u)) >> 24);
}
#if defined(TYPE_MXFP4)
// block_mxfp4 (17 bytes): E8M0 exponent e, qs[16] as q4_0; ggml_e8m0_to_fp32_half:
// 2^(e - 128) (e < 2 gives the subnormals 0x00200000 << e).
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint e = w_u8(bb);
  const float d = uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
  nibbles16(bb + 1u, j, lo, hi);
  lo = lookup(lo) * d; hi = lookup(hi) * d;
}
#elif defined(TYPE_IQ4_NL)
// block_iq4_nl (18 bytes): f16 d, qs[16] as q4_0; v = kvalues_iq4nl[nibble] * d.
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const float d = w_f16(bb);
  nibbles16(bb + 2u, j, lo, hi);
  lo = lookup(lo) * d; hi = lookup(hi) * d;
}
#else
// block_iq4_xs (136 bytes): f16 d, u16 scales_h, scales_l[4], qs[128]; eight 32-value
// sub-blocks ib laid out as iq4_nl, 6-bit scale ls = low nibble of scales_l[ib/2] (by ib%2)
// | 2 bits of scales_h at 2ib; v = d * (ls - 32) * kvalues_iq4nl[nibble].
void dequant8(uint bb, uint j, out vec4 lo, out vec4 hi) {
  const uint ib = j / 4u;
  const uint ls = ((w_u8(bb + 4u + ib / 2u) >> (4u * (ib % 2u))) & 0xFu) |
                  (((w_u16(bb + 2u) >> (2u * ib)) & 3u) << 4);
  const float d = w_f16(bb) * float(int(ls) - 32);
  nibbles16(bb + 8u + ib * 16u, j % 4u, lo, hi);
  lo = lookup(lo) * d; hi = lookup(hi) * d;
}
#endif
#else
#error "quant.glsl: define one TYPE_<ggml type>"
#endif
