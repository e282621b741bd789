#version 460
// y = silu(gate) * up (ggml_swiglu); with OAI gpt-oss's clamped variant (ggml_swiglu_oai):
// g = min(gate, limit), u = clamp(up, -limit, limit), y = g * sigmoid(alpha * g) * (u + 1);
// with GELU y = gelu_tanh(gate) * up (ggml_geglu, Gemma's FFN):
// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// With QUANTIZE (decode: y feeds the down projection's one-token matvec) an invocation does 4
// values and the workgroup also writes them quantized for the integer matvec
// (quantize_block.glsl): with LANES the 8 subgroup lanes of a block quantize it together
// (store_x_block_lanes, no barrier), else WG/8 invocations a block each from shared memory.
#extension GL_GOOGLE_include_directive : require
#if LANES
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_shuffle_relative : require
#define X_BLOCK_LANES 1
#endif
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer G { float gate[]; };
layout(binding = 1) readonly buffer U { float up[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; float alpha, limit; } p;

float gated(uint i) {
#if OAI
  const float g = min(gate[i], p.limit);
  const float u = clamp(up[i], -p.limit, p.limit);
  return g / (1.0 + exp(-p.alpha * g)) * (u + 1.0);
#elif GELU
  const float x = gate[i];
  const float t = clamp(0.79788456080286535588 * x * (1.0 + 0.044715 * x * x), -15.0, 15.0);
  return 0.5 * x * (1.0 + tanh(t)) * up[i];
#else
  const float g = gate[i];
  return g / (1.0 + exp(-g)) * up[i];
#endif
}

#if QUANTIZE
layout(binding = 3) writeonly buffer XQ { uvec4 xq4[]; };
#include "quantize_block.glsl"
shared vec4 block_values[WG];
#endif

void main() {
#if QUANTIZE && LANES
  // i numbered by subgroup lane, so that lanes 8m..8m+7 hold block i / 8 (n % 32 == 0).
  const uint i = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * WG +
                 gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
  vec4 v = vec4(0.0);
  if (4u * i < p.n) {
    v = vec4(gated(4u * i), gated(4u * i + 1u), gated(4u * i + 2u), gated(4u * i + 3u));
    y[4u * i] = v.x;
    y[4u * i + 1u] = v.y;
    y[4u * i + 2u] = v.z;
    y[4u * i + 3u] = v.w;
  }
  store_x_block_lanes(i / 8u, v, gl_SubgroupInvocationID & 7u, 4u * i < p.n);
#else
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if QUANTIZE
  // i: 4 values (coalesced); then WG/8 invocations quantize a block each from shared memory.
  // No return before the barrier: it must be reached by the whole workgroup.
  vec4 v = vec4(0.0);
  if (4u * i < p.n) {
    v = vec4(gated(4u * i), gated(4u * i + 1u), gated(4u * i + 2u), gated(4u * i + 3u));
    y[4u * i] = v.x;
    y[4u * i + 1u] = v.y;
    y[4u * i + 2u] = v.z;
    y[4u * i + 3u] = v.w;
  }
  const uint tid = gl_LocalInvocationID.x;
  block_values[tid] = v;
  barrier();
  const uint first = (i - tid) / 8u;  // the workgroup's first block
  if (tid < WG / 8u && 32u * (first + tid) < p.n) {
    vec4 b[8];
    for (uint c = 0u; c < 8u; ++c) b[c] = block_values[8u * tid + c];
    store_x_block(first + tid, b);
  }
#else
  if (i >= p.n) return;
  y[i] = gated(i);
#endif
#endif
}
