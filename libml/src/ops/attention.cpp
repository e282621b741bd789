// Grouped-query attention over a KV cache plus the batch's own keys, with causal and
// sliding-window masks, optional score soft-capping and attention sinks. The math of
// llama.cpp's build_attn_mha: softmax(scale · q·k + mask [+ sink]) · v, query head h reading
// KV head h / (n_head / n_head_kv).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ml/ops.h"
#include "ml/quant.h"

namespace ml::ops {

bool attention_masked(int32_t p_q, int32_t p_k, int32_t n_swa) {
  if (p_k > p_q) return true;
  return n_swa > 0 && p_q - p_k >= n_swa;
}

void softmax(float* s, int64_t n, const float* sink) {
  float max = sink ? *sink : -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, s[i]);
  double sum = 0.0;  // ggml sums in ggml_float
  for (int64_t i = 0; i < n; ++i) {
    s[i] = s[i] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(s[i] - max);
    sum += s[i];
  }
  if (sink) sum += std::exp(*sink - max);
  const float inv = sum > 0.0 ? float(1.0 / sum) : 0.0f;
  for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

namespace {

// Row `pos` of a cache, converted to F32 into out[n] (n values starting at column `col`).
void cache_row(const KvView& c, int64_t pos, int64_t col, int64_t n, float* out) {
  const int64_t base = (pos % c.n_cells) * c.width + col;
  if (c.f16) {
    const auto* h = static_cast<const uint16_t*>(c.data) + base;
    for (int64_t i = 0; i < n; ++i) out[i] = quant::f16_to_f32(h[i]);
  } else {
    const auto* f = static_cast<const float*>(c.data) + base;
    std::copy(f, f + n, out);
  }
}

}  // namespace

void attention(const float* q, const float* k_new, const float* v_new, const KvView& k_cache,
               const KvView& v_cache, const float* sinks, int64_t head_dim, int64_t n_head,
               int64_t n_head_kv, int64_t n_tokens, const AttentionParams& p, float* out,
               int n_threads) {
  const int64_t group = n_head / n_head_kv;
  const int64_t kv_width = n_head_kv * head_dim;
  const int32_t last = p.pos0 + int32_t(n_tokens) - 1;
  // Work items are (token, head) pairs, so a single decoded token still uses every thread.
  parallel_for(n_tokens * n_head, n_threads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(size_t(last + 1)), krow(static_cast<size_t>(head_dim)),
        acc(static_cast<size_t>(head_dim));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / n_head, h = item % n_head, hk = h / group;
      const int32_t p_q = p.pos0 + int32_t(t);
      const float* qh = q + (t * n_head + h) * head_dim;
      // [first, p_q] is exactly the keys attention_masked(p_q, ·, n_swa) lets through.
      const int32_t first = p.n_swa > 0 ? std::max(0, p_q - p.n_swa + 1) : 0;
      const int64_t n = p_q - first + 1;
      for (int32_t p_k = first; p_k <= p_q; ++p_k) {
        const float* kr;
        if (p_k < p.pos0) {
          cache_row(k_cache, p_k, hk * head_dim, head_dim, krow.data());
          kr = krow.data();
        } else {
          kr = k_new + (int64_t(p_k - p.pos0) * kv_width + hk * head_dim);
        }
        float s = dot(qh, kr, head_dim) * p.scale;
        if (p.softcap > 0.0f) s = p.softcap * std::tanh(s / p.softcap);
        scores[size_t(p_k - first)] = s;
      }
      softmax(scores.data(), n, sinks ? sinks + h : nullptr);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int32_t p_k = first; p_k <= p_q; ++p_k) {
        const float w = scores[size_t(p_k - first)];
        const float* vr;
        if (p_k < p.pos0) {
          cache_row(v_cache, p_k, hk * head_dim, head_dim, krow.data());
          vr = krow.data();
        } else {
          vr = v_new + (int64_t(p_k - p.pos0) * kv_width + hk * head_dim);
        }
        float* a = acc.data();
        for (int64_t i = 0; i < head_dim; ++i) a[i] += w * vr[i];
      }
      std::copy(acc.begin(), acc.end(), out + (t * n_head + h) * head_dim);
    }
  });
}

}  // namespace ml::ops
