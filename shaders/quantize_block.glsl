// One 32-value block of x to the int8 form matmul_vec_q.comp reads with X_PRE (see
// quantize_x.comp for the layout): the including shader declares `uvec4 xq4[]` and defines
// X_RESIDUAL. Shared by quantize_x.comp and the ops that write x for a matvec anyway (rmsnorm,
// the gated activations), so those save the separate quantize dispatch; the rounding is the
// same bit for bit, so it does not matter which one made a block.
void store_x_block(uint b, vec4 v[8]) {
  float amax = 0.0;
  for (uint c = 0u; c < 8u; ++c) {
    const vec4 a = abs(v[c]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  const float s0 = dot(v[0] + v[1] + v[2] + v[3], vec4(1.0));
  const float s1 = dot(v[4] + v[5] + v[6] + v[7], vec4(1.0));
  const float inv = amax > 0.0 ? 1.0 / amax : 0.0;
  uint q[8];
  for (uint c = 0u; c < 8u; ++c) q[c] = packSnorm4x8(v[c] * inv);
  uint r[8] = uint[8](0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
  float rmax = 0.0;
#if X_RESIDUAL
  // What the int8 rounding left, rounded to int8 again: x ~= d q + e r to ~1e-5 relative.
  for (uint c = 0u; c < 8u; ++c) {
    v[c] -= unpackSnorm4x8(q[c]) * amax;
    const vec4 a = abs(v[c]);
    rmax = max(rmax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  const float rinv = rmax > 0.0 ? 1.0 / rmax : 0.0;
  for (uint c = 0u; c < 8u; ++c) r[c] = packSnorm4x8(v[c] * rinv);
#endif
  const uint o = (b / 32u) * 160u, i = b % 32u;
  xq4[o + 2u * i] = uvec4(q[0], q[1], q[2], q[3]);
  xq4[o + 2u * i + 1u] = uvec4(q[4], q[5], q[6], q[7]);
  xq4[o + 64u + 2u * i] = uvec4(r[0], r[1], r[2], r[3]);
  xq4[o + 64u + 2u * i + 1u] = uvec4(r[4], r[5], r[6], r[7]);
  xq4[o + 128u + i] =
      uvec4(floatBitsToUint(amax / 127.0), floatBitsToUint(rmax / 127.0), floatBitsToUint(s0),
            floatBitsToUint(s1));
}

#ifdef X_BLOCK_LANES
// The same block stored by the 8 consecutive subgroup lanes that hold it, lane c (0-7) with
// values 4c..4c+3 in v (the including shader enables GL_KHR_shader_subgroup_shuffle and
// _shuffle_relative): why it is fast, store_x_block's packing and residual run on one lane
// per block, a chain of ~2 us on the H200 at the end of a decode-row kernel; here each lane
// packs its own 4 values. Bit for bit store_x_block's result: the maxima are exact and the
// sums add the same values in the same order.
void store_x_block_lanes(uint b, vec4 v, uint c, bool write) {
  const vec4 a = abs(v);
  float amax = max(max(a.x, a.y), max(a.z, a.w));
  amax = max(amax, subgroupShuffleXor(amax, 1u));
  amax = max(amax, subgroupShuffleXor(amax, 2u));
  amax = max(amax, subgroupShuffleXor(amax, 4u));
  // s0 = dot(v0 + v1 + v2 + v3, 1) on lane 0, s1 the same of v4..v7 on lane 4
  const vec4 v1 = subgroupShuffleDown(v, 1u), v2 = subgroupShuffleDown(v, 2u),
             v3 = subgroupShuffleDown(v, 3u);
  const float s = dot(v + v1 + v2 + v3, vec4(1.0));
  const float inv = amax > 0.0 ? 1.0 / amax : 0.0;
  const uint q = packSnorm4x8(v * inv);
  uint r = 0u;
  float rmax = 0.0;
#if X_RESIDUAL
  const vec4 e = v - unpackSnorm4x8(q) * amax;
  const vec4 ea = abs(e);
  rmax = max(max(ea.x, ea.y), max(ea.z, ea.w));
  rmax = max(rmax, subgroupShuffleXor(rmax, 1u));
  rmax = max(rmax, subgroupShuffleXor(rmax, 2u));
  rmax = max(rmax, subgroupShuffleXor(rmax, 4u));
  const float rinv = rmax > 0.0 ? 1.0 / rmax : 0.0;
  r = packSnorm4x8(e * rinv);
#endif
  // Lanes 0 and 4 gather q of their half, lanes 1 and 5 r of theirs (from 1 below them), lane
  // 2 the scales (s1 from lane 4).
  const uint q1 = subgroupShuffleDown(q, 1u), q2 = subgroupShuffleDown(q, 2u),
             q3 = subgroupShuffleDown(q, 3u);
  const uint r0 = subgroupShuffleUp(r, 1u), r2 = subgroupShuffleDown(r, 1u),
             r3 = subgroupShuffleDown(r, 2u);
  const float s1 = subgroupShuffleDown(s, 2u), s0 = subgroupShuffleUp(s, 2u);
  if (!write) return;
  const uint o = (b / 32u) * 160u, i = b % 32u;
  if (c == 0u || c == 4u) xq4[o + 2u * i + c / 4u] = uvec4(q, q1, q2, q3);
  if (c == 1u || c == 5u) xq4[o + 64u + 2u * i + c / 4u] = uvec4(r0, r, r2, r3);
  if (c == 2u)
    xq4[o + 128u + i] = uvec4(floatBitsToUint(amax / 127.0), floatBitsToUint(rmax / 127.0),
                              floatBitsToUint(s0), floatBitsToUint(s1));
}
#endif
