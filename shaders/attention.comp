#version 460
// Grouped-query attention, one workgroup per (token, query head): softmax(scale q.k [softcap]
// [+ sink]) . v over keys [first, p_q] (causal, sliding window n_swa), keys before pos0 from
// the cache (row p % n_cells, F16 with CACHE_F16) and the rest from the batch's k/v. The CPU
// reference is ml::ops::attention. Keys go in chunks of WG with an online softmax (running
// max m and sum l, rescaling the accumulator), so any context length fits; a sink starts the
// sum at exp(sink - m) (ggml_soft_max_add_sinks: a logit without a value).
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer KN { float k_new[]; };
layout(binding = 2) readonly buffer VN { float v_new[]; };
#if CACHE_F16
layout(binding = 3) readonly buffer KC { uint k_cache[]; };
layout(binding = 4) readonly buffer VC { uint v_cache[]; };
float kc(uint i) { return unpackHalf2x16(k_cache[i >> 1])[i & 1u]; }
float vc(uint i) { return unpackHalf2x16(v_cache[i >> 1])[i & 1u]; }
#else
layout(binding = 3) readonly buffer KC { float k_cache[]; };
layout(binding = 4) readonly buffer VC { float v_cache[]; };
float kc(uint i) { return k_cache[i]; }
float vc(uint i) { return v_cache[i]; }
#endif
layout(binding = 5) readonly buffer S { float sinks[]; };
layout(binding = 6) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push {
  uint head_dim, n_head, n_head_kv, n_tokens, pos0, n_swa, n_cells, has_sinks;
  float scale, softcap;
} p;

const uint kMaxDims = 256u;  // head_dim limit, checked on the host
shared float sq[kMaxDims];
shared float pw[WG];

void main() {
  const uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (item >= p.n_tokens * p.n_head) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x, D = p.head_dim;
  const uint t = item / p.n_head, h = item % p.n_head, hk = h / (p.n_head / p.n_head_kv);
  const uint kv_width = p.n_head_kv * D;
  const int p_q = int(p.pos0 + t);
  const int first = p.n_swa > 0u ? max(0, p_q - int(p.n_swa) + 1) : 0;
  for (uint d = tid; d < D; d += WG) sq[d] = q[item * D + d];
  barrier();

  float m = p.has_sinks != 0u ? sinks[h] : uintBitsToFloat(0xFF800000u);  // -inf
  float l = p.has_sinks != 0u ? 1.0 : 0.0;
  float acc[kMaxDims / WG];
  for (uint r = 0u; r < kMaxDims / WG; ++r) acc[r] = 0.0;

  for (int c0 = first; c0 <= p_q; c0 += int(WG)) {
    const int key = c0 + int(tid);
    float s = uintBitsToFloat(0xFF800000u);
    if (key <= p_q) {
      float dot = 0.0;
      if (key < int(p.pos0)) {
        const uint kb = (uint(key) % p.n_cells) * kv_width + hk * D;
        for (uint d = 0u; d < D; ++d) dot += sq[d] * kc(kb + d);
      } else {
        const uint kb = uint(key - int(p.pos0)) * kv_width + hk * D;
        for (uint d = 0u; d < D; ++d) dot += sq[d] * k_new[kb + d];
      }
      s = dot * p.scale;
      if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
    }
    pw[tid] = s;
    barrier();
    const int n = min(int(WG), p_q - c0 + 1);
    float m_new = m;
    for (int j = 0; j < n; ++j) m_new = max(m_new, pw[j]);
    barrier();
    pw[tid] = key <= p_q ? exp(s - m_new) : 0.0;
    barrier();
    const float f = exp(m - m_new);  // 0 while m is -inf
    l *= f;
    for (uint r = 0u; r < kMaxDims / WG; ++r) acc[r] *= f;
    for (int j = 0; j < n; ++j) {
      const float w = pw[j];
      l += w;
      const int kj = c0 + j;
      const bool cached = kj < int(p.pos0);
      const uint vb = cached ? (uint(kj) % p.n_cells) * kv_width + hk * D
                             : uint(kj - int(p.pos0)) * kv_width + hk * D;
      for (uint r = 0u; r < kMaxDims / WG; ++r) {
        const uint d = tid + r * WG;
        if (d < D) acc[r] += w * (cached ? vc(vb + d) : v_new[vb + d]);
      }
    }
    m = m_new;
    barrier();
  }
  for (uint r = 0u; r < kMaxDims / WG; ++r) {
    const uint d = tid + r * WG;
    if (d < D) o[item * D + d] = acc[r] / l;
  }
}
