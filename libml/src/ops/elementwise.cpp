// Elementwise ops, and the thread splitter the reference kernels share.
#include <cmath>
#include <thread>
#include <vector>

#include "ml/ops.h"

namespace ml::ops {

void parallel_for(int64_t n, int n_threads, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(n_threads, n));
  if (workers == 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t begin = w * chunk, end = std::min(n, begin + chunk);
    if (begin < end) threads.emplace_back(fn, begin, end);
  }
  fn(0, std::min(n, chunk));
  for (auto& t : threads) t.join();
}

float dot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void add(const float* a, const float* b, int64_t nb, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i % nb];
}

void mul(const float* a, const float* b, int64_t nb, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i % nb];
}

void scale(const float* a, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s;
}

void softcap(const float* a, float cap, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = cap * std::tanh(a[i] / cap);
}

}  // namespace ml::ops
