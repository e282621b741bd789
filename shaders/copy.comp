#version 460
// dst = src in uvec4s: the copy-bandwidth ceiling that the matvec kernels are measured against.
// Fast because each invocation moves 16 bytes and neighbours touch neighbouring addresses.
// With READ_ONLY, src is only read (the matvec's pattern: weights in, almost nothing out):
// each invocation folds READ_ONLY uvec4s a grid apart and writes only where the fold equals
// p.never, which the caller picks so that it never does (the loads cannot be left out).
#ifndef READ_ONLY
#define READ_ONLY 0
#endif
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Src { uvec4 src[]; };
layout(binding = 1) writeonly buffer Dst { uvec4 dst[]; };
layout(push_constant) uniform Push {
  uint n;  // uvec4s in this slice
#if READ_ONLY
  uint never;  // a fold no input gives
#endif
} p;

void main() {
  const uint threads = gl_NumWorkGroups.x * gl_NumWorkGroups.y * gl_WorkGroupSize.x;
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if READ_ONLY
  uvec4 v = uvec4(0u);
  for (uint r = 0u; r < uint(READ_ONLY); ++r) {
    const uint e = i + r * threads;
    if (e < p.n) v ^= src[e];
  }
  if (v.x == p.never && v.y == p.never) dst[i] = v;
#else
  if (i < p.n) dst[i] = src[i];
#endif
}
