#version 460
// y = silu(gate) * up (ggml_swiglu); with OAI gpt-oss's clamped variant (ggml_swiglu_oai):
// g = min(gate, limit), u = clamp(up, -limit, limit), y = g * sigmoid(alpha * g) * (u + 1).
// With QUANTIZE (decode: y feeds the down projection's one-token matvec) an invocation does a
// 32-value block and also writes it quantized for the integer matvec (quantize_block.glsl).
#extension GL_GOOGLE_include_directive : require
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
#else
  const float g = gate[i];
  return g / (1.0 + exp(-g)) * up[i];
#endif
}

#if QUANTIZE
layout(binding = 3) writeonly buffer XQ { uvec4 xq4[]; };
#include "quantize_block.glsl"
#endif

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if QUANTIZE
  if (i >= p.n / 32u) return;  // i: a block of 32 values
  vec4 v[8];
  for (uint c = 0u; c < 8u; ++c) {
    const uint j = 32u * i + 4u * c;
    v[c] = vec4(gated(j), gated(j + 1u), gated(j + 2u), gated(j + 3u));
    y[j] = v[c].x;
    y[j + 1u] = v[c].y;
    y[j + 2u] = v[c].z;
    y[j + 3u] = v[c].w;
  }
  store_x_block(i, v);
#else
  if (i >= p.n) return;
  y[i] = gated(i);
#endif
}
