#version 460
// Elementwise dequantize: y = the f32 values of W's rows. One invocation per 8-value group
// (per value with ELEMENTWISE, for float rows whose length is not a multiple of 8).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer W { uint w[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint k;          // values per row
  uint row_bytes;  // bytes per row
  uint w_base;     // byte offset in binding 0 of this slice's first row
  uint y_base;     // float offset in binding 1 of this slice's first row
  uint n_rows;     // rows in this slice
} p;

#include "quant.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if ELEMENTWISE
  const uint r = i / p.k, e = i % p.k;
  if (r >= p.n_rows) return;
  y[p.y_base + i] = dequant1(p.w_base + r * p.row_bytes + e * ELEMENT_BYTES);
#else
  const uint per_row = p.k / 8u;
  const uint r = i / per_row, gi = i % per_row;
  if (r >= p.n_rows) return;
  vec4 lo, hi;
  dequant8(p.w_base + r * p.row_bytes + (gi / (QK / 8u)) * BLOCK_BYTES, gi % (QK / 8u), lo, hi);
  const uint o = p.y_base + r * p.k + gi * 8u;
  for (uint e = 0u; e < 4u; ++e) {
    y[o + e] = lo[e];
    y[o + 4u + e] = hi[e];
  }
#endif
}
