#pragma once
// The CPU reference of every op family, on plain host memory. Each is the obviously correct
// version the GPU kernels are tested against; the semantics are ggml's (the golden logits
// come from llama.cpp), cited where they are not obvious. Code lives in libml/src/ops/<family>.cpp.
#include <cstddef>
#include <cstdint>
#include <functional>

#include "ml/gguf.h"

namespace ml::ops {

// Runs fn(begin, end) over [0, n) split across n_threads std::threads (1 = inline).
void parallel_for(int64_t n, int n_threads, const std::function<void(int64_t, int64_t)>& fn);

// --- elementwise.cpp ---
float dot(const float* a, const float* b, int64_t n);  // in float, in order
// y = a + b / a * b over n values; b has n values or `nb` values repeated (a row broadcast).
void add(const float* a, const float* b, int64_t nb, float* y, int64_t n);
void mul(const float* a, const float* b, int64_t nb, float* y, int64_t n);
void scale(const float* a, float s, float* y, int64_t n);
void softcap(const float* a, float cap, float* y, int64_t n);  // cap·tanh(a/cap)

// --- norm.cpp ---
// One row: y = x / sqrt(mean(x²) + eps) · w (w may be null). The sum is in double, as ggml's.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

// --- rope.cpp ---
// normal: rotates pairs (x[2i], x[2i+1]) (llama); neox: pairs (x[i], x[i + n_dims/2])
// (qwen2/3, gemma3, gpt-oss). ggml's LLAMA_ROPE_TYPE_NORM / _NEOX.
enum class RopeMode { normal, neox };

struct RopeParams {
  int n_dims = 0;  // rotated dims per head (rope.dimension_count); the rest pass through
  RopeMode mode = RopeMode::normal;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;   // 1 / rope.scaling.factor
  float ext_factor = 0.0f;   // YaRN ramp mix; 1 when rope.scaling.type is yarn
  float attn_factor = 1.0f;  // multiplies cos and sin
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int n_ctx_orig = 0;  // rope.scaling.original_context_length (YaRN correction dims)
};

// ggml_rope_yarn_corr_dims: the dims below dims[0] extrapolate, above dims[1] interpolate.
void rope_yarn_corr_dims(int n_dims, int n_ctx_orig, float freq_base, float beta_fast,
                         float beta_slow, float dims[2]);
// cos/sin of every pair at position pos: cs[2i] = cos θ_i, cs[2i+1] = sin θ_i (mscale and
// attn_factor folded in), i < n_dims/2. freq_factors may be null.
void rope_cache(const RopeParams& p, int32_t pos, const float* freq_factors, float* cs);
// Rotates one head x[head_dim] in place with a cache from rope_cache.
void rope_head(const RopeParams& p, const float* cs, float* x, int64_t head_dim);

// --- attention.cpp ---
struct AttentionParams {
  int32_t pos0 = 0;      // position of the batch's first token
  int32_t n_swa = 0;     // sliding window: 0 = full causal
  float scale = 1.0f;    // multiplies q·k (before mask and softmax)
  float softcap = 0.0f;  // 0 = none, else cap·tanh(s/cap) on the scores
};

// llama.cpp's causal + is_masked_swa (LLAMA_SWA_TYPE_STANDARD): key at p_k is hidden from a
// query at p_q when p_k > p_q, or when p_q - p_k >= n_swa.
bool attention_masked(int32_t p_q, int32_t p_k, int32_t n_swa);
// In-place softmax of s[n]; with a sink, exp(sink) joins the denominator only
// (ggml_soft_max_add_sinks: an extra logit per head that has no value).
void softmax(float* s, int64_t n, const float* sink);

// Rows of a KV cache: `width` values per row, F16 or F32, `n_cells` rows (ring buffer).
struct KvView {
  const void* data = nullptr;
  bool f16 = false;
  int64_t width = 0;
  int64_t n_cells = 0;
};
// q [T][n_head][head_dim], k_new/v_new [T][n_head_kv][head_dim] → out [T][n_head][head_dim].
// Keys at positions < pos0 come from the caches (row p % n_cells), the rest from k_new/v_new.
void attention(const float* q, const float* k_new, const float* v_new, const KvView& k_cache,
               const KvView& v_cache, const float* sinks, int64_t head_dim, int64_t n_head,
               int64_t n_head_kv, int64_t n_tokens, const AttentionParams& p, float* out,
               int n_threads);

// --- activation.cpp ---
float silu(float x);
float gelu_tanh(float x);  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
void swiglu(const float* gate, const float* up, float* y, int64_t n);
void geglu(const float* gate, const float* up, float* y, int64_t n);
// gpt-oss: g = min(gate, limit), u = clamp(up, -limit, limit), y = g·σ(alpha·g)·(u + 1).
void swiglu_oai(const float* gate, const float* up, float* y, int64_t n, float alpha, float limit);

// --- embedding.cpp ---
// Dequantizes row `row` of a [K, R] table of `type` into out[K].
void dequantize_row(gguf::Type type, const std::byte* table, int64_t K, int64_t row, float* out);

// --- sampling.cpp ---
int32_t argmax(const float* x, int64_t n);  // the first index of the maximum
// The k largest of x[n], descending (ties: lower index first) into ids[k].
void top_k(const float* x, int64_t n, int k, int32_t* ids);

// --- moe.cpp ---
// Router of one token: ids[k] = the k largest logits, w[k] = softmax over them.
void moe_route(const float* logits, int64_t n_expert, int k, int32_t* ids, float* w);

}  // namespace ml::ops
