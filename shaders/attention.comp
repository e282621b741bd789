#version 460
// Grouped-query attention: softmax(scale q.k [softcap] [+ sink]) . v over keys [first, p_q]
// (causal, sliding window n_swa), keys before pos0 from the cache (row p % n_cells, F16 with
// CACHE_F16) and the rest from the batch's k/v. The CPU reference is ml::ops::attention.
// One workgroup per (token·head, split): a split takes `chunk` keys of its token's range
// (flash-decoding: one decode token's head is many workgroups when its keys are many).
//
// CLUSTER (HEAD_DIM a multiple of 64, subgroups of 8+ with shuffles): the workgroup is WG / 8
// clusters of 8 lanes; a cluster takes a key, each lane HEAD_DIM / 8 of its dims, so a key's
// row and its value row are read by the 8 lanes together and q.k is 3 shuffles. A lane takes
// KPL keys of a step (G · KPL keys for the workgroup) and issues all their key and value loads
// at once, before the scores: one memory round trip a step. Each cluster keeps its own online
// softmax (running max m and sum l, rescaling the accumulator) with no barrier in the key
// loop; the clusters are joined once at the end in shared memory. Why: the layout below it
// ran a barrier-separated score pass, a serial max over shared memory and then the value
// rows in 8-key steps, each a round trip: 17-28 us per layer for <= 64 keys on the H200,
// 9.5-13 us this way (and pp512's attention 31% shorter).
// Otherwise keys go in steps of WG, one invocation per key, values two dims per invocation.
//
// SPLIT = 0 writes o (the sink folded in). SPLIT = 1 writes (acc, m, l) per split to `part`
// and the last of an item's workgroups to finish (a counter per item) combines them into o:
// one dispatch where a second combine pass cost a barrier drain per layer.
// QUANTIZE (decode, HEAD_DIM a multiple of 32): the workgroup that writes an item's o also
// writes it quantized for the output projection's integer matvec (quantize_block.glsl), so
// no quantize dispatch stands between attention and that matvec.
#extension GL_EXT_control_flow_attributes : enable
#extension GL_GOOGLE_include_directive : require
#if CLUSTER
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Q { vec4 q4[]; };
layout(binding = 1) readonly buffer KN { vec4 k_new[]; };
#if CLUSTER
layout(binding = 2) readonly buffer VN { vec4 v_new[]; };
#else
layout(binding = 2) readonly buffer VN { vec2 v_new[]; };
#endif
#if CACHE_F16
layout(binding = 3) readonly buffer KC { uvec4 k_cache[]; };  // 8 halves
#if CLUSTER
layout(binding = 4) readonly buffer VC { uvec4 v_cache[]; };
#else
layout(binding = 4) readonly buffer VC { uint v_cache[]; };  // 2 halves
#endif
#else
layout(binding = 3) readonly buffer KC { vec4 k_cache[]; };
#if CLUSTER
layout(binding = 4) readonly buffer VC { vec4 v_cache[]; };
#else
layout(binding = 4) readonly buffer VC { vec2 v_cache[]; };
#endif
#endif
layout(binding = 5) readonly buffer S { float sinks[]; };
layout(binding = 6) writeonly buffer O { float o[]; };
#if SPLIT
// A persistent buffer: a counter per item (zero between dispatches: the last workgroup
// resets it), then (acc[D], m, l) per item and split.
layout(binding = 7) coherent buffer Part {
  uint done[MAX_ITEMS];
  float part[];
};
shared bool last_split;
shared float split_m[MAX_SPLITS], split_l[MAX_SPLITS];
#endif
#if QUANTIZE
layout(binding = QUANTIZE_BINDING) writeonly buffer XQ { uvec4 xq4[]; };
#include "quantize_block.glsl"
shared float o_row[HEAD_DIM];

// The item's o (in o_row) as HEAD_DIM / 32 blocks of the matvec's x, one per invocation.
void store_quantized(uint item) {
  barrier();
  for (uint blk = gl_LocalInvocationID.x; blk < HEAD_DIM / 32u; blk += WG) {
    vec4 v[8];
    [[unroll]] for (uint c = 0u; c < 8u; ++c)
      v[c] = vec4(o_row[blk * 32u + 4u * c], o_row[blk * 32u + 4u * c + 1u],
                  o_row[blk * 32u + 4u * c + 2u], o_row[blk * 32u + 4u * c + 3u]);
    store_x_block(item * (HEAD_DIM / 32u) + blk, v);
  }
}
#endif
layout(push_constant) uniform Push {
  uint head_dim, n_head, n_head_kv, n_tokens, pos0, n_swa, n_cells, has_sinks;
  float scale, softcap;
  uint chunk, n_split;
} p;

const uint D = HEAD_DIM;
#define NEG_INF uintBitsToFloat(0xFF800000u)

// Element d of the item's output: o, and o_row for the quantized copy.
void store_o(uint item, uint d, float v) {
  o[item * D + d] = v;
#if QUANTIZE
  o_row[d] = v;
#endif
}

float cap(float s) {
  s *= p.scale;
  return p.softcap > 0.0 ? p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0)) : s;
}

#if SPLIT
// After this split's (acc, m, l) is in `part`: counts it, and the last split of the item to
// count rescales all to a common max M, o = sum_s e^(m_s - M) acc_s / (sum_s e^(m_s - M) l_s
// [+ e^(sink - M)]). A split without keys has m = -inf and l = 0 and adds nothing.
void combine_splits(uint item, uint h) {
  const uint tid = gl_LocalInvocationID.x;
  const uint stride = D + 2u, base = item * p.n_split * stride;
  // Release this split's part before counting it; the last one to count reads them all.
  memoryBarrierBuffer();
  barrier();
  if (tid == 0u) last_split = atomicAdd(done[item], 1u) == p.n_split - 1u;
  barrier();
  if (!last_split) return;  // uniform over the workgroup
  memoryBarrierBuffer();
  // The splits' (m, l) fetched in parallel, then each output dim's sum over the splits with
  // four loads in flight: the combine is a few round trips, not one per split.
  for (uint s = tid; s < p.n_split; s += WG) {
    split_m[s] = part[base + s * stride + D];
    split_l[s] = part[base + s * stride + D + 1u];
  }
  barrier();
  float M = p.has_sinks != 0u ? sinks[h] : NEG_INF;
  for (uint s = 0u; s < p.n_split; ++s) M = max(M, split_m[s]);
  float L = p.has_sinks != 0u ? exp(sinks[h] - M) : 0.0;
  for (uint s = 0u; s < p.n_split; ++s) L += exp(split_m[s] - M) * split_l[s];
  for (uint d = tid; d < D; d += WG) {
    float sum = 0.0;
    for (uint s0 = 0u; s0 < p.n_split; s0 += 4u) {
      float a[4];
      [[unroll]] for (uint u = 0u; u < 4u; ++u)
        a[u] = s0 + u < p.n_split ? part[base + (s0 + u) * stride + d] : 0.0;
      [[unroll]] for (uint u = 0u; u < 4u; ++u)
        if (s0 + u < p.n_split) sum += exp(split_m[s0 + u] - M) * a[u];
    }
    store_o(item, d, sum / L);
  }
  if (tid == 0u) done[item] = 0u;
#if QUANTIZE
  store_quantized(item);
#endif
}
#endif

#if CLUSTER
const uint E = D / 8u;      // dims per lane
const uint G = WG / 8u;     // clusters
const uint STEP = G * KPL;  // keys per step
// The clusters' accumulators are joined through shared memory, 16 KiB (of lavapipe's 32) at
// a time: PASSES rounds of E / PASSES dims per lane.
const uint PASSES = (G * D + 4095u) / 4096u;
const uint EP = E / PASSES;
shared float cl_m[G], cl_l[G];
shared float cl_acc[G * D / PASSES];

// Dims 8i..8i+7 of the lane's part of row element b (a multiple of 8) of the cache or batch.
void load8(bool cached, uint b, uint i, bool value, out vec4 lo, out vec4 hi) {
  if (cached) {
#if CACHE_F16
    const uvec4 w = value ? v_cache[b / 8u + i] : k_cache[b / 8u + i];
    lo = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
    hi = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
#else
    lo = value ? v_cache[b / 4u + 2u * i] : k_cache[b / 4u + 2u * i];
    hi = value ? v_cache[b / 4u + 2u * i + 1u] : k_cache[b / 4u + 2u * i + 1u];
#endif
  } else {
    lo = value ? v_new[b / 4u + 2u * i] : k_new[b / 4u + 2u * i];
    hi = value ? v_new[b / 4u + 2u * i + 1u] : k_new[b / 4u + 2u * i + 1u];
  }
}

void main() {
  const uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint split = gl_WorkGroupID.z;
  if (item >= p.n_tokens * p.n_head) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x;
  // Clusters are 8 consecutive lanes of a subgroup (subgroups are a multiple of 8).
  const uint lane = gl_SubgroupInvocationID % 8u;
  const uint g = (gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID) / 8u;
  const uint t = item / p.n_head, h = item % p.n_head, hk = h / (p.n_head / p.n_head_kv);
  const uint kv_width = p.n_head_kv * D;
  const int p_q = int(p.pos0 + t);
  const int first = p.n_swa > 0u ? max(0, p_q - int(p.n_swa) + 1) : 0;
  const int k_begin = first + int(split * p.chunk);
  const int k_end = min(p_q + 1, k_begin + int(p.chunk));  // exclusive

  vec4 qv[E / 4u], acc[E / 4u];
  [[unroll]] for (uint i = 0u; i < E / 4u; ++i) {
    qv[i] = q4[(item * D + lane * E) / 4u + i];
    acc[i] = vec4(0.0);
  }
  float m = NEG_INF, l = 0.0;
  for (int c0 = k_begin; c0 < k_end; c0 += int(STEP)) {
    // Keys c0 + u G + g: every load of the step is issued before any is used.
    vec4 k[KPL][E / 4u], v[KPL][E / 4u];
    bool live[KPL];
    [[unroll]] for (uint u = 0u; u < KPL; ++u) {
      const int key = c0 + int(u * G + g);
      live[u] = key < k_end;
      const bool cached = key < int(p.pos0);
      const uint row = cached ? uint(key) % p.n_cells : uint(max(key - int(p.pos0), 0));
      const uint b = row * kv_width + hk * D + lane * E;
      [[unroll]] for (uint i = 0u; i < E / 8u; ++i) {
        k[u][2u * i] = k[u][2u * i + 1u] = v[u][2u * i] = v[u][2u * i + 1u] = vec4(0.0);
        if (live[u]) {
          load8(cached, b, i, false, k[u][2u * i], k[u][2u * i + 1u]);
          load8(cached, b, i, true, v[u][2u * i], v[u][2u * i + 1u]);
        }
      }
    }
    float s[KPL];
    float m_new = m;
    [[unroll]] for (uint u = 0u; u < KPL; ++u) {
      float d = 0.0;
      [[unroll]] for (uint i = 0u; i < E / 4u; ++i) d += dot(qv[i], k[u][i]);
      // The cluster's 8 partial dots summed in the same order in every lane: equal bits.
      d += subgroupShuffleXor(d, 1u);
      d += subgroupShuffleXor(d, 2u);
      d += subgroupShuffleXor(d, 4u);
      s[u] = live[u] ? cap(d) : NEG_INF;
      m_new = max(m_new, s[u]);
    }
    // m_new is -inf only while the cluster has had no key (then l and acc are 0).
    const float f = m > NEG_INF ? exp(m - m_new) : 0.0;
    l *= f;
    [[unroll]] for (uint i = 0u; i < E / 4u; ++i) acc[i] *= f;
    [[unroll]] for (uint u = 0u; u < KPL; ++u) {
      const float w = live[u] ? exp(s[u] - m_new) : 0.0;
      l += w;
      [[unroll]] for (uint i = 0u; i < E / 4u; ++i) acc[i] += w * v[u][i];
    }
    m = m_new;
  }

  // Join the clusters: a common max M (the sink's too when this is the whole item), each
  // cluster's sums scaled by e^(m_g - M).
  if (lane == 0u) {
    cl_m[g] = m;
    cl_l[g] = l;
  }
  barrier();
  const bool sink = SPLIT == 0 && p.has_sinks != 0u;
  float M = sink ? sinks[h] : NEG_INF;
  [[unroll]] for (uint j = 0u; j < G; ++j) M = max(M, cl_m[j]);
  float L = sink ? exp(sinks[h] - M) : 0.0;
  [[unroll]] for (uint j = 0u; j < G; ++j)
    L += cl_m[j] > NEG_INF ? exp(cl_m[j] - M) * cl_l[j] : 0.0;
  const float fg = m > NEG_INF ? exp(m - M) : 0.0;
#if SPLIT
  const uint stride = D + 2u, at = (item * p.n_split + split) * stride;
#endif
  [[unroll]] for (uint pass = 0u; pass < PASSES; ++pass) {
    if (pass > 0u) barrier();
    [[unroll]] for (uint e = 0u; e < EP; ++e)
      cl_acc[g * (D / PASSES) + lane * EP + e] =
          fg * acc[(pass * EP + e) / 4u][(pass * EP + e) % 4u];
    barrier();
    for (uint i = tid; i < D / PASSES; i += WG) {
      float sum = 0.0;
      [[unroll]] for (uint j = 0u; j < G; ++j) sum += cl_acc[j * (D / PASSES) + i];
      const uint d = (i / EP) * E + pass * EP + i % EP;
#if SPLIT
      part[at + d] = sum;
#else
      store_o(item, d, sum / L);
#endif
    }
  }
#if SPLIT
  if (tid == 0u) {
    part[at + D] = M;
    part[at + D + 1u] = L;
  }
  combine_splits(item, h);
#elif QUANTIZE
  store_quantized(item);
#endif
}

#else
const uint kPairs = (D / 2u + WG - 1u) / WG;  // value pairs per invocation
shared vec4 sq[D / 4u];
shared float pw[WG];

// q . k for a key row starting at element kb of the cache or of k_new.
float dot_cached(uint kb) {
  float s = 0.0;
#if CACHE_F16
  [[unroll]] for (uint i = 0u; i < D / 8u; ++i) {
    const uvec4 w = k_cache[kb / 8u + i];
    s += dot(vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)), sq[2u * i]) +
         dot(vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)), sq[2u * i + 1u]);
  }
#else
  [[unroll]] for (uint i = 0u; i < D / 4u; ++i) s += dot(k_cache[kb / 4u + i], sq[i]);
#endif
  return s;
}

float dot_new(uint kb) {
  float s = 0.0;
  [[unroll]] for (uint i = 0u; i < D / 4u; ++i) s += dot(k_new[kb / 4u + i], sq[i]);
  return s;
}

// Value pair j (dims 2j, 2j+1) of a row starting at element vb.
vec2 v_cached(uint vb, uint j) {
#if CACHE_F16
  return unpackHalf2x16(v_cache[vb / 2u + j]);
#else
  return v_cache[vb / 2u + j];
#endif
}

void main() {
  const uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint split = gl_WorkGroupID.z;
  if (item >= p.n_tokens * p.n_head) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint t = item / p.n_head, h = item % p.n_head, hk = h / (p.n_head / p.n_head_kv);
  const uint kv_width = p.n_head_kv * D;
  const int p_q = int(p.pos0 + t);
  const int first = p.n_swa > 0u ? max(0, p_q - int(p.n_swa) + 1) : 0;
  const int k_begin = first + int(split * p.chunk);
  const int k_end = min(p_q + 1, k_begin + int(p.chunk));  // exclusive
  for (uint d = tid; d < D / 4u; d += WG) sq[d] = q4[item * D / 4u + d];
  barrier();

  const bool sink = SPLIT == 0 && p.has_sinks != 0u;
  float m = sink ? sinks[h] : NEG_INF;
  float l = sink ? 1.0 : 0.0;
  vec2 acc[kPairs];
  [[unroll]] for (uint r = 0u; r < kPairs; ++r) acc[r] = vec2(0.0);

  for (int c0 = k_begin; c0 < k_end; c0 += int(WG)) {
    const int key = c0 + int(tid);
    float s = NEG_INF;
    if (key < k_end)
      s = cap(key < int(p.pos0) ? dot_cached((uint(key) % p.n_cells) * kv_width + hk * D)
                                : dot_new(uint(key - int(p.pos0)) * kv_width + hk * D));
    pw[tid] = s;
    barrier();
    const int n = min(int(WG), k_end - c0);
    float m_new = m;
    for (int j = 0; j < n; ++j) m_new = max(m_new, pw[j]);
    barrier();
    pw[tid] = key < k_end ? exp(s - m_new) : 0.0;
    barrier();
    const float f = exp(m - m_new);  // 0 while m is -inf
    l *= f;
    [[unroll]] for (uint r = 0u; r < kPairs; ++r) acc[r] *= f;
    // Rows of eight keys at a time: their loads are independent and go out together.
    for (int j0 = 0; j0 < n; j0 += 8) {
      vec2 v[8][kPairs];
      float w[8];
      [[unroll]] for (int u = 0; u < 8; ++u) {
        const bool live = j0 + u < n;
        const int kj = c0 + min(j0 + u, n - 1);  // a real row even past the end
        w[u] = live ? pw[j0 + u] : 0.0;
        const bool cached = kj < int(p.pos0);
        const uint vb = cached ? (uint(kj) % p.n_cells) * kv_width + hk * D
                               : uint(kj - int(p.pos0)) * kv_width + hk * D;
        [[unroll]] for (uint r = 0u; r < kPairs; ++r) {
          const uint j = tid + r * WG;
          v[u][r] = !live || j >= D / 2u ? vec2(0.0)
                    : cached             ? v_cached(vb, j)
                                         : v_new[vb / 2u + j];
        }
      }
      [[unroll]] for (int u = 0; u < 8; ++u) {
        l += w[u];
        [[unroll]] for (uint r = 0u; r < kPairs; ++r) acc[r] += w[u] * v[u][r];
      }
    }
    m = m_new;
    barrier();
  }
#if SPLIT
  const uint stride = D + 2u, at = (item * p.n_split + split) * stride;
  [[unroll]] for (uint r = 0u; r < kPairs; ++r) {
    const uint j = tid + r * WG;
    if (j < D / 2u) {
      part[at + 2u * j] = acc[r].x;
      part[at + 2u * j + 1u] = acc[r].y;
    }
  }
  if (tid == 0u) {
    part[at + D] = m;
    part[at + D + 1u] = l;
  }
  combine_splits(item, h);
#else
  [[unroll]] for (uint r = 0u; r < kPairs; ++r) {
    const uint j = tid + r * WG;
    if (j < D / 2u) {
      store_o(item, 2u * j, acc[r].x / l);
      store_o(item, 2u * j + 1u, acc[r].y / l);
    }
  }
#if QUANTIZE
  store_quantized(item);
#endif
#endif
}
#endif
