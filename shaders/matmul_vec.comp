#version 460
// Matrix-vector product y = W x for one or a few tokens (decode), the weight dequantized in
// the kernel; with EXPERT, the matrix of each (token, slot) is chosen by ids (MoE).
// Fast because a workgroup streams ROWS whole rows with consecutive invocations reading
// consecutive 8-value groups (coalesced), shares each x load across ROWS rows, and reduces
// with subgroupAdd; the weight bytes are read once, which is what bounds a matvec.
#extension GL_GOOGLE_include_directive : require
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer W { uint w[]; };
layout(binding = 1) readonly buffer X { float x[]; };
#if X_VEC4
layout(binding = 1) readonly buffer X4 { vec4 x4[]; };  // the same x, 16-byte loads
#endif
layout(binding = 2) writeonly buffer Y { float y[]; };
#if EXPERT
layout(binding = 3) readonly buffer Ids { int ids[]; };  // [n_tokens][n_used]
#endif

layout(push_constant) uniform Push {
  uint k;              // values per row
  uint row_bytes;      // bytes per row
  uint w_base;         // byte offset in binding 0 of global row row_begin
  uint row_begin;      // global rows [row_begin, row_end) are in this slice
  uint row_end;        //   (global row = expert * m + row)
  uint m;              // rows per matrix
  uint x_stride;       // floats between tokens in x
  uint x_slot_stride;  // floats between a token's slots in x (EXPERT; 0: one x per token)
  uint n_used;         // slots per token (EXPERT)
  uint n_expert;       // matrices in W (EXPERT)
  uint n_rows_grid;    // rows the grid covers (slice rows, or m for EXPERT)
} p;

#include "quant.glsl"
#include "matmul_epilogue.glsl"

#if USE_SUBGROUP
shared float red[ROWS * 64];  // one partial per subgroup (subgroups of at least 4)
#else
shared float red[ROWS * 256];
#endif

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint z = gl_WorkGroupID.z;  // token (or token * n_used + slot)
#if EXPERT
  const uint token = z / p.n_used, slot = z % p.n_used;
  const int id = ids[z];
  const bool bad_id = id < 0 || uint(id) >= p.n_expert;
  const uint expert = bad_id ? 0u : uint(id);  // its bias row (epilogue)
  const uint first = (bad_id ? 0u : uint(id)) * p.m + wg * ROWS;
  const uint xo = token * p.x_stride + slot * p.x_slot_stride;
  const uint row0 = wg * ROWS;
#else
  const bool bad_id = false;
  const uint expert = 0u;
  const uint first = p.row_begin + wg * ROWS;
  const uint xo = z * p.x_stride;
  const uint row0 = first;
#endif
  float acc[ROWS];
  bool valid[ROWS];
  uint rb[ROWS];
  for (uint i = 0u; i < ROWS; ++i) {
    const uint g = first + i;
    valid[i] = wg * ROWS + i < p.n_rows_grid && g >= p.row_begin && g < p.row_end;
    rb[i] = p.w_base + (g - p.row_begin) * p.row_bytes;
    acc[i] = 0.0;
  }
  const uint n_groups = p.k / 8u;
  for (uint gi = tid; gi < n_groups; gi += gl_WorkGroupSize.x) {
    const uint xi = xo + gi * 8u;
#if X_VEC4
    const vec4 xl = x4[xi / 4u], xh = x4[xi / 4u + 1u];
#else
    const vec4 xl = vec4(x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u]);
    const vec4 xh = vec4(x[xi + 4u], x[xi + 5u], x[xi + 6u], x[xi + 7u]);
#endif
    const uint blk = gi / (QK / 8u), j = gi % (QK / 8u);
    for (uint i = 0u; i < ROWS; ++i) {
      if (!valid[i]) continue;
      vec4 lo, hi;
      dequant8(rb[i] + blk * BLOCK_BYTES, j, lo, hi);
      acc[i] += dot(lo, xl) + dot(hi, xh);
    }
  }
#ifdef ELEMENT_BYTES
  // Float rows whose length is not a multiple of 8.
  for (uint e = n_groups * 8u + tid; e < p.k; e += gl_WorkGroupSize.x)
    for (uint i = 0u; i < ROWS; ++i)
      if (valid[i]) acc[i] += dequant1(rb[i] + e * ELEMENT_BYTES) * x[xo + e];
#endif

#if USE_SUBGROUP
  for (uint i = 0u; i < ROWS; ++i) {
    const float s = subgroupAdd(acc[i]);
    if (subgroupElect()) red[i * 64u + gl_SubgroupID] = s;
  }
  barrier();
  if (tid < ROWS && valid[tid]) {
    float s = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; ++g) s += red[tid * 64u + g];
    const uint i = z * p.m + row0 + tid;
    y[i] = bad_id ? uintBitsToFloat(0x7FC00000u) : epilogue(s, i, row0 + tid, expert);
  }
#else
  for (uint i = 0u; i < ROWS; ++i) red[i * 256u + tid] = acc[i];
  barrier();
  for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
    if (tid < s)
      for (uint i = 0u; i < ROWS; ++i) red[i * 256u + tid] += red[i * 256u + tid + s];
    barrier();
  }
  if (tid < ROWS && valid[tid])
    y[z * p.m + row0 + tid] = bad_id ? uintBitsToFloat(0x7FC00000u)
                                     : epilogue(red[tid * 256u], z * p.m + row0 + tid,
                                                row0 + tid, expert);
#endif
}
