#pragma once
// The CPU reference backend (see backend/cpu.cpp). Owns host vectors: one per persistent
// tensor (weights, KV cache) and one per transient tensor (op results, freed together).
#include <functional>
#include <vector>

#include "ml/backend.h"

namespace ml {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads);

  std::string name() const override { return "cpu"; }
  uint64_t memory_capacity() const override;
  Tensor alloc(gguf::Type type, std::array<int64_t, 4> ne, std::string_view name) override;
  void free(Tensor t) override;
  Tensor scratch(gguf::Type type, std::array<int64_t, 4> ne) override;
  void reset_transient() override;
  void upload(const Tensor& t, std::span<const std::byte> bytes, uint64_t offset) override;
  void read(const Tensor& t, std::span<std::byte> out) override;
  using Backend::read;
  void sync() override {}

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

 private:
  Tensor make(gguf::Type type, std::array<int64_t, 4> ne, bool transient);
  std::vector<std::byte>& storage(const Tensor& t);
  const float* f32(const Tensor& t);
  const int32_t* i32(const Tensor& t);
  float* out_f32(Tensor& t);
  Tensor binary(const Tensor& a, const Tensor& b, bool multiply);
  Tensor gated(const Tensor& gate, const Tensor& up,
               const std::function<void(const float*, const float*, float*, int64_t)>& f);

  int n_threads_;
  std::vector<std::vector<std::byte>> persistent_;  // indexed by Tensor::id
  std::vector<std::vector<std::byte>> transient_;   // indexed by id without kTransientBit
};

}  // namespace ml
