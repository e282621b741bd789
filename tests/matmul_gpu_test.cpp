// GPU matmul kernels (matmul_vec, matmul_tiled, expert matvec, dequant) against the CPU
// reference ml::ops::matmul / matmul_id (ml::quant's float64 dot products) and
// ml::quant::dequantize, for every weight type: single rows, ragged row and token counts,
// k = 2880, the slice path (capped and a real >128 MiB tensor) and limit errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "ml/ops.h"
#include "ml/quant.h"
#include "ml/vk.h"
#include "test_util.h"

namespace ml::ops {
namespace {

using gguf::Type;
using ::testing::HasSubstr;

// |gpu - cpu| <= kTolerance * ||row|| * ||x||: the Cauchy-Schwarz scale of a dot product,
// room for f32 accumulation in a different order.
constexpr double kTolerance = 1e-5;
// matmul_vec_q.comp rounds x to int8 per 32 values (scale amax / 127) and the remainder
// again: the dot product moves by ~1e-5 of the same scale (gate C's 1e-4 must hold); with
// one rounding only (ML_MATVEC kernel 4, llama.cpp's q8_1) by ~1e-3.
constexpr double kQ8Tolerance = 1e-4;
constexpr double kQ8SingleTolerance = 1e-2;

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& f : v) f = u(rng);
  return v;
}

double norm(std::span<const float> v) {
  double s = 0;
  for (float f : v) s += double(f) * f;
  return std::sqrt(s);
}

using test::error_of;

class MatmulGpu : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    device_ = std::make_unique<vk::Device>();
    ring_ = std::make_unique<vk::StagingRing>(*device_, 8 << 20);
  }
  static void TearDownTestSuite() {
    ring_.reset();
    device_.reset();
  }
  void TearDown() override { device_->check(); }

  static std::unique_ptr<vk::Buffer> floats(std::span<const float> v, const char* name) {
    return vk::upload_buffer(*device_, *ring_, v, name);
  }

  // One W x on the GPU against the CPU reference; returns the worst scaled error.
  static double check_matmul(vk::Device& device, vk::StagingRing& ring, Type type, uint64_t m,
                             uint64_t k, uint64_t n, MatmulKernel kernel,
                             size_t* dispatches = nullptr, bool with_x_q = false) {
    const auto w = quant::random_blocks(type, m * k, m * 1000 + k);
    const auto x = random_floats(n * k, n + k);
    std::vector<float> ref(n * m);
    matmul(type, w, m, k, x, n, ref);
    auto wb = upload_weight(device, ring, w, "w");
    auto xb = vk::upload_buffer(device, ring, std::span<const float>(x), "x");
    vk::Buffer yb(device, n * m * 4, vk::Memory::device, "y");
    // x quantized once per matmul (quantize_x.comp) where the integer kernel runs.
    const uint64_t xq_bytes = with_x_q ? quantized_x_bytes(type, k, n) : 0;
    std::unique_ptr<vk::Buffer> xq;
    if (xq_bytes) xq = std::make_unique<vk::Buffer>(device, xq_bytes, vk::Memory::device, "x_q");
    QuantizedX x_q{xq.get()};
    vk::Recorder rec(device);
    matmul(rec, {wb.get(), 0, type, k, m}, *xb, n, yb, kernel, xq ? &x_q : nullptr);
    if (dispatches) *dispatches = rec.n_dispatches();
    rec.submit();
    const auto y = vk::download<float>(ring, yb, n * m);
    const uint64_t rb = gguf::row_bytes(type, k);
    double worst = 0;
    for (uint64_t r = 0; r < m; ++r) {
      const double rn = norm(quant::dequantize(type, std::span(w).subspan(r * rb, rb), k));
      for (uint64_t t = 0; t < n; ++t) {
        const double scale = rn * norm(std::span(x).subspan(t * k, k));
        const double e = std::fabs(double(y[t * m + r]) - ref[t * m + r]) / (scale > 0 ? scale : 1);
        worst = std::max(worst, std::isnan(e) ? INFINITY : e);
      }
    }
    return worst;
  }

  static uint64_t block(Type type) { return gguf::traits(type).block_size; }

  static std::unique_ptr<vk::Device> device_;
  static std::unique_ptr<vk::StagingRing> ring_;
};
std::unique_ptr<vk::Device> MatmulGpu::device_;
std::unique_ptr<vk::StagingRing> MatmulGpu::ring_;

TEST_F(MatmulGpu, EveryTypeIsSupported) {
  for (const char* name : {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K",
                           "Q3_K", "Q4_K", "Q5_K", "Q6_K", "MXFP4", "IQ4_NL", "IQ4_XS"})
    EXPECT_TRUE(gpu_supports(*gguf::type_from_name(name))) << name;
  EXPECT_FALSE(gpu_supports(Type::Q8_1));
}

// Shapes per type: a single row of one block, ragged row counts (not multiples of the
// workgroup's rows), rows of 2880 (gpt-oss; block-32 and float types) or several 256-blocks.
std::vector<std::pair<uint64_t, uint64_t>> shapes(Type type) {
  const uint64_t b = gguf::traits(type).block_size;
  std::vector<std::pair<uint64_t, uint64_t>> out = {{1, std::max<uint64_t>(b, 32)},
                                                    {37, 3 * std::max<uint64_t>(b, 32)}};
  if (2880 % b == 0) out.push_back({5, 2880});
  if (b == 256) out.push_back({3, 256 * 5});
  if (b == 1) out.push_back({7, 13}), out.push_back({2, 1});  // ragged float rows
  return out;
}

TEST_F(MatmulGpu, MatvecEveryTypeAndShape) {
  for (Type type : gpu_types())
    for (auto [m, k] : shapes(type)) {
      SCOPED_TRACE(cat(gguf::type_name(type), " m=", m, " k=", k));
      EXPECT_LE(check_matmul(*device_, *ring_, type, m, k, 1, MatmulKernel::vec), kTolerance);
    }
}

// Float matrices of 65536 rows or more (LM heads) take matmul_vec_staged.comp; block types
// take it at every size for Q3_K..Q6_K and Q5_1 (both kernels are in the table above).
TEST_F(MatmulGpu, MatvecTallFloatMatrix) {
  for (Type type : {Type::F16, Type::F32}) {
    SCOPED_TRACE(gguf::type_name(type));
    EXPECT_LE(check_matmul(*device_, *ring_, type, 65536 + 5, 40, 1, MatmulKernel::vec),
              kTolerance);
  }
}

TEST_F(MatmulGpu, MatvecSeveralTokens) {
  for (Type type : {Type::Q4_K, Type::MXFP4, Type::F16}) {
    SCOPED_TRACE(gguf::type_name(type));
    EXPECT_LE(check_matmul(*device_, *ring_, type, 11, 512, 3, MatmulKernel::vec), kTolerance);
  }
}

// matmul_vec_q.comp against the same CPU reference, for every type it has, with the packed
// int8x4 products (where the device has them) and with the plain-integer fallback.
// With x_q (and a pre-quantized config: the default, 5, 6) quantize_x.comp runs first: two
// dispatches; without it, or with an in-kernel config, one. The same tolerances hold: the
// blocks are the in-kernel rounding's.
TEST_F(MatmulGpu, MatvecQ8EveryTypeAndShape) {
  const std::pair<const char*, bool> configs[] = {
      {"", true},         {"", false},        {"3,0,4,0", false}, {"2,64,3,0", false},
      {"4,0,2,0", false}, {"5,64,8,0", true}, {"6,0,3,0", true},  {"2,0,4,0", true},
      // FORM 1 and 2 (every row loaded, the ragged last workgroup's extra rows clamped to the
      // last row): with x_q, in-kernel rounding and the plain-integer fallback.
      {"5,0,4,0,1", true}, {"5,64,8,0,2", true}, {"3,0,3,0,2", false}, {"2,0,2,0,1", false},
      {"5,0,0,0,0", true}};  // the type's rows, FORM 0
  for (auto [config, with_x_q] : configs) {
    if (*config) setenv("ML_MATVEC", config, 1);
    const bool single = config[0] == '4' || config[0] == '6';
    const bool pre = with_x_q && (!*config || config[0] == '5' || config[0] == '6');
    const double tolerance = single ? kQ8SingleTolerance : kQ8Tolerance;
    for (Type type : gpu_types()) {
      if (!gpu_supports_q8(type)) continue;
      for (auto [m, k] : shapes(type)) {
        SCOPED_TRACE(cat(gguf::type_name(type), " m=", m, " k=", k, " ML_MATVEC=", config,
                         with_x_q ? " x_q" : ""));
        size_t dispatches = 0;
        const double e = check_matmul(*device_, *ring_, type, m, k, 1, MatmulKernel::vec_q8,
                                      &dispatches, with_x_q);
        EXPECT_LE(e, tolerance);
        EXPECT_GT(e, 0.0);  // x was rounded: the float kernel did not run
        // x quantized first (quantize_x), then the integer matvec; every type by default.
        EXPECT_EQ(dispatches, pre ? 2u : 1u);
      }
    }
    unsetenv("ML_MATVEC");
  }
  for (bool with_x_q : {false, true})
    for (Type type : {Type::Q4_K, Type::MXFP4, Type::Q5_0}) {
      SCOPED_TRACE(cat(gguf::type_name(type), " 3 tokens", with_x_q ? " x_q" : ""));
      EXPECT_LE(
          check_matmul(*device_, *ring_, type, 11, 512, 3, MatmulKernel::vec_q8, nullptr, with_x_q),
          kQ8Tolerance);
    }
  EXPECT_LE(check_matmul(*device_, *ring_, Type::Q6_K, 7, 512, 3, MatmulKernel::automatic),
            kQ8Tolerance);
  EXPECT_THAT(
      error_of([&] { check_matmul(*device_, *ring_, Type::F16, 1, 32, 1, MatmulKernel::vec_q8); }),
      HasSubstr("no integer matvec for weight type F16"));
}

// matmul_vec_q.comp with several groups of rows per workgroup (LANES invocations each, fewer
// than a row's units or more): rows of 16-224 units (k = 1024 Q4_K, 2048, 1152 Q5_0, 2880 Q8_0
// and MXFP4: odd unit counts; Q4_K's 14336, 3-4 units per invocation by default), row counts
// that leave the last workgroup ragged, the sums through subgroup clusters, whole subgroups
// and shared memory (shared 1), with the reduce-scatter (the default where rows are a power
// of two up to the cluster; 8 rows in clusters of 8) and without it (shared 2), every FORM.
TEST_F(MatmulGpu, MatvecQ8RowGroups) {
  const char* configs[] = {"",           "5,64,4,0,1,16",   "5,64,2,0,2,8",  "5,128,3,0,0,32",
                           "5,64,1,0,1,4", "5,256,4,0,1,64", "5,128,2,0,2,128", "5,64,4,0,1,16,1",
                           "3,64,3,0,2,32,1", "2,0,4,0,1,0", "5,64,4,0,1,16,2",
                           "5,128,2,0,2,128,2", "5,64,8,0,2,32,2", "5,64,8,0,2,8"};
  const std::pair<Type, std::pair<uint64_t, uint64_t>> cases[] = {
      {Type::Q4_K, {37, 1024}}, {Type::Q4_K, {13, 2048}}, {Type::Q4_K, {9, 14336}},
      {Type::Q6_K, {21, 1024}},
      {Type::Q5_0, {29, 1152}}, {Type::Q8_0, {19, 2880}}, {Type::MXFP4, {11, 2880}},
      {Type::Q2_K, {7, 1024}},  {Type::Q3_K, {11, 2048}}, {Type::IQ4_XS, {9, 1280}}};
  for (const char* config : configs) {
    if (*config) setenv("ML_MATVEC", config, 1);
    for (auto [type, shape] : cases) {
      const auto [m, k] = shape;
      SCOPED_TRACE(cat(gguf::type_name(type), " m=", m, " k=", k, " ML_MATVEC=", config));
      const double e =
          check_matmul(*device_, *ring_, type, m, k, 1, MatmulKernel::vec_q8, nullptr, true);
      EXPECT_LE(e, kQ8Tolerance);
      EXPECT_GT(e, 0.0);
    }
    unsetenv("ML_MATVEC");
  }
}

// One QuantizedX shared by matmuls of the same x (the backend's q/k/v and gate/up): the
// first records quantize_x.comp, the others read its blocks; a matmul that needs the other
// variant (ML_MATVEC kernel 6: no residual) quantizes again. Every result against the CPU.
TEST_F(MatmulGpu, QuantizedXIsShared) {
  const uint64_t k = 512;
  const auto x = random_floats(k, 9);
  auto xb = floats(x, "x");
  vk::Buffer xq(*device_, quantized_x_bytes(Type::Q4_K, k, 1), vk::Memory::device, "x_q");
  QuantizedX x_q{&xq};
  struct Case {
    Type type;
    uint64_t m;
    const char* config;
    size_t dispatches;  // recorded by this matmul
  };
  const Case cases[] = {{Type::Q4_K, 13, "", 2},        {Type::Q6_K, 7, "", 1},
                        {Type::MXFP4, 5, "5,0,4,0", 1}, {Type::Q4_0, 9, "6,0,4,0", 2},
                        {Type::Q4_0, 9, "6,0,2,0", 1},  {Type::Q5_0, 3, "", 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(cat(gguf::type_name(c.type), " ML_MATVEC=", c.config));
    if (*c.config) setenv("ML_MATVEC", c.config, 1);
    const auto w = quant::random_blocks(c.type, c.m * k, c.m);
    std::vector<float> ref(c.m);
    matmul(c.type, w, c.m, k, x, 1, ref);
    auto wb = upload_weight(*device_, *ring_, w, "w");
    vk::Buffer yb(*device_, c.m * 4, vk::Memory::device, "y");
    vk::Recorder rec(*device_);
    matmul(rec, {wb.get(), 0, c.type, k, c.m}, *xb, 1, yb, MatmulKernel::automatic, &x_q);
    unsetenv("ML_MATVEC");
    EXPECT_EQ(rec.n_dispatches(), c.dispatches);
    rec.submit();
    const auto y = vk::download<float>(*ring_, yb, c.m);
    const uint64_t rb = gguf::row_bytes(c.type, k);
    const bool single = c.config[0] == '6';
    for (uint64_t r = 0; r < c.m; ++r) {
      const double scale =
          norm(quant::dequantize(c.type, std::span(w).subspan(r * rb, rb), k)) * norm(x);
      EXPECT_LE(std::fabs(y[r] - ref[r]) / scale, single ? kQ8SingleTolerance : kQ8Tolerance)
          << "row " << r;
    }
    EXPECT_EQ(x_q.filled, single ? QuantizedX::plain : QuantizedX::residual);
  }
}

TEST_F(MatmulGpu, TiledEveryType) {
  // 70 rows: two row tiles, the second ragged; 9 tokens: one ragged token tile.
  for (Type type : gpu_types()) {
    const uint64_t k = block(type) == 256 ? 512 : 96;
    SCOPED_TRACE(cat(gguf::type_name(type), " k=", k));
    EXPECT_LE(check_matmul(*device_, *ring_, type, 70, k, 9, MatmulKernel::tiled), kTolerance);
  }
}

TEST_F(MatmulGpu, TiledShapes) {
  EXPECT_LE(check_matmul(*device_, *ring_, Type::Q8_0, 3, 2880, 33, MatmulKernel::tiled),
            kTolerance);
  EXPECT_LE(check_matmul(*device_, *ring_, Type::F32, 65, 13, 40, MatmulKernel::tiled), kTolerance);
  EXPECT_LE(check_matmul(*device_, *ring_, Type::Q6_K, 1, 256, 12, MatmulKernel::automatic),
            kTolerance);
}

TEST_F(MatmulGpu, DequantizeEqualsCpuReference) {
  for (Type type : gpu_types()) {
    const uint64_t m = 5, k = block(type) == 1 ? 13 : 2 * std::max<uint64_t>(block(type), 32);
    SCOPED_TRACE(gguf::type_name(type));
    const auto w = quant::random_blocks(type, m * k, 77);
    const auto ref = quant::dequantize(type, w, m * k);
    auto wb = upload_weight(*device_, *ring_, w, "w");
    vk::Buffer yb(*device_, m * k * 4, vk::Memory::device, "deq");
    vk::Recorder rec(*device_);
    dequantize(rec, {wb.get(), 0, type, k, m}, yb);
    rec.submit();
    const auto y = vk::download<float>(*ring_, yb, m * k);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      worst = std::max(worst, double(std::fabs(y[i] - ref[i])));
      scale = std::max(scale, double(std::fabs(ref[i])));
    }
    EXPECT_LE(worst, 1e-6 * scale);  // equal up to a fused multiply-add's single rounding
  }
}

// W[ids[t][s]] x[t] (or x[t][s]) against the CPU matmul_id.
double check_expert(vk::Device& device, vk::StagingRing& ring, Type type, uint64_t n_expert,
                    uint64_t m, uint64_t k, uint64_t n_used, uint64_t n, bool x_per_slot,
                    size_t* dispatches = nullptr, MatmulKernel kernel = MatmulKernel::vec,
                    bool with_x_q = false) {
  const auto w = quant::random_blocks(type, n_expert * m * k, 5);
  const auto x = random_floats(n * (x_per_slot ? n_used : 1) * k, 6);
  std::vector<int32_t> ids(n * n_used);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7 + 3) % n_expert);
  std::vector<float> ref(n * n_used * m);
  matmul_id(type, w, n_expert, m, k, x, x_per_slot, ids, n_used, n, ref);
  auto wb = upload_weight(device, ring, w, "experts");
  auto xb = vk::upload_buffer(device, ring, std::span<const float>(x), "x");
  auto ib = vk::upload_buffer(device, ring, std::span<const int32_t>(ids), "ids");
  vk::Buffer yb(device, ref.size() * 4, vk::Memory::device, "y");
  const uint64_t xq_bytes = with_x_q ? quantized_x_bytes(type, k, x.size() / k) : 0;
  std::unique_ptr<vk::Buffer> xq;
  if (xq_bytes) xq = std::make_unique<vk::Buffer>(device, xq_bytes, vk::Memory::device, "x_q");
  QuantizedX x_q{xq.get()};
  vk::Recorder rec(device);
  matmul_id(rec, {wb.get(), 0, type, k, m, n_expert}, *xb, x_per_slot, *ib, n_used, n, yb, kernel,
            xq ? &x_q : nullptr);
  if (dispatches) *dispatches = rec.n_dispatches();
  rec.submit();
  const auto y = vk::download<float>(ring, yb, ref.size());
  // The integer kernel's error scales with |row| |x| (see kQ8Tolerance): bound both.
  double q8_scale = 0;
  if (kernel != MatmulKernel::vec) {
    const uint64_t rb = gguf::row_bytes(type, k);
    double rn = 0, xn = 0;
    for (uint64_t r = 0; r < n_expert * m; ++r)
      rn = std::max(rn, norm(quant::dequantize(type, std::span(w).subspan(r * rb, rb), k)));
    for (uint64_t v = 0; v < x.size() / k; ++v)
      xn = std::max(xn, norm(std::span(x).subspan(v * k, k)));
    q8_scale = rn * xn;
  }
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double e =
        std::fabs(double(y[i]) - ref[i]) / (q8_scale > 0 ? q8_scale : std::fabs(ref[i]) + 1.0);
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  return worst;
}

TEST_F(MatmulGpu, ExpertMatvecSelectsRowsById) {
  for (Type type : {Type::MXFP4, Type::Q8_0, Type::Q4_K, Type::F16})
    for (bool per_slot : {false, true}) {
      const uint64_t k = block(type) == 256 ? 512 : 2880 / 15;  // 192: gpt-oss-tiny's expert ff
      SCOPED_TRACE(cat(gguf::type_name(type), per_slot ? " x per slot" : " shared x"));
      EXPECT_LE(check_expert(*device_, *ring_, type, 5, 19, k, 2, 3, per_slot), 1e-5);
      if (gpu_supports_q8(type))
        for (bool with_x_q : {false, true}) {
          size_t dispatches = 0;
          EXPECT_LE(check_expert(*device_, *ring_, type, 5, 19, k, 2, 3, per_slot, &dispatches,
                                 MatmulKernel::automatic, with_x_q),
                    kQ8Tolerance);
          EXPECT_EQ(dispatches, with_x_q ? 2u : 1u) << with_x_q;
        }
    }
}

// gpt-oss's expert rows (2880 values: 90 MXFP4 blocks) take the 128-invocation workgroup that
// covers every block in one pass (record_vec).
TEST_F(MatmulGpu, ExpertMatvecMxfp4GptOssRows) {
  for (bool per_slot : {false, true}) {
    SCOPED_TRACE(per_slot ? "x per slot" : "shared x");
    EXPECT_LE(check_expert(*device_, *ring_, Type::MXFP4, 5, 7, 2880, 2, 2, per_slot, nullptr,
                           MatmulKernel::automatic, true),
              kQ8Tolerance);
  }
}

// The expert kernel with groups of rows (ML_MATVEC_ID workgroup,rows,lanes): gpt-oss's rows
// of 90 blocks in one group per 128 invocations, in groups of 32 and 16 (several passes), and
// a ragged last workgroup (7 rows).
TEST_F(MatmulGpu, ExpertMatvecRowGroups) {
  for (const char* config : {"128,1,32", "64,2,16", "128,4,128", "64,3,8"})
    for (Type type : {Type::MXFP4, Type::Q8_0}) {
      SCOPED_TRACE(cat(gguf::type_name(type), " ML_MATVEC_ID=", config));
      setenv("ML_MATVEC_ID", config, 1);
      EXPECT_LE(check_expert(*device_, *ring_, type, 5, 7, 2880, 2, 2, true, nullptr,
                             MatmulKernel::automatic, true),
                kQ8Tolerance);
      unsetenv("ML_MATVEC_ID");
    }
}

TEST_F(MatmulGpu, ExpertIdOutOfRangeGivesNaN) {
  const uint64_t m = 4, k = 32;
  const auto w = quant::random_blocks(Type::Q8_0, 2 * m * k, 1);
  const std::vector<float> x = random_floats(k, 2);
  const std::vector<int32_t> ids = {1, 7};
  auto wb = upload_weight(*device_, *ring_, w, "experts");
  auto xb = floats(x, "x");
  auto ib = vk::upload_buffer(*device_, *ring_, std::span<const int32_t>(ids), "ids");
  vk::Buffer yb(*device_, 2 * m * 4, vk::Memory::device, "y");
  vk::Recorder rec(*device_);
  matmul_id(rec, {wb.get(), 0, Type::Q8_0, k, m, 2}, *xb, false, *ib, 2, 1, yb);
  rec.submit();
  const auto y = vk::download<float>(*ring_, yb, 2 * m);
  for (uint64_t r = 0; r < m; ++r) {
    EXPECT_FALSE(std::isnan(y[r]));
    EXPECT_TRUE(std::isnan(y[m + r])) << r;
  }
  std::vector<float> cpu(2 * m);
  EXPECT_THAT(error_of([&] { matmul_id(Type::Q8_0, w, 2, m, k, x, false, ids, 2, 1, cpu); }),
              HasSubstr("selects expert 7 of 2"));
}

// With maxStorageBufferRange capped, every kernel binds W as several descriptor ranges whose
// rows start at unaligned byte offsets inside their binding.
TEST_F(MatmulGpu, SlicesWhenWeightExceedsStorageBufferRange) {
  vk::DeviceOptions o;
  o.storage_buffer_range_cap = 2048;
  vk::Device device(o);
  vk::StagingRing ring(device, 1 << 20);
  for (Type type : {Type::Q4_0, Type::MXFP4, Type::Q6_K, Type::IQ4_XS, Type::F16}) {
    const uint64_t k = block(type) == 256 ? 256 : 160;
    SCOPED_TRACE(gguf::type_name(type));
    size_t dispatches = 0;
    EXPECT_LE(check_matmul(device, ring, type, 101, k, 1, MatmulKernel::vec, &dispatches),
              kTolerance);
    EXPECT_GT(dispatches, 2u);
    EXPECT_LE(check_matmul(device, ring, type, 101, k, 2, MatmulKernel::tiled, &dispatches),
              kTolerance);
    EXPECT_GT(dispatches, 2u);
    if (gpu_supports_q8(type)) {
      for (bool with_x_q : {false, true}) {
        EXPECT_LE(check_matmul(device, ring, type, 101, k, 1, MatmulKernel::vec_q8, &dispatches,
                               with_x_q),
                  kQ8Tolerance);
        EXPECT_GT(dispatches, 2u);
      }
    }
  }
  size_t dispatches = 0;
  EXPECT_LE(check_expert(device, ring, Type::MXFP4, 8, 9, 160, 2, 1, true, &dispatches), 1e-5);
  EXPECT_GT(dispatches, 2u);

  const uint64_t m = 23, k = 64;
  const auto w = quant::random_blocks(Type::Q5_0, m * k, 3);
  auto wb = upload_weight(device, ring, w, "w");
  vk::Buffer yb(device, m * k * 4, vk::Memory::device, "deq");
  vk::Recorder rec(device);
  dequantize(rec, {wb.get(), 0, Type::Q5_0, k, m}, yb);
  EXPECT_GT(rec.n_dispatches(), 2u);
  rec.submit();
  EXPECT_EQ(vk::download<float>(ring, yb, m * k), quant::dequantize(Type::Q5_0, w, m * k));
  device.check();
}

TEST_F(MatmulGpu, LimitErrorsNameTheLimit) {
  vk::DeviceOptions o;
  o.storage_buffer_range_cap = 1024;
  vk::Device device(o);
  vk::StagingRing ring(device, 1 << 16);
  const auto w = quant::random_blocks(Type::F32, 4 * 512, 1);
  auto wb = upload_weight(device, ring, w, "w");
  vk::Buffer x(device, 4096, vk::Memory::device, "x"), y(device, 4096, vk::Memory::device, "y");
  vk::Recorder rec(device);
  // A 2048-byte row cannot be bound within a 1024-byte range.
  EXPECT_THAT(error_of([&] {
                matmul(rec, {wb.get(), 0, Type::F32, 512, 4}, x, 1, y);
              }),
              HasSubstr("maxStorageBufferRange = 1024"));
  // Rows fit, but y (300 tokens x 4 rows) does not.
  auto small = upload_weight(device, ring, std::span(w).first(4 * 16 * 4), "small");
  vk::Buffer big_y(device, 300 * 4 * 4, vk::Memory::device, "big y");
  vk::Buffer big_x(device, 300 * 16 * 4, vk::Memory::device, "big x");
  EXPECT_THAT(error_of([&] {
                matmul(rec, {small.get(), 0, Type::F32, 16, 4}, big_x, 300, big_y);
              }),
              HasSubstr("maxStorageBufferRange"));
  EXPECT_THAT(error_of([&] {
                matmul(rec, {wb.get(), 0, Type::Q4_K, 100, 4}, x, 1, y);
              }),
              HasSubstr("not a whole number of Q4_K blocks"));
  EXPECT_THAT(error_of([&] {
                matmul(rec, {wb.get(), 0, Type::Q8_1, 32, 4}, x, 1, y);
              }),
              HasSubstr("no GPU kernel for weight type Q8_1"));
  EXPECT_THAT(error_of([&] {
                matmul(rec, {wb.get(), 0, Type::F32, 512, 4}, x, 3, y);
              }),
              HasSubstr("needs"));
  device.check();
}

// The real slice path: a 40000 x 1024 F32 weight is 164 MB, above lavapipe's 128 MiB
// maxStorageBufferRange, so it is bound as two ranges and multiplied per slice.
TEST_F(MatmulGpu, TensorLargerThan128MiB) {
  const uint64_t m = 40000, k = 1024;
  const uint64_t bytes = m * k * 4;
  if (bytes <= device_->limits().max_storage_buffer_range)
    GTEST_SKIP() << "maxStorageBufferRange is above " << bytes;
  std::vector<float> w(m * k);
  std::mt19937 rng(9);
  for (auto& v : w) v = float(int(rng() % 255) - 127) / 64.0f;
  const auto x = random_floats(k, 10);
  auto wb = upload_weight(*device_, *ring_, std::as_bytes(std::span<const float>(w)), "big");
  auto xb = floats(x, "x");
  vk::Buffer yb(*device_, m * 4, vk::Memory::device, "y");
  vk::Recorder rec(*device_);
  matmul(rec, {wb.get(), 0, Type::F32, k, m}, *xb, 1, yb, MatmulKernel::vec);
  EXPECT_EQ(rec.n_dispatches(), 2u);
  rec.submit();
  const auto y = vk::download<float>(*ring_, yb, m);
  std::vector<float> ref(m);
  matmul(Type::F32, std::as_bytes(std::span<const float>(w)), m, k, x, 1, ref);
  double worst = 0;
  for (uint64_t r = 0; r < m; ++r)
    worst = std::max(
        worst, std::fabs(double(y[r]) - ref[r]) / (norm(std::span(w).subspan(r * k, k)) * norm(x)));
  EXPECT_LE(worst, kTolerance);
  EXPECT_NE(y[m - 1], 0.0f);  // the last slice ran
}

}  // namespace
}  // namespace ml::ops
