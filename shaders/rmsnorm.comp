#version 460
// RMSNorm of one row per workgroup: y = x / sqrt(mean(x^2) + eps) * w (ggml_rms_norm and the
// weight multiply of llama.cpp's build_norm). WG invocations sum strided squares, four loads
// in flight per step (a row of 4096 is otherwise a chain of dependent memory latencies),
// then a shared-memory tree reduction. With QUANTIZE (decode: y feeds one-token matmuls; rows
// of at most QUANTIZE_MAX_N) it also writes y quantized for the integer matvec
// (quantize_block.glsl), so that matvec needs no quantize dispatch of its own.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, n_rows, has_w; float eps; } p;
#if QUANTIZE
layout(binding = 3) writeonly buffer XQ { uvec4 xq4[]; };
#include "quantize_block.glsl"
shared vec4 row_values[QUANTIZE_MAX_N / 4u];
#endif

shared float partial[WG];

void main() {
  const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (row >= p.n_rows) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x, base = row * p.n;
  float s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  uint i = tid;
  for (; i + 3u * WG < p.n; i += 4u * WG) {
    const float a = x[base + i], b = x[base + i + WG], c = x[base + i + 2u * WG],
                d = x[base + i + 3u * WG];
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (; i < p.n; i += WG) s0 += x[base + i] * x[base + i];
  partial[tid] = (s0 + s1) + (s2 + s3);
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) partial[tid] += partial[tid + h];
    barrier();
  }
  const float scale = 1.0 / sqrt(partial[0] / float(p.n) + p.eps);
#if QUANTIZE
  // The whole row (n <= QUANTIZE_MAX_N) scaled in one step, 4 values per invocation, kept in
  // shared memory; then an invocation per 32-value block quantizes it. One step, not a loop of
  // dependent chunks: at decode this kernel is all latency.
  for (uint j4 = tid; j4 < p.n / 4u; j4 += WG) {
    const uint j = 4u * j4;
    vec4 v = vec4(x[base + j], x[base + j + 1u], x[base + j + 2u], x[base + j + 3u]) * scale;
    if (p.has_w != 0u) v *= vec4(w[j], w[j + 1u], w[j + 2u], w[j + 3u]);
    y[base + j] = v.x;
    y[base + j + 1u] = v.y;
    y[base + j + 2u] = v.z;
    y[base + j + 3u] = v.w;
    row_values[j4] = v;
  }
  barrier();
  for (uint b = tid; b < p.n / 32u; b += WG) {
    vec4 v[8];
    for (uint c = 0u; c < 8u; ++c) v[c] = row_values[8u * b + c];
    store_x_block(row * (p.n / 32u) + b, v);
  }
  return;
#endif
  i = tid;
  for (; i + 3u * WG < p.n; i += 4u * WG) {
    const vec4 v = vec4(x[base + i], x[base + i + WG], x[base + i + 2u * WG], x[base + i + 3u * WG]);
    const vec4 g = p.has_w != 0u ? vec4(w[i], w[i + WG], w[i + 2u * WG], w[i + 3u * WG]) : vec4(1.0);
    const vec4 r = v * scale * g;
    y[base + i] = r.x;
    y[base + i + WG] = r.y;
    y[base + i + 2u * WG] = r.z;
    y[base + i + 3u * WG] = r.w;
  }
  for (; i < p.n; i += WG)
    y[base + i] = p.has_w != 0u ? x[base + i] * scale * w[i] : x[base + i] * scale;
}
