// F32, F16 and BF16: the scalar conversions every block type uses for its scales, and the
// three unquantized weight types (block size 1).
#include <array>
#include <cstring>

#include "quant/blocks.h"

namespace ml::quant {

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

float f16_to_f32(uint16_t h) {
  return detail::half_to_float(h);
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = bits_of(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return uint16_t(sign | 0x7e00 | (ax >> 13 & 0x1ff));  // quiet NaN
  if (ax >= 0x47800000) return uint16_t(sign | 0x7c00);  // >= 65536 (or inf): infinity
  if (ax < 0x38800000) {
    // Below 2^-14, the smallest normal half: a subnormal m × 2^-24 with m = round(|f| × 2^24).
    const uint32_t e = ax >> 23;
    if (e < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself is a tie to 0)
    const uint32_t mant = (ax & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // |f| × 2^24 = mant × 2^(e - 126), shift in 14..24
    uint32_t m = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1))) ++m;  // a carry into 0x400 is the first normal
    return uint16_t(sign | m);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even; a
  // carry out of the mantissa bumps the exponent, up to infinity for [65520, 65536).
  const uint32_t odd = (ax >> 13) & 1;
  const uint32_t r = ax - ((127 - 15) << 23) + 0xfff + odd;
  return uint16_t(sign | (r >> 13));
}

float bf16_to_f32(uint16_t h) {
  return float_of(uint32_t(h) << 16);
}

// ggml_compute_fp32_to_bf16 (ggml-impl.h).
uint16_t f32_to_bf16(float f) {
  const uint32_t x = bits_of(f);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 64);  // NaN, forced quiet
  return uint16_t((uint64_t(x) + 0x7fff + ((x >> 16) & 1)) >> 16);
}

namespace detail {

namespace {

void dequantize_f32(const uint8_t* src, float* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = load_f32(src + 4 * i);
}

void dequantize_f16(const uint8_t* src, float* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = load_f16(src + 2 * i);
}

void dequantize_bf16(const uint8_t* src, float* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src + 2 * i));
}

void random_f32(Rng& rng, uint8_t* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) store_f32(dst + 4 * i, rng.uniform(-1, 1));
}

void random_f16(Rng& rng, uint8_t* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) store_f16(dst + 2 * i, rng.uniform(-1, 1));
}

void random_bf16(Rng& rng, uint8_t* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, f32_to_bf16(rng.uniform(-1, 1)));
}

constexpr std::array kCodecs = {
    Codec{gguf::Type::F32, dequantize_f32, random_f32},
    Codec{gguf::Type::F16, dequantize_f16, random_f16},
    Codec{gguf::Type::BF16, dequantize_bf16, random_bf16},
};

}  // namespace

std::span<const Codec> float_codecs() {
  return kCodecs;
}

}  // namespace detail

}  // namespace ml::quant
