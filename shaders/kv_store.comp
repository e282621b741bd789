#version 460
// Writes k [width, T] into cache rows (pos0 + t) % n_cells, as F16 (F16 = 1: one invocation per
// pair of values, packHalf2x16) or F32 (one per value). A batch longer than the ring writes
// some cells twice; only the last n_cells tokens are written, so the later token wins as in
// the sequential CPU reference (ml::ops kv_store) instead of racing.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer K { float k[]; };
#if F16
layout(binding = 1) writeonly buffer C { uint c[]; };
#else
layout(binding = 1) writeonly buffer C { float c[]; };
#endif
layout(push_constant) uniform Push { uint width, n_tokens, pos0, n_cells; } p;

void main() {
  const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if F16
  const uint per_row = p.width / 2u;
#else
  const uint per_row = p.width;
#endif
  const uint t = g / per_row, i = g % per_row;
  if (t >= p.n_tokens || t + p.n_cells < p.n_tokens) return;
  const uint cell = (p.pos0 + t) % p.n_cells;
#if F16
  c[cell * per_row + i] = packHalf2x16(vec2(k[t * p.width + 2u * i], k[t * p.width + 2u * i + 1u]));
#else
  c[cell * per_row + i] = k[t * p.width + i];
#endif
}
