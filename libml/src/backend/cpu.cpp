// The CPU reference backend: tensors are host vectors and every op runs at once through the
// reference kernels of libml/src/ops, threaded over rows (matmul) and heads (attention).
// Weights stay in their GGUF type; matmul dequantizes one weight row at a time and dots it
// with every activation column, so the math is exactly that of an F32-dequantized model.
#include "backend/cpu.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <thread>

#include "ml/quant.h"

namespace ml {
namespace {

constexpr uint32_t kTransientBit = 0x80000000u;

void need(bool ok, std::string_view op, const std::string& what) {
  if (!ok) fail("cpu backend: ", op, ": ", what);
}

}  // namespace

CpuBackend::CpuBackend(int n_threads)
    : n_threads_(n_threads > 0 ? n_threads
                               : std::max(1, int(std::thread::hardware_concurrency()))) {}

uint64_t CpuBackend::memory_capacity() const {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : UINT64_MAX;
}

Tensor CpuBackend::make(gguf::Type type, std::array<int64_t, 4> ne, bool transient) {
  for (int64_t n : ne) need(n >= 1 && n <= (int64_t(1) << 40), "alloc", "bad dimension");
  Tensor t;
  t.type = type;
  t.ne = ne;
  std::vector<std::byte> bytes(size_t(tensor_bytes(t)));
  if (transient) {
    t.id = uint32_t(transient_.size()) | kTransientBit;
    transient_.push_back(std::move(bytes));
  } else {
    t.id = uint32_t(persistent_.size());
    persistent_.push_back(std::move(bytes));
  }
  return t;
}

Tensor CpuBackend::alloc(gguf::Type type, std::array<int64_t, 4> ne, std::string_view) {
  return make(type, ne, false);
}

Tensor CpuBackend::scratch(gguf::Type type, std::array<int64_t, 4> ne) {
  return make(type, ne, true);
}

void CpuBackend::free(Tensor t) {
  if (t && !(t.id & kTransientBit) && t.id < persistent_.size())
    std::vector<std::byte>().swap(persistent_[t.id]);
}

void CpuBackend::reset_transient() {
  transient_.clear();
}

std::vector<std::byte>& CpuBackend::storage(const Tensor& t) {
  need(bool(t), "tensor", "use of an empty tensor handle");
  const uint32_t index = t.id & ~kTransientBit;
  auto& pool = (t.id & kTransientBit) ? transient_ : persistent_;
  need(index < pool.size(), "tensor", cat("unknown tensor id ", t.id));
  need(pool[index].size() >= tensor_bytes(t), "tensor",
       cat("tensor ", t.id, " ", shape_string(t), " is larger than its storage"));
  return pool[index];
}

const float* CpuBackend::f32(const Tensor& t) {
  need(t.type == gguf::Type::F32, "tensor", cat("expected F32, got ", gguf::type_name(t.type)));
  return reinterpret_cast<const float*>(storage(t).data());
}

const int32_t* CpuBackend::i32(const Tensor& t) {
  need(t.type == gguf::Type::I32, "tensor", cat("expected I32, got ", gguf::type_name(t.type)));
  return reinterpret_cast<const int32_t*>(storage(t).data());
}

float* CpuBackend::out_f32(Tensor& t) {
  return reinterpret_cast<float*>(storage(t).data());
}

void CpuBackend::upload(const Tensor& t, std::span<const std::byte> bytes, uint64_t offset) {
  auto& s = storage(t);
  need(offset <= s.size() && bytes.size() <= s.size() - offset, "upload",
       cat(bytes.size(), " bytes at offset ", offset, " do not fit a tensor of ", s.size()));
  std::memcpy(s.data() + offset, bytes.data(), bytes.size());
}

void CpuBackend::read(const Tensor& t, std::span<std::byte> out) {
  auto& s = storage(t);
  need(out.size() == tensor_bytes(t), "read", "size mismatch");
  std::memcpy(out.data(), s.data(), out.size());
}

Tensor CpuBackend::get_rows(const Tensor& table, const Tensor& ids) {
  const int64_t K = table.ne[0], R = table.n_rows(), n = ids.n_elements();
  const std::byte* data = storage(table).data();
  const int32_t* id = i32(ids);
  Tensor y = scratch(gguf::Type::F32, {K, n, 1, 1});
  float* out = out_f32(y);
  for (int64_t i = 0; i < n; ++i) {
    need(id[i] >= 0 && id[i] < R, "get_rows", cat("row ", id[i], " is outside [0, ", R, ")"));
    ops::dequantize_row(table.type, data, K, id[i], out + i * K);
  }
  return y;
}

Tensor CpuBackend::matmul(const Tensor& w, const Tensor& x, const Tensor* bias, const Tensor* add) {
  const int64_t K = w.ne[0], N = w.ne[1], T = x.n_rows();
  need(w.ne[2] == 1 && w.ne[3] == 1, "matmul", "w must be 2-D (use matmul_id for experts)");
  need(x.ne[0] == K, "matmul", cat("w ", shape_string(w), " times x ", shape_string(x)));
  if (bias)
    need(bias->n_elements() == N, "matmul", cat("bias ", shape_string(*bias), " for ", N, " rows"));
  if (add)
    need(add->n_elements() == N * T, "matmul",
         cat("add ", shape_string(*add), " for a result of ", N, " x ", T));
  const std::byte* wd = storage(w).data();
  const float* xd = f32(x);
  const float* bd = bias ? f32(*bias) : nullptr;
  const float* ad = add ? f32(*add) : nullptr;
  Tensor y = scratch(gguf::Type::F32, {N, x.ne[1], x.ne[2], x.ne[3]});
  float* yd = out_f32(y);
  ops::parallel_for(N, n_threads_, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = begin; n < end; ++n) {
      ops::dequantize_row(w.type, wd, K, n, row.data());
      for (int64_t t = 0; t < T; ++t) {
        // Rounded as the unfused ops round: the product, + bias, + add.
        float v = ops::dot(row.data(), xd + t * K, K);
        if (bd) v += bd[n];
        if (ad) v += ad[t * N + n];
        yd[t * N + n] = v;
      }
    }
  });
  return y;
}

Tensor CpuBackend::matmul_id(const Tensor& w, const Tensor& x, const Tensor& ids,
                             const Tensor* bias) {
  const int64_t K = w.ne[0], N = w.ne[1], E = w.ne[2];
  const int64_t n_used = ids.ne[0], T = ids.ne[1], X = x.ne[1];
  need(x.ne[0] == K && (X == 1 || X == n_used) && x.ne[2] == T, "matmul_id",
       cat("w ", shape_string(w), " x ", shape_string(x), " ids ", shape_string(ids)));
  if (bias)
    need(bias->ne[0] == N && bias->n_elements() == N * E, "matmul_id",
         cat("bias ", shape_string(*bias), " for ", N, " rows of ", E, " experts"));
  const float* bd = bias ? f32(*bias) : nullptr;
  const std::byte* wd = storage(w).data();
  const uint64_t expert_bytes = gguf::row_bytes(w.type, uint64_t(K)) * uint64_t(N);
  const float* xd = f32(x);
  const int32_t* id = i32(ids);
  // Group the (token, slot) pairs by expert so each expert row is dequantized once.
  std::vector<std::vector<int64_t>> users(static_cast<size_t>(E));
  for (int64_t i = 0; i < n_used * T; ++i) {
    need(id[i] >= 0 && id[i] < E, "matmul_id", cat("expert id ", id[i], " outside [0, ", E, ")"));
    users[size_t(id[i])].push_back(i);
  }
  Tensor y = scratch(gguf::Type::F32, {N, n_used, T, 1});
  float* yd = out_f32(y);
  for (int64_t e = 0; e < E; ++e) {
    if (users[size_t(e)].empty()) continue;
    ops::parallel_for(N, n_threads_, [&](int64_t begin, int64_t end) {
      std::vector<float> row(static_cast<size_t>(K));
      for (int64_t n = begin; n < end; ++n) {
        ops::dequantize_row(w.type, wd + uint64_t(e) * expert_bytes, K, n, row.data());
        for (int64_t i : users[size_t(e)]) {
          const int64_t j = i % n_used, t = i / n_used;
          const float v = ops::dot(row.data(), xd + (t * X + (X == 1 ? 0 : j)) * K, K);
          yd[i * N + n] = bd ? v + bd[e * N + n] : v;
        }
      }
    });
  }
  return y;
}

Tensor CpuBackend::binary(const Tensor& a, const Tensor& b, bool multiply) {
  const int64_t nb = b.n_elements();
  need(nb == a.n_elements() || nb == a.ne[0], multiply ? "mul" : "add",
       cat(shape_string(a), " with ", shape_string(b)));
  Tensor y = scratch(gguf::Type::F32, a.ne);
  (multiply ? ops::mul : ops::add)(f32(a), f32(b), nb, out_f32(y), a.n_elements());
  return y;
}

Tensor CpuBackend::add(const Tensor& a, const Tensor& b) {
  return binary(a, b, false);
}
Tensor CpuBackend::mul(const Tensor& a, const Tensor& b) {
  return binary(a, b, true);
}

Tensor CpuBackend::add_id(const Tensor& a, const Tensor& b, const Tensor& ids) {
  const int64_t N = a.ne[0], E = b.ne[1];
  need(b.ne[0] == N && ids.ne[0] == a.ne[1] && ids.ne[1] == a.ne[2], "add_id",
       cat(shape_string(a), " + ", shape_string(b), " by ", shape_string(ids)));
  const float *ad = f32(a), *bd = f32(b);
  const int32_t* id = i32(ids);
  Tensor y = scratch(gguf::Type::F32, a.ne);
  float* yd = out_f32(y);
  for (int64_t i = 0; i < ids.n_elements(); ++i) {
    need(id[i] >= 0 && id[i] < E, "add_id", cat("expert id ", id[i], " outside [0, ", E, ")"));
    ops::add(ad + i * N, bd + id[i] * N, N, yd + i * N, N);
  }
  return y;
}

Tensor CpuBackend::scale(const Tensor& a, float s) {
  Tensor y = scratch(gguf::Type::F32, a.ne);
  ops::scale(f32(a), s, out_f32(y), a.n_elements());
  return y;
}

Tensor CpuBackend::softcap(const Tensor& a, float cap) {
  Tensor y = scratch(gguf::Type::F32, a.ne);
  ops::softcap(f32(a), cap, out_f32(y), a.n_elements());
  return y;
}

Tensor CpuBackend::rmsnorm(const Tensor& x, const Tensor* w, float eps, const Tensor* add) {
  const int64_t n = x.ne[0];
  if (w) need(w->n_elements() == n, "rmsnorm", cat(shape_string(x), " by ", shape_string(*w)));
  if (add)
    need(add->ne == x.ne, "rmsnorm", cat("add ", shape_string(*add), " to ", shape_string(x)));
  const float* xd = f32(x);
  const float* wd = w ? f32(*w) : nullptr;
  Tensor y = scratch(gguf::Type::F32, x.ne);
  float* yd = out_f32(y);
  for (int64_t r = 0; r < x.n_rows(); ++r) ops::rmsnorm(xd + r * n, wd, yd + r * n, n, eps);
  return add ? this->add(y, *add) : y;
}

Tensor CpuBackend::rope(const Tensor& x, const Tensor& pos, const Tensor* freq_factors,
                        const ops::RopeParams& p) {
  const int64_t head_dim = x.ne[0], n_head = x.ne[1], T = x.ne[2];
  need(pos.n_elements() == T && p.n_dims > 0 && p.n_dims % 2 == 0 && p.n_dims <= head_dim, "rope",
       cat("x ", shape_string(x), " pos ", shape_string(pos), " n_dims ", p.n_dims));
  if (freq_factors) need(freq_factors->n_elements() >= p.n_dims / 2, "rope", "freq_factors");
  const float* ff = freq_factors ? f32(*freq_factors) : nullptr;
  const int32_t* pd = i32(pos);
  Tensor y = scratch(gguf::Type::F32, x.ne);
  float* yd = out_f32(y);
  std::memcpy(yd, f32(x), size_t(x.n_elements()) * sizeof(float));
  std::vector<float> cs(size_t(p.n_dims));
  for (int64_t t = 0; t < T; ++t) {
    ops::rope_cache(p, pd[t], ff, cs.data());
    for (int64_t h = 0; h < n_head; ++h)
      ops::rope_head(p, cs.data(), yd + (t * n_head + h) * head_dim, head_dim);
  }
  return y;
}

void CpuBackend::kv_store(const Tensor& cache, const Tensor& k, int32_t pos0) {
  const int64_t width = cache.ne[0], n_cells = cache.ne[1];
  const int64_t T = k.n_elements() / width;
  need(k.n_elements() == width * T && pos0 >= 0, "kv_store",
       cat("cache ", shape_string(cache), " k ", shape_string(k)));
  std::byte* c = storage(cache).data();
  const float* kd = f32(k);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t cell = (pos0 + t) % n_cells;
    if (cache.type == gguf::Type::F16) {
      auto* h = reinterpret_cast<uint16_t*>(c) + cell * width;
      for (int64_t i = 0; i < width; ++i) h[i] = quant::f32_to_f16(kd[t * width + i]);
    } else {
      need(cache.type == gguf::Type::F32, "kv_store", "cache must be F16 or F32");
      std::memcpy(reinterpret_cast<float*>(c) + cell * width, kd + t * width,
                  size_t(width) * sizeof(float));
    }
  }
}

Backend::QK CpuBackend::rope_qk(const Tensor& q_in, const Tensor& k_in, const Tensor& pos,
                                const Tensor* freq_factors, const ops::RopeParams& p,
                                const KvStore* store, const QkNorm* norm) {
  need(q_in.ne[0] == k_in.ne[0] && q_in.ne[2] == k_in.ne[2], "rope_qk",
       cat("q ", shape_string(q_in), " k ", shape_string(k_in)));
  const Tensor q = norm ? rmsnorm(q_in, &norm->q, norm->eps) : q_in;
  const Tensor k = norm ? rmsnorm(k_in, &norm->k, norm->eps) : k_in;
  if (!store) return {rope(q, pos, freq_factors, p), rope(k, pos, freq_factors, p)};
  need(store->v.ne == k.ne && store->pos0 >= 0, "rope_qk",
       cat("v ", shape_string(store->v), " k ", shape_string(k), " pos0 ", store->pos0));
  const int64_t T = q.ne[2];
  std::vector<int32_t> cache_pos(static_cast<size_t>(T));
  std::iota(cache_pos.begin(), cache_pos.end(), store->pos0);
  const Tensor at = upload_i32(*this, cache_pos);
  QK out{rope(q, at, freq_factors, p), rope(k, at, freq_factors, p)};
  kv_store(store->k_cache, out.k, store->pos0);
  kv_store(store->v_cache, store->v, store->pos0);
  return out;
}

Tensor CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& k_cache, const Tensor& v_cache, const Tensor* sinks,
                             const ops::AttentionParams& p) {
  const int64_t head_dim = q.ne[0], n_head = q.ne[1], T = q.ne[2], n_head_kv = k.ne[1];
  need(k.ne[0] == head_dim && k.ne[2] == T && v.ne == k.ne && n_head_kv > 0 &&
           n_head % n_head_kv == 0 && k_cache.ne[0] == head_dim * n_head_kv &&
           v_cache.ne == k_cache.ne,
       "attention",
       cat("q ", shape_string(q), " k ", shape_string(k), " cache ", shape_string(k_cache)));
  if (sinks) need(sinks->n_elements() == n_head, "attention", "one sink per head");
  auto view = [&](const Tensor& c) {
    return ops::KvView{storage(c).data(), c.type == gguf::Type::F16, c.ne[0], c.ne[1]};
  };
  Tensor y = scratch(gguf::Type::F32, {head_dim * n_head, T, 1, 1});
  ops::attention(f32(q), f32(k), f32(v), view(k_cache), view(v_cache),
                 sinks ? f32(*sinks) : nullptr, head_dim, n_head, n_head_kv, T, p, out_f32(y),
                 n_threads_);
  return y;
}

Tensor CpuBackend::gated(
    const Tensor& gate, const Tensor& up,
    const std::function<void(const float*, const float*, float*, int64_t)>& f) {
  need(gate.ne == up.ne, "glu", cat(shape_string(gate), " and ", shape_string(up)));
  Tensor y = scratch(gguf::Type::F32, gate.ne);
  f(f32(gate), f32(up), out_f32(y), gate.n_elements());
  return y;
}

Tensor CpuBackend::swiglu(const Tensor& gate, const Tensor& up) {
  return gated(gate, up, ops::swiglu);
}

Tensor CpuBackend::geglu(const Tensor& gate, const Tensor& up) {
  return gated(gate, up, ops::geglu);
}

Tensor CpuBackend::swiglu_oai(const Tensor& gate, const Tensor& up, float alpha, float limit) {
  return gated(gate, up, [&](const float* g, const float* u, float* y, int64_t n) {
    ops::swiglu_oai(g, u, y, n, alpha, limit);
  });
}

Backend::Route CpuBackend::moe_route(const Tensor& logits, int k) {
  const int64_t E = logits.ne[0], T = logits.n_rows();
  need(k >= 1 && k <= E, "moe_route", cat("k ", k, " of ", E, " experts"));
  const float* l = f32(logits);
  Route r{scratch(gguf::Type::I32, {k, T, 1, 1}), scratch(gguf::Type::F32, {k, T, 1, 1})};
  auto* ids = reinterpret_cast<int32_t*>(storage(r.ids).data());
  float* w = out_f32(r.weights);
  for (int64_t t = 0; t < T; ++t) ops::moe_route(l + t * E, E, k, ids + t * k, w + t * k);
  return r;
}

Tensor CpuBackend::moe_combine(const Tensor& y, const Tensor& weights, const Tensor* add) {
  const int64_t N = y.ne[0], k = y.ne[1], T = y.ne[2];
  need(weights.ne[0] == k && weights.ne[1] == T, "moe_combine",
       cat(shape_string(y), " by ", shape_string(weights)));
  if (add)
    need(add->n_elements() == N * T, "moe_combine",
         cat("add ", shape_string(*add), " for a result of ", N, " x ", T));
  const float *yd = f32(y), *wd = f32(weights);
  const float* ad = add ? f32(*add) : nullptr;
  Tensor out = scratch(gguf::Type::F32, {N, T, 1, 1});
  float* od = out_f32(out);
  std::fill(od, od + N * T, 0.0f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t n = 0; n < N; ++n) od[t * N + n] += wd[t * k + j] * yd[(t * k + j) * N + n];
  // The residual after the whole sum, as the unfused add(moe_combine(...), x) rounds.
  if (ad)
    for (int64_t i = 0; i < N * T; ++i) od[i] += ad[i];
  return out;
}

Tensor CpuBackend::argmax(const Tensor& x) {
  const int64_t V = x.ne[0], T = x.n_rows();
  const float* xd = f32(x);
  Tensor y = scratch(gguf::Type::I32, {T, 1, 1, 1});
  auto* out = reinterpret_cast<int32_t*>(storage(y).data());
  for (int64_t t = 0; t < T; ++t) out[t] = ops::argmax(xd + t * V, V);
  return y;
}

Tensor CpuBackend::top_k(const Tensor& x, int k) {
  const int64_t V = x.ne[0], T = x.n_rows();
  need(k >= 1 && k <= V, "top_k", cat("k ", k, " of ", V));
  const float* xd = f32(x);
  Tensor y = scratch(gguf::Type::I32, {k, T, 1, 1});
  auto* out = reinterpret_cast<int32_t*>(storage(y).data());
  for (int64_t t = 0; t < T; ++t) ops::top_k(xd + t * V, V, k, out + t * k);
  return y;
}

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
  return std::make_unique<CpuBackend>(n_threads);
}

}  // namespace ml
