#version 460
// Embedding lookup: y[:, r] = row ids[r] of a table in its GGUF type, dequantized with
// quant.glsl. One invocation per 8-value group (per value with ELEMENTWISE, for float rows
// whose length is not a multiple of 8). A table larger than maxStorageBufferRange is bound in
// slices, one dispatch each: a dispatch writes the rows whose ids fall in its slice
// [row_begin, row_end), whose first row starts `base` bytes into the binding. An id outside
// [0, n_table_rows) gives a NaN row (written by the dispatch with `first` set).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer W { uint w[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
  uint k, row_bytes, n_ids, n_table_rows, row_begin, row_end, base, first;
} p;

#include "quant.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if ELEMENTWISE
  const uint r = i / p.k, e = i % p.k;
  if (r >= p.n_ids) return;
  const int id = ids[r];
  if (id < 0 || uint(id) >= p.n_table_rows) {
    if (p.first != 0u) y[i] = uintBitsToFloat(0x7FC00000u);
    return;
  }
  if (uint(id) < p.row_begin || uint(id) >= p.row_end) return;  // another slice's row
  y[i] = dequant1((uint(id) - p.row_begin) * p.row_bytes + p.base + e * ELEMENT_BYTES);
#else
  const uint per_row = p.k / 8u;
  const uint r = i / per_row, gi = i % per_row;
  if (r >= p.n_ids) return;
  const int id = ids[r];
  const uint o = r * p.k + gi * 8u;
  vec4 lo = vec4(uintBitsToFloat(0x7FC00000u)), hi = lo;
  if (id < 0 || uint(id) >= p.n_table_rows) {
    if (p.first == 0u) return;
  } else {
    if (uint(id) < p.row_begin || uint(id) >= p.row_end) return;  // another slice's row
    dequant8((uint(id) - p.row_begin) * p.row_bytes + p.base + (gi / (QK / 8u)) * BLOCK_BYTES,
             gi % (QK / 8u), lo, hi);
  }
  for (uint e = 0u; e < 4u; ++e) {
    y[o + e] = lo[e];
    y[o + 4u + e] = hi[e];
  }
#endif
}
