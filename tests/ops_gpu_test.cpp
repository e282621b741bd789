// Per-op tests of the Vulkan backend against the CPU backend (whose ops are the references
// of libml/src/ops: ops::rmsnorm, rope_cache/rope_head, attention, swiglu, ...): the same
// inputs go to both backends, the same op runs on each, the outputs must agree (float ops to
// a relative 1e-4, index ops exactly). Small shapes: this runs on lavapipe under validation.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "backend_util.h"
#include "ml/backend.h"
#include "ml/quant.h"

namespace ml {
namespace {

using gguf::Type;

using test::put;
using test::put_f32;
using test::put_i32;
using test::randoms;

// Runs op on the CPU and the Vulkan backend and compares what it returns.
class OpsGpu : public ::testing::Test {
 protected:
  using Op = std::function<Tensor(Backend&)>;

  void expect_close(const Op& op, double rel = 1e-4) {
    const Tensor a = op(*cpu_), b = op(*gpu_);
    ASSERT_EQ(a.ne, b.ne);
    const auto x = read_f32(*cpu_, a), y = read_f32(*gpu_, b);
    double scale = 1e-6;
    for (float f : x) scale = std::max(scale, double(std::fabs(f)));
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_FALSE(std::isnan(y[i])) << "at " << i;
      const double d = std::fabs(double(x[i]) - double(y[i]));
      if (d > worst) worst = d, at = i;
    }
    EXPECT_LE(worst, rel * scale) << "at " << at << ": cpu " << x[at] << " gpu " << y[at];
  }
  void expect_equal_i32(const Op& op) {
    const Tensor a = op(*cpu_), b = op(*gpu_);
    ASSERT_EQ(a.ne, b.ne);
    EXPECT_EQ(read_i32(*cpu_, a), read_i32(*gpu_, b));
  }

  std::unique_ptr<Backend> cpu_ = make_cpu_backend(1);
  std::unique_ptr<Backend> gpu_ = make_vulkan_backend();
};

TEST_F(OpsGpu, GetRowsOfQuantizedAndFloatTables) {
  for (Type type : {Type::Q4_K, Type::Q8_0, Type::F16, Type::F32}) {
    const int64_t K = type == Type::F32 ? 12 : 256, R = 5;  // F32 rows of 12: per-value path
    const auto table = quant::random_blocks(type, uint64_t(K * R), 7);
    expect_close(
        [&](Backend& be) {
          return be.get_rows(put(be, type, {K, R, 1, 1}, table), put_i32(be, {3}, {4, 0, 4}));
        },
        0.0);
  }
}

TEST_F(OpsGpu, MatmulAndExpertMatmul) {
  const auto w = quant::random_blocks(Type::Q4_0, 64 * 48 * 3, 3);
  const auto x = randoms(64 * 2 * 2, 4);
  expect_close([&](Backend& be) {
    return be.matmul(put(be, Type::Q4_0, {64, 48, 1, 1}, std::span(w).first(w.size() / 3)),
                     put_f32(be, {64, 2}, std::vector<float>(x.begin(), x.begin() + 128)));
  });
  expect_close([&](Backend& be) {
    return be.matmul_id(put(be, Type::Q4_0, {64, 48, 3, 1}, w), put_f32(be, {64, 2, 2}, x),
                        put_i32(be, {2, 2}, {2, 0, 1, 1}));
  });
}

TEST_F(OpsGpu, AddMulBroadcastScaleSoftcap) {
  const auto a = randoms(6 * 4, 1, 5.0f), b = randoms(6 * 4, 2), row = randoms(6, 3);
  expect_close([&](Backend& be) { return be.add(put_f32(be, {6, 4}, a), put_f32(be, {6, 4}, b)); });
  expect_close([&](Backend& be) { return be.mul(put_f32(be, {6, 4}, a), put_f32(be, {6}, row)); });
  expect_close([&](Backend& be) { return be.scale(put_f32(be, {6, 4}, a), 0.37f); });
  expect_close([&](Backend& be) { return be.softcap(put_f32(be, {6, 4}, a), 3.0f); });
}

TEST_F(OpsGpu, AddIdPerExpertBias) {
  const auto a = randoms(8 * 2 * 3, 1), b = randoms(8 * 4, 2);
  expect_close([&](Backend& be) {
    return be.add_id(put_f32(be, {8, 2, 3}, a), put_f32(be, {8, 4}, b),
                     put_i32(be, {2, 3}, {3, 0, 1, 1, 2, 3}));
  });
}

TEST_F(OpsGpu, RmsNormWithAndWithoutWeight) {
  const auto x = randoms(100 * 3, 1, 4.0f), w = randoms(100, 2);
  expect_close([&](Backend& be) {
    const Tensor wt = put_f32(be, {100}, w);
    return be.rmsnorm(put_f32(be, {100, 3}, x), &wt, 1e-6f);
  });
  expect_close([&](Backend& be) { return be.rmsnorm(put_f32(be, {100, 3}, x), nullptr, 1e-5f); });
}

// Rows of whole 32-value blocks and at most kMatvecMaxTokens rows take the kernel that keeps
// the row in registers (rmsnorm.comp REGISTERS), more rows the general one; both with the
// residual added in the kernel (ADD): the same as rmsnorm, then add on the CPU; and
// rmsnorm_add_norm (NORM2 in registers, two ops otherwise), its sum and its norm.
TEST_F(OpsGpu, RmsNormRowsInRegistersAndWithResidual) {
  for (const int64_t n : {64, 1152, 2048, 4096, 5120})
    for (const int64_t rows : {1, 3, 8, 9}) {
      SCOPED_TRACE(cat("n ", n, " rows ", rows));
      const auto x = randoms(size_t(n * rows), 1, 4.0f), w = randoms(size_t(n), 2),
                 r = randoms(size_t(n * rows), 3, 2.0f);
      expect_close([&](Backend& be) {
        const Tensor wt = put_f32(be, {n}, w);
        return be.rmsnorm(put_f32(be, {n, rows}, x), &wt, 1e-6f);
      });
      expect_close([&](Backend& be) {
        return be.rmsnorm(put_f32(be, {n, rows}, x), nullptr, 1e-5f);
      });
      expect_close([&](Backend& be) {
        const Tensor wt = put_f32(be, {n}, w), rt = put_f32(be, {n, rows}, r);
        return be.rmsnorm(put_f32(be, {n, rows}, x), &wt, 1e-6f, &rt);
      });
      const auto w2 = randoms(size_t(n), 4);
      for (const bool second : {false, true})
        expect_close([&](Backend& be) {
          const Tensor wt = put_f32(be, {n}, w), rt = put_f32(be, {n, rows}, r);
          const Tensor w2t = put_f32(be, {n}, w2);
          const Backend::NormSum s =
              be.rmsnorm_add_norm(put_f32(be, {n, rows}, x), wt, rt, w2t, 1e-6f);
          return second ? s.norm : s.sum;
        });
    }
}

TEST_F(OpsGpu, RopeNormalNeoxPartialAndYarn) {
  const int64_t head_dim = 16, n_head = 3, T = 4;
  const auto x = randoms(size_t(head_dim * n_head * T), 5);
  const std::vector<int32_t> pos = {0, 1, 7, 40};
  const auto ff = std::vector<float>{1, 1, 2, 4, 8, 8, 8, 8};
  for (const auto& p : test::rope_variants())
    for (bool with_ff : {false, true})
      expect_close([&](Backend& be) {
        const Tensor f = put_f32(be, {8}, ff);
        return be.rope(put_f32(be, {head_dim, n_head, T}, x), put_i32(be, {T}, pos),
                       with_ff ? &f : nullptr, p);
      });
}

TEST_F(OpsGpu, GatedActivations) {
  const auto g = randoms(37, 1, 8.0f), u = randoms(37, 2, 8.0f);
  expect_close([&](Backend& be) { return be.swiglu(put_f32(be, {37}, g), put_f32(be, {37}, u)); });
  expect_close([&](Backend& be) { return be.geglu(put_f32(be, {37}, g), put_f32(be, {37}, u)); });
  expect_close([&](Backend& be) {
    return be.swiglu_oai(put_f32(be, {37}, g), put_f32(be, {37}, u), 1.702f, 7.0f);
  });
}

// A cache filled by kv_store over two batches, then attention of a third batch that reads
// both the cache (wrapping its ring of 8 cells) and its own keys.
void attention_case(Backend& be, Type kv, int32_t n_swa, float softcap, bool sinks, Tensor& out) {
  const int64_t D = 8, H = 4, HK = 2, cells = 8;
  const Tensor kc = be.alloc(kv, {D * HK, cells, 1, 1}, "k_cache");
  const Tensor vc = be.alloc(kv, {D * HK, cells, 1, 1}, "v_cache");
  int32_t pos0 = 0;
  for (int64_t T : {3, 3}) {
    be.kv_store(kc, put_f32(be, {D * HK, T}, randoms(size_t(D * HK * T), 10 + pos0)), pos0);
    be.kv_store(vc, put_f32(be, {D * HK, T}, randoms(size_t(D * HK * T), 20 + pos0)), pos0);
    pos0 += int32_t(T);
  }
  const int64_t T = 2;
  const Tensor q = put_f32(be, {D, H, T}, randoms(size_t(D * H * T), 30, 2.0f));
  const Tensor k = put_f32(be, {D, HK, T}, randoms(size_t(D * HK * T), 31, 2.0f));
  const Tensor v = put_f32(be, {D, HK, T}, randoms(size_t(D * HK * T), 32));
  const Tensor s = put_f32(be, {H}, randoms(size_t(H), 33, 2.0f));
  ops::AttentionParams p;
  p.pos0 = pos0;
  p.n_swa = n_swa;
  p.scale = 0.35f;
  p.softcap = softcap;
  out = be.attention(q, k, v, kc, vc, sinks ? &s : nullptr, p);
}

TEST_F(OpsGpu, KvStoreAndAttentionGqaWindowSoftcapSinks) {
  for (Type kv : {Type::F32, Type::F16})
    for (int32_t n_swa : {0, 4})
      for (bool sinks : {false, true})
        expect_close([&](Backend& be) {
          Tensor out;
          attention_case(be, kv, n_swa, sinks ? 0.0f : 2.5f, sinks, out);
          return out;
        });
}

TEST_F(OpsGpu, KvStoreOfABatchLongerThanTheRing) {
  // 12 tokens into 5 cells from position 3: cells hold the last writer (sequential order).
  const auto k = randoms(8 * 12, 4);
  for (Type kv : {Type::F32, Type::F16}) {
    std::vector<std::vector<std::byte>> caches;
    for (Backend* be : {cpu_.get(), gpu_.get()}) {
      const Tensor cache = be->alloc(kv, {8, 5, 1, 1}, "cache");
      be->upload(cache, std::vector<std::byte>(tensor_bytes(cache)));
      be->kv_store(cache, put_f32(*be, {8, 12}, k), 3);
      caches.emplace_back(tensor_bytes(cache));
      be->read(cache, caches.back());
    }
    EXPECT_EQ(caches[0], caches[1]) << gguf::type_name(kv);
  }
}

TEST_F(OpsGpu, AttentionLongerThanAWorkgroup) {
  // 150 keys: three chunks of the online softmax.
  const int64_t D = 64, H = 2, T = 150;
  const auto q = randoms(size_t(D * H * T), 1), k = randoms(size_t(D * T), 2),
             v = randoms(size_t(D * T), 3);
  expect_close([&](Backend& be) {
    const Tensor cache = be.alloc(Type::F32, {D, 4, 1, 1}, "cache");
    ops::AttentionParams p;
    p.scale = 0.125f;
    return be.attention(put_f32(be, {D, H, T}, q), put_f32(be, {D, 1, T}, k),
                        put_f32(be, {D, 1, T}, v), cache, cache, nullptr, p);
  });
}

TEST_F(OpsGpu, ArgmaxTopKAndMoeRoute) {
  auto x = randoms(300 * 3, 9);
  x[5] = x[200] = 7.0f;  // a tie: the lower index first
  x[300 + 299] = 9.0f;
  expect_equal_i32([&](Backend& be) { return be.argmax(put_f32(be, {300, 3}, x)); });
  expect_equal_i32([&](Backend& be) { return be.top_k(put_f32(be, {300, 3}, x), 10); });
  expect_equal_i32([&](Backend& be) { return be.moe_route(put_f32(be, {300, 3}, x), 4).ids; });
  expect_close([&](Backend& be) { return be.moe_route(put_f32(be, {300, 3}, x), 4).weights; });
}

// A vocabulary-sized row goes through the chunked two-pass top-k: the same ids as the CPU,
// with ties (values rounded to a few levels) broken to the lower index across chunks, the
// largest values placed in one chunk, in the last partial chunk and at chunk edges.
TEST_F(OpsGpu, TopKOfLongRowsInChunks) {
  const int64_t V = 201088;
  auto x = randoms(size_t(V * 2), 4);
  for (float& v : x) v = std::round(v * 8.0f) / 8.0f;
  for (int64_t i :
       {int64_t(0), int64_t(2047), int64_t(2048), int64_t(4095), int64_t(100000), V - 1})
    x[size_t(i)] = 3.0f;
  for (int64_t i = 0; i < 45; ++i) x[size_t(V + 196608 + i)] = 2.0f + float(i % 3);
  for (int k : {1, 40, 64})
    expect_equal_i32([&](Backend& be) { return be.top_k(put_f32(be, {V, 2}, x), k); });
}

TEST_F(OpsGpu, MoeCombine) {
  const auto y = randoms(10 * 3 * 2, 1), w = randoms(3 * 2, 2);
  expect_close([&](Backend& be) {
    return be.moe_combine(put_f32(be, {10, 3, 2}, y), put_f32(be, {3, 2}, w));
  });
}

TEST_F(OpsGpu, ShapeErrorsNameTheOp) {
  const Tensor a = gpu_->alloc(Type::F32, {6, 4, 1, 1}, "a");
  const Tensor b = gpu_->alloc(Type::F32, {5, 1, 1, 1}, "b");
  try {
    gpu_->add(a, b);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ml
