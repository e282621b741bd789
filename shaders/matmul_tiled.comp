#version 460
// Tiled matrix-matrix product Y[t][r] = sum_i W[r][i] X[t][i] for many tokens (prefill).
// Fast because each TM x TK weight tile is dequantized once into shared memory and reused by
// TN tokens, and each invocation accumulates an RM x RN register tile from shared loads.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer W { uint w[]; };
layout(binding = 1) readonly buffer X { float x[]; };    // [n_tokens][x_stride]
layout(binding = 2) writeonly buffer Y { float y[]; };   // [n_tokens][m]

layout(push_constant) uniform Push {
  uint k;          // values per row
  uint row_bytes;  // bytes per row
  uint w_base;     // byte offset in binding 0 of row row_begin
  uint row_begin;  // rows [row_begin, row_end) are in this slice
  uint row_end;
  uint m;          // rows of W (y's row length)
  uint x_stride;   // floats between tokens in x
  uint n_tokens;
} p;

#include "quant.glsl"
#include "matmul_epilogue.glsl"

// TM rows x TN tokens per workgroup, TK values per step; TX x (WG / TX) invocations each own
// RM = TM / TX rows and RN tokens (RN * WG / TX = TN, chosen in C++ with the workgroup size).
shared float ws[TM][TK + 1];
shared float xs[TN][TK + 1];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint ty_n = gl_WorkGroupSize.x / TX;
  const uint tx = tid % TX, ty = tid / TX;
  const uint tile = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint r0 = p.row_begin + tile * TM;
  const uint t0 = gl_WorkGroupID.z * TN;

  float acc[RM][RN];
  for (uint a = 0u; a < RM; ++a)
    for (uint b = 0u; b < RN; ++b) acc[a][b] = 0.0;

  for (uint k0 = 0u; k0 < p.k; k0 += TK) {
    // Weight tile: TK / 8 groups per row, each decoded by one invocation.
    for (uint i = tid; i < TM * (TK / 8u); i += gl_WorkGroupSize.x) {
      const uint rr = i / (TK / 8u), gi = i % (TK / 8u);
      const uint r = r0 + rr, kk = k0 + gi * 8u;
      vec4 lo = vec4(0.0), hi = vec4(0.0);
      if (r < p.row_end) {
        const uint rb = p.w_base + (r - p.row_begin) * p.row_bytes;
        if (kk + 8u <= p.k) {
          dequant8(rb + (kk / QK) * BLOCK_BYTES, (kk % QK) / 8u, lo, hi);
#ifdef ELEMENT_BYTES
        } else {
          // Float rows whose length is not a multiple of 8.
          float v[8];
          for (uint e = 0u; e < 8u; ++e)
            v[e] = kk + e < p.k ? dequant1(rb + (kk + e) * ELEMENT_BYTES) : 0.0;
          lo = vec4(v[0], v[1], v[2], v[3]);
          hi = vec4(v[4], v[5], v[6], v[7]);
#endif
        }
      }
      for (uint e = 0u; e < 4u; ++e) {
        ws[rr][gi * 8u + e] = lo[e];
        ws[rr][gi * 8u + 4u + e] = hi[e];
      }
    }
    for (uint i = tid; i < TN * TK; i += gl_WorkGroupSize.x) {
      const uint tt = i / TK, kk = i % TK;
      const uint t = t0 + tt;
      xs[tt][kk] = t < p.n_tokens && k0 + kk < p.k ? x[t * p.x_stride + k0 + kk] : 0.0;
    }
    barrier();
    for (uint kk = 0u; kk < TK; ++kk) {
      float wv[RM], xv[RN];
      for (uint a = 0u; a < RM; ++a) wv[a] = ws[tx + a * TX][kk];
      for (uint b = 0u; b < RN; ++b) xv[b] = xs[ty + b * ty_n][kk];
      for (uint a = 0u; a < RM; ++a)
        for (uint b = 0u; b < RN; ++b) acc[a][b] += wv[a] * xv[b];
    }
    barrier();
  }
  for (uint a = 0u; a < RM; ++a) {
    const uint r = r0 + tx + a * TX;
    if (r >= p.row_end) continue;
    for (uint b = 0u; b < RN; ++b) {
      const uint t = t0 + ty + b * ty_n;
      if (t < p.n_tokens) y[t * p.m + r] = epilogue(acc[a][b], t * p.m + r, r, 0u);
    }
  }
}
