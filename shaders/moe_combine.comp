#version 460
// out[:, t] = sum_j weights[j, t] * y[:, j, t] for y [N, k, T]: the weighted sum of the
// experts' outputs; with ADD, + add[:, t] after the sum (the block's residual, which would
// otherwise be a dispatch of its own). One invocation per output value.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Yin { float y[]; };
layout(binding = 1) readonly buffer Wt { float wt[]; };
layout(binding = 2) writeonly buffer O { float o[]; };
#if ADD
layout(binding = 3) readonly buffer A { float add_o[]; };  // [N, T]
#endif
layout(push_constant) uniform Push { uint N, k, n_tokens; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.N * p.n_tokens) return;
  const uint t = i / p.N, n = i % p.N;
  float s = 0.0;
  for (uint j = 0u; j < p.k; ++j) s += wt[t * p.k + j] * y[(t * p.k + j) * p.N + n];
#if ADD
  s += add_o[i];
#endif
  o[i] = s;
}
