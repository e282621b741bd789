// Row reductions the decoder needs on the device: argmax (greedy) and top-k (candidates for
// the sampler and the MoE router).
#include <algorithm>
#include <numeric>
#include <vector>

#include "ml/ops.h"

namespace ml::ops {

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

void top_k(const float* x, int64_t n, int k, int32_t* ids) {
  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const auto kk = std::min<int64_t>(k, n);
  std::partial_sort(order.begin(), order.begin() + kk, order.end(),
                    [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  std::copy(order.begin(), order.begin() + kk, ids);
}

}  // namespace ml::ops
