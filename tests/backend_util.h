#pragma once
// Inputs for the backend tests (ops_gpu_test, backend_gpu_test): seeded random values and
// host vectors put on a backend as tensors, and the relative difference of two results.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ml/backend.h"

namespace ml::test {

inline std::vector<float> randoms(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& f : v) f = u(rng);
  return v;
}

// Shapes may be written {K, N}: the dims left out (zero-initialized) are 1.
inline std::array<int64_t, 4> dims(std::array<int64_t, 4> ne) {
  for (auto& n : ne) n = n ? n : 1;
  return ne;
}

inline Tensor put(Backend& be, gguf::Type type, std::array<int64_t, 4> ne,
                  std::span<const std::byte> bytes) {
  Tensor t = be.alloc(type, dims(ne), "input");
  be.upload(t, bytes);
  return t;
}
inline Tensor put_f32(Backend& be, std::array<int64_t, 4> ne, const std::vector<float>& v) {
  return put(be, gguf::Type::F32, ne, std::as_bytes(std::span(v)));
}
inline Tensor put_i32(Backend& be, std::array<int64_t, 4> ne, const std::vector<int32_t>& v) {
  return put(be, gguf::Type::I32, ne, std::as_bytes(std::span(v)));
}

// max |a - b| relative to max |a|; NaN in b is the worst (infinite). EXPECTs equal sizes.
inline double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double scale = 1e-6, worst = 0;
  for (float f : a) scale = std::max(scale, double(std::fabs(f)));
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (std::isnan(b[i])) return INFINITY;
    worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  }
  return worst / scale;
}

// Head dim 16: normal RoPE over all dims, NeoX over 12 (dims 12..15 pass through), and
// NeoX with YaRN as gpt-oss sets it (factor 32, original context 4096).
inline std::vector<ops::RopeParams> rope_variants() {
  ops::RopeParams normal;
  normal.n_dims = 16;
  ops::RopeParams neox = normal;
  neox.mode = ops::RopeMode::neox;
  neox.n_dims = 12;  // dims 12..15 pass through
  ops::RopeParams yarn = neox;
  yarn.n_dims = 16;
  yarn.freq_base = 150000.0f;
  yarn.freq_scale = 1.0f / 32.0f;
  yarn.ext_factor = 1.0f;
  yarn.n_ctx_orig = 4096;
  return {normal, neox, yarn};
}

}  // namespace ml::test
