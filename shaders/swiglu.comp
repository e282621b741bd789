#version 460
// y = silu(gate) * up (ggml_swiglu); with OAI gpt-oss's clamped variant (ggml_swiglu_oai):
// g = min(gate, limit), u = clamp(up, -limit, limit), y = g * sigmoid(alpha * g) * (u + 1).
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer G { float gate[]; };
layout(binding = 1) readonly buffer U { float up[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; float alpha, limit; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
#if OAI
  const float g = min(gate[i], p.limit);
  const float u = clamp(up[i], -p.limit, p.limit);
  y[i] = g / (1.0 + exp(-p.alpha * g)) * (u + 1.0);
#else
  const float g = gate[i];
  y[i] = g / (1.0 + exp(-g)) * up[i];
#endif
}
