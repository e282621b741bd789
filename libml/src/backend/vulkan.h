#pragma once
// The Vulkan backend (see backend/vulkan.cpp for memory and submission, vulkan_ops.cpp and
// vulkan_attention.cpp for the op dispatches). Every tensor is one device buffer; a forward
// pass's transients reuse the previous pass's buffers of the same size. Ops are recorded into
// one recording that is submitted in chunks while it grows and waited for when the host needs
// a result (read, sync, a large upload, reset).
#include <map>
#include <memory>
#include <vector>

#include "ml/backend.h"
#include "ml/vk.h"

namespace ml {

class VulkanBackend final : public Backend {
 public:
  // Set in the id of every transient tensor (see vulkan.cpp for the rest of the id's bits).
  static constexpr uint32_t kTransientBit = 0x80000000u;
  explicit VulkanBackend(const vk::DeviceOptions& options);
  ~VulkanBackend() override;

  std::string name() const override { return "vulkan"; }
  uint64_t memory_capacity() const override;
  Tensor alloc(gguf::Type type, std::array<int64_t, 4> ne, std::string_view name) override;
  void free(Tensor t) override;
  Tensor scratch(gguf::Type type, std::array<int64_t, 4> ne) override;
  void reset_transient() override;
  void upload(const Tensor& t, std::span<const std::byte> bytes, uint64_t offset) override;
  void read(const Tensor& t, std::span<std::byte> out) override;
  void read(std::span<const Tensor> ts, std::span<const std::span<std::byte>> outs) override;
  PendingRead read_start(const Tensor& t) override;
  void read_finish(PendingRead& pending, std::span<std::byte> out) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void sync() override;

  Tensor get_rows(const Tensor& table, const Tensor& ids) override;
  Tensor matmul(const Tensor& w, const Tensor& x, const Tensor* bias, const Tensor* add) override;
  Tensor matmul_id(const Tensor& w, const Tensor& x, const Tensor& ids,
                   const Tensor* bias) override;
  Tensor add(const Tensor& a, const Tensor& b) override;
  Tensor mul(const Tensor& a, const Tensor& b) override;
  Tensor add_id(const Tensor& a, const Tensor& b, const Tensor& ids) override;
  Tensor scale(const Tensor& a, float s) override;
  Tensor softcap(const Tensor& a, float cap) override;
  Tensor rmsnorm(const Tensor& x, const Tensor* w, float eps, const Tensor* add = nullptr) override;
  NormSum rmsnorm_add_norm(const Tensor& x, const Tensor& w, const Tensor& add, const Tensor& w2,
                           float eps) override;
  Tensor rope(const Tensor& x, const Tensor& pos, const Tensor* freq_factors,
              const ops::RopeParams& p) override;
  void kv_store(const Tensor& cache, const Tensor& k, int32_t pos0) override;
  QK rope_qk(const Tensor& q, const Tensor& k, const Tensor& pos, const Tensor* freq_factors,
             const ops::RopeParams& p, const KvStore* store, const QkNorm* norm = nullptr) override;
  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& k_cache,
                   const Tensor& v_cache, const Tensor* sinks,
                   const ops::AttentionParams& p) override;
  Tensor swiglu(const Tensor& gate, const Tensor& up) override;
  Tensor geglu(const Tensor& gate, const Tensor& up) override;
  Tensor swiglu_oai(const Tensor& gate, const Tensor& up, float alpha, float limit) override;
  Route moe_route(const Tensor& logits, int k) override;
  Tensor moe_combine(const Tensor& y, const Tensor& weights, const Tensor* add) override;
  Tensor argmax(const Tensor& x) override;
  Tensor top_k(const Tensor& x, int k) override;
  void set_profiling(bool on) override;
  std::vector<OpTime> take_op_times() override;

  vk::Device& device() { return *device_; }

 private:
  Tensor make(gguf::Type type, std::array<int64_t, 4> ne, bool transient, std::string name);
  const vk::Buffer& buffer(const Tensor& t) const;
  const vk::Buffer& f32(const Tensor& t, const char* op) const;
  const vk::Buffer& i32(const Tensor& t, const char* op) const;
  // Records an elementwise kernel over n values: bindings in, one invocation per value.
  void elementwise(const vk::KernelSpec& spec, std::initializer_list<vk::Binding> bindings,
                   std::span<const std::byte> push, uint64_t n, const char* label);
  void elementwise(const vk::Kernel& kernel, std::initializer_list<vk::Binding> bindings,
                   std::span<const std::byte> push, uint64_t n, const char* label);
  // swiglu.comp's activations: silu, gpt-oss's clamped silu, tanh GELU.
  enum class Act { swiglu, swiglu_oai, geglu };
  Tensor gated(const Tensor& gate, const Tensor& up, const char* label, Act act, float alpha,
               float limit);
  Tensor binary(const Tensor& a, const Tensor& b, bool multiply);
  // rmsnorm, + add, and the norm of that sum times w2 (rmsnorm.comp; w2 only where
  // registers_nv4(x) is not 0).
  NormSum normed(const Tensor& x, const Tensor* w, float eps, const Tensor* add, const Tensor* w2);
  uint32_t registers_nv4(const Tensor& x) const;
  uint32_t registers_wg(int64_t n, uint32_t nv4) const;
  // rope (k null) and rope_qk: one rope.comp dispatch over q's rows, then k's.
  QK roped(const Tensor& q, const Tensor* k, const Tensor& pos, const Tensor* freq_factors,
           const ops::RopeParams& p, const KvStore* store, const QkNorm* norm);
  Tensor rows_topk(const Tensor& x, int k, bool route, Tensor* weights);

  std::unique_ptr<vk::Device> device_;
  std::unique_ptr<vk::StagingRing> ring_;
  std::unique_ptr<vk::Recorder> rec_;
  bool profiling_ = false;
  std::vector<OpTime> op_times_;  // summed by label while profiling
  uint64_t reset_waits_ = 0;       // reset_transient() waits for the device (buffers freed)
  // persistent_ by Tensor::id, null once freed; transient_ this forward pass's, by index;
  // previous_ the last pass's, by index, for this pass to take: index i takes previous_[i]
  // while the sizes match (a decode step asks for the sizes of the one before it, in order);
  // from the first mismatch on, the rest go to spare_, by size.
  std::vector<std::unique_ptr<vk::Buffer>> persistent_, transient_, previous_;
  std::multimap<uint64_t, std::unique_ptr<vk::Buffer>> spare_;
  bool spared_ = false;  // previous_'s rest moved to spare_
  uint32_t generation_ = 0;
  // The last x quantized for the integer matvec (q/k/v and gate/up read the same x one after
  // another): its transient id, the pass and shape it was made for, and the transient holding it.
  struct XQuant {
    uint32_t x_id = 0, generation = 0;
    int64_t k = 0, n_x = 0;
    Tensor x_q;
    ops::QuantizedX q;
  };
  XQuant xq_last_;
  ops::QuantizedX* quantized_x(const Tensor& x, gguf::Type type, int64_t k, int64_t n_x);
  // For an op writing y that one-token matmuls may read next: a transient its kernel fills
  // with y quantized (QUANTIZE), registered as the last quantized x; null when y has more
  // rows than a matvec takes or rows that are not whole blocks.
  const vk::Buffer* quantize_alongside(const Tensor& y);
  std::unique_ptr<vk::Buffer> readback_;  // kReadbackBytes, host-visible
  // read_start's slots (kAsyncSlots of kAsyncSlotBytes, host-visible): slot i holds the read
  // of ticket t with t % kAsyncSlots == i until it is finished.
  std::unique_ptr<vk::Buffer> async_readback_;
  void sync_recorded();
  Tensor attn_part_;  // split attention's counters and partial sums (vulkan_attention.cpp)
};

}  // namespace ml
