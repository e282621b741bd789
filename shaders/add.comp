#version 460
// y = a + b (or a * b with MUL), b broadcast: b holds nb values repeated over a's n values
// (ggml_add / ggml_mul with a one-row b). One invocation per value.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, nb; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
#if MUL
  y[i] = a[i] * b[i % p.nb];
#else
  y[i] = a[i] + b[i % p.nb];
#endif
}
