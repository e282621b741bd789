#version 460
// y = gelu_tanh(gate) * up (ggml_geglu, Gemma's FFN):
// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer G { float gate[]; };
layout(binding = 1) readonly buffer U { float up[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const float x = gate[i];
  const float t = clamp(0.79788456080286535588 * x * (1.0 + 0.044715 * x * x), -15.0, 15.0);
  y[i] = 0.5 * x * (1.0 + tanh(t)) * up[i];
}
