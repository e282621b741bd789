#version 460
// y[:, s] = a[:, s] + b[:, ids[s]] for every (slot, token) column s of a [N, n_used, T]:
// per-expert biases (ggml_add_id). An id outside [0, E) gives NaN.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) readonly buffer Ids { int ids[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, N, E; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const int e = ids[i / p.N];
  y[i] = e >= 0 && uint(e) < p.E ? a[i] + b[uint(e) * p.N + i % p.N] : uintBitsToFloat(0x7FC00000u);
}
