#version 460
// dst = src in uvec4s: the copy-bandwidth ceiling that the matvec kernels are measured against.
// Fast because each invocation moves 16 bytes and neighbours touch neighbouring addresses.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Src { uvec4 src[]; };
layout(binding = 1) writeonly buffer Dst { uvec4 dst[]; };
layout(push_constant) uniform Push { uint n; } p;  // uvec4s in this slice

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i < p.n) dst[i] = src[i];
}
