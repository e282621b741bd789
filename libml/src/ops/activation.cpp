// Gated FFN activations: SwiGLU (llama, qwen), GeGLU with tanh GELU (gemma), and gpt-oss's
// clamped SwiGLU (ggml_swiglu_oai).
#include <algorithm>
#include <cmath>

#include "ml/ops.h"

namespace ml::ops {

float silu(float x) {
  return x / (1.0f + std::exp(-x));
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoef * x * x)));
}

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu(gate[i]) * up[i];
}

void geglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_tanh(gate[i]) * up[i];
}

void swiglu_oai(const float* gate, const float* up, float* y, int64_t n, float alpha, float limit) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = std::min(gate[i], limit);
    const float u = std::clamp(up[i], -limit, limit);
    const float glu = g / (1.0f + std::exp(-alpha * g));
    y[i] = glu * (u + 1.0f);
  }
}

}  // namespace ml::ops
