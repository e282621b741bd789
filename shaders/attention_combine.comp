#version 460
// The second pass of split attention (attention.comp with SPLIT = 1): a token·head's splits
// each hold (acc[D], m, l) over their keys; rescaled to the common max M they sum to
// o = sum_s e^(m_s - M) acc_s / (sum_s e^(m_s - M) l_s [+ e^(sink - M)]). One workgroup per
// token·head; a split without keys has m = -inf and l = 0 and adds nothing.
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer P { float part[]; };
layout(binding = 1) readonly buffer S { float sinks[]; };
layout(binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { uint head_dim, n_head, n_items, n_split, has_sinks; } p;

void main() {
  const uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (item >= p.n_items) return;
  const uint D = p.head_dim, h = item % p.n_head, stride = D + 2u;
  const uint base = item * p.n_split * stride;
  float M = p.has_sinks != 0u ? sinks[h] : uintBitsToFloat(0xFF800000u);
  for (uint s = 0u; s < p.n_split; ++s) M = max(M, part[base + s * stride + D]);
  float L = p.has_sinks != 0u ? exp(sinks[h] - M) : 0.0;
  for (uint s = 0u; s < p.n_split; ++s)
    L += exp(part[base + s * stride + D] - M) * part[base + s * stride + D + 1u];
  for (uint d = gl_LocalInvocationID.x; d < D; d += WG) {
    float acc = 0.0;
    for (uint s = 0u; s < p.n_split; ++s)
      acc += exp(part[base + s * stride + D] - M) * part[base + s * stride + d];
    o[item * D + d] = acc / L;
  }
}
