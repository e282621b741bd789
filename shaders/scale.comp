#version 460
// y = s * a, or with SOFTCAP y = cap * tanh(a / cap) (Gemma's logit soft-capping).
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; float s; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
#if SOFTCAP
  // tanh saturates to ±1 in float past |x| = 10; the clamp keeps drivers' exp-based tanh finite.
  y[i] = p.s * tanh(clamp(a[i] / p.s, -15.0, 15.0));
#else
  y[i] = p.s * a[i];
#endif
}
