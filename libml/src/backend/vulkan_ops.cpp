// The Vulkan backend's ops: each records one kernel named after the op (shaders/<op>.comp)
// whose CPU reference is the ml::ops function of the same name; matmul goes through the
// sliced kernels of ops/matmul.cpp. Shapes are checked here, before anything is recorded.
#include "backend/vulkan_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ostream>

namespace ml {
using namespace vkops;
namespace {

// quant.glsl's defines for a table type (as ops/matmul.cpp's variants: float types decode
// 8 values as one "block").
vk::Defines type_defines(gguf::Type type, bool& elementwise, int64_t k) {
  if (!ops::gpu_supports(type)) fail("no GPU kernel for weight type ", gguf::type_name(type));
  const auto& t = gguf::traits(type);
  const bool is_float =
      type == gguf::Type::F32 || type == gguf::Type::F16 || type == gguf::Type::BF16;
  const uint32_t qk = is_float ? 8 : t.block_size;
  const uint32_t bytes = is_float ? 8 * uint32_t(t.type_size) : t.type_size;
  elementwise = is_float && k % 8 != 0;
  return {{std::string("TYPE_") + gguf::type_name(type), "1"},
          {"QK", qk},
          {"BLOCK_BYTES", bytes},
          {"ELEMENTWISE", elementwise ? "1" : "0"}};
}

// Whether 8 subgroup lanes can quantize a block together (quantize_block.glsl
// store_x_block_lanes): shuffles, relative shuffles, subgroups of 8 or more.
bool block_lanes(const vk::Limits& l) {
  return l.subgroup_size >= 8 && vk::has_subgroup_operation(l, "shuffle") &&
         vk::has_subgroup_operation(l, "shuffle_relative");
}

}  // namespace

void VulkanBackend::elementwise(const vk::KernelSpec& s, std::initializer_list<vk::Binding> b,
                                std::span<const std::byte> push, uint64_t n, const char* label) {
  elementwise(device_->kernel(s), b, push, n, label);
}

void VulkanBackend::elementwise(const vk::Kernel& kernel, std::initializer_list<vk::Binding> b,
                                std::span<const std::byte> push, uint64_t n, const char* label) {
  rec_->dispatch(kernel, std::span<const vk::Binding>(b.begin(), b.size()), push,
                 vk::fold_groups(*device_, (n + kWg - 1) / kWg), label);
}

Tensor VulkanBackend::get_rows(const Tensor& table, const Tensor& ids) {
  const int64_t K = table.ne[0], R = table.n_rows(), n = ids.n_elements();
  bool per_value = false;
  auto defines = type_defines(table.type, per_value, K);
  const uint64_t rb = gguf::row_bytes(table.type, uint64_t(K));
  Tensor y = scratch(gguf::Type::F32, {K, n, 1, 1});
  struct Push {
    uint32_t k, row_bytes, n_ids, n_table_rows, row_begin, row_end, base, first;
  } p{u32(K, "get_rows"), u32(rb, "get_rows"), u32(n, "get_rows"), u32(R, "get_rows"), 0, 0, 0, 1};
  const vk::Kernel& kernel = device_->kernel(spec("get_rows.comp", 3, sizeof(Push), defines));
  // A table over maxStorageBufferRange (Gemma 3's 262k-row token_embd) is bound in slices of
  // whole rows, as ops::matmul does: each binding starts at an offset the device accepts and
  // `base` reaches the slice's first row.
  const auto& l = device_->limits();
  const vk::Buffer& tb = buffer(table);
  const uint64_t align = std::max<uint64_t>(l.min_storage_buffer_offset_alignment, 4);
  const uint64_t usable =
      l.max_storage_buffer_range > align + 3 ? l.max_storage_buffer_range - align - 3 : 0;
  const uint64_t per_slice = usable / rb;
  need(per_slice > 0, "get_rows", "a row of ", rb, " bytes exceeds maxStorageBufferRange");
  const uint64_t items = per_value ? uint64_t(K * n) : uint64_t(K / 8 * n);
  for (uint64_t r0 = 0; r0 < uint64_t(R); r0 += per_slice) {
    const uint64_t r1 = std::min<uint64_t>(uint64_t(R), r0 + per_slice);
    const uint64_t begin = r0 * rb, at = begin / align * align;
    const uint64_t end = std::min((r1 * rb + 3) / 4 * 4, tb.size());
    p.row_begin = uint32_t(r0);
    p.row_end = uint32_t(r1);
    p.base = uint32_t(begin - at);
    elementwise(kernel,
                {{&tb, at, end - at, false},
                 bind(*device_, i32(ids, "get_rows")),
                 bind(*device_, buffer(y), true)},
                bytes_of(p), items, "get_rows");
    p.first = 0;
  }
  return y;
}

// The transient x_q for x: the last one when x is the same transient of this pass with the
// same shape (its contents cannot have changed: ops write only fresh transients), else a new
// one. Null where the type has no integer matvec. Persistent x is never shared (uploads and
// kv_store write persistent tensors).
ops::QuantizedX* VulkanBackend::quantized_x(const Tensor& x, gguf::Type type, int64_t k,
                                            int64_t n_x) {
  const uint64_t bytes = ops::quantized_x_bytes(type, uint64_t(k), uint64_t(n_x));
  if (!bytes) return nullptr;
  XQuant& c = xq_last_;
  const bool transient = (x.id & kTransientBit) != 0;
  if (transient && c.x_q && c.x_id == x.id && c.generation == generation_ && c.k == k &&
      c.n_x == n_x)
    return &c.q;
  c = {x.id, generation_, k, n_x, scratch(gguf::Type::I32, {int64_t(bytes / 4), 1, 1, 1}), {}};
  c.q.buffer = &buffer(c.x_q);
  if (!transient) c.x_q = Tensor{};  // used once: the next matmul quantizes again
  return &c.q;
}

const vk::Buffer* VulkanBackend::quantize_alongside(const Tensor& y) {
  const int64_t k = y.ne[0], n_x = y.n_rows();
  if (n_x > ops::kMatvecMaxTokens || k % 32) return nullptr;
  const uint64_t bytes = ops::quantized_x_bytes(uint64_t(k), uint64_t(n_x));
  if (bytes > device_->limits().max_storage_buffer_range) return nullptr;
  XQuant& c = xq_last_;
  c = {y.id, generation_, k, n_x, scratch(gguf::Type::I32, {int64_t(bytes / 4), 1, 1, 1}), {}};
  c.q = {&buffer(c.x_q), ops::QuantizedX::residual};
  return c.q.buffer;
}

Tensor VulkanBackend::matmul(const Tensor& w, const Tensor& x, const Tensor* bias,
                             const Tensor* add) {
  const int64_t K = w.ne[0], N = w.ne[1], T = x.n_rows();
  need(w.ne[2] == 1 && w.ne[3] == 1, "matmul", "w must be 2-D (use matmul_id for experts)");
  need(x.ne[0] == K, "matmul", "w ", Shape{w}, " times x ", Shape{x});
  if (bias) need(bias->n_elements() == N, "matmul", "bias ", Shape{*bias}, " for ", N, " rows");
  if (add)
    need(add->n_elements() == N * T, "matmul", "add ", Shape{*add}, " for a result of ", N, " x ",
         T);
  Tensor y = scratch(gguf::Type::F32, {N, x.ne[1], x.ne[2], x.ne[3]});
  const ops::GpuWeight gw{&buffer(w), 0, w.type, uint64_t(K), uint64_t(N), 1};
  // x quantized once for the integer matvec; prefill goes to the tiled kernel.
  ops::QuantizedX* x_q = T <= ops::kMatvecMaxTokens ? quantized_x(x, w.type, K, T) : nullptr;
  const ops::MatmulEpilogue epilogue{bias ? &f32(*bias, "matmul") : nullptr,
                                     add ? &f32(*add, "matmul") : nullptr};
  ops::matmul(*rec_, gw, f32(x, "matmul"), uint64_t(T), buffer(y), ops::MatmulKernel::automatic,
              x_q, epilogue);
  return y;
}

Tensor VulkanBackend::matmul_id(const Tensor& w, const Tensor& x, const Tensor& ids,
                                const Tensor* bias) {
  const int64_t K = w.ne[0], N = w.ne[1], E = w.ne[2];
  const int64_t n_used = ids.ne[0], T = ids.ne[1], X = x.ne[1];
  need(x.ne[0] == K && (X == 1 || X == n_used) && x.ne[2] == T, "matmul_id", "w ", Shape{w}, " x ",
       Shape{x}, " ids ", Shape{ids});
  if (bias)
    need(bias->ne[0] == N && bias->n_elements() == N * E, "matmul_id", "bias ", Shape{*bias},
         " for ", N, " rows of ", E, " experts");
  Tensor y = scratch(gguf::Type::F32, {N, n_used, T, 1});
  const ops::GpuWeight gw{&buffer(w), 0, w.type, uint64_t(K), uint64_t(N), uint64_t(E)};
  ops::matmul_id(*rec_, gw, f32(x, "matmul_id"), X != 1, i32(ids, "matmul_id"), uint64_t(n_used),
                 uint64_t(T), buffer(y), ops::MatmulKernel::automatic,
                 quantized_x(x, w.type, K, X * T),
                 {bias ? &f32(*bias, "matmul_id") : nullptr, nullptr});
  return y;
}

Tensor VulkanBackend::binary(const Tensor& a, const Tensor& b, bool multiply) {
  const char* op = multiply ? "mul" : "add";
  const int64_t nb = b.n_elements();
  need(nb == a.n_elements() || nb == a.ne[0], op, Shape{a}, " with ", Shape{b});
  Tensor y = scratch(gguf::Type::F32, a.ne);
  struct Push {
    uint32_t n, nb;
  } p{u32(a.n_elements(), op), u32(nb, op)};
  elementwise(
      spec("add.comp", 3, sizeof(Push), {{"MUL", multiply ? "1" : "0"}}),
      {bind(*device_, f32(a, op)), bind(*device_, f32(b, op)), bind(*device_, buffer(y), true)},
      bytes_of(p), p.n, op);
  return y;
}

Tensor VulkanBackend::add(const Tensor& a, const Tensor& b) {
  return binary(a, b, false);
}
Tensor VulkanBackend::mul(const Tensor& a, const Tensor& b) {
  return binary(a, b, true);
}

Tensor VulkanBackend::add_id(const Tensor& a, const Tensor& b, const Tensor& ids) {
  const int64_t N = a.ne[0], E = b.ne[1];
  need(b.ne[0] == N && ids.ne[0] == a.ne[1] && ids.ne[1] == a.ne[2], "add_id", Shape{a}, " + ",
       Shape{b}, " by ", Shape{ids});
  Tensor y = scratch(gguf::Type::F32, a.ne);
  struct Push {
    uint32_t n, N, E;
  } p{u32(a.n_elements(), "add_id"), u32(N, "add_id"), u32(E, "add_id")};
  elementwise(spec("add_id.comp", 4, sizeof(Push)),
              {bind(*device_, f32(a, "add_id")), bind(*device_, f32(b, "add_id")),
               bind(*device_, i32(ids, "add_id")), bind(*device_, buffer(y), true)},
              bytes_of(p), p.n, "add_id");
  return y;
}

Tensor VulkanBackend::scale(const Tensor& a, float s) {
  Tensor y = scratch(gguf::Type::F32, a.ne);
  struct Push {
    uint32_t n;
    float s;
  } p{u32(a.n_elements(), "scale"), s};
  elementwise(spec("scale.comp", 2, sizeof(Push), {{"SOFTCAP", "0"}}),
              {bind(*device_, f32(a, "scale")), bind(*device_, buffer(y), true)}, bytes_of(p), p.n,
              "scale");
  return y;
}

Tensor VulkanBackend::softcap(const Tensor& a, float cap) {
  need(cap > 0.0f, "softcap", "cap ", cap, " must be positive");
  Tensor y = scratch(gguf::Type::F32, a.ne);
  struct Push {
    uint32_t n;
    float s;
  } p{u32(a.n_elements(), "softcap"), cap};
  elementwise(spec("scale.comp", 2, sizeof(Push), {{"SOFTCAP", "1"}}),
              {bind(*device_, f32(a, "softcap")), bind(*device_, buffer(y), true)}, bytes_of(p),
              p.n, "softcap");
  return y;
}

Tensor VulkanBackend::rmsnorm(const Tensor& x, const Tensor* w, float eps, const Tensor* add) {
  return normed(x, w, eps, add, nullptr).sum;
}

Backend::NormSum VulkanBackend::rmsnorm_add_norm(const Tensor& x, const Tensor& w,
                                                 const Tensor& add, const Tensor& w2, float eps) {
  if (registers_nv4(x)) return normed(x, &w, eps, &add, &w2);
  return Backend::rmsnorm_add_norm(x, w, add, w2, eps);
}

// Decode (a few rows): the row in registers, NV4 vec4s per invocation, where subgroup shuffles
// can sum it and quantize its blocks (see rmsnorm.comp); 0: the general kernel. One vec4 each where
// the workgroup allows (H200, per rmsnorm: 2048 values 7.6 us at NV4 1, 8.9 at 2, 14.6 at 4);
// ML_RMSNORM_NV4 overrides NV4 (tuning).
uint32_t VulkanBackend::registers_nv4(const Tensor& x) const {
  static const uint32_t tuned = [] {
    const char* e = std::getenv("ML_RMSNORM_NV4");
    return e && std::atoi(e) > 0 ? uint32_t(std::atoi(e)) : 0u;
  }();
  const auto& l = device_->limits();
  const int64_t n = x.ne[0];
  if (x.n_rows() > ops::kMatvecMaxTokens || n % 32 || !block_lanes(l)) return 0;
  const uint32_t max_wg = std::min(l.max_workgroup_size[0], l.max_workgroup_invocations);
  for (uint32_t nv4 = tuned ? tuned : 1; nv4 <= 64; ++nv4)
    if (registers_wg(n, nv4) <= max_wg) return nv4;
  return 0;
}

// The workgroup for rows of n values at nv4 vec4s per invocation: whole subgroups.
uint32_t VulkanBackend::registers_wg(int64_t n, uint32_t nv4) const {
  const uint32_t sg = device_->limits().subgroup_size;
  const uint32_t wg = (uint32_t(n / 4) + nv4 - 1) / nv4;
  return std::max(sg, (wg + sg - 1) / sg * sg);
}

Backend::NormSum VulkanBackend::normed(const Tensor& x, const Tensor* w, float eps,
                                       const Tensor* add, const Tensor* w2) {
  const int64_t n = x.ne[0];
  if (w) need(w->n_elements() == n, "rmsnorm", Shape{x}, " by ", Shape{*w});
  if (w2) need(w2->n_elements() == n, "rmsnorm", Shape{x}, " by ", Shape{*w2});
  if (add) need(add->ne == x.ne, "rmsnorm", "add ", Shape{*add}, " to ", Shape{x});
  NormSum y{scratch(gguf::Type::F32, x.ne), w2 ? scratch(gguf::Type::F32, x.ne) : Tensor{}};
  struct Push {
    uint32_t n, n_rows, has_w;
    float eps;
  } p{u32(n, "rmsnorm"), u32(x.n_rows(), "rmsnorm"), w ? 1u : 0u, eps};
  const vk::Buffer& xb = f32(x, "rmsnorm");
  const uint32_t nv4 = registers_nv4(x);
  // The general kernel keeps a quantized row in shared memory: up to 4096 values (16 KB).
  // A sum without its norm feeds no matmul.
  constexpr int64_t kQuantizeMaxN = 4096;
  const vk::Buffer* x_q = (!add || w2) && (nv4 || n <= kQuantizeMaxN)
                              ? quantize_alongside(w2 ? y.norm : y.sum)
                              : nullptr;
  std::vector<vk::Binding> b{bind(*device_, xb), bind(*device_, w ? f32(*w, "rmsnorm") : xb),
                             bind(*device_, buffer(y.sum), true)};
  if (add) b.push_back(bind(*device_, f32(*add, "rmsnorm")));
  if (w2) {
    b.push_back(bind(*device_, f32(*w2, "rmsnorm")));
    b.push_back(bind(*device_, buffer(y.norm), true));
  }
  if (x_q) b.push_back(bind(*device_, *x_q, true));
  const vk::Defines defines{
      {"QUANTIZE", x_q ? "1" : "0"}, {"QUANTIZE_MAX_N", uint32_t(kQuantizeMaxN)},
      {"X_RESIDUAL", "1"},           {"ADD", add ? "1" : "0"},
      {"NORM2", w2 ? "1" : "0"},     {"REGISTERS", nv4 ? "1" : "0"},
      {"NV4", nv4 ? nv4 : 1u}};
  // The general kernel: a whole row per workgroup, the widest keeps a 4096-wide row to a few
  // steps.
  const uint32_t wg = nv4 ? registers_wg(n, nv4) : device_->workgroup_size(256);
  rec_->dispatch(
      device_->kernel(spec("rmsnorm.comp", uint32_t(b.size()), sizeof(Push), defines, wg)), b,
      bytes_of(p), vk::fold_groups(*device_, p.n_rows), "rmsnorm");
  return y;
}

Tensor VulkanBackend::rope(const Tensor& x, const Tensor& pos, const Tensor* freq_factors,
                           const ops::RopeParams& rp) {
  return roped(x, nullptr, pos, freq_factors, rp, nullptr, nullptr).q;
}

Backend::QK VulkanBackend::rope_qk(const Tensor& q, const Tensor& k, const Tensor& pos,
                                   const Tensor* freq_factors, const ops::RopeParams& rp,
                                   const KvStore* store, const QkNorm* norm) {
  // The fused norm needs a workgroup per head row, summed by subgroups; else the norms are
  // ops of their own.
  const auto& l = device_->limits();
  const uint32_t half = uint32_t(q.ne[0] / 2);
  if (norm && !(l.subgroup_arithmetic && half >= 1 && half <= l.max_workgroup_size[0] &&
                half <= l.max_workgroup_invocations)) {
    const Tensor qn = rmsnorm(q, &norm->q, norm->eps), kn = rmsnorm(k, &norm->k, norm->eps);
    return roped(qn, &kn, pos, freq_factors, rp, store, nullptr);
  }
  return roped(q, &k, pos, freq_factors, rp, store, norm);
}

Backend::QK VulkanBackend::roped(const Tensor& q, const Tensor* k, const Tensor& pos,
                                 const Tensor* freq_factors, const ops::RopeParams& rp,
                                 const KvStore* store, const QkNorm* norm) {
  const char* op = k ? "rope_qk" : "rope";
  const int64_t head_dim = q.ne[0], T = q.ne[2], n_head_k = k ? k->ne[1] : 0;
  need(pos.n_elements() == T && rp.n_dims > 0 && rp.n_dims % 2 == 0 && rp.n_dims <= head_dim &&
           head_dim % 2 == 0 && q.ne[3] == 1,
       op, "x ", Shape{q}, " pos ", Shape{pos}, " n_dims ", rp.n_dims);
  if (k)
    need(k->ne[0] == head_dim && k->ne[2] == T && k->ne[3] == 1, op, "q ", Shape{q}, " k ",
         Shape{*k});
  if (freq_factors) need(freq_factors->n_elements() >= rp.n_dims / 2, op, "freq_factors too short");
  if (norm)
    need(norm->q.n_elements() == head_dim && norm->k.n_elements() == head_dim, op, "norm weights ",
         Shape{norm->q}, " and ", Shape{norm->k}, " for heads of ", head_dim);
  const int64_t width = head_dim * n_head_k;
  const bool f16 = store && store->k_cache.type == gguf::Type::F16;
  if (store)
    need(k && store->v.ne == k->ne && store->k_cache.ne[0] == width &&
             store->v_cache.ne == store->k_cache.ne && store->v_cache.type == store->k_cache.type &&
             (f16 || store->k_cache.type == gguf::Type::F32) && store->pos0 >= 0,
         op, "k ", Shape{*k}, " v ", Shape{store->v}, " cache ", Shape{store->k_cache}, " ",
         gguf::type_name(store->k_cache.type));
  float dims[2] = {0.0f, 0.0f};
  ops::rope_yarn_corr_dims(rp.n_dims, rp.n_ctx_orig, rp.freq_base, rp.beta_fast, rp.beta_slow,
                           dims);
  QK y{scratch(gguf::Type::F32, q.ne), k ? scratch(gguf::Type::F32, k->ne) : Tensor{}};
  struct Push {
    uint32_t head_dim, n_head_q, n_head_k, n_tokens, n_dims, neox, has_ff, pos0, n_cells;
    float freq_base, freq_scale, ext_factor, attn_factor, corr0, corr1, eps;
  } p{u32(head_dim, op),
      u32(q.ne[1], op),
      u32(n_head_k, op),
      u32(T, op),
      uint32_t(rp.n_dims),
      rp.mode == ops::RopeMode::neox ? 1u : 0u,
      freq_factors ? 1u : 0u,
      store ? uint32_t(store->pos0) : 0u,
      store ? u32(store->k_cache.ne[1], op) : 1u,
      rp.freq_base,
      rp.freq_scale,
      rp.ext_factor,
      rp.attn_factor,
      dims[0],
      dims[1],
      norm ? norm->eps : 0.0f};
  const vk::Buffer& qb = f32(q, op);
  const vk::Buffer& yq = buffer(y.q);
  const uint64_t n = uint64_t(q.n_rows() + (k ? k->n_rows() : 0)) * uint64_t(head_dim / 2);
  const vk::Binding in[] = {bind(*device_, qb), bind(*device_, k ? f32(*k, op) : qb),
                            bind(*device_, freq_factors ? f32(*freq_factors, op) : qb),
                            bind(*device_, yq, true), bind(*device_, k ? buffer(y.k) : yq, true)};
  // With the norm a workgroup is one head row: head_dim / 2 invocations.
  const uint32_t wg = norm ? uint32_t(head_dim / 2) : kWg;
  const uint64_t groups = (n + wg - 1) / wg;
  std::vector<vk::Binding> b(std::begin(in), std::end(in));
  if (store) {
    b.push_back(bind(*device_, f32(store->v, op)));
    b.push_back(bind(*device_, buffer(store->k_cache), true));
    b.push_back(bind(*device_, buffer(store->v_cache), true));
  } else {
    b.push_back(bind(*device_, i32(pos, op)));
  }
  if (norm) {
    b.push_back(bind(*device_, f32(norm->q, op)));
    b.push_back(bind(*device_, f32(norm->k, op)));
  }
  rec_->dispatch(
      device_->kernel(
          spec("rope.comp", uint32_t(b.size()), sizeof(Push),
               {{"STORE", store ? "1" : "0"}, {"F16", f16 ? "1" : "0"}, {"NORM", norm ? "1" : "0"}},
               wg)),
      b, bytes_of(p), vk::fold_groups(*device_, groups), op);
  return y;
}

void VulkanBackend::kv_store(const Tensor& cache, const Tensor& k, int32_t pos0) {
  const int64_t width = cache.ne[0], n_cells = cache.ne[1];
  const int64_t T = k.n_elements() / width;
  const bool f16 = cache.type == gguf::Type::F16;
  need(k.n_elements() == width * T && pos0 >= 0 && (f16 || cache.type == gguf::Type::F32) &&
           (!f16 || width % 2 == 0),
       "kv_store", "cache ", Shape{cache}, " ", gguf::type_name(cache.type), " k ", Shape{k});
  struct Push {
    uint32_t width, n_tokens, pos0, n_cells;
  } p{u32(width, "kv_store"), u32(T, "kv_store"), uint32_t(pos0), u32(n_cells, "kv_store")};
  elementwise(spec("kv_store.comp", 2, sizeof(Push), {{"F16", f16 ? "1" : "0"}}),
              {bind(*device_, f32(k, "kv_store")), bind(*device_, buffer(cache), true)},
              bytes_of(p), uint64_t(T * (f16 ? width / 2 : width)), "kv_store");
}

Tensor VulkanBackend::gated(const Tensor& gate, const Tensor& up, const char* label, Act act,
                            float alpha, float limit) {
  need(gate.ne == up.ne, label, Shape{gate}, " and ", Shape{up});
  Tensor y = scratch(gguf::Type::F32, gate.ne);
  struct Push {
    uint32_t n;
    float alpha, limit;
  } p{u32(gate.n_elements(), label), alpha, limit};
  // y quantized alongside for the down projection's matvec.
  const vk::Buffer* x_q = quantize_alongside(y);
  std::vector<vk::Binding> b{bind(*device_, f32(gate, label)), bind(*device_, f32(up, label)),
                             bind(*device_, buffer(y), true)};
  if (x_q) b.push_back(bind(*device_, *x_q, true));
  const uint64_t n = x_q ? p.n / 4 : p.n;  // with x_q, an invocation per 4 values
  rec_->dispatch(device_->kernel(spec("swiglu.comp", uint32_t(b.size()), sizeof(Push),
                                      {{"OAI", act == Act::swiglu_oai ? "1" : "0"},
                                       {"GELU", act == Act::geglu ? "1" : "0"},
                                       {"QUANTIZE", x_q ? "1" : "0"},
                                       {"LANES", block_lanes(device_->limits()) ? "1" : "0"},
                                       {"X_RESIDUAL", "1"}})),
                 b, bytes_of(p), vk::fold_groups(*device_, (n + kWg - 1) / kWg), label);
  return y;
}

Tensor VulkanBackend::swiglu(const Tensor& gate, const Tensor& up) {
  return gated(gate, up, "swiglu.comp", Act::swiglu, 0.0f, 0.0f);
}

Tensor VulkanBackend::geglu(const Tensor& gate, const Tensor& up) {
  return gated(gate, up, "geglu", Act::geglu, 0.0f, 0.0f);
}

Tensor VulkanBackend::swiglu_oai(const Tensor& gate, const Tensor& up, float alpha, float limit) {
  return gated(gate, up, "swiglu.comp", Act::swiglu_oai, alpha, limit);
}

Tensor VulkanBackend::rows_topk(const Tensor& x, int k, bool route, Tensor* weights) {
  const char* op = route ? "moe_route" : "top_k";
  const int64_t V = x.ne[0], T = x.n_rows();
  need(k >= 1 && k <= V, op, "k ", k, " of ", V);
  Tensor ids = scratch(gguf::Type::I32, {k, T, 1, 1});
  struct Push {
    uint32_t n, n_rows, k, chunk, n_chunks;
  } p{u32(V, op), u32(T, op), uint32_t(k), 0, 1};
  const vk::Buffer& xb = f32(x, op);
  if (route) {
    *weights = scratch(gguf::Type::F32, {k, T, 1, 1});
    rec_->dispatch(
        device_->kernel(spec("top_k.comp", 3, sizeof(Push), {{"ROUTE", "1"}, {"PASS", "0"}})),
        {bind(*device_, xb), bind(*device_, buffer(ids), true),
         bind(*device_, buffer(*weights), true)},
        p, vk::fold_groups(*device_, p.n_rows), op);
    return ids;
  }
  // One workgroup's k passes over a 201088-token row took ~17 ms per token on the H100; in
  // chunks of kChunk the row's workgroups run in parallel and a second pass picks from their
  // k candidates each.
  constexpr int64_t kChunk = 2048;
  if (V <= 2 * kChunk) {
    rec_->dispatch(
        device_->kernel(spec("top_k.comp", 2, sizeof(Push), {{"ROUTE", "0"}, {"PASS", "0"}})),
        {bind(*device_, xb), bind(*device_, buffer(ids), true)}, p,
        vk::fold_groups(*device_, p.n_rows), op);
    return ids;
  }
  const int64_t n_chunks = (V + kChunk - 1) / kChunk;
  Tensor cand_v = scratch(gguf::Type::F32, {k, n_chunks, T, 1});
  Tensor cand_i = scratch(gguf::Type::I32, {k, n_chunks, T, 1});
  p.chunk = uint32_t(kChunk);
  p.n_chunks = uint32_t(n_chunks);
  rec_->dispatch(
      device_->kernel(spec("top_k.comp", 4, sizeof(Push), {{"ROUTE", "0"}, {"PASS", "1"}})),
      {bind(*device_, xb), bind(*device_, buffer(ids)), bind(*device_, buffer(cand_v), true),
       bind(*device_, buffer(cand_i), true)},
      p, vk::fold_groups(*device_, u32(T * n_chunks, op)), op);
  Push p2{u32(n_chunks * k, op), p.n_rows, p.k, 0, 1};
  rec_->dispatch(
      device_->kernel(spec("top_k.comp", 3, sizeof(Push), {{"ROUTE", "0"}, {"PASS", "2"}})),
      {bind(*device_, buffer(cand_v)), bind(*device_, buffer(ids), true),
       bind(*device_, buffer(cand_i))},
      p2, vk::fold_groups(*device_, p2.n_rows), op);
  return ids;
}

Backend::Route VulkanBackend::moe_route(const Tensor& logits, int k) {
  Route r;
  r.ids = rows_topk(logits, k, true, &r.weights);
  return r;
}

Tensor VulkanBackend::top_k(const Tensor& x, int k) {
  return rows_topk(x, k, false, nullptr);
}

Tensor VulkanBackend::moe_combine(const Tensor& y, const Tensor& weights, const Tensor* add) {
  const int64_t N = y.ne[0], k = y.ne[1], T = y.ne[2];
  need(weights.ne[0] == k && weights.ne[1] == T, "moe_combine", Shape{y}, " by ", Shape{weights});
  if (add)
    need(add->n_elements() == N * T, "moe_combine", "add ", Shape{*add}, " for a result of ", N,
         " x ", T);
  Tensor out = scratch(gguf::Type::F32, {N, T, 1, 1});
  struct Push {
    uint32_t N, k, n_tokens;
  } p{u32(N, "moe_combine"), u32(k, "moe_combine"), u32(T, "moe_combine")};
  const vk::Binding yb = bind(*device_, f32(y, "moe_combine"));
  const vk::Binding wb = bind(*device_, f32(weights, "moe_combine"));
  const vk::Binding ob = bind(*device_, buffer(out), true);
  if (add)
    elementwise(spec("moe_combine.comp", 4, sizeof(Push), {{"ADD", "1"}}),
                {yb, wb, ob, bind(*device_, f32(*add, "moe_combine"))}, bytes_of(p),
                uint64_t(N * T), "moe_combine");
  else
    elementwise(spec("moe_combine.comp", 3, sizeof(Push), {{"ADD", "0"}}), {yb, wb, ob},
                bytes_of(p), uint64_t(N * T), "moe_combine");
  return out;
}

Tensor VulkanBackend::argmax(const Tensor& x) {
  const int64_t V = x.ne[0], T = x.n_rows();
  const uint32_t wg = device_->workgroup_size(256);
  // Parts of about 8 values per invocation spread one row over many workgroups.
  const uint64_t n_parts = std::clamp<uint64_t>(uint64_t(V) / (8 * wg), 1, 1024);
  const uint64_t chunk = (uint64_t(V) + n_parts - 1) / n_parts;
  need(n_parts <= device_->limits().max_workgroup_count[0] &&
           uint64_t(T) <= device_->limits().max_workgroup_count[1],
       "argmax", T, " rows of ", n_parts, " parts exceed maxComputeWorkGroupCount");
  Tensor parts = scratch(gguf::Type::I32, {int64_t(2 * n_parts), T, 1, 1});
  Tensor y = scratch(gguf::Type::I32, {T, 1, 1, 1});
  struct Push {
    uint32_t n, n_rows, n_parts, chunk;
  } p{u32(V, "argmax"), u32(T, "argmax"), uint32_t(n_parts), uint32_t(chunk)};
  const vk::Buffer& xb = f32(x, "argmax");
  rec_->dispatch(device_->kernel(spec("argmax.comp", 2, sizeof(Push), {{"PASS", "1"}}, wg)),
                 {bind(*device_, xb), bind(*device_, buffer(parts), true)}, p,
                 {uint32_t(n_parts), uint32_t(T), 1}, "argmax");
  rec_->dispatch(
      device_->kernel(spec("argmax.comp", 3, sizeof(Push), {{"PASS", "2"}}, wg)),
      {bind(*device_, xb), bind(*device_, buffer(parts)), bind(*device_, buffer(y), true)}, p,
      vk::fold_groups(*device_, p.n_rows), "argmax");
  return y;
}

}  // namespace ml
