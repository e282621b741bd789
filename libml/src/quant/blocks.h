#pragma once
// Per-type block codecs behind ml/quant.h. Each family file (float.cpp, legacy.cpp,
// k_quants.cpp, fp4.cpp, ternary.cpp, iq_grids.cpp) defines, for each of its types, a
// dequantizer over consecutive blocks and a generator of valid random blocks; quant.cpp
// holds the table that dispatches on gguf::Type.
#include <bit>
#include <cstdint>
#include <cstring>

#include "ml/gguf.h"
#include "ml/quant.h"

namespace ml::quant::detail {

// Dequantizes n_blocks consecutive blocks at src into n_blocks × block_size floats at dst.
using DequantizeFn = void (*)(const uint8_t* src, float* dst, uint64_t n_blocks);

// splitmix64 (Steele, Lea, Flood 2014): a portable, seedable stream, so random_blocks gives
// the same bytes everywhere (std:: distributions differ between standard libraries).
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint8_t byte() { return uint8_t(next() >> 56); }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(next() >> 40) * 0x1p-24f; }
  // Uniform integer in [lo, hi].
  uint32_t range(uint32_t lo, uint32_t hi) { return lo + uint32_t((next() >> 32) % (hi - lo + 1)); }
  void fill(uint8_t* dst, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) dst[i] = byte();
  }
};

// Fills n_blocks valid random blocks at dst.
using RandomFn = void (*)(Rng& rng, uint8_t* dst, uint64_t n_blocks);

// Little-endian field access: blocks are byte arrays with no alignment guarantee.
inline uint16_t load_u16(const uint8_t* p) {
  return uint16_t(p[0] | (p[1] << 8));
}
inline uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
// binary16 → f32, exact (1 sign, 5 exponent bits with bias 15, 10 mantissa bits). Inline
// here because every block scale and every F16 weight goes through it.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | mant << 13;  // infinity, or NaN keeping its payload
  } else if (exp != 0) {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal mant × 2^-24: shift the leading 1 up to bit 10, the implicit bit of an f32.
    const int shift = std::countl_zero(mant) - 21;
    bits = sign | uint32_t(127 - 15 + 1 - shift) << 23 | ((mant << shift) & 0x3ff) << 13;
  }
  return std::bit_cast<float>(bits);
}
inline float load_f16(const uint8_t* p) {
  return half_to_float(load_u16(p));
}
inline float load_f32(const uint8_t* p) {
  return std::bit_cast<float>(load_u32(p));
}
inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void store_f16(uint8_t* p, float f) {
  store_u16(p, f32_to_f16(f));
}
inline void store_f32(uint8_t* p, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(u >> (8 * i));
}

struct Codec {
  gguf::Type type;
  DequantizeFn dequantize;
  RandomFn random;
};

// Each family's codecs; quant.cpp concatenates them.
std::span<const Codec> float_codecs();
std::span<const Codec> legacy_codecs();
std::span<const Codec> k_quant_codecs();
std::span<const Codec> fp4_codecs();
std::span<const Codec> ternary_codecs();
std::span<const Codec> iq_grid_codecs();

}  // namespace ml::quant::detail
