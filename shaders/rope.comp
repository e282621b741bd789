#version 460
// RoPE with ggml's YaRN extension (ggml-cpu ops.cpp rope_yarn, ggml_rope_cache_init) of the
// rows of q and then of k in one dispatch; the CPU reference is ml::ops::rope_cache +
// rope_head (Backend::rope_qk: rope, rope, kv_store, kv_store). Pairs i < n_dims/2 rotate —
// (2i, 2i+1) in normal mode, (i, i + n_dims/2) in NeoX mode — the rest pass through. One
// invocation per (row, j) writes elements 2j and 2j+1 — each from its own rotation pair — so
// an F16 cache gets them as one packHalf2x16 in either mode. STORE = 1 also writes each k row
// and its v row into the caches' row (pos0 + t) % n_cells as kv_store.comp does (only the last
// n_cells tokens, so the later token wins): why it is fast, one dispatch where there were
// four, each a barrier drain on the GPU. NORM = 1 first normalizes each row (Qwen3's and
// Gemma 3's per-head RMSNorm of q and k, attn_q_norm / attn_k_norm: ml::ops::rmsnorm): a
// workgroup is one row (WG = head_dim / 2), its sum of squares a subgroupAdd, so the norms
// need no stage of their own before this one.
#if NORM
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer XQ { float xq[]; };
layout(binding = 1) readonly buffer XK { float xk[]; };
layout(binding = 2) readonly buffer FF { float ff[]; };
layout(binding = 3) writeonly buffer YQ { vec2 yq[]; };
layout(binding = 4) writeonly buffer YK { vec2 yk[]; };
#if STORE
// The batch's positions are its cache positions pos0 + t: no position buffer, so with NORM's
// two weights the buffers fit the recorder's ten bindings.
layout(binding = 5) readonly buffer V { vec2 v[]; };
#if F16
layout(binding = 6) writeonly buffer KC { uint kc[]; };
layout(binding = 7) writeonly buffer VC { uint vc[]; };
#else
layout(binding = 6) writeonly buffer KC { vec2 kc[]; };
layout(binding = 7) writeonly buffer VC { vec2 vc[]; };
#endif
#else
layout(binding = 5) readonly buffer Pos { int pos[]; };
#endif
#if NORM
// After the kernel's other buffers: 6 and 7, or 8 and 9 with STORE.
layout(binding = 6 + 2 * STORE) readonly buffer QW { float qw[]; };
layout(binding = 7 + 2 * STORE) readonly buffer KW { float kw[]; };
shared float partial[WG];  // one value per subgroup
float row_scale = 1.0;     // 1 / sqrt(mean(x^2) + eps) of the invocation's row
#endif
layout(push_constant) uniform Push {
  uint head_dim, n_head_q, n_head_k, n_tokens, n_dims, neox, has_ff, pos0, n_cells;
  float freq_base, freq_scale, ext_factor, attn_factor, corr0, corr1, eps;
} p;

// Element d of the row at `base`, normalized with NORM.
float load(bool is_q, uint base, uint d) {
  const float v = is_q ? xq[base + d] : xk[base + d];
#if NORM
  return v * row_scale * (is_q ? qw[d] : kw[d]);
#else
  return v;
#endif
}

// Element d of the rotated row starting at `base`, for token position `ps`.
float rotated(bool is_q, uint base, uint d, int ps) {
  if (d >= p.n_dims) return load(is_q, base, d);
  const uint half_dims = p.n_dims / 2u;
  const bool first = p.neox != 0u ? d < half_dims : (d & 1u) == 0u;
  const uint i = p.neox != 0u ? (first ? d : d - half_dims) : d / 2u;
  const uint partner = p.neox != 0u ? (first ? d + half_dims : d - half_dims) : d ^ 1u;
  const float theta = float(ps) * pow(p.freq_base, -2.0 * float(i) / float(p.n_dims));
  const float theta_extrap = p.has_ff != 0u ? theta / ff[i] : theta;
  const float theta_interp = p.freq_scale * theta_extrap;
  float t = theta_interp, mscale = p.attn_factor;
  if (p.ext_factor != 0.0) {
    const float ramp = 1.0 - clamp((float(i) - p.corr0) / max(0.001, p.corr1 - p.corr0), 0.0, 1.0);
    const float mix = ramp * p.ext_factor;
    t = theta_interp * (1.0 - mix) + theta_extrap * mix;
    mscale *= 1.0 + 0.1 * log(1.0 / p.freq_scale);
  }
  const float c = cos(t) * mscale, s = sin(t) * mscale;
  const float self = load(is_q, base, d), other = load(is_q, base, partner);
  // the pair (a, b) becomes (a·c - b·s, a·s + b·c)
  return first ? self * c - other * s : other * s + self * c;
}

void main() {
  const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  const uint pairs = p.head_dim / 2u, row = g / pairs, j = g % pairs;
  const uint rows_q = p.n_head_q * p.n_tokens;
  const bool is_q = row < rows_q;
  const uint r = is_q ? row : row - rows_q;
  if (!is_q && r >= p.n_head_k * p.n_tokens) return;
  const uint t = r / (is_q ? p.n_head_q : p.n_head_k), base = r * p.head_dim;
#if STORE
  const int ps = int(p.pos0 + t);
#else
  const int ps = pos[t];
#endif
#if NORM
  // The workgroup is the row: invocation j holds its elements 2j and 2j+1.
  const vec2 own = is_q ? vec2(xq[base + 2u * j], xq[base + 2u * j + 1u])
                        : vec2(xk[base + 2u * j], xk[base + 2u * j + 1u]);
  const float s = subgroupAdd(dot(own, own));
  if (subgroupElect()) partial[gl_SubgroupID] = s;
  barrier();
  float sum = 0.0;
  for (uint i = 0u; i < gl_NumSubgroups; ++i) sum += partial[i];
  row_scale = 1.0 / sqrt(sum / float(p.head_dim) + p.eps);
#endif
  const vec2 y = vec2(rotated(is_q, base, 2u * j, ps), rotated(is_q, base, 2u * j + 1u, ps));
  if (is_q) {
    yq[base / 2u + j] = y;
    return;
  }
  yk[base / 2u + j] = y;
#if STORE
  if (t + p.n_cells < p.n_tokens) return;
  // row r = t·n_head_k + h of k and v lands at cell·width + h·head_dim of its cache
  const uint width = p.n_head_k * p.head_dim;
  const uint at = (((p.pos0 + t) % p.n_cells) * width + base - t * width) / 2u + j;
  const vec2 vv = v[base / 2u + j];
#if F16
  kc[at] = packHalf2x16(y);
  vc[at] = packHalf2x16(vv);
#else
  kc[at] = y;
  vc[at] = vv;
#endif
#endif
}
