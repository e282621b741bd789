// The CPU reference of every ggml block type (libml/src/quant) against the golden vectors in
// ../shared/quant/quant-golden.gguf, hand-built blocks for the types it lacks, the f16/bf16
// conversions over every bit pattern, and the API's size checks.
#include "ml/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "quant_golden.h"
#include "test_util.h"

namespace {

using ml::gguf::Type;

ml::test::QuantGolden& golden() {
  static ml::test::QuantGolden g(ml::test::shared("quant/quant-golden.gguf").string());
  return g;
}

const char* const kGoldenTypes[] = {"F16",  "BF16", "Q4_0",  "Q4_1",   "Q5_0",
                                    "Q5_1", "Q8_0", "Q2_K",  "Q3_K",   "Q4_K",
                                    "Q5_K", "Q6_K", "MXFP4", "IQ4_NL", "IQ4_XS"};

class GoldenType : public testing::TestWithParam<const char*> {};

TEST_P(GoldenType, DequantizeDotMatvecMatchReference) {
  ml::test::check_golden_type(golden(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenType, testing::ValuesIn(kGoldenTypes),
                         [](const auto& info) { return std::string(info.param); });

TEST(QuantGolden, FileHoldsExactlyTheListedTypes) {
  const std::vector<std::string> types = golden().types();
  EXPECT_EQ(types, std::vector<std::string>(std::begin(kGoldenTypes), std::end(kGoldenTypes)));
}

// F32 is not in the golden file: its dequantize is the identity on the bits.
TEST(QuantFloat, F32IsIdentity) {
  const std::vector<float> x = golden().x;
  std::vector<std::byte> raw(x.size() * 4);
  std::memcpy(raw.data(), x.data(), raw.size());
  EXPECT_EQ(ml::quant::dequantize(Type::F32, raw, x.size()), x);
  double y = 0, bound = 0;
  for (float v : x) y += double(v) * v, bound += double(v) * v;
  EXPECT_NEAR(ml::quant::dot(Type::F32, raw, x), y, 1e-13 * bound);  // f64 sums, any order
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(QuantFloat, F16RoundTripsEveryBitPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = ml::quant::f16_to_f32(uint16_t(h));
    const uint16_t back = ml::quant::f32_to_f16(f);
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_EQ(back & 0x7c00, 0x7c00) << std::hex << h;
      ASSERT_NE(back & 0x3ff, 0) << "NaN " << std::hex << h << " came back as infinity";
      ASSERT_EQ(back & 0x8000, h & 0x8000);
    } else {
      ASSERT_EQ(back, h) << std::hex << h << " -> " << f;
    }
  }
}

// Rounding, checked at every boundary: the midpoint between two adjacent halves goes to the
// even one, and one f32 ulp either side of it goes to the nearer.
TEST(QuantFloat, F16RoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const double lo = ml::quant::f16_to_f32(uint16_t(h)),
                 hi = ml::quant::f16_to_f32(uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);  // exact: halves have 11 significant bits
    ASSERT_EQ(double(mid), (lo + hi) / 2);
    const uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    ASSERT_EQ(ml::quant::f32_to_f16(mid), even) << std::hex << h;
    ASSERT_EQ(ml::quant::f32_to_f16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(ml::quant::f32_to_f16(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
    ASSERT_EQ(ml::quant::f32_to_f16(-mid), even | 0x8000) << std::hex << h;
  }
  EXPECT_EQ(ml::quant::f32_to_f16(65519.99f), 0x7bff);  // below the midpoint to "65536"
  EXPECT_EQ(ml::quant::f32_to_f16(65520.0f), 0x7c00);   // the tie goes to infinity (even)
  EXPECT_EQ(ml::quant::f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(ml::quant::f32_to_f16(-INFINITY), 0xfc00);
  EXPECT_EQ(ml::quant::f32_to_f16(0x1p-25f), 0x0000);  // tie between 0 and 2^-24
  EXPECT_EQ(ml::quant::f32_to_f16(0x1.000002p-25f), 0x0001);
  EXPECT_EQ(ml::quant::f32_to_f16(1e-30f), 0x0000);
  EXPECT_EQ(ml::quant::f32_to_f16(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(ml::quant::f16_to_f32(ml::quant::f32_to_f16(NAN))));
}

TEST(QuantFloat, Bf16RoundTripsAndRounds) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = ml::quant::bf16_to_f32(uint16_t(h));
    ASSERT_EQ(bits(f), h << 16);
    const uint16_t back = ml::quant::f32_to_bf16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(ml::quant::bf16_to_f32(back))) << std::hex << h;
      ASSERT_EQ(back, h | 0x40) << "NaN is kept and forced quiet";
    } else {
      ASSERT_EQ(back, h);
    }
  }
  float tie_even, tie_odd, above;
  const uint32_t u_even = 0x3f808000, u_odd = 0x3f818000, u_above = 0x3f808001;
  std::memcpy(&tie_even, &u_even, 4);
  std::memcpy(&tie_odd, &u_odd, 4);
  std::memcpy(&above, &u_above, 4);
  EXPECT_EQ(ml::quant::f32_to_bf16(tie_even), 0x3f80);
  EXPECT_EQ(ml::quant::f32_to_bf16(tie_odd), 0x3f82);
  EXPECT_EQ(ml::quant::f32_to_bf16(above), 0x3f81);
}

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(std::byte(v));
  return out;
}

// Types the golden file lacks and gguf-py cannot dequantize: blocks built by hand.
TEST(QuantHandBuilt, Q8_1) {
  // d = 0.5 (f16 0x3800), s = 1.5 (ignored by dequantization), qs = 1, -2, 3, ...
  std::vector<std::byte> block = bytes({0x00, 0x38, 0x00, 0x3e});
  for (int j = 0; j < 32; ++j) block.push_back(std::byte(int8_t((j % 2 ? -1 : 1) * (j + 1))));
  const std::vector<float> v = ml::quant::dequantize(Type::Q8_1, block, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(v[j], 0.5f * float((j % 2 ? -1 : 1) * (j + 1))) << j;
}

TEST(QuantHandBuilt, Q8_K) {
  std::vector<std::byte> block = bytes({0x00, 0x00, 0x80, 0x3e});        // f32 0.25
  for (int j = 0; j < 256; ++j) block.push_back(std::byte(uint8_t(j)));  // int8: 0..127, -128..-1
  block.resize(292, std::byte(0));                                       // bsums: unused here
  const std::vector<float> v = ml::quant::dequantize(Type::Q8_K, block, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(v[j], 0.25f * float(int8_t(uint8_t(j)))) << j;
}

TEST(QuantHandBuilt, Q1_0) {
  // d = 2 (f16 0x4000); bits LSB first: qs[0] = 0b00000101 → values 0, 2 are +d, the rest -d.
  std::vector<std::byte> block = bytes({0x00, 0x40, 0x05});
  block.resize(18, std::byte(0x80));  // qs[1..15]: only bit 7 set → value 8i + 7 is +d
  const std::vector<float> v = ml::quant::dequantize(Type::Q1_0, block, 128);
  for (int j = 0; j < 128; ++j) {
    const bool plus = j == 0 || j == 2 || (j >= 8 && j % 8 == 7);
    EXPECT_EQ(v[j], plus ? 2.0f : -2.0f) << j;
  }
}

TEST(QuantRandom, BlocksAreFiniteModerateAndDeterministic) {
  const std::vector<Type> types = ml::quant::reference_types();
  EXPECT_GE(types.size(), 16u);
  for (Type type : types) {
    SCOPED_TRACE(ml::gguf::type_name(type));
    const uint64_t n = 4096;
    const std::vector<std::byte> a = ml::quant::random_blocks(type, n, 7);
    EXPECT_EQ(a.size(), ml::gguf::row_bytes(type, n));
    EXPECT_EQ(ml::quant::random_blocks(type, n, 7), a);
    EXPECT_NE(ml::quant::random_blocks(type, n, 8), a);
    const std::vector<float> v = ml::quant::dequantize(type, a, n);
    double max_abs = 0, sum_sq = 0;
    for (float f : v) {
      ASSERT_TRUE(std::isfinite(f));
      max_abs = std::max(max_abs, double(std::fabs(f)));
      sum_sq += double(f) * f;
    }
    EXPECT_LT(max_abs, 16.0);
    EXPECT_GT(std::sqrt(sum_sq / n), 0.01) << "values should be O(1), not vanishing";
  }
}

TEST(QuantErrors, SizeMismatchesThrow) {
  const std::vector<std::byte> q4 = ml::quant::random_blocks(Type::Q4_K, 512, 1);  // 2 blocks
  std::vector<float> out(512);
  EXPECT_NO_THROW(ml::quant::dequantize(Type::Q4_K, q4, out));
  std::vector<float> short_out(256);
  EXPECT_THROW(ml::quant::dequantize(Type::Q4_K, q4, short_out), ml::Error);
  std::vector<float> odd(300);
  EXPECT_THROW(ml::quant::dequantize(Type::Q4_K, q4, odd), ml::Error);
  EXPECT_THROW(ml::quant::dequantize(Type::Q4_K, std::span(q4).first(143), 256), ml::Error);
  EXPECT_THROW(ml::quant::dequantize(Type::Q4_K, q4, uint64_t(1) << 62), ml::Error);

  const std::vector<float> x(512, 1.0f);
  EXPECT_THROW(ml::quant::dot(Type::Q4_K, q4, std::span(x).first(256)), ml::Error);
  std::vector<float> y(2);
  EXPECT_NO_THROW(ml::quant::matvec(Type::Q4_K, q4, 2, 256, std::span(x).first(256), y));
  EXPECT_THROW(ml::quant::matvec(Type::Q4_K, q4, 2, 256, x, y), ml::Error);  // x too long
  EXPECT_THROW(ml::quant::matvec(Type::Q4_K, q4, 3, 256, std::span(x).first(256), y), ml::Error);
  std::vector<float> y3(3);
  EXPECT_THROW(ml::quant::matvec(Type::Q4_K, q4, 3, 256, std::span(x).first(256), y3), ml::Error);
  EXPECT_THROW(ml::quant::random_blocks(Type::Q4_K, 100, 1), ml::Error);

  try {
    ml::quant::dequantize(Type::Q4_K, std::span(q4).first(143), 256);
  } catch (const ml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_K"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("143"), std::string::npos) << e.what();
  }
}

TEST(QuantErrors, TypesWithoutReferenceThrow) {
  EXPECT_FALSE(ml::quant::has_reference(Type::I32));
  EXPECT_THROW(ml::quant::dequantize(Type::I32, {}, 0), ml::Error);
  EXPECT_THROW(ml::quant::random_blocks(Type::I8, 8, 1), ml::Error);
}

// The threaded split gives each row the same value as one thread, for uneven splits too.
TEST(QuantMatvec, ThreadCountsAgree) {
  const uint64_t rows = 37, k = 512;
  const std::vector<std::byte> w = ml::quant::random_blocks(Type::Q6_K, rows * k, 3);
  std::vector<float> x(k);
  for (uint64_t i = 0; i < k; ++i) x[i] = std::sin(float(i));
  std::vector<float> y1(rows), y(rows);
  ml::quant::matvec(Type::Q6_K, w, rows, k, x, y1, 1);
  const uint64_t row_size = ml::gguf::row_bytes(Type::Q6_K, k);
  for (uint64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(y1[r],
              float(ml::quant::dot(Type::Q6_K, std::span(w).subspan(r * row_size, row_size), x)));
  }
  for (unsigned threads : {0u, 2u, 5u, 64u}) {
    ml::quant::matvec(Type::Q6_K, w, rows, k, x, y, threads);
    EXPECT_EQ(y, y1) << threads << " threads";
  }
}

}  // namespace
