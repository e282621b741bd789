#pragma once
// The backend: device-resident tensors and the ops a forward pass calls on them.
//
// Two implementations share this interface: `cpu` (the reference, runs each op at once) and
// `vulkan` (records each op into one command buffer and submits at sync()/read()). So an op
// never hands a value back to the host mid-forward: even the MoE router's top-k produces its
// expert ids as a device tensor that the expert matmul consumes.
//
// Lifetimes: `alloc` makes a persistent tensor (weights, KV cache) that lives until `free`;
// every op returns a new *transient* tensor that lives until `reset_transient()`, which the
// session calls at the start of each forward pass (a bump allocator on the GPU).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ml/gguf.h"
#include "ml/ops.h"

namespace ml {

// A handle to a tensor on the backend's device; copying it copies no data. `ne` is in ggml
// order: ne[0] is the contiguous row length. Activations are F32, token ids and positions
// I32, weights keep their GGUF type, the KV cache is F16 or F32.
struct Tensor {
  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t id = kNone;
  gguf::Type type = gguf::Type::F32;
  std::array<int64_t, 4> ne{1, 1, 1, 1};

  explicit operator bool() const { return id != kNone; }
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

// The same storage seen with another shape of the same element count (ggml_reshape).
Tensor reshape(Tensor t, std::array<int64_t, 4> ne);
std::string shape_string(const Tensor& t);  // "[256, 4096]"

// Called with every intermediate the forward pass names (`attn_norm`, layer il; il = -1 for
// tensors outside the layers). Tests use it to dump and compare backends layer by layer.
using Observer = std::function<void(std::string_view name, int il, const Tensor& t)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Bytes the device can hold (for the KV cache fit check).
  virtual uint64_t memory_capacity() const = 0;

  // --- memory ---
  virtual Tensor alloc(gguf::Type type, std::array<int64_t, 4> ne, std::string_view name) = 0;
  virtual void free(Tensor t) = 0;
  // A transient tensor (a forward pass's inputs: token ids, positions).
  virtual Tensor scratch(gguf::Type type, std::array<int64_t, 4> ne) = 0;
  virtual void reset_transient() = 0;
  // Copies host bytes into t starting at byte `offset` of its storage.
  virtual void upload(const Tensor& t, std::span<const std::byte> bytes, uint64_t offset = 0) = 0;
  // Finishes all recorded work and copies t's bytes to the host (out.size() == its bytes).
  virtual void read(const Tensor& t, std::span<std::byte> out) = 0;
  // Reads several tensors after one finish of the recorded work (outs[i] holds ts[i]'s
  // bytes): many small results (per-layer router choices) cost one submit, not one each.
  virtual void read(std::span<const Tensor> ts, std::span<const std::span<std::byte>> outs);
  // A read that does not wait: read_start sends what is recorded so far to the device and
  // returns, so the host records the next pass while the device runs this one (greedy
  // decoding feeds the token on the device: GreedyPipeline); read_finish waits for that work
  // and copies t's bytes to out. A few reads may be started before the first is finished.
  // The default reads at once.
  struct PendingRead {
    uint64_t ticket = 0;  // the backend's; 0: the bytes are in `host`
    uint64_t offset = 0, bytes = 0;
    std::vector<std::byte> host;
  };
  virtual PendingRead read_start(const Tensor& t);
  virtual void read_finish(PendingRead& pending, std::span<std::byte> out);
  // dst = src, byte for byte (the same size), recorded in order with the ops.
  virtual void copy(const Tensor& src, const Tensor& dst);
  virtual void sync() = 0;

  // --- ops; shapes in ggml order, T = tokens in the batch ---
  // Rows `ids` ([n] I32) of `table` ([K, R], any type, dequantized) → F32 [K, n].
  virtual Tensor get_rows(const Tensor& table, const Tensor& ids) = 0;
  // w [K, N] (any weight type, dequantized on the fly) times x [K, T] → [N, T], plus
  // bias [N] F32 and then `add` (y's shape: a residual) when given, in the same kernel: the
  // result is that of matmul, add(y, bias), add(y, add), bit for bit.
  virtual Tensor matmul(const Tensor& w, const Tensor& x, const Tensor* bias = nullptr,
                        const Tensor* add = nullptr) = 0;
  // Expert matmul: w [K, N, E], x [K, X, T] with X = 1 (shared input) or n_used,
  // ids [n_used, T] I32 → [N, n_used, T] where slot j of token t uses expert ids[j, t];
  // plus bias[:, ids[j, t]] from bias [N, E] when given (= add_id of the product).
  virtual Tensor matmul_id(const Tensor& w, const Tensor& x, const Tensor& ids,
                           const Tensor* bias = nullptr) = 0;
  // a + b, a * b: b has a's shape or is one row [a.ne[0]] broadcast over a's rows.
  virtual Tensor add(const Tensor& a, const Tensor& b) = 0;
  virtual Tensor mul(const Tensor& a, const Tensor& b) = 0;
  // a [N, n_used, T] + b[:, ids[j, t]] with b [N, E] (per-expert biases).
  virtual Tensor add_id(const Tensor& a, const Tensor& b, const Tensor& ids) = 0;
  virtual Tensor scale(const Tensor& a, float s) = 0;
  // cap · tanh(a / cap) (Gemma's final logit soft-capping).
  virtual Tensor softcap(const Tensor& a, float cap) = 0;
  // RMSNorm over ne[0] of every row, times w ([ne[0]] F32) when w is given, then + add (x's
  // shape: a residual) when given, in the same kernel: the result is that of rmsnorm, add.
  virtual Tensor rmsnorm(const Tensor& x, const Tensor* w, float eps,
                         const Tensor* add = nullptr) = 0;
  // sum = rmsnorm(x, &w, eps, &add) and norm = rmsnorm(sum, &w2, eps) in one op (Gemma 3's
  // post-attention norm, residual add and FFN norm: one GPU stage for a decoded row).
  struct NormSum {
    Tensor sum, norm;
  };
  virtual NormSum rmsnorm_add_norm(const Tensor& x, const Tensor& w, const Tensor& add,
                                   const Tensor& w2, float eps) {
    const Tensor sum = rmsnorm(x, &w, eps, &add);
    return {sum, rmsnorm(sum, &w2, eps)};
  }
  // RoPE of x [head_dim, n_head, T] at positions pos [T] I32; freq_factors [n_dims/2] F32
  // (Llama 3 `rope_freqs.weight`) divide each pair's frequency when given.
  virtual Tensor rope(const Tensor& x, const Tensor& pos, const Tensor* freq_factors,
                      const ops::RopeParams& p) = 0;
  // Writes k [width, T] (F32) into cache [width, n_cells] rows (pos0 + t) % n_cells.
  virtual void kv_store(const Tensor& cache, const Tensor& k, int32_t pos0) = 0;
  // RoPE of q [head_dim, n_head, T] and k [head_dim, n_head_kv, T] as rope() does, in one
  // op; with `store`, the positions are store->pos0 + t (pos is not read) and rope(k) and
  // store->v also go into the caches as kv_store does (one dispatch instead of four on the
  // GPU). → {rope(q), rope(k)}.
  struct KvStore {
    Tensor k_cache, v_cache;  // [head_dim * n_head_kv, n_cells] F16 or F32
    Tensor v;                 // [head_dim, n_head_kv, T] F32
    int32_t pos0 = 0;
  };
  struct QK {
    Tensor q, k;
  };
  // With `norm`, q and k are first normalized per head (Qwen3's and Gemma 3's attn_q_norm,
  // attn_k_norm: rmsnorm(q, &norm->q, norm->eps), rmsnorm(k, &norm->k, norm->eps)) in the
  // same op: on the GPU the rope kernel normalizes each head row before rotating it.
  struct QkNorm {
    Tensor q, k;  // [head_dim] F32
    float eps = 0;
  };
  virtual QK rope_qk(const Tensor& q, const Tensor& k, const Tensor& pos,
                     const Tensor* freq_factors, const ops::RopeParams& p, const KvStore* store,
                     const QkNorm* norm = nullptr) = 0;
  // Grouped-query attention of q [head_dim, n_head, T] (positions pos0..pos0+T-1) over the
  // keys before pos0 in k_cache/v_cache (position p in row p % n_cells) and the batch's own
  // k, v [head_dim, n_head_kv, T]; sinks [n_head] F32 optional → [head_dim * n_head, T].
  virtual Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& k_cache,
                           const Tensor& v_cache, const Tensor* sinks,
                           const ops::AttentionParams& p) = 0;
  // Gated activations over same-shaped gate and up: silu(g)·u, gelu_tanh(g)·u, and gpt-oss's
  // clamped swiglu_oai.
  virtual Tensor swiglu(const Tensor& gate, const Tensor& up) = 0;
  virtual Tensor geglu(const Tensor& gate, const Tensor& up) = 0;
  virtual Tensor swiglu_oai(const Tensor& gate, const Tensor& up, float alpha, float limit) = 0;
  // MoE routing of logits [E, T]: ids [k, T] I32 of the k largest, weights [k, T] F32 = the
  // softmax over those k logits (llama.cpp's SOFTMAX_WEIGHT gating).
  struct Route {
    Tensor ids, weights;
  };
  virtual Route moe_route(const Tensor& logits, int k) = 0;
  // sum_j weights[j, t] · y[:, j, t] for y [N, k, T] → [N, T], then + add[:, t] ([N, T], a
  // residual) when given.
  virtual Tensor moe_combine(const Tensor& y, const Tensor& weights,
                             const Tensor* add = nullptr) = 0;
  // Index of the largest value of each row of x [V, T] → I32 [T] (greedy decoding on device).
  virtual Tensor argmax(const Tensor& x) = 0;
  // The k largest of each row of x [V, T], descending: ids I32 [k, T] (sampler candidates).
  virtual Tensor top_k(const Tensor& x, int k) = 0;

  // --- profiling (bench_generate --profile) ---
  // GPU time per op label, summed over the work submitted while profiling was on, since the
  // last take; a backend without timers returns none.
  struct OpTime {
    std::string label;
    double ms = 0;
    int64_t count = 0;
  };
  virtual void set_profiling(bool on) { (void)on; }
  virtual std::vector<OpTime> take_op_times() { return {}; }

  // --- naming intermediates ---
  void set_observer(Observer observer) { observer_ = std::move(observer); }
  void observe(const Tensor& t, std::string_view name, int il) const {
    if (observer_) observer_(name, il, t);
  }
  // Whether an observer is set: a forward pass then keeps the intermediates it names apart
  // (no residual fused into the matmul that makes attn_out or ffn_out).
  bool observed() const { return bool(observer_); }

 private:
  Observer observer_;
};

// Whether a batch of T tokens at pos0 may go into a cache of n_cells rows before its own
// attention (window n_swa, 0 = none): its rows (pos0 + t) % n_cells must not hold a key
// before pos0 that one of its queries still reads. Always so for one token when n_cells ≥
// n_swa, and for a full-attention cache the batch does not wrap.
inline bool store_before_attention(int32_t pos0, int64_t T, int32_t n_swa, int64_t n_cells) {
  // The queries read cached keys [first, pos0); the batch writes positions [pos0, pos0 + T),
  // and two positions share a row exactly when they are n_cells apart.
  const int64_t first = n_swa > 0 ? std::max<int64_t>(0, int64_t(pos0) - n_swa + 1) : 0;
  return pos0 <= first || int64_t(pos0) + T - first <= n_cells;
}

// The CPU reference backend; n_threads 0 = all hardware threads.
std::unique_ptr<Backend> make_cpu_backend(int n_threads = 0);
// The Vulkan backend on the device `options` pick (libml/src/backend/vulkan.cpp).
std::unique_ptr<Backend> make_vulkan_backend(const vk::DeviceOptions& options = {});
// A backend by name ("cpu", "vulkan"); throws ml::Error naming the backends this build has.
std::unique_ptr<Backend> make_backend(std::string_view name);

// Host helpers built on upload/read; upload_i32 makes a transient [n] I32 tensor.
Tensor upload_i32(Backend& be, std::span<const int32_t> values);
std::vector<float> read_f32(Backend& be, const Tensor& t);
std::vector<int32_t> read_i32(Backend& be, const Tensor& t);
uint64_t tensor_bytes(const Tensor& t);

}  // namespace ml
