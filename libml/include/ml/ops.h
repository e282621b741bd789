#pragma once
// ops: each op family's CPU reference (obviously correct, on plain host memory) and, where it
// exists, its Vulkan dispatch, side by side in libml/src/ops/<family>.cpp. The semantics are
// ggml's (the golden logits come from llama.cpp), cited where they are not obvious.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "ml/gguf.h"
#include "ml/vk.h"

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

// ---------------------------------------------------------------------------------------
// matmul (libml/src/ops/matmul.cpp, shaders/matmul_vec.comp, matmul_vec_staged.comp,
// matmul_vec_q.comp + quant_dot.glsl,
// matmul_tiled.comp, dequant.comp): y = W x with W in its GGUF type, x and y f32.
// ---------------------------------------------------------------------------------------

// CPU reference. w: [m][k] in `type` (m * row_bytes(type, k) bytes), x: [n_tokens][k],
// y: [n_tokens][m]; each dot product in float64 (ml::quant::matvec).
void matmul(gguf::Type type, std::span<const std::byte> w, uint64_t m, uint64_t k,
            std::span<const float> x, uint64_t n_tokens, std::span<float> y);

// CPU reference of the expert matmul. w: [n_expert][m][k]; ids: [n_tokens][n_used] expert
// numbers; x: [n_tokens][k], or [n_tokens][n_used][k] when x_per_slot;
// y: [n_tokens][n_used][m] = W[ids[t][s]] x[t] (or x[t][s]).
void matmul_id(gguf::Type type, std::span<const std::byte> w, uint64_t n_expert, uint64_t m,
               uint64_t k, std::span<const float> x, bool x_per_slot, std::span<const int32_t> ids,
               uint64_t n_used, uint64_t n_tokens, std::span<float> y);

// A weight matrix (or n_expert of them, one after the other) in a device buffer, raw GGUF
// bytes from `offset`. The buffer must extend to a multiple of 4 bytes past the last row
// (upload_weight pads) because kernels read whole words.
struct GpuWeight {
  const vk::Buffer* buffer = nullptr;
  uint64_t offset = 0;
  gguf::Type type = gguf::Type::F32;
  uint64_t k = 0;  // values per row
  uint64_t m = 0;  // rows per matrix
  uint64_t n_expert = 1;
};

// Types the kernels decode: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K
// MXFP4 IQ4_NL IQ4_XS.
bool gpu_supports(gguf::Type type);
// Whether matmul_vec_q.comp (x quantized to int8 blocks, integer dot products) has the type.
bool gpu_supports_q8(gguf::Type type);
std::vector<gguf::Type> gpu_types();

// Copies bytes into a new device buffer padded to a multiple of 16 bytes.
std::unique_ptr<vk::Buffer> upload_weight(vk::Device& device, vk::StagingRing& ring,
                                          std::span<const std::byte> bytes, std::string name);

// automatic runs the matvec kernels for up to this many tokens (decode), the tiled one beyond.
inline constexpr int64_t kMatvecMaxTokens = 8;

enum class MatmulKernel {
  automatic,  // matvec for up to kMatvecMaxTokens tokens (vec_q8 where the type has it, else vec),
              // tiled beyond
  vec,        // matmul_vec.comp or matmul_vec_staged.comp (per type; ML_MATVEC overrides),
              // one workgroup per ROWS rows per token; f32 x, error is f32 rounding only
  vec_q8,     // matmul_vec_q.comp: x as two int8 roundings per 32 values (relative error
              // ~1e-5 of |row| |x|), integer dot products; gpu_supports_q8 types only
  tiled,      // matmul_tiled.comp
};

// Bytes of the buffer x_q that the integer matvec quantizes n_x rows of k floats of x into
// once per matmul (quantize_x.comp: 80 bytes per 32 values, in tiles of 32 blocks); 0 where
// the type has no integer kernel. n_x is n_tokens, or n_tokens * n_used for matmul_id with x
// per slot.
uint64_t quantized_x_bytes(gguf::Type type, uint64_t k, uint64_t n_x);
// The same for an x whose consumer is not known yet (k a multiple of 32): the buffer an op
// that writes x can fill alongside it (rmsnorm, the gated activations: QUANTIZE).
uint64_t quantized_x_bytes(uint64_t k, uint64_t n_x);

// x quantized for the integer matvec (quantize_x.comp's blocks), shared by the matmuls that
// read the same x (q/k/v, gate/up): the first records the quantization and sets `filled`,
// the others skip it when the variant they need is the one there.
struct QuantizedX {
  const vk::Buffer* buffer = nullptr;  // quantized_x_bytes for all of x
  enum Filled : uint32_t { none, plain, residual } filled = none;
};

// What the kernels add to W x in their final write (shaders/matmul_epilogue.glsl), so a bias
// or a residual add costs no dispatch of its own: y = W x + bias + add, summed in that order
// (bit-identical to matmul, then add the bias, then add `add`). f32 buffers, may be null:
// bias [m], or [n_expert][m] for matmul_id (row ids[t][s] for slot s of token t); add has
// y's shape (matmul only).
struct MatmulEpilogue {
  const vk::Buffer* bias = nullptr;
  const vk::Buffer* add = nullptr;
};

// Records y = W x: x [n_tokens][k] f32, y [n_tokens][m] f32. A weight larger than
// maxStorageBufferRange is bound and dispatched in row slices. x_q (may be null): where the
// integer matvec quantizes x first, or finds it quantized; without it that kernel quantizes
// x in every workgroup (slower: each re-reads x).
void matmul(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, uint64_t n_tokens,
            const vk::Buffer& y, MatmulKernel kernel = MatmulKernel::automatic,
            QuantizedX* x_q = nullptr, const MatmulEpilogue& epilogue = {});

// Records the expert matmul (see the CPU matmul_id); ids is an int32 buffer
// [n_tokens][n_used]. An id outside [0, n_expert) yields NaN rows.
// kernel: automatic and vec_q8 as for matmul (integer kernel where the type has it), vec the
// float-x kernels; tiled is refused. x_q as for matmul, sized for all of x.
// epilogue: the per-expert bias only (an `add` is refused).
void matmul_id(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, bool x_per_slot,
               const vk::Buffer& ids, uint64_t n_used, uint64_t n_tokens, const vk::Buffer& y,
               MatmulKernel kernel = MatmulKernel::automatic, QuantizedX* x_q = nullptr,
               const MatmulEpilogue& epilogue = {});

// Records y = all n_expert * m rows of W dequantized to f32, [n_expert * m][k].
void dequantize(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& y);

}  // namespace ml::ops
