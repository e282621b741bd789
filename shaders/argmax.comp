#version 460
// Index of the largest value of each row (the first one on ties, as ml::ops::argmax) in two
// passes, because one workgroup scanning a 200k-entry vocabulary row alone takes a
// millisecond: PASS 1 gives each (part, row) workgroup `chunk` values and writes its best
// (value, index) pair; PASS 2 reduces a row's n_parts pairs. Both end in a shared-memory
// tree reduction.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
#if PASS == 1
layout(binding = 1) writeonly buffer P { uvec2 part[]; };  // (value bits, index)
#else
layout(binding = 1) readonly buffer P { uvec2 part[]; };
layout(binding = 2) writeonly buffer Y { int y[]; };
#endif
layout(push_constant) uniform Push { uint n, n_rows, n_parts, chunk; } p;

const uint kNone = 0xFFFFFFFFu;
shared float best_v[WG];
shared uint best_i[WG];

// (v, i) beats (bv, bi): larger, or equal with the lower index; anything beats "none".
bool beats(float v, uint i, float bv, uint bi) {
  return i != kNone && (bi == kNone || v > bv || (v == bv && i < bi));
}

void main() {
#if PASS == 1
  const uint part_id = gl_WorkGroupID.x, row = gl_WorkGroupID.y;
#else
  const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
#endif
  if (row >= p.n_rows) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x;
  float bv = 0.0;
  uint bi = kNone;
#if PASS == 1
  const uint begin = part_id * p.chunk, end = min(p.n, begin + p.chunk), base = row * p.n;
  // Four independent loads in flight per step (the scan is latency bound otherwise).
  uint i = begin + tid;
  for (; i + 3u * WG < end; i += 4u * WG) {
    const float v0 = x[base + i], v1 = x[base + i + WG], v2 = x[base + i + 2u * WG],
                v3 = x[base + i + 3u * WG];
    if (beats(v0, i, bv, bi)) { bv = v0; bi = i; }
    if (beats(v1, i + WG, bv, bi)) { bv = v1; bi = i + WG; }
    if (beats(v2, i + 2u * WG, bv, bi)) { bv = v2; bi = i + 2u * WG; }
    if (beats(v3, i + 3u * WG, bv, bi)) { bv = v3; bi = i + 3u * WG; }
  }
  for (; i < end; i += WG)
    if (beats(x[base + i], i, bv, bi)) { bv = x[base + i]; bi = i; }
#else
  for (uint j = tid; j < p.n_parts; j += WG) {
    const uvec2 c = part[row * p.n_parts + j];
    if (beats(uintBitsToFloat(c.x), c.y, bv, bi)) { bv = uintBitsToFloat(c.x); bi = c.y; }
  }
#endif
  best_v[tid] = bv;
  best_i[tid] = bi;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h && beats(best_v[tid + h], best_i[tid + h], best_v[tid], best_i[tid])) {
      best_v[tid] = best_v[tid + h];
      best_i[tid] = best_i[tid + h];
    }
    barrier();
  }
  if (tid != 0u) return;
#if PASS == 1
  part[row * p.n_parts + part_id] = uvec2(floatBitsToUint(best_v[0]), best_i[0]);
#else
  y[row] = int(best_i[0]);
#endif
}
