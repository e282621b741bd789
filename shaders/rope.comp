#version 460
// RoPE with ggml's YaRN extension (ggml-cpu ops.cpp rope_yarn, ggml_rope_cache_init); the CPU
// reference is ml::ops::rope_cache + rope_head. One invocation per (token, head, pair i):
// pairs i < n_dims/2 rotate — (2i, 2i+1) in normal mode, (i, i + n_dims/2) in NeoX mode —
// the rest copy dims n_dims + 2(i - n_dims/2) and the next through.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(binding = 2) readonly buffer FF { float ff[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
  uint head_dim, n_rows, n_head, n_dims, neox, has_ff;
  float freq_base, freq_scale, ext_factor, attn_factor, corr0, corr1;
} p;

void main() {
  const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  const uint pairs = p.head_dim / 2u, half_dims = p.n_dims / 2u;
  const uint row = g / pairs, i = g % pairs;
  if (row >= p.n_rows) return;
  const uint base = row * p.head_dim;
  if (i >= half_dims) {
    const uint d = p.n_dims + 2u * (i - half_dims);
    y[base + d] = x[base + d];
    y[base + d + 1u] = x[base + d + 1u];
    return;
  }
  const float theta = float(pos[row / p.n_head]) * pow(p.freq_base, -2.0 * float(i) / float(p.n_dims));
  const float theta_extrap = p.has_ff != 0u ? theta / ff[i] : theta;
  const float theta_interp = p.freq_scale * theta_extrap;
  float t = theta_interp, mscale = p.attn_factor;
  if (p.ext_factor != 0.0) {
    const float ramp = 1.0 - clamp((float(i) - p.corr0) / max(0.001, p.corr1 - p.corr0), 0.0, 1.0);
    const float mix = ramp * p.ext_factor;
    t = theta_interp * (1.0 - mix) + theta_extrap * mix;
    mscale *= 1.0 + 0.1 * log(1.0 / p.freq_scale);
  }
  const float c = cos(t) * mscale, s = sin(t) * mscale;
  const uint a = p.neox != 0u ? i : 2u * i;
  const uint b = p.neox != 0u ? i + half_dims : 2u * i + 1u;
  const float x0 = x[base + a], x1 = x[base + b];
  y[base + a] = x0 * c - x1 * s;
  y[base + b] = x0 * s + x1 * c;
}
