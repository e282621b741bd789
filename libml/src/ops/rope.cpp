// Rotary position embedding with ggml's YaRN extension (ggml-cpu ops.cpp: rope_yarn,
// ggml_rope_cache_init, ggml_rope_yarn_corr_dims). With ext_factor = 0 and freq_scale = 1 it
// is plain RoPE: θ_i = pos · base^(-2i/n_dims).
#include <algorithm>
#include <cmath>
#include <numbers>

#include "ml/ops.h"

namespace ml::ops {
namespace {

// The dimension at which a wavelength of n_rot full turns fits the original context.
float corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return float(n_dims) * std::log(float(n_ctx_orig) / (n_rot * 2.0f * std::numbers::pi_v<float>)) /
         (2.0f * std::log(base));
}

// 1 below dims[0] (extrapolate), 0 above dims[1] (interpolate), linear in between.
float yarn_ramp(float low, float high, int i0) {
  const float y = (float(i0 / 2) - low) / std::max(0.001f, high - low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

}  // namespace

void rope_yarn_corr_dims(int n_dims, int n_ctx_orig, float freq_base, float beta_fast,
                         float beta_slow, float dims[2]) {
  const float start = std::floor(corr_dim(n_dims, n_ctx_orig, beta_fast, freq_base));
  const float end = std::ceil(corr_dim(n_dims, n_ctx_orig, beta_slow, freq_base));
  dims[0] = std::max(0.0f, start);
  dims[1] = std::min(float(n_dims - 1), end);
}

void rope_cache(const RopeParams& p, int32_t pos, const float* freq_factors, float* cs) {
  float dims[2] = {0.0f, 0.0f};
  rope_yarn_corr_dims(p.n_dims, p.n_ctx_orig, p.freq_base, p.beta_fast, p.beta_slow, dims);
  const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_dims));
  float theta = float(pos);  // θ_i by repeated multiplication, as ggml computes it
  for (int i0 = 0; i0 < p.n_dims; i0 += 2) {
    const float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
    const float theta_extrap = theta / ff;
    const float theta_interp = p.freq_scale * theta_extrap;
    float t = theta_interp;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) {
      const float mix = yarn_ramp(dims[0], dims[1], i0) * p.ext_factor;
      t = theta_interp * (1.0f - mix) + theta_extrap * mix;
      // YaRN's magnitude correction for interpolation: 0.1·ln(factor) + 1
      mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    }
    cs[i0] = std::cos(t) * mscale;
    cs[i0 + 1] = std::sin(t) * mscale;
    theta *= theta_scale;
  }
}

void rope_head(const RopeParams& p, const float* cs, float* x, int64_t head_dim) {
  (void)head_dim;  // dims at and past n_dims pass through unchanged
  const int half = p.n_dims / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int a = p.mode == RopeMode::neox ? i : 2 * i;
    const int b = p.mode == RopeMode::neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
  }
}

}  // namespace ml::ops
