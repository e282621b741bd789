#version 460
// The k largest values of each row, descending, ties to the lower index (ml::ops::top_k), one
// workgroup per row: k rounds of a workgroup argmax over the values ordered after the
// previous pick in (value descending, index ascending), so no "taken" set is needed. With
// ROUTE the weights row gets the softmax over the k picked values (ml::ops::moe_route).
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Ids { int ids[]; };
#if ROUTE
layout(binding = 2) buffer Wt { float wt[]; };
#endif
layout(push_constant) uniform Push { uint n, n_rows, k; } p;

shared float best_v[WG];
shared uint best_i[WG];

// (v, i) comes before (bv, bi) in the order.
bool before(float v, uint i, float bv, uint bi) {
  return bi == 0xFFFFFFFFu || v > bv || (v == bv && i < bi);
}

void main() {
  const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (row >= p.n_rows) return;
  const uint tid = gl_LocalInvocationID.x, base = row * p.n;
  float prev_v = 0.0;
  uint prev_i = 0xFFFFFFFFu;  // none yet
  for (uint j = 0u; j < p.k; ++j) {
    float bv = 0.0;
    uint bi = 0xFFFFFFFFu;
    for (uint i = tid; i < p.n; i += WG) {
      const float v = x[base + i];
      const bool after_prev = prev_i == 0xFFFFFFFFu || v < prev_v || (v == prev_v && i > prev_i);
      if (after_prev && before(v, i, bv, bi)) { bv = v; bi = i; }
    }
    best_v[tid] = bv;
    best_i[tid] = bi;
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
      if (tid < h && best_i[tid + h] != 0xFFFFFFFFu &&
          before(best_v[tid + h], best_i[tid + h], best_v[tid], best_i[tid])) {
        best_v[tid] = best_v[tid + h];
        best_i[tid] = best_i[tid + h];
      }
      barrier();
    }
    prev_v = best_v[0];
    prev_i = best_i[0];
    barrier();
    if (tid == 0u) {
      ids[row * p.k + j] = int(prev_i);
#if ROUTE
      wt[row * p.k + j] = prev_v;
#endif
    }
  }
#if ROUTE
  // Invocation 0 wrote the picked logits and reads back only its own writes.
  if (tid == 0u) {
    const float m = wt[row * p.k];  // the largest
    float sum = 0.0;
    for (uint j = 0u; j < p.k; ++j) sum += exp(wt[row * p.k + j] - m);
    for (uint j = 0u; j < p.k; ++j) wt[row * p.k + j] = exp(wt[row * p.k + j] - m) / sum;
  }
#endif
}
