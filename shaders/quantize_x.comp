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
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 1) writeonly buffer XQ { uvec4 xq4[]; };

layout(push_constant) uniform Push {
  uint n_blocks;
} p;

#include "quantize_block.glsl"

void main() {
  const uint b = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x *
                 gl_WorkGroupSize.x;
  if (b >= p.n_blocks) return;
  vec4 v[8];
  for (uint c = 0u; c < 8u; ++c) v[c] = x4[8u * b + c];
  store_x_block(b, v);
}
