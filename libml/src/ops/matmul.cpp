// matmul: y = W x with the weight in its GGUF type. The CPU reference first (ml::quant's
// float64 dot products), then the Vulkan dispatch: matvec (decode), tiled (prefill), expert
// (MoE) and the elementwise dequantize, all sliced when W exceeds maxStorageBufferRange.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>

#include "ml/ops.h"
#include "ml/quant.h"

namespace ml::ops {

using gguf::Type;

// ---------------------------------------------------------------------------------------
// CPU reference
// ---------------------------------------------------------------------------------------

void matmul(Type type, std::span<const std::byte> w, uint64_t m, uint64_t k,
            std::span<const float> x, uint64_t n_tokens, std::span<float> y) {
  const uint64_t rb = gguf::row_bytes(type, k);
  if (w.size() != m * rb) fail("matmul: weight holds ", w.size(), " bytes, ", m, " rows of ", rb);
  if (x.size() != n_tokens * k || y.size() != n_tokens * m)
    fail("matmul: x holds ", x.size(), " and y ", y.size(), " floats for ", n_tokens,
         " tokens of k = ", k, ", m = ", m);
  for (uint64_t t = 0; t < n_tokens; ++t)
    quant::matvec(type, w, m, k, x.subspan(t * k, k), y.subspan(t * m, m));
}

void matmul_id(Type type, std::span<const std::byte> w, uint64_t n_expert, uint64_t m, uint64_t k,
               std::span<const float> x, bool x_per_slot, std::span<const int32_t> ids,
               uint64_t n_used, uint64_t n_tokens, std::span<float> y) {
  const uint64_t matrix = m * gguf::row_bytes(type, k);
  const uint64_t x_per_token = x_per_slot ? n_used * k : k;
  if (w.size() != n_expert * matrix || ids.size() != n_tokens * n_used ||
      x.size() != n_tokens * x_per_token || y.size() != n_tokens * n_used * m)
    fail("matmul_id: sizes do not match n_expert = ", n_expert, ", m = ", m, ", k = ", k,
         ", n_used = ", n_used, ", n_tokens = ", n_tokens);
  for (uint64_t t = 0; t < n_tokens; ++t)
    for (uint64_t s = 0; s < n_used; ++s) {
      const int32_t e = ids[t * n_used + s];
      if (e < 0 || uint64_t(e) >= n_expert)
        fail("matmul_id: token ", t, " slot ", s, " selects expert ", e, " of ", n_expert);
      quant::matvec(type, w.subspan(uint64_t(e) * matrix, matrix), m, k,
                    x.subspan(t * x_per_token + (x_per_slot ? s * k : 0), k),
                    y.subspan((t * n_used + s) * m, m));
    }
}

// ---------------------------------------------------------------------------------------
// Vulkan
// ---------------------------------------------------------------------------------------

namespace {

// The one table of kernel variants: the weight type's define and its block as the shaders
// see it (the float types decode 8 values at a time).
struct Variant {
  Type type;
  const char* define;
  uint32_t element_bytes;  // float types: bytes per value; 0 for block types
};
constexpr Variant kVariants[] = {
    {Type::F32, "TYPE_F32", 4},       {Type::F16, "TYPE_F16", 2},
    {Type::BF16, "TYPE_BF16", 2},     {Type::Q4_0, "TYPE_Q4_0", 0},
    {Type::Q4_1, "TYPE_Q4_1", 0},     {Type::Q5_0, "TYPE_Q5_0", 0},
    {Type::Q5_1, "TYPE_Q5_1", 0},     {Type::Q8_0, "TYPE_Q8_0", 0},
    {Type::Q2_K, "TYPE_Q2_K", 0},     {Type::Q3_K, "TYPE_Q3_K", 0},
    {Type::Q4_K, "TYPE_Q4_K", 0},     {Type::Q5_K, "TYPE_Q5_K", 0},
    {Type::Q6_K, "TYPE_Q6_K", 0},     {Type::MXFP4, "TYPE_MXFP4", 0},
    {Type::IQ4_NL, "TYPE_IQ4_NL", 0}, {Type::IQ4_XS, "TYPE_IQ4_XS", 0},
};

// Tile sizes of matmul_tiled.comp; RN follows from the workgroup size.
constexpr uint32_t kTM = 64, kTN = 32, kTK = 32, kTX = 16;

const Variant& variant(Type type) {
  for (const auto& v : kVariants)
    if (v.type == type) return v;
  fail("no GPU kernel for weight type ", gguf::type_name(type));
}

vk::Defines type_defines(Type type) {
  const Variant& v = variant(type);
  const auto& t = gguf::traits(type);
  const uint32_t qk = v.element_bytes ? 8 : t.block_size;
  const uint32_t bytes = v.element_bytes ? 8 * v.element_bytes : t.type_size;
  return {{v.define, "1"}, {"QK", qk}, {"BLOCK_BYTES", bytes}};
}

uint32_t u32(uint64_t v, const char* what) {
  if (v > UINT32_MAX) fail("matmul: ", what, " = ", v, " does not fit the kernels' 32-bit indices");
  return uint32_t(v);
}

// A range of rows bound as one descriptor: the binding starts at an offset the device
// accepts (minStorageBufferOffsetAlignment, and 16 for the staged kernel's uvec4 loads) and
// the kernel adds `base` bytes to reach the
// slice's first row; rows are split at row (hence block) boundaries.
struct Slice {
  uint64_t row_begin, row_end;
  uint64_t bind_offset, bind_size;
  uint32_t base;
};

std::vector<Slice> slices(const vk::Device& device, const GpuWeight& w, uint64_t rows) {
  const auto& l = device.limits();
  const uint64_t rb = gguf::row_bytes(w.type, w.k);
  const uint64_t align = std::max<uint64_t>(l.min_storage_buffer_offset_alignment, 16);
  const uint64_t end = w.offset + rows * rb;
  if (w.offset > w.buffer->size() || w.buffer->size() < (end + 3) / 4 * 4)
    fail("weight in buffer ", w.buffer->name(), ": ", rows, " rows of ", rb, " bytes from offset ",
         w.offset, " need ", (end + 3) / 4 * 4, " bytes (padded to 4), the buffer has ",
         w.buffer->size());
  // Worst case a slice starts align - 1 bytes into its binding and ends 3 bytes of padding on.
  const uint64_t usable =
      l.max_storage_buffer_range > align + 3 ? l.max_storage_buffer_range - align - 3 : 0;
  const uint64_t per_slice = usable / rb;
  if (per_slice == 0)
    fail("a row of ", w.k, " ", gguf::type_name(w.type), " values (", rb,
         " bytes) does not fit maxStorageBufferRange = ", l.max_storage_buffer_range);
  std::vector<Slice> out;
  for (uint64_t r = 0; r < rows; r += per_slice) {
    const uint64_t r1 = std::min(rows, r + per_slice);
    const uint64_t first = w.offset + r * rb;
    const uint64_t bind = first / align * align;
    const uint64_t size = std::min((w.offset + r1 * rb + 3) / 4 * 4, w.buffer->size()) - bind;
    out.push_back({r, r1, bind, size, uint32_t(first - bind)});
  }
  return out;
}

// Workgroup size for rows of k values: enough 8-value groups to keep every invocation busy.
uint32_t matvec_workgroup(const vk::Device& device, uint64_t k) {
  const uint64_t groups = k / 8;
  return device.workgroup_size(groups >= 512 ? 256 : groups >= 192 ? 128 : 64);
}

bool use_subgroups(const vk::Device& device, uint32_t wg) {
  const auto& l = device.limits();
  return l.subgroup_arithmetic && l.subgroup_size >= 4 && wg / l.subgroup_size <= 64;
}

struct VecPush {
  uint32_t k, row_bytes, w_base, row_begin, row_end, m, x_stride, x_slot_stride, n_used, n_expert,
      n_rows_grid;
};

void check_buffer(const vk::Buffer& b, uint64_t floats, const char* what) {
  if (b.size() < floats * 4)
    fail("matmul: ", what, " buffer ", b.name(), " has ", b.size(), " bytes, needs ", floats * 4);
}

// The epilogue's defines and bindings, after the kernel's first n_bound bindings; bias holds
// `bias_floats`, add has y's `y_floats`.
void add_epilogue(const MatmulEpilogue& e, uint32_t n_bound, uint64_t bias_floats,
                  uint64_t y_floats, vk::Defines& defines, std::vector<vk::Binding>& b) {
  defines.push_back({"BIAS", e.bias ? "1" : "0"});
  defines.push_back({"ADD", e.add ? "1" : "0"});
  if (e.bias) {
    check_buffer(*e.bias, bias_floats, "bias");
    defines.push_back({"BIAS_BINDING", cat(n_bound++)});
    b.push_back({e.bias, 0, bias_floats * 4, false});
  }
  if (e.add) {
    check_buffer(*e.add, y_floats, "add");
    defines.push_back({"ADD_BINDING", cat(n_bound)});
    b.push_back({e.add, 0, y_floats * 4, false});
  }
}

// How a type's matvec runs: matmul_vec.comp decodes straight from global memory;
// matmul_vec_staged.comp first copies each row's next CB blocks to shared memory with
// coalesced 16-byte loads (see the shader); matmul_vec_q.comp quantizes x to int8 blocks and
// takes integer dot products (packed int8x4 where the device has shaderIntegerDotProduct,
// q8_plain forces the plain-integer fallback, 32-bit shifts too); both also round x's remainder to
// int8 (X_RESIDUAL: ~1e-5 relative, gate C's 1e-4 holds), q8_single does not (llama.cpp's q8_1); xq
// and xq_single read x quantized once per matmul by quantize_x.comp (X_PRE) instead of in every
// workgroup, where the caller passes the buffer (quantized_x_bytes), else q8. The float configs
// were chosen per type from H100 runs of every config (bench/README.md,
// bench/results/h100-2026-11-23-s2-matmul.jsonl).
enum class VecKernel : uint32_t { direct, staged, q8, q8_plain, q8_single, xq, xq_single };
bool pre_quantized(VecKernel k) {
  return k == VecKernel::xq || k == VecKernel::xq_single;
}
struct VecConfig {
  VecKernel kernel;
  uint32_t workgroup;  // staged and q8: invocations (0: sized by k); direct: sized by k
  uint32_t rows;       // rows per workgroup
  uint32_t groups;     // staged: 8-value groups per invocation and row per step
  uint32_t form = 0;   // integer kernels: how a unit's rows are loaded (matmul_vec_q.comp's
                       // FORM: 0 under a branch per row, 1 unconditionally, 2 all rows' words
                       // before the first use)
  uint32_t lanes = 0;  // integer kernels: invocations per group of rows (0: sized by k)
  // integer kernels: the sums through shared memory only (the fallback, for tests)
  bool no_subgroup = false;
  // integer kernels: subgroup sums without the shuffle reduce-scatter (the fallback where the
  // device has no shuffles, for tests)
  bool no_scatter = false;
};

// Types with a matmul_vec_q.comp decode (quant_dot.glsl), and the values of one unit there.
uint32_t q8_unit(Type type) {
  switch (type) {
    case Type::Q4_0:
    case Type::Q4_1:
    case Type::Q5_0:
    case Type::Q5_1:
    case Type::Q8_0:
    case Type::MXFP4:
    case Type::IQ4_NL:
    case Type::IQ4_XS:
      return 32;
    case Type::Q2_K:
    case Type::Q3_K:
    case Type::Q4_K:
    case Type::Q5_K:
    case Type::Q6_K:
      return 64;
    default:
      return 0;
  }
}

// Types whose quant_dot.glsl decode splits into load_unit and dot_loaded (FORM 2).
bool has_load_unit(Type type) {
  return type == Type::Q8_0 || type == Type::Q4_K || type == Type::Q5_K || type == Type::Q6_K;
}

// q8: whether the integer kernel may be used (automatic); vec keeps the float-x kernels,
// whose error is f32 rounding only (gate D's 1e-4).
VecConfig vec_config(Type type, uint64_t rows, uint64_t k, bool q8) {
  VecConfig c{VecKernel::direct, 0, 2, 0};
  switch (type) {
    case Type::F32:
    case Type::F16:
    case Type::BF16:
      // LM heads (65536+ rows): 4 rows per workgroup. On the H100 (session 2) the direct
      // kernel ran them at 20-25% of the copy bandwidth and the staged one at 80%; that was a
      // new buffer's slow first second (bench/README.md, session 6). Measured after a 1.5 s
      // warm-up on the H200 (h200-2026-12-03-s7-c4-float-lmhead.jsonl), 201088x2880 and
      // 128256x2048: F16 4147/4009 GB/s, BF16 4134/4064, F32 3639/3542 against the staged
      // kernel's 2519/2372, 2520/2377, 2492/1674 (2 rows: 4071/3913, 4079/3934, 3439/3355).
      if (rows >= 65536) c.rows = 4;
      break;
    case Type::Q8_0:
    case Type::Q4_0:
    case Type::Q4_1:
    case Type::Q5_0:
    case Type::MXFP4:
    case Type::IQ4_NL:
      c.rows = 4;  // Q8_0 on 201088x2880: 365 -> 2085 GB/s; within 10% elsewhere
      break;
    case Type::Q5_1:
    case Type::Q3_K:
    case Type::Q4_K:
    case Type::Q5_K:
    case Type::Q6_K:
      c = {VecKernel::staged, 128, 1, 2};  // Q5_K +15%, Q4_K/Q6_K +3-5%; Q5_1 203 -> 731
      break;
    default:
      break;
  }
  const bool has_q8 = q8_unit(type) != 0;
  // The float kernels are bound by their per-value decode. On the H100 (bench/results/
  // h100-2026-11-23-s2-xq.jsonl) the integer kernel on x quantized once per matmul, 4 rows
  // per workgroup, ran 1.5-2.5x them on every type with one (Q8_0 201088x2880: 381 -> 2784
  // GB/s, 92% of the copy kernel; Q4_K 14336x4096: 514 -> 1099), except Q8_0 below 8192
  // rows, where the direct kernel stays ahead by up to 30%. 8 rows per workgroup lost to 4
  // once x was quantized outside the kernel (it won while every workgroup quantized x).
  // Session 3 (h100-2026-11-23-s3-kq3-*.jsonl, x blocks in tiles of 32): 2 rows per
  // workgroup ran Q6_K 14336x4096 at 1419-1505 GB/s against 1209 with 4, and Q8_0 on the
  // integer kernel at 1928 against the direct kernel's 1794 from 8192 rows on (below, the
  // direct kernel stays ahead: 2880x2880 898 against 713), and 2795 against 703 on
  // 201088x2880 (4 rows there: 766).
  // Session 4 (H200, h200-2026-12-03-s4-kq2-*.jsonl, old and new defaults in one call;
  // matvec dispatch alone, copy kernel 4305 GB/s): loading every row unconditionally (FORM 1)
  // or all rows' words first (FORM 2) instead of under a branch per row ran Q4_K 14336x4096 at
  // 2087 GB/s against 1807 (FORM 1, 4 rows), 4096x4096 1219 against 1062; Q6_K 4096x14336
  // 1968 against 1777, 4096x4096 1395 against 1183 (FORM 2, 2 rows); Q5_K 14336x4096 2043
  // against 1679 (FORM 2, 4 rows); Q8_0 14336x4096 2820 against 2743 and 201088x2880 1112
  // against 652 (FORM 1; 3714 against 757 in the call before: that shape varies between
  // calls). llama3-8b tg32 profile: Q4_K 2.78 -> 2.42 ms per token, Q6_K 0.83 -> 0.76.
  // Session 5 (H200, h200-2026-12-03-s5-mv-*.jsonl): groups of rows sized by k
  // (integer_groups) where a row has fewer units than the workgroup has invocations ran Q6_K
  // 128256x2048 (llama3.2-1b's LM head) in 87.0 us against 136.9 (matvec dispatch alone);
  // tg64 profile, us per token: llama3.2-1b Q4_K 829 -> 752, Q6_K 299 -> 251; qwen3-0.6b
  // Q4_K 1142 -> 1132, Q6_K 367 -> 258 (its tied 151936x1024 LM head). Then, in the same
  // call's bench_matmul (matvec dispatch alone, us), at k < 4096 Q4_K FORM 2 ran llama3.2-1b's
  // q/k/o/gate 5.97/5.58/5.97/7.66 -> 5.49/5.06/5.49/7.14 and qwen3-0.6b's q/k/o/up/down
  // 5.55/5.47/5.62/5.83/5.60 -> 4.97/4.86/5.08/5.23/5.37 (FORM 1 kept at k = 4096: 8B ffn_up
  // 15.68 against 15.99). Q8_0 in groups of 32 invocations (rows of 90 and 128 units in 3
  // and 4 passes instead of 64 or 128 invocations in 1-2): gpt-oss q 4096x2880 15.92 -> 7.66,
  // k 512x2880 8.79 -> 6.03, o 2880x4096 9.54 -> 7.87, 8B ffn_up 14336x4096 22.36 -> 21.69;
  // gpt-oss LM head 201088x2880 535 with 2 rows, 830 with 2 rows in groups of 32, 156 with 4 rows
  // in groups of 32 (3942 GB/s; 2 rows in groups of 16: 174). In a decode, with the session's
  // other changes (h200-2026-12-03-s5-final-prof.jsonl): gpt-oss-20b's Q8_0 matvecs together
  // 939 us per token against 920 before: the gains of the dispatch alone did not show there.
  // Session 6 (h200-2026-12-03-s6-*.jsonl): Q4_K at k >= 8192 in two groups of 64 per
  // workgroup with FORM 2 ran 8B ffn_down 4096x14336 at 2488-2490 GB/s against 2132-2134
  // (llama3.2-1b's 2048x8192 1250-1256 against 1245-1248); llama3-8b tg128 299.1/299.0 ->
  // 303.0/302.7 tok/s. Tried and not taken (same calls): every row of a workgroup staged
  // in shared memory by coalesced 16-byte loads before the products (0.2-1x on every type and
  // shape: the unaligned word loads are not what bounds Q8_0/MXFP4/Q6_K), rows in steps
  // with the next step's words loaded first (0.3-1x except on the LM head), MXFP4's grid in
  // arithmetic instead of the shared table (0.9-1.1x). Register counts (ML_PIPELINE_STATS):
  // Q4_K FORM 2 4 rows 125, 72 under FORM 0; MXFP4 40-48; Q8_0 56. The integer kernels for
  // Q2_K, Q3_K and IQ4_XS (h200-2026-12-03-s6-newtypes-matmul.jsonl) ran 8B ffn_up at 1119,
  // 1193 and 1199 GB/s against their float kernels' 383-389, 328-342 and 377-384.
  // Session 7 (h200-2026-12-03-s7-*.jsonl): fewer instructions per value (funnel shifts as
  // 64-bit shifts, Q4_K/Q5_K scales two at a time, Q4_K's high nibbles in place, the rows'
  // sums by reduce-scatter, MXFP4/IQ4 x in the table's order) changed which configurations
  // win only within 2% (8B shapes, 10 configurations per type), except Q6_K at k >= 4096: 4
  // rows in groups of 64 ran 8B ffn_up/ffn_down at 2250/2192 GB/s against 2102/2035 but
  // decode slower (llama3-8b tg128 340 -> 336 tok/s, llama3.2-1b 977 -> 950): not taken.
  uint32_t xq_rows = 4, form = 0, lanes = 0, workgroup = 0;
  switch (type) {
    case Type::Q4_K:
      form = k < 4096 ? 2 : 1;
      // Rows of 128+ units (ffn_down) in two groups of 64 per workgroup, each invocation on
      // 2-4 units of every row.
      if (k >= 8192) workgroup = 128, lanes = 64, form = 2;
      break;
    case Type::Q5_K:
      form = 2;
      break;
    case Type::Q2_K:
    case Type::Q3_K:
      // 8B ffn_up, GB/s: Q2_K 1079 -> 1119, Q3_K 1011 -> 1193 against 4 rows under FORM 0.
      xq_rows = 2, form = 1;
      break;
    case Type::Q6_K:
      xq_rows = 2, form = 2;
      break;
    case Type::Q8_0:
      xq_rows = 2, form = 1;
      // Rows of 64-128 units, as measured (gemma3's k = 1152 is not).
      if (k >= 2048 && k <= 4096) lanes = 32, xq_rows = rows >= 65536 ? 4 : 2;
      break;
    default:
      break;
  }
  // Q8_0 below 8192 rows stayed on the direct kernel while its x cost a quantize_x dispatch
  // of its own: on gpt-oss-20b (H200, h200-2026-12-03-s4-mx-call1-generate.jsonl) the integer
  // kernel ran q/k/v/o in ~781 us per token against 1105, but o's input then took 154 us of
  // quantize_x. Attention now writes that input quantized alongside, as rmsnorm does q/k/v's.
  if (q8 && has_q8) c = {VecKernel::xq, workgroup, xq_rows, 0, form, lanes};
  // Tuning override for bench_matmul --matvec-config:
  // "kernel,workgroup,rows,groups[,form[,lanes]]" with kernel 0 direct, 1 staged, 2 q8, 3 q8
  // with plain integer products, 4 q8 without x's residual, 5 q8 on x quantized once per
  // matmul, 6 as 5 without the residual; rows 0 keeps the type's integer-kernel rows; form
  // (0-2, default 0) is the integer kernels' FORM (1 where the type has no load_unit); lanes
  // (a power of two, 0: sized by k) the invocations per group of rows; shared 1 sums them
  // through shared memory without subgroup operations, 2 by subgroupAdd per row without the
  // reduce-scatter (the fallbacks, for tests). A q8 kernel applies only where it may (q8 and a
  // type that has one); the type's default runs otherwise.
  if (const char* e = std::getenv("ML_MATVEC")) {
    unsigned a = 0, b = 0, r = 0, g = 0, f = 0, l = 0, sh = 0;
    const int n = std::sscanf(e, "%u,%u,%u,%u,%u,%u,%u", &a, &b, &r, &g, &f, &l, &sh);
    if (n < 4 || a > 6 || r > 64 || (r == 0 && a < 2) || (a == 1 && (g == 0 || g > 16)) || f > 2 ||
        l > 256 || (l & (l - 1)) || sh > 2)
      fail("ML_MATVEC = \"", e,
           "\": expected kernel(0-6),workgroup,rows(1-64; 0: the type's),groups(1-16)"
           "[,form(0-2)[,lanes(power of two; 0: by k)[,shared(0-2)]]]");
    if (a < 2 || (q8 && has_q8)) c = {VecKernel(a), b, r ? r : xq_rows, g, f, l, sh == 1, sh == 2};
  }
  if (c.form == 2 && !has_load_unit(type)) c.form = 1;
  return c;
}

// matmul_vec_q.comp's groups of rows: LANES invocations per group and how their sums meet
// (RED). Lanes sized by k cover a row's units in one pass (a power of two, at most the
// workgroup, at least the rows, since lane i writes row i).
struct IntegerGroups {
  uint32_t lanes, red;
  uint32_t scatter;  // lanes of matmul_vec_q.comp's reduce-scatter (SCATTER; 0: none)
};
IntegerGroups integer_groups(const vk::Device& device, uint32_t wg, const VecConfig& c,
                             uint64_t units) {
  uint32_t lanes = c.lanes;
  if (lanes == 0)
    for (lanes = 1; lanes < units && lanes < wg;) lanes *= 2;
  lanes = std::clamp(lanes, std::min(std::bit_ceil(c.rows), wg), wg);
  if (c.rows > lanes)
    fail("matmul: ", c.rows,
         " rows per group need at least as many invocations, the workgroup has ", wg);
  const auto& l = device.limits();
  const uint32_t sg = l.subgroup_size;
  uint32_t red = 0;
  if (!c.no_subgroup && use_subgroups(device, wg) && wg % sg == 0) {
    const bool clustered = vk::has_subgroup_operation(l, "clustered");
    if (lanes > sg)
      red = 1;
    else if (lanes == sg || clustered)
      red = 2;
  }
  // The reduce-scatter leaves one row per lane: rows a power of two, at most the cluster.
  const uint32_t cluster = red == 2 ? lanes : sg;
  const bool scatter = red >= 1 && !c.no_scatter && vk::has_subgroup_operation(l, "shuffle") &&
                       std::has_single_bit(c.rows) && c.rows <= cluster;
  return {lanes, red, scatter ? cluster : 0};
}

// quantize_x.comp's blocks of 32 values (80 bytes each) are stored in tiles of 32 blocks.
uint64_t x_blocks_bytes(uint64_t n_blocks) {
  return (n_blocks + 31) / 32 * 32 * 80;
}

// Records quantize_x.comp: n_x rows of k floats of x to x_q's blocks.
void record_quantize_x(vk::Recorder& rec, const vk::Buffer& x, uint64_t n_x, uint64_t k,
                       bool residual, const vk::Buffer& x_q) {
  vk::Device& device = rec.device();
  const uint64_t n_blocks = n_x * k / 32;
  const uint64_t bytes = x_blocks_bytes(n_blocks);
  if (x_q.size() < bytes)
    fail("matmul: quantized x buffer ", x_q.name(), " has ", x_q.size(), " bytes, needs ", bytes);
  const uint32_t wg = device.workgroup_size(64);
  const vk::Kernel& kernel = device.kernel(
      {"quantize_x.comp", {{"X_RESIDUAL", residual ? "1" : "0"}}, 2, sizeof(uint32_t), wg});
  const uint32_t push = u32(n_blocks, "x blocks");
  rec.dispatch(kernel, {{&x, 0, n_x * k * 4, false}, {&x_q, 0, bytes, true}}, push,
               vk::fold_groups(device, (n_blocks + wg - 1) / wg), "quantize_x");
}

void record_vec(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, const vk::Buffer& y,
                const vk::Buffer* ids, uint64_t n_used, uint64_t n_tokens, bool x_per_slot, bool q8,
                QuantizedX* x_q, const MatmulEpilogue& epilogue) {
  vk::Device& device = rec.device();
  VecConfig c = vec_config(w.type, w.m * w.n_expert, w.k, q8);
  // gpt-oss's MXFP4 expert matmuls (2880x2880, 4 experts: 90 units per row) on the H200
  // (h200-2026-12-03-s4-mx-*.jsonl, bench_generate --profile, 72 per token): 128 invocations,
  // every unit in one pass, 1481 -> 1359 us per token against 64 doing two passes (tg128
  // 245 -> 251 tok/s); at 128, 2 rows 1453, 1 row 1736; 256 invocations 1889; 8 rows at 64
  // 1827. Not the bank conflicts of the 256-entry grid table: a 16-entry one (none, twice
  // the lookups) ran 1670 at 64 and 1440 at 128.
  // Session 5 (h200-2026-12-03-s5-mv-expert.jsonl, tg32 profile): groups of 32 invocations
  // ("128,2,32") 1326 us per token, "128,4,32" 1389, "256,4,64" 1364, this default 1366: kept.
  if (ids && w.type == Type::MXFP4 && c.kernel >= VecKernel::q8 && c.workgroup == 0 &&
      w.k / q8_unit(w.type) > 64 && w.k / q8_unit(w.type) <= 128)
    c.workgroup = 128;
  // Tuning override for the expert matmul alone (bench_generate): ML_MATVEC_ID =
  // "workgroup,rows[,lanes]" for its integer kernel.
  if (const char* e = std::getenv("ML_MATVEC_ID"); e && ids && c.kernel >= VecKernel::q8) {
    unsigned b = 0, r = 0, l = 0;
    if (std::sscanf(e, "%u,%u,%u", &b, &r, &l) < 2 || r == 0 || r > 64 || l > 256 || (l & (l - 1)))
      fail("ML_MATVEC_ID = \"", e, "\": expected workgroup,rows(1-64)[,lanes(power of two)]");
    c.workgroup = b, c.rows = r, c.lanes = l;
  }
  // Without the caller's buffer (or where its blocks exceed one binding) the integer kernel
  // quantizes x itself.
  const uint64_t n_x = ids && x_per_slot ? n_tokens * n_used : n_tokens;
  if (pre_quantized(c.kernel) &&
      (!x_q || !x_q->buffer ||
       x_blocks_bytes(n_x * w.k / 32) > device.limits().max_storage_buffer_range))
    c.kernel = c.kernel == VecKernel::xq ? VecKernel::q8 : VecKernel::q8_single;
  const bool integer = c.kernel >= VecKernel::q8;
  const bool pre = pre_quantized(c.kernel);
  const bool residual = c.kernel != VecKernel::q8_single && c.kernel != VecKernel::xq_single;
  const bool staged = c.kernel == VecKernel::staged && !(variant(w.type).element_bytes && w.k % 8);
  auto defines = type_defines(w.type);
  uint32_t wg = 0, shared = 0, rows_wg = c.rows;
  const char* source = "matmul_vec.comp";
  if (integer) {
    source = "matmul_vec_q.comp";
    const uint64_t units = w.k / q8_unit(w.type);
    wg = device.workgroup_size(c.workgroup    ? c.workgroup
                               : units >= 256 ? 256
                               : units >= 128 ? 128
                                              : 64);
    const IntegerGroups g = integer_groups(device, wg, c, units);
    rows_wg = c.rows * (wg / g.lanes);
    // Plain numbers: the shader compares them in #if.
    defines.push_back({"LANES", cat(g.lanes)});
    defines.push_back({"RED", cat(g.red)});
    defines.push_back({"SCATTER", cat(g.scatter)});
    defines.push_back({"SUBGROUP_SIZE", cat(device.limits().subgroup_size)});
    const bool int_dot = c.kernel != VecKernel::q8_plain && device.limits().integer_dot_product;
    defines.push_back({"INT_DOT", int_dot ? "1" : "0"});
    // Unaligned 16-byte reads as 64-bit shifts (quant_dot.glsl's funnel); q8_plain, the
    // fallback the tests run, uses neither optional feature.
    const bool int64 = c.kernel != VecKernel::q8_plain && device.limits().shader_int64;
    defines.push_back({"SHADER_INT64", int64 ? "1" : "0"});
    defines.push_back({"X_RESIDUAL", residual ? "1" : "0"});
    defines.push_back({"X_PRE", pre ? "1" : "0"});
    // Q4_K/Q5_K blocks (144, 176 bytes) keep 16-byte alignment when rows and W's offset do.
    const bool aligned = (w.type == Type::Q4_K || w.type == Type::Q5_K) &&
                         gguf::row_bytes(w.type, w.k) % 16 == 0 && w.offset % 16 == 0;
    defines.push_back({"W_ALIGNED16", aligned ? "1" : "0"});
    defines.push_back({"FORM", cat(c.form)});
    shared = c.rows * 256 * 4 + 256 * 4;  // reduction, and the MXFP4/IQ4_NL/IQ4_XS byte table
  } else if (staged) {
    source = "matmul_vec_staged.comp";
    wg = device.workgroup_size(c.workgroup);
    const auto& t = gguf::traits(w.type);
    const Variant& v = variant(w.type);
    const uint32_t qk = v.element_bytes ? 8 : uint32_t(t.block_size);
    const uint32_t bb = v.element_bytes ? 8 * v.element_bytes : uint32_t(t.type_size);
    const uint32_t cb = std::max<uint32_t>(1, wg * c.groups * 8 / qk);
    const uint32_t seg_words = (cb * bb + 32 + 15) / 16 * 4;
    defines.push_back({"CB", cb});
    defines.push_back({"SEG_WORDS", seg_words});
    shared = c.rows * seg_words * 4 + c.rows * 256 * 4;
  } else {
    wg = matvec_workgroup(device, w.k);
  }
  defines.push_back({"ROWS", c.rows});
  if (!integer) defines.push_back({"USE_SUBGROUP", use_subgroups(device, wg) ? "1" : "0"});
  defines.push_back({"EXPERT", ids ? "1" : "0"});
  // x as vec4s when every token's (and slot's) x starts 16-byte aligned.
  defines.push_back({"X_VEC4", w.k % 4 == 0 ? "1" : "0"});
  const uint64_t z = ids ? n_tokens * n_used : n_tokens;
  const uint64_t x_floats = ids && x_per_slot ? n_tokens * n_used * w.k : n_tokens * w.k;
  const uint64_t y_floats = z * w.m;
  check_buffer(x, x_floats, "x");
  check_buffer(y, y_floats, "y");
  std::vector<vk::Binding> epilogue_b;
  add_epilogue(epilogue, ids ? 4u : 3u, w.m * w.n_expert, y_floats, defines, epilogue_b);
  const auto n_bindings = uint32_t((ids ? 4u : 3u) + epilogue_b.size());
  const vk::Kernel& kernel =
      device.kernel({source, defines, n_bindings, sizeof(VecPush), wg, shared});
  const QuantizedX::Filled want = residual ? QuantizedX::residual : QuantizedX::plain;
  if (pre && x_q->filled != want) {
    record_quantize_x(rec, x, x_floats / w.k, w.k, residual, *x_q->buffer);
    x_q->filled = want;
  }
  const uint64_t total_rows = w.m * w.n_expert;
  for (const Slice& s : slices(device, w, total_rows)) {
    const uint64_t grid_rows = ids ? w.m : s.row_end - s.row_begin;
    VecPush p{u32(w.k, "k"),
              u32(gguf::row_bytes(w.type, w.k), "row bytes"),
              s.base,
              u32(s.row_begin, "row"),
              u32(s.row_end, "row"),
              u32(w.m, "m"),
              u32(ids && x_per_slot ? n_used * w.k : w.k, "x stride"),
              u32(ids && x_per_slot ? w.k : 0, "x slot stride"),
              u32(n_used, "n_used"),
              u32(w.n_expert, "n_expert"),
              u32(grid_rows, "rows")};
    const auto groups = vk::fold_groups(device, (grid_rows + rows_wg - 1) / rows_wg, z);
    std::vector<vk::Binding> b = {
        {w.buffer, s.bind_offset, s.bind_size, false},
        pre ? vk::Binding{x_q->buffer, 0, x_blocks_bytes(x_floats / 32), false}
            : vk::Binding{&x, 0, x_floats * 4, false},
        {&y, 0, y_floats * 4, true}};
    if (ids) b.push_back({ids, 0, n_tokens * n_used * 4, false});
    b.insert(b.end(), epilogue_b.begin(), epilogue_b.end());
    rec.dispatch(kernel, b, std::as_bytes(std::span(&p, 1)), groups,
                 rec.timing() ? cat(ids ? "matmul_id " : "matmul_vec ",
                                    pre       ? "xq "
                                    : integer ? "q8 "
                                              : "",
                                    gguf::type_name(w.type))
                              : std::string());
  }
}

struct TiledPush {
  uint32_t k, row_bytes, w_base, row_begin, row_end, m, x_stride, n_tokens;
};

void record_tiled(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, const vk::Buffer& y,
                  uint64_t n_tokens, const MatmulEpilogue& epilogue) {
  vk::Device& device = rec.device();
  const uint32_t wg = device.workgroup_size(256);
  auto defines = type_defines(w.type);
  const uint32_t rn = kTN / (wg / kTX);
  for (auto [n, v] :
       {std::pair{"TM", kTM}, {"TN", kTN}, {"TK", kTK}, {"TX", kTX}, {"RM", kTM / kTX}, {"RN", rn}})
    defines.push_back({n, v});
  const uint32_t shared = (kTM + kTN) * (kTK + 1) * 4;
  check_buffer(x, n_tokens * w.k, "x");
  check_buffer(y, n_tokens * w.m, "y");
  // Binding 0, W, is set per slice below.
  std::vector<vk::Binding> b = {{w.buffer, 0, 0, false},
                                {&x, 0, n_tokens * w.k * 4, false},
                                {&y, 0, n_tokens * w.m * 4, true}};
  add_epilogue(epilogue, 3, w.m, n_tokens * w.m, defines, b);
  const vk::Kernel& kernel = device.kernel(
      {"matmul_tiled.comp", defines, uint32_t(b.size()), sizeof(TiledPush), wg, shared});
  for (const Slice& s : slices(device, w, w.m)) {
    TiledPush p{u32(w.k, "k"),
                u32(gguf::row_bytes(w.type, w.k), "row bytes"),
                s.base,
                u32(s.row_begin, "row"),
                u32(s.row_end, "row"),
                u32(w.m, "m"),
                u32(w.k, "x stride"),
                u32(n_tokens, "n_tokens")};
    const auto groups = vk::fold_groups(device, (s.row_end - s.row_begin + kTM - 1) / kTM,
                                        (n_tokens + kTN - 1) / kTN);
    b[0] = {w.buffer, s.bind_offset, s.bind_size, false};
    rec.dispatch(kernel, b, std::as_bytes(std::span(&p, 1)), groups,
                 rec.timing() ? cat("matmul_tiled ", gguf::type_name(w.type)) : std::string());
  }
}

void check_weight(const GpuWeight& w) {
  if (!w.buffer) fail("matmul: weight has no buffer");
  if (!gpu_supports(w.type)) fail("no GPU kernel for weight type ", gguf::type_name(w.type));
  if (w.k == 0 || w.m == 0 || w.n_expert == 0) fail("matmul: empty weight");
  gguf::row_bytes(w.type, w.k);  // throws when k is not a multiple of the block size
}

}  // namespace

bool gpu_supports_q8(Type type) {
  return q8_unit(type) != 0;
}

bool gpu_supports(Type type) {
  return std::any_of(std::begin(kVariants), std::end(kVariants),
                     [&](const Variant& v) { return v.type == type; });
}

std::vector<Type> gpu_types() {
  std::vector<Type> out;
  for (const auto& v : kVariants) out.push_back(v.type);
  return out;
}

std::unique_ptr<vk::Buffer> upload_weight(vk::Device& device, vk::StagingRing& ring,
                                          std::span<const std::byte> bytes, std::string name) {
  auto buffer = std::make_unique<vk::Buffer>(device, (bytes.size() + 15) / 16 * 16,
                                             vk::Memory::device, std::move(name));
  ring.upload(*buffer, 0, buffer->size(), [&](uint64_t off, std::span<std::byte> out) {
    const uint64_t n = off < bytes.size() ? std::min<uint64_t>(out.size(), bytes.size() - off) : 0;
    std::copy_n(bytes.data() + off, n, out.data());
    std::fill(out.begin() + n, out.end(), std::byte{0});
  });
  return buffer;
}

uint64_t quantized_x_bytes(Type type, uint64_t k, uint64_t n_x) {
  if (!gpu_supports_q8(type)) return 0;
  gguf::row_bytes(type, k);  // throws when k is not a multiple of the block size (32 or 256)
  return x_blocks_bytes(n_x * (k / 32));
}

uint64_t quantized_x_bytes(uint64_t k, uint64_t n_x) {
  if (k % 32) fail("quantized x: rows of ", k, " values are not whole blocks of 32");
  return x_blocks_bytes(n_x * (k / 32));
}

void matmul(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, uint64_t n_tokens,
            const vk::Buffer& y, MatmulKernel kernel, QuantizedX* x_q,
            const MatmulEpilogue& epilogue) {
  check_weight(w);
  if (w.n_expert != 1) fail("matmul: weight holds ", w.n_expert, " experts; use matmul_id");
  if (n_tokens == 0) return;
  // automatic stays automatic for a matvec: the integer kernel where the type has one.
  if (kernel == MatmulKernel::automatic && n_tokens > uint64_t(kMatvecMaxTokens))
    kernel = MatmulKernel::tiled;
  if (kernel == MatmulKernel::vec_q8 && !gpu_supports_q8(w.type))
    fail("matmul: no integer matvec for weight type ", gguf::type_name(w.type));
  if (kernel != MatmulKernel::tiled)
    record_vec(rec, w, x, y, nullptr, 1, n_tokens, false, kernel != MatmulKernel::vec, x_q,
               epilogue);
  else
    record_tiled(rec, w, x, y, n_tokens, epilogue);
}

void matmul_id(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, bool x_per_slot,
               const vk::Buffer& ids, uint64_t n_used, uint64_t n_tokens, const vk::Buffer& y,
               MatmulKernel kernel, QuantizedX* x_q, const MatmulEpilogue& epilogue) {
  check_weight(w);
  if (epilogue.add) fail("matmul_id: the expert matmul adds a bias only, not a tensor");
  if (kernel == MatmulKernel::tiled) fail("matmul_id: there is no tiled expert matmul");
  if (kernel == MatmulKernel::vec_q8 && !gpu_supports_q8(w.type))
    fail("matmul_id: no integer matvec for weight type ", gguf::type_name(w.type));
  if (n_used == 0 || n_tokens == 0) return;
  if (ids.size() < n_tokens * n_used * 4)
    fail("matmul_id: ids buffer ", ids.name(), " has ", ids.size(), " bytes, needs ",
         n_tokens * n_used * 4);
  record_vec(rec, w, x, y, &ids, n_used, n_tokens, x_per_slot, kernel != MatmulKernel::vec, x_q,
             epilogue);
}

void dequantize(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& y) {
  check_weight(w);
  vk::Device& device = rec.device();
  const Variant& v = variant(w.type);
  const bool elementwise = v.element_bytes && w.k % 8;
  auto defines = type_defines(w.type);
  defines.push_back({"ELEMENTWISE", elementwise ? "1" : "0"});
  const uint32_t wg = device.workgroup_size(256);
  struct Push {
    uint32_t k, row_bytes, w_base, y_base, n_rows;
  };
  const vk::Kernel& kernel = device.kernel({"dequant.comp", defines, 2, sizeof(Push), wg});
  const uint64_t rows = w.m * w.n_expert;
  check_buffer(y, rows * w.k, "y");
  const auto& l = device.limits();
  const uint64_t align = std::max<uint64_t>(l.min_storage_buffer_offset_alignment, 4);
  // y is sliced like W: at most maxStorageBufferRange (less alignment slack) of rows.
  const uint64_t y_rows = (l.max_storage_buffer_range - align) / (w.k * 4);
  if (y_rows == 0) fail("a dequantized row of ", w.k, " floats exceeds maxStorageBufferRange");
  GpuWeight part = w;
  for (uint64_t r0 = 0; r0 < rows; r0 += y_rows) {
    const uint64_t r1 = std::min(rows, r0 + y_rows);
    part.offset = w.offset + r0 * gguf::row_bytes(w.type, w.k);
    part.m = r1 - r0;
    part.n_expert = 1;
    for (const Slice& s : slices(device, part, part.m)) {
      const uint64_t yb = (r0 + s.row_begin) * w.k * 4;
      const uint64_t y_bind = yb / align * align;
      const uint64_t n = s.row_end - s.row_begin;
      Push p{u32(w.k, "k"), u32(gguf::row_bytes(w.type, w.k), "row bytes"), s.base,
             uint32_t((yb - y_bind) / 4), u32(n, "rows")};
      const uint64_t items = elementwise ? n * w.k : n * (w.k / 8);
      rec.dispatch(kernel,
                   {{w.buffer, s.bind_offset, s.bind_size, false},
                    {&y, y_bind, yb - y_bind + n * w.k * 4, true}},
                   p, vk::fold_groups(device, (items + wg - 1) / wg),
                   cat("dequant ", gguf::type_name(w.type)));
    }
  }
}

}  // namespace ml::ops
