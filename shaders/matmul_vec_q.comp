#version 460
// Matrix-vector product y = W x for one or a few tokens (decode) with integer dot products:
// each invocation quantizes its 32-value blocks of x to int8 (scale amax / 127, as ggml's
// block_q8_1) and multiplies them with the weight's integers four at a time (quant_dot.glsl);
// with EXPERT, the matrix of each (token, slot) is chosen by ids (MoE).
// Fast because decoding a weight is a mask or a shift per four values instead of an
// int-to-float conversion and a multiply per value, and scales apply once per 16-32 values:
// the float kernels are bound by that decode, not by the loads. The x quantization is done
// once per unit for all ROWS rows; with X_PRE it was done once per matmul by quantize_x.comp and
// each unit loads its blocks (five uvec4 per 32 values) instead of 128 bytes of float x, which
// every workgroup re-read and re-rounded before. Rounding x to 8 bits alone (llama.cpp's q8_1) moves results
// by ~1e-3 of |row| |x|; with X_RESIDUAL the rounding's remainder is rounded to int8 too and
// dotted with the same weight words (one more dot4 per word), ~1e-5.
// FORM says how a unit's rows are loaded: 0 under a branch per row, 1 unconditionally (rows
// past the slice clamped), 2 every row's words (quant_dot.glsl's load_unit) before the first
// product. Most invocations run one unit, so what a unit keeps in flight sets the speed: on an
// H200 FORM 1 or 2 ran Q4_K-Q6_K 10-25% faster than 0 (vec_config says which per type).
// LANES invocations share a group of ROWS rows; a workgroup holds workgroup / LANES groups.
// A row of k = 1024-2880 has 16-90 units: LANES near that keeps every invocation busy where a
// group as wide as the workgroup left half or more idle, and with RED 2 (LANES at most a
// subgroup) a group's sums need no shared memory and no barrier.
// RED says how a group's partial sums meet: 0 through shared memory (no subgroup
// arithmetic), 1 subgroupAdd per subgroup then shared memory (LANES a multiple of the
// subgroup size), 2 subgroupAdd (LANES = subgroup size) or subgroupClusteredAdd (LANES less).
// SCATTER (the lanes of a cluster: the group, or a subgroup where the group spans several; 0:
// off) replaces the subgroupAdd per row by a reduce-scatter of shuffles: 4 rows over 32 lanes
// in 6 shuffles instead of 20.
#extension GL_GOOGLE_include_directive : require
#if RED >= 1
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#if RED == 2
#extension GL_KHR_shader_subgroup_clustered : require
#endif
#if SCATTER
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#endif
#if INT_DOT
#extension GL_EXT_spirv_intrinsics : require
#endif
#if SHADER_INT64
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#endif
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer W { uint w[]; };
#if W_ALIGNED16
// The same bytes as uvec4 where every block's parts start 16-byte aligned (Q4_K, Q5_K rows):
// one 16-byte load instead of five words and funnel shifts.
layout(binding = 0) readonly buffer W4 { uvec4 w4[]; };
#endif
#if X_PRE
layout(binding = 1) readonly buffer XB { uvec4 xb4[]; };  // quantize_x.comp's blocks
#else
layout(binding = 1) readonly buffer X4 { vec4 x4[]; };  // rows of x start 32-value aligned
#endif
layout(binding = 2) writeonly buffer Y { float y[]; };
#if EXPERT
layout(binding = 3) readonly buffer Ids { int ids[]; };  // [n_tokens][n_used]
#endif

layout(push_constant) uniform Push {
  uint k;              // values per row
  uint row_bytes;      // bytes per row
  uint w_base;         // byte offset in binding 0 of global row row_begin
  uint row_begin;      // global rows [row_begin, row_end) are in this slice
  uint row_end;        //   (global row = expert * m + row)
  uint m;              // rows per matrix
  uint x_stride;       // floats between tokens in x
  uint x_slot_stride;  // floats between a token's slots in x (EXPERT; 0: one x per token)
  uint n_used;         // slots per token (EXPERT)
  uint n_expert;       // matrices in W (EXPERT)
  uint n_rows_grid;    // rows the grid covers (slice rows, or m for EXPERT)
} p;

#include "quant.glsl"
#include "matmul_epilogue.glsl"

// x blocks of the current unit (see quant_dot.glsl); NXB = QU / 32 is known after the include.
uint xq[16];
float xd[2];
uint xr[16];
float xe[2];
float xs[4];
#include "quant_dot.glsl"
#define NXB (QU / 32u)

#if RED == 1
shared float red[ROWS * 64];  // one partial per subgroup (subgroups of at least 4)
#elif RED == 0
shared float red[ROWS * 256];
#endif

#if X_PRE
// The block of x[xi..xi+32) as quantize_x.comp wrote it, to xq/xd/xs (xr/xe) block b.
void quantize_x(uint xi, uint b) {
  const uint n = xi / 32u, o = (n / 32u) * 160u + 2u * (n % 32u);  // tiles of 32 blocks
  const uvec4 q0 = xb4[o], q1 = xb4[o + 1u], t = xb4[o + 128u - (n % 32u)];
  for (uint c = 0u; c < 4u; ++c) {
    xq[8u * b + c] = q0[c];
    xq[8u * b + 4u + c] = q1[c];
  }
  xd[b] = uintBitsToFloat(t.x);
  xs[2u * b] = uintBitsToFloat(t.z);
  xs[2u * b + 1u] = uintBitsToFloat(t.w);
#if X_RESIDUAL
  const uvec4 r0 = xb4[o + 64u], r1 = xb4[o + 65u];
  for (uint c = 0u; c < 4u; ++c) {
    xr[8u * b + c] = r0[c];
    xr[8u * b + 4u + c] = r1[c];
  }
  xe[b] = uintBitsToFloat(t.y);
#else
  xe[b] = 0.0;
#endif
}
#else
// x[xi..xi+32) to xq/xd/xs block b: q = round(x / amax * 127) by packSnorm4x8.
void quantize_x(uint xi, uint b) {
  vec4 v[8];
  float amax = 0.0;
  for (uint c = 0u; c < 8u; ++c) {
    v[c] = x4[xi / 4u + c];
    const vec4 a = abs(v[c]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  xs[2u * b] = dot(v[0] + v[1] + v[2] + v[3], vec4(1.0));
  xs[2u * b + 1u] = dot(v[4] + v[5] + v[6] + v[7], vec4(1.0));
  xd[b] = amax / 127.0;
  const float inv = amax > 0.0 ? 1.0 / amax : 0.0;
  for (uint c = 0u; c < 8u; ++c) xq[8u * b + c] = packSnorm4x8(v[c] * inv);
#if X_RESIDUAL
  // What the int8 rounding left, rounded to int8 again: x ~= xd q + xe r to ~1e-5 relative.
  float rmax = 0.0;
  for (uint c = 0u; c < 8u; ++c) {
    v[c] -= unpackSnorm4x8(xq[8u * b + c]) * amax;
    const vec4 a = abs(v[c]);
    rmax = max(rmax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  xe[b] = rmax / 127.0;
  const float rinv = rmax > 0.0 ? 1.0 / rmax : 0.0;
  for (uint c = 0u; c < 8u; ++c) xr[8u * b + c] = packSnorm4x8(v[c] * rinv);
#else
  xe[b] = 0.0;
#endif
}
#endif

void main() {
#if defined(TYPE_MXFP4) || defined(TYPE_IQ4_NL) || defined(TYPE_IQ4_XS)
  fill_lut();
#endif
#if RED >= 1
  // Groups as subgroups see them: a cluster, or whole subgroups, is one group.
  const uint tid = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
#else
  const uint tid = gl_LocalInvocationID.x;
#endif
  const uint grp = tid / LANES, lane = tid % LANES;
  const uint rows_wg = ROWS * (gl_WorkGroupSize.x / LANES);
  const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint z = gl_WorkGroupID.z;  // token (or token * n_used + slot)
  const uint local = wg * rows_wg + grp * ROWS;  // the group's first row in the grid
#if EXPERT
  const uint token = z / p.n_used, slot = z % p.n_used;
  const int id = ids[z];
  const bool bad_id = id < 0 || uint(id) >= p.n_expert;
  const uint expert = bad_id ? 0u : uint(id);  // its bias row (epilogue)
  const uint first = (bad_id ? 0u : uint(id)) * p.m + local;
  const uint xo = token * p.x_stride + slot * p.x_slot_stride;
  const uint row0 = local;
#else
  const bool bad_id = false;
  const uint expert = 0u;
  const uint first = p.row_begin + local;
  const uint xo = z * p.x_stride;
  const uint row0 = first;
#endif
  float acc[ROWS];
  bool valid[ROWS];
  uint rb[ROWS];
  for (uint i = 0u; i < ROWS; ++i) {
    const uint g = first + i;
    valid[i] = local + i < p.n_rows_grid && g >= p.row_begin && g < p.row_end;
    // A row outside the slice reads the slice's last row (FORM 1, 2 load it unconditionally);
    // its sum is never written.
    rb[i] = p.w_base + (clamp(g, p.row_begin, p.row_end - 1u) - p.row_begin) * p.row_bytes;
    acc[i] = 0.0;
  }
  const uint n_units = p.k / QU;
  for (uint u = lane; u < n_units; u += LANES) {
    const uint blk = u / (QK / QU), j = u % (QK / QU);
#if FORM == 2
    // Every row's weight words first, then x: all of the invocation's loads are in flight
    // before the first use (a workgroup's invocations mostly run one unit each).
    WUnit wu[ROWS];
    for (uint i = 0u; i < ROWS; ++i) wu[i] = load_unit(rb[i] + blk * BLOCK_BYTES, j);
#endif
    for (uint b = 0u; b < NXB; ++b) {
      quantize_x(xo + x_offset(u, b), b);
#ifdef GRID_ORDER
      grid_order(b);
#endif
    }
    for (uint i = 0u; i < ROWS; ++i)
#if FORM == 2
      acc[i] += dot_loaded(wu[i], j);
#elif FORM == 1
      // No branch per row: the compiler may issue every row's loads before the first use.
      acc[i] += dot_unit(rb[i] + blk * BLOCK_BYTES, j);
#else
      if (valid[i]) acc[i] += dot_unit(rb[i] + blk * BLOCK_BYTES, j);
#endif
  }

  // Lane i of the group writes row i (with SCATTER the lanes scatter() names).
  float s = 0.0;
  uint row = lane;
  bool writes = lane < ROWS;
#if SCATTER
  // Reduce-scatter over the SCATTER lanes of a cluster (a group, or a subgroup of it): each
  // halving step trades half of the rows a lane holds for its partner's other half (a
  // shuffle per row kept, not a full reduction per row), until each lane holds one row (its
  // lane bits above SCATTER / ROWS); the remaining steps add that row whole.
  const uint sl = gl_SubgroupInvocationID;
  uint r = 0u;
  [[unroll]] for (uint n = ROWS, off = SCATTER / 2u; n > 1u; n >>= 1, off >>= 1) {
    const bool up = (sl & off) != 0u;
    [[unroll]] for (uint i = 0u; i < n / 2u; ++i) {
      const float give = up ? acc[i] : acc[i + n / 2u];
      acc[i] = (up ? acc[i + n / 2u] : acc[i]) + subgroupShuffleXor(give, off);
    }
    if (up) r += n / 2u;
  }
  [[unroll]] for (uint off = SCATTER / ROWS / 2u; off > 0u; off >>= 1)
    acc[0] += subgroupShuffleXor(acc[0], off);
  const bool holder = (sl & (SCATTER / ROWS - 1u)) == 0u;
#endif
#if RED == 2 && SCATTER
  s = acc[0];
  row = r;
  writes = holder;
#elif RED == 2
  for (uint i = 0u; i < ROWS; ++i) {
#if LANES == SUBGROUP_SIZE
    const float t = subgroupAdd(acc[i]);
#else
    const float t = subgroupClusteredAdd(acc[i], uint(LANES));
#endif
    if (lane == i) s = t;
  }
#elif RED == 1
#if SCATTER
  if (holder) red[r * 64u + gl_SubgroupID] = acc[0];
#else
  for (uint i = 0u; i < ROWS; ++i) {
    const float t = subgroupAdd(acc[i]);
    if (subgroupElect()) red[i * 64u + gl_SubgroupID] = t;
  }
#endif
  barrier();
  // The group's subgroups are LANES / gl_SubgroupSize consecutive ones.
  const uint per = LANES / gl_SubgroupSize;
  if (lane < ROWS)
    for (uint g = 0u; g < per; ++g) s += red[lane * 64u + grp * per + g];
#else
  for (uint i = 0u; i < ROWS; ++i) red[i * 256u + tid] = acc[i];
  barrier();
  for (uint h = LANES / 2u; h > 0u; h >>= 1) {
    if (lane < h)
      for (uint i = 0u; i < ROWS; ++i) red[i * 256u + tid] += red[i * 256u + tid + h];
    barrier();
  }
  if (lane < ROWS) s = red[lane * 256u + grp * LANES];
#endif
  if (writes && local + row < p.n_rows_grid && first + row >= p.row_begin &&
      first + row < p.row_end) {
    const uint i = z * p.m + row0 + row;
    y[i] = bad_id ? uintBitsToFloat(0x7FC00000u) : epilogue(s, i, row0 + row, expert);
  }
}
