#version 460
// The k largest values of each row, descending, ties to the lower index (ml::ops::top_k): k
// rounds of a workgroup argmax over the values ordered after the previous pick in (value
// descending, index ascending), so no "taken" set is needed. With ROUTE the weights row gets
// the softmax over the k picked values (ml::ops::moe_route).
// A long row (a 201088-token vocabulary) is one workgroup's k passes over all of it unless
// split: PASS 1 finds the top k of each chunk of the row (n_chunks workgroups per row), PASS 2
// the top k of those candidates, which hold the row's top k since every member of the row's
// top k is in its chunk's top k. Indices stay the row's, so the order and ties are unchanged.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };  // PASS 2: candidate values
layout(binding = 1) writeonly buffer Ids { int ids[]; };
#if ROUTE
layout(binding = 2) buffer Wt { float wt[]; };
#elif PASS == 1
layout(binding = 2) writeonly buffer CandV { float cand_v[]; };  // [rows][n_chunks][k]
layout(binding = 3) writeonly buffer CandI { uint cand_i[]; };
#elif PASS == 2
layout(binding = 2) readonly buffer XI { uint xi[]; };  // candidate indices, NONE = no value
#endif
// n: values per row (PASS 2: candidates per row); chunk: values per PASS 1 chunk.
layout(push_constant) uniform Push { uint n, n_rows, k, chunk, n_chunks; } p;

const uint NONE = 0xFFFFFFFFu;
shared float best_v[WG];
shared uint best_i[WG];

// (v, i) comes before (bv, bi) in the order.
bool before(float v, uint i, float bv, uint bi) {
  return bi == NONE || v > bv || (v == bv && i < bi);
}

void main() {
  const uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
#if PASS == 1
  const uint row = item / p.n_chunks, c = item % p.n_chunks;
  const uint lo = c * p.chunk, hi = min(p.n, lo + p.chunk);
#else
  const uint row = item, lo = 0u, hi = p.n;
#endif
  if (row >= p.n_rows) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x, base = row * p.n;
  float prev_v = 0.0;
  uint prev_i = NONE;  // none yet
  for (uint j = 0u; j < p.k; ++j) {
    float bv = 0.0;
    uint bi = NONE;
    for (uint e = lo + tid; e < hi; e += WG) {
      const float v = x[base + e];
#if PASS == 2
      const uint i = xi[base + e];
      if (i == NONE) continue;
#else
      const uint i = e;
#endif
      const bool after_prev = prev_i == NONE || v < prev_v || (v == prev_v && i > prev_i);
      if (after_prev && before(v, i, bv, bi)) { bv = v; bi = i; }
    }
    best_v[tid] = bv;
    best_i[tid] = bi;
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
      if (tid < h && best_i[tid + h] != NONE &&
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
#if PASS == 1
      cand_v[item * p.k + j] = prev_v;
      cand_i[item * p.k + j] = prev_i;  // NONE when the chunk has fewer than k values
#else
      ids[row * p.k + j] = int(prev_i);
#endif
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
