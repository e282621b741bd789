// RMSNorm (ggml_rms_norm followed by the weight multiply of llama.cpp's build_norm).
#include <cmath>

#include "ml/ops.h"

namespace ml::ops {

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;  // ggml accumulates in ggml_float (double)
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  const float mean = float(sum / double(n));
  const float s = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w ? x[i] * s * w[i] : x[i] * s;
}

}  // namespace ml::ops
