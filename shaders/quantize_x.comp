#version 460
// x [n_blocks * 32] f32 to the int8 blocks that matmul_vec_q.comp reads with X_PRE, once per
// matmul instead of once per workgroup (llama.cpp's quantize_q8_1 before mul_mat_vecq): for a
// matvec every workgroup covers only a few rows, so re-reading and re-rounding x there moved
// more bytes than the weights. One invocation per 32-value block; a block is 20 words (five
// uvec4): q[8] int8x4 (x ~= d q), r[8] the rounding's remainder as int8x4 (~= e r; zero
// without X_RESIDUAL), then d, e and the float sums of the two 16-value halves. The rounding
// is matmul_vec_q.comp's in-kernel one, bit for bit. Blocks are stored in tiles of 32, each
// part of the 32 blocks together (q[32][8], r[32][8], then the scales [32][4]: 160 uvec4), so
// the invocations of a subgroup that read consecutive blocks read contiguous memory.
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 1) writeonly buffer XQ { uvec4 xq4[]; };

layout(push_constant) uniform Push {
  uint n_blocks;
} p;

void main() {
  const uint b = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x *
                 gl_WorkGroupSize.x;
  if (b >= p.n_blocks) return;
  vec4 v[8];
  float amax = 0.0;
  for (uint c = 0u; c < 8u; ++c) {
    v[c] = x4[8u * b + c];
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
