#version 460
// RMSNorm of one row per workgroup: y = x / sqrt(mean(x^2) + eps) * w (ggml_rms_norm and the
// weight multiply of llama.cpp's build_norm), then + r with ADD (Gemma 3's post-attention and
// post-FFN norms feed a residual add: y = norm(x)·w + r, one stage instead of two). NORM2
// (with ADD, REGISTERS only) also writes y2 = norm(y)·w2, the norm that reads that sum next
// (Gemma 3's FFN norm after the post-attention residual): a third stage saved.
// With QUANTIZE (decode: y feeds one-token matmuls) it also writes y quantized for the integer
// matvec (quantize_block.glsl), so that matvec needs no quantize dispatch of its own.
//
// Two shapes of the same math. REGISTERS (decode, one row of n = 4·NV4·WG values at most, on a
// device with subgroup shuffles): every invocation loads its NV4 vec4s of x and w at once and
// keeps them, the sum of squares is a shuffle butterfly and one shared value per subgroup, and
// the 8 invocations holding a 32-value block quantize it together (store_x_block_lanes): one
// barrier and one read of x where the general shape has a tree of log2(WG) barriers, reads x
// twice and quantizes a block on one invocation. The general shape (prefill, many rows) sums
// strided squares with four loads in flight, reduces in a shared-memory tree and rereads x.
#extension GL_GOOGLE_include_directive : require
#if REGISTERS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_shuffle_relative : require
#define X_BLOCK_LANES 1
#endif
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, n_rows, has_w; float eps; } p;
#if ADD
layout(binding = 3) readonly buffer R { float r[]; };
#endif
#if NORM2
layout(binding = 4) readonly buffer W2 { float w2[]; };
layout(binding = 5) writeonly buffer Y2 { float y2[]; };
#endif
#if QUANTIZE
// y quantized (y2 with NORM2), after the other buffers
layout(binding = 3 + ADD + 2 * NORM2) writeonly buffer XQ { uvec4 xq4[]; };
#include "quantize_block.glsl"
#endif

#if REGISTERS
// Sums as float pairs (hi, lo): hi the rounded sum, lo what rounding left. The row's sum of
// squares is then as exact as the CPU reference's double (ggml_float) and so its mean the
// same float whatever the workgroup and subgroup sizes: with a float sum, a row's scale moved
// by an ulp with the lane count, enough to flip a near-tie of a golden greedy step.
vec2 two_sum(vec2 a, vec2 b) {
  precise float s = a.x + b.x;
  precise float bb = s - a.x;
  precise float e = (a.x - (s - bb)) + (b.x - bb);
  precise float t = e + (a.y + b.y);
  precise float hi = s + t;
  return vec2(hi, t - (hi - s));
}

vec2 squares(vec4 v) {
  vec2 acc = vec2(0.0);
  for (uint k = 0u; k < 4u; ++k) {
    precise float q = v[k] * v[k];
    acc = two_sum(acc, vec2(q, fma(v[k], v[k], -q)));
  }
  return acc;
}

shared vec2 partial[WG];  // one value per subgroup (subgroups of at least one invocation)
#if NORM2
shared vec2 partial2[WG];
#endif

vec2 subgroup_sum(vec2 s) {
  for (uint m = 1u; m < gl_SubgroupSize; m <<= 1)
    s = two_sum(s, vec2(subgroupShuffleXor(s.x, m), subgroupShuffleXor(s.y, m)));
  return s;  // two_sum is symmetric: the same on every lane
}

// The row's mean square, from each invocation's part s: a butterfly over the subgroup, one
// shared value per subgroup, a butterfly over those.
float row_mean(vec2 s, bool second) {
  s = subgroup_sum(s);
  vec2 t = vec2(0.0);
#if NORM2
  if (second) {
    if (subgroupElect()) partial2[gl_SubgroupID] = s;
    barrier();
    for (uint i = gl_SubgroupInvocationID; i < gl_NumSubgroups; i += gl_SubgroupSize)
      t = two_sum(t, partial2[i]);
  } else
#endif
  {
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    for (uint i = gl_SubgroupInvocationID; i < gl_NumSubgroups; i += gl_SubgroupSize)
      t = two_sum(t, partial[i]);
  }
  s = subgroup_sum(t);
  // (hi + lo) / n rounded once, near enough: the quotient of hi and its remainder's share
  const float n = float(p.n), q = s.x / n;
  return q + (fma(-q, n, s.x) + s.y) / n;
}

void main() {
  const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (row >= p.n_rows) return;  // uniform over the workgroup
  const uint base = row * p.n;
  // The invocation's vec4s, numbered so that a subgroup's lanes hold consecutive vec4s (the
  // 8 lanes of a 32-value block are in one subgroup whatever the local index layout).
  const uint lane = gl_SubgroupInvocationID, first4 = gl_SubgroupID * gl_SubgroupSize + lane;
  // Every load issued before the first use.
  vec4 v[NV4], g[NV4];
  for (uint c = 0u; c < NV4; ++c) {
    const uint j = 4u * (first4 + c * WG);
    v[c] = j < p.n ? vec4(x[base + j], x[base + j + 1u], x[base + j + 2u], x[base + j + 3u])
                   : vec4(0.0);
    g[c] = p.has_w != 0u && j < p.n ? vec4(w[j], w[j + 1u], w[j + 2u], w[j + 3u]) : vec4(1.0);
  }
#if ADD
  vec4 res[NV4];
  for (uint c = 0u; c < NV4; ++c) {
    const uint j = 4u * (first4 + c * WG);
    res[c] = j < p.n ? vec4(r[base + j], r[base + j + 1u], r[base + j + 2u], r[base + j + 3u])
                     : vec4(0.0);
  }
#endif
#if NORM2
  vec4 g2[NV4];
  for (uint c = 0u; c < NV4; ++c) {
    const uint j = 4u * (first4 + c * WG);
    g2[c] = j < p.n ? vec4(w2[j], w2[j + 1u], w2[j + 2u], w2[j + 3u]) : vec4(0.0);
  }
#endif
  vec2 s = vec2(0.0);
  for (uint c = 0u; c < NV4; ++c) s = two_sum(s, squares(v[c]));
  const float scale = 1.0 / sqrt(row_mean(s, false) + p.eps);
  for (uint c = 0u; c < NV4; ++c) {
    const uint j = 4u * (first4 + c * WG);
#if ADD
    // precise: no fused multiply-add, so the sum is bit for bit rmsnorm's y then add.comp's
    // (a forward pass with an observer keeps them apart and must give the same logits)
    precise vec4 o = v[c] * scale * g[c] + res[c];
    v[c] = o;
#else
    v[c] = v[c] * scale * g[c];
#endif
    if (j < p.n) {
      y[base + j] = v[c].x;
      y[base + j + 1u] = v[c].y;
      y[base + j + 2u] = v[c].z;
      y[base + j + 3u] = v[c].w;
    }
  }
#if NORM2
  s = vec2(0.0);
  for (uint c = 0u; c < NV4; ++c) s = two_sum(s, squares(v[c]));
  const float scale2 = 1.0 / sqrt(row_mean(s, true) + p.eps);
  for (uint c = 0u; c < NV4; ++c) {
    const uint j = 4u * (first4 + c * WG);
    v[c] = v[c] * scale2 * g2[c];
    if (j < p.n) {
      y2[base + j] = v[c].x;
      y2[base + j + 1u] = v[c].y;
      y2[base + j + 2u] = v[c].z;
      y2[base + j + 3u] = v[c].w;
    }
  }
#endif
#if QUANTIZE
  // Lanes 8m..8m+7 hold block j4 / 8 (n % 32 == 0) and store it together.
  for (uint c = 0u; c < NV4; ++c) {
    const uint j4 = first4 + c * WG;
    store_x_block_lanes(row * (p.n / 32u) + j4 / 8u, v[c], lane & 7u, 4u * j4 < p.n);
  }
#endif
}

#else
shared float partial[WG];
#if QUANTIZE
shared vec4 row_values[QUANTIZE_MAX_N / 4u];
#endif

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
#if ADD
    precise vec4 o = v * scale * g + vec4(r[base + i], r[base + i + WG], r[base + i + 2u * WG],
                                          r[base + i + 3u * WG]);
#else
    const vec4 o = v * scale * g;
#endif
    y[base + i] = o.x;
    y[base + i + WG] = o.y;
    y[base + i + 2u * WG] = o.z;
    y[base + i + 3u * WG] = o.w;
  }
  for (; i < p.n; i += WG) {
    const float v = p.has_w != 0u ? x[base + i] * scale * w[i] : x[base + i] * scale;
#if ADD
    precise float o = v + r[base + i];
    y[base + i] = o;
#else
    y[base + i] = v;
#endif
  }
}
#endif
