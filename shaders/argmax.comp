#version 460
// Index of the largest value of each row (the first one on ties, as ml::ops::argmax), one
// workgroup per row: strided scans, then a shared-memory reduction.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { int y[]; };
layout(push_constant) uniform Push { uint n, n_rows; } p;

shared float best_v[WG];
shared uint best_i[WG];

void main() {
  const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (row >= p.n_rows) return;
  const uint tid = gl_LocalInvocationID.x, base = row * p.n;
  float bv = uintBitsToFloat(0xFF800000u);
  uint bi = 0xFFFFFFFFu;
  for (uint i = tid; i < p.n; i += WG)
    if (bi == 0xFFFFFFFFu || x[base + i] > bv) { bv = x[base + i]; bi = i; }
  best_v[tid] = bv;
  best_i[tid] = bi;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) {
      const float ov = best_v[tid + h];
      const uint oi = best_i[tid + h];
      if (oi != 0xFFFFFFFFu && (best_i[tid] == 0xFFFFFFFFu || ov > best_v[tid] ||
                                (ov == best_v[tid] && oi < best_i[tid]))) {
        best_v[tid] = ov;
        best_i[tid] = oi;
      }
    }
    barrier();
  }
  if (tid == 0u) y[row] = int(best_i[0]);
}
