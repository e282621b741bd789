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
