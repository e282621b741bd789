#version 460
// Grouped-query attention: softmax(scale q.k [softcap] [+ sink]) . v over keys [first, p_q]
// (causal, sliding window n_swa), keys before pos0 from the cache (row p % n_cells, F16 with
// CACHE_F16) and the rest from the batch's k/v. The CPU reference is ml::ops::attention.
// One workgroup per (token·head, split): a split takes `chunk` keys of its token's range
// (flash-decoding: one decode token's head is many workgroups, not one scanning the whole
// context). Keys go in steps of WG, one invocation per key, with an online softmax (running
// max m and sum l, rescaling the accumulator). Why it is fast: HEAD_DIM is a compile-time
// constant, so a key row is read as unrolled 16-byte loads all in flight at once, and the
// value rows in four-key steps; a dependent chain of 4-byte loads was 80 us per layer.
// SPLIT = 0 writes o (the sink folded in). SPLIT = 1 writes (acc, m, l) per split to `part`
// and the last of an item's workgroups to finish (a counter per item) combines them into o:
// one dispatch where a second combine pass cost a barrier drain per layer.
// QUANTIZE (decode, HEAD_DIM a multiple of 32): the workgroup that writes an item's o also
// writes it quantized for the output projection's integer matvec (quantize_block.glsl), so
// no quantize dispatch stands between attention and that matvec.
#extension GL_EXT_control_flow_attributes : enable
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer KN { vec4 k_new[]; };
layout(binding = 2) readonly buffer VN { vec2 v_new[]; };
#if CACHE_F16
layout(binding = 3) readonly buffer KC { uvec4 k_cache[]; };  // 8 halves
layout(binding = 4) readonly buffer VC { uint v_cache[]; };   // 2 halves
#else
layout(binding = 3) readonly buffer KC { vec4 k_cache[]; };
layout(binding = 4) readonly buffer VC { vec2 v_cache[]; };
#endif
layout(binding = 5) readonly buffer S { float sinks[]; };
layout(binding = 6) writeonly buffer O { float o[]; };
#if SPLIT
// A persistent buffer: a counter per item (zero between dispatches: the last workgroup
// resets it), then (acc[D], m, l) per item and split.
layout(binding = 7) coherent buffer Part {
  uint done[MAX_ITEMS];
  float part[];
};
shared bool last_split;
#endif
#if QUANTIZE
layout(binding = QUANTIZE_BINDING) writeonly buffer XQ { uvec4 xq4[]; };
#include "quantize_block.glsl"
shared float o_row[HEAD_DIM];

// The item's o (in o_row) as HEAD_DIM / 32 blocks of the matvec's x, one per invocation.
void store_quantized(uint item) {
  barrier();
  for (uint blk = gl_LocalInvocationID.x; blk < HEAD_DIM / 32u; blk += WG) {
    vec4 v[8];
    [[unroll]] for (uint c = 0u; c < 8u; ++c)
      v[c] = vec4(o_row[blk * 32u + 4u * c], o_row[blk * 32u + 4u * c + 1u],
                  o_row[blk * 32u + 4u * c + 2u], o_row[blk * 32u + 4u * c + 3u]);
    store_x_block(item * (HEAD_DIM / 32u) + blk, v);
  }
}
#endif
layout(push_constant) uniform Push {
  uint head_dim, n_head, n_head_kv, n_tokens, pos0, n_swa, n_cells, has_sinks;
  float scale, softcap;
  uint chunk, n_split;
} p;

const uint D = HEAD_DIM;
const uint kPairs = (D / 2u + WG - 1u) / WG;  // value pairs per invocation
shared vec4 sq[D / 4u];
shared float pw[WG];

// q . k for a key row starting at element kb of the cache or of k_new.
float dot_cached(uint kb) {
  float s = 0.0;
#if CACHE_F16
  [[unroll]] for (uint i = 0u; i < D / 8u; ++i) {
    const uvec4 w = k_cache[kb / 8u + i];
    s += dot(vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)), sq[2u * i]) +
         dot(vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)), sq[2u * i + 1u]);
  }
#else
  [[unroll]] for (uint i = 0u; i < D / 4u; ++i) s += dot(k_cache[kb / 4u + i], sq[i]);
#endif
  return s;
}

float dot_new(uint kb) {
  float s = 0.0;
  [[unroll]] for (uint i = 0u; i < D / 4u; ++i) s += dot(k_new[kb / 4u + i], sq[i]);
  return s;
}

// Value pair j (dims 2j, 2j+1) of a row starting at element vb.
vec2 v_cached(uint vb, uint j) {
#if CACHE_F16
  return unpackHalf2x16(v_cache[vb / 2u + j]);
#else
  return v_cache[vb / 2u + j];
#endif
}

void main() {
  const uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint split = gl_WorkGroupID.z;
  if (item >= p.n_tokens * p.n_head) return;  // uniform over the workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint t = item / p.n_head, h = item % p.n_head, hk = h / (p.n_head / p.n_head_kv);
  const uint kv_width = p.n_head_kv * D;
  const int p_q = int(p.pos0 + t);
  const int first = p.n_swa > 0u ? max(0, p_q - int(p.n_swa) + 1) : 0;
  const int k_begin = first + int(split * p.chunk);
  const int k_end = min(p_q + 1, k_begin + int(p.chunk));  // exclusive
  for (uint d = tid; d < D / 4u; d += WG)
    sq[d] = vec4(q[item * D + 4u * d], q[item * D + 4u * d + 1u], q[item * D + 4u * d + 2u],
                 q[item * D + 4u * d + 3u]);
  barrier();

  const bool sink = SPLIT == 0 && p.has_sinks != 0u;
  float m = sink ? sinks[h] : uintBitsToFloat(0xFF800000u);  // -inf
  float l = sink ? 1.0 : 0.0;
  vec2 acc[kPairs];
  [[unroll]] for (uint r = 0u; r < kPairs; ++r) acc[r] = vec2(0.0);

  for (int c0 = k_begin; c0 < k_end; c0 += int(WG)) {
    const int key = c0 + int(tid);
    float s = uintBitsToFloat(0xFF800000u);
    if (key < k_end) {
      s = key < int(p.pos0) ? dot_cached((uint(key) % p.n_cells) * kv_width + hk * D)
                            : dot_new(uint(key - int(p.pos0)) * kv_width + hk * D);
      s *= p.scale;
      if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
    }
    pw[tid] = s;
    barrier();
    const int n = min(int(WG), k_end - c0);
    float m_new = m;
    for (int j = 0; j < n; ++j) m_new = max(m_new, pw[j]);
    barrier();
    pw[tid] = key < k_end ? exp(s - m_new) : 0.0;
    barrier();
    const float f = exp(m - m_new);  // 0 while m is -inf
    l *= f;
    [[unroll]] for (uint r = 0u; r < kPairs; ++r) acc[r] *= f;
    // Rows of eight keys at a time: their loads are independent and go out together.
    for (int j0 = 0; j0 < n; j0 += 8) {
      vec2 v[8][kPairs];
      float w[8];
      [[unroll]] for (int u = 0; u < 8; ++u) {
        const bool live = j0 + u < n;
        const int kj = c0 + min(j0 + u, n - 1);  // a real row even past the end
        w[u] = live ? pw[j0 + u] : 0.0;
        const bool cached = kj < int(p.pos0);
        const uint vb = cached ? (uint(kj) % p.n_cells) * kv_width + hk * D
                               : uint(kj - int(p.pos0)) * kv_width + hk * D;
        [[unroll]] for (uint r = 0u; r < kPairs; ++r) {
          const uint j = tid + r * WG;
          v[u][r] = !live || j >= D / 2u ? vec2(0.0)
                    : cached             ? v_cached(vb, j)
                                         : v_new[vb / 2u + j];
        }
      }
      [[unroll]] for (int u = 0; u < 8; ++u) {
        l += w[u];
        [[unroll]] for (uint r = 0u; r < kPairs; ++r) acc[r] += w[u] * v[u][r];
      }
    }
    m = m_new;
    barrier();
  }
#if SPLIT
  // (acc[D], m, l) of this split; the last split rescales all to a common max M:
  // o = sum_s e^(m_s - M) acc_s / (sum_s e^(m_s - M) l_s [+ e^(sink - M)]). A split without
  // keys has m = -inf and l = 0 and adds nothing.
  const uint stride = D + 2u, base = item * p.n_split * stride;
  [[unroll]] for (uint r = 0u; r < kPairs; ++r) {
    const uint j = tid + r * WG;
    if (j < D / 2u) {
      part[base + split * stride + 2u * j] = acc[r].x;
      part[base + split * stride + 2u * j + 1u] = acc[r].y;
    }
  }
  if (tid == 0u) {
    part[base + split * stride + D] = m;
    part[base + split * stride + D + 1u] = l;
  }
  // Release this split's part before counting it; the last one to count reads them all.
  memoryBarrierBuffer();
  barrier();
  if (tid == 0u) last_split = atomicAdd(done[item], 1u) == p.n_split - 1u;
  barrier();
  if (!last_split) return;  // uniform over the workgroup
  memoryBarrierBuffer();
  float M = p.has_sinks != 0u ? sinks[h] : uintBitsToFloat(0xFF800000u);
  for (uint s = 0u; s < p.n_split; ++s) M = max(M, part[base + s * stride + D]);
  float L = p.has_sinks != 0u ? exp(sinks[h] - M) : 0.0;
  for (uint s = 0u; s < p.n_split; ++s)
    L += exp(part[base + s * stride + D] - M) * part[base + s * stride + D + 1u];
  for (uint d = tid; d < D; d += WG) {
    float sum = 0.0;
    for (uint s = 0u; s < p.n_split; ++s)
      sum += exp(part[base + s * stride + D] - M) * part[base + s * stride + d];
    o[item * D + d] = sum / L;
#if QUANTIZE
    o_row[d] = sum / L;
#endif
  }
  if (tid == 0u) done[item] = 0u;
#else
  [[unroll]] for (uint r = 0u; r < kPairs; ++r) {
    const uint j = tid + r * WG;
    if (j < D / 2u) {
      o[item * D + 2u * j] = acc[r].x / l;
      o[item * D + 2u * j + 1u] = acc[r].y / l;
#if QUANTIZE
      o_row[2u * j] = acc[r].x / l;
      o_row[2u * j + 1u] = acc[r].y / l;
#endif
    }
  }
#endif
#if QUANTIZE
  store_quantized(item);
#endif
}
