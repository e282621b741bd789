#version 460
// Matrix-vector product y = W x for one or a few tokens (decode), the weight staged through
// shared memory; with EXPERT, the matrix of each (token, slot) is chosen by ids (MoE).
// Fast because every weight byte is read once by a coalesced 16-byte load (consecutive
// invocations read consecutive uvec4s of a row) whatever the block size (17, 34, 210 bytes):
// decoding straight from global memory makes each warp-wide load of a 2- or 1-byte-aligned
// block touch several cache lines. The decode then reads shared memory through quant.glsl.
#extension GL_GOOGLE_include_directive : require
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer W {
  uint w[];
};
layout(binding = 0) readonly buffer W4 {
  uvec4 w4[];
};  // the same bytes, 16-byte loads
layout(binding = 1) readonly buffer X {
  float x[];
};
#if X_VEC4
layout(binding = 1) readonly buffer X4 {
  vec4 x4[];
};
#endif
layout(binding = 2) writeonly buffer Y {
  float y[];
};
#if EXPERT
layout(binding = 3) readonly buffer Ids {
  int ids[];
};  // [n_tokens][n_used]
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
}
p;

// CB blocks of each of the ROWS rows per step; a row's segment starts at the 16-byte word at
// or below its first byte, so SEG_WORDS = CB * BLOCK_BYTES plus 32 bytes of slack, in words.
shared uint stage[ROWS * SEG_WORDS];
#define W_WORD(i) stage[i]
#include "quant.glsl"
#include "matmul_epilogue.glsl"

#if USE_SUBGROUP
shared float red[ROWS * 64];  // one partial per subgroup (subgroups of at least 4)
#else
shared float red[ROWS * 256];
#endif

// The binding may end inside its last 16 bytes (rows padded to 4 bytes only).
uvec4 load16(uint q) {
  if (q < w4.length()) return w4[q];
  uvec4 v = uvec4(0u);
  for (uint c = 0u; c < 4u; ++c)
    if (q * 4u + c < w.length()) v[c] = w[q * 4u + c];
  return v;
}

void main() {
  const uint tid = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
  const uint z = gl_WorkGroupID.z;  // token (or token * n_used + slot)
#if EXPERT
  const uint token = z / p.n_used, slot = z % p.n_used;
  const int id = ids[z];
  const bool bad_id = id < 0 || uint(id) >= p.n_expert;
  const uint expert = bad_id ? 0u : uint(id);  // its bias row (epilogue)
  const uint matrix_row = (bad_id ? 0u : uint(id)) * p.m;
  const uint xo = token * p.x_stride + slot * p.x_slot_stride;
#else
  const bool bad_id = false;
  const uint expert = 0u;
  const uint matrix_row = p.row_begin;
  const uint xo = z * p.x_stride;
#endif
  const uint n_blocks = p.k / QK;
  const uint n_groups = (p.n_rows_grid + ROWS - 1u) / ROWS;
  const uint n_wg = gl_NumWorkGroups.x * gl_NumWorkGroups.y;
  // A grid folded over x and y may hold more workgroups than row groups.
  for (uint rg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; rg < n_groups;
       rg += n_wg) {
    float acc[ROWS];
    bool valid[ROWS];
    uint rs[ROWS];  // byte offset of the row in binding 0
    for (uint i = 0u; i < ROWS; ++i) {
      const uint g = matrix_row + rg * ROWS + i;
      valid[i] = rg * ROWS + i < p.n_rows_grid && g >= p.row_begin && g < p.row_end;
      rs[i] = p.w_base + (g - p.row_begin) * p.row_bytes;
      acc[i] = 0.0;
    }
    for (uint b0 = 0u; b0 < n_blocks; b0 += CB) {
      const uint nb = min(CB, n_blocks - b0);
      for (uint i = 0u; i < ROWS; ++i) {
        if (!valid[i]) continue;
        const uint s = rs[i] + b0 * BLOCK_BYTES;
        const uint q0 = s >> 4, nq = ((s + nb * BLOCK_BYTES + 15u) >> 4) - q0;
        for (uint q = tid; q < nq; q += nt) {
          const uvec4 v = load16(q0 + q);
          const uint o = i * SEG_WORDS + q * 4u;
          stage[o] = v.x;
          stage[o + 1u] = v.y;
          stage[o + 2u] = v.z;
          stage[o + 3u] = v.w;
        }
      }
      barrier();
      const uint ng = nb * (QK / 8u);
      for (uint gi = tid; gi < ng; gi += nt) {
        const uint xi = xo + b0 * QK + gi * 8u;
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
          dequant8(i * SEG_WORDS * 4u + ((rs[i] + b0 * BLOCK_BYTES) & 15u) + blk * BLOCK_BYTES, j,
                   lo, hi);
          acc[i] += dot(lo, xl) + dot(hi, xh);
        }
      }
      barrier();
    }

#if EXPERT
    const uint row0 = rg * ROWS;  // row of the expert's matrix
#else
    const uint row0 = p.row_begin + rg * ROWS;
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
    for (uint s = nt / 2u; s > 0u; s >>= 1) {
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
}
