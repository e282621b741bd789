// The i-quants with codebooks (ggml-common.h block_iq2_xxs .. block_iq1_m, dequantize_row_iq*
// in ggml-quants.c): groups of 8 (or 4) values are one entry of a fixed grid, chosen by an
// 8- to 11-bit index, with signs and scales per group. IQ4_NL/IQ4_XS are in fp4.cpp.
#include <array>
#include <bit>
#include <cstddef>

#include "quant/blocks.h"
#include "quant/iq_grids_data.h"

namespace ml::quant::detail {

namespace {

// Unpacks a grid from iq_grids_data.h into entries × width int8 values.
template <int Entries, int Width, size_t HexLen, size_t MapLen>
constexpr std::array<int8_t, Entries * Width> unpack(const char (&hex)[HexLen],
                                                     const signed char (&map)[MapLen]) {
  constexpr int bits = MapLen <= 2 ? 1 : MapLen <= 4 ? 2 : 3;
  constexpr int per_byte = 8 / (bits == 3 ? 4 : bits);  // 3-bit values sit in nibbles
  static_assert((HexLen - 1) / 2 * per_byte == size_t(Entries) * Width);
  auto digit = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::array<int8_t, Entries * Width> out{};
  for (size_t i = 0; i < (HexLen - 1) / 2; ++i) {
    const int byte = digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]);
    for (int e = 0; e < per_byte; ++e) {
      out[i * per_byte + e] = int8_t(map[(byte >> (e * 8 / per_byte)) & ((1 << bits) - 1)]);
    }
  }
  return out;
}

using namespace grids;
constexpr auto iq2xxs_grid = unpack<iq2xxs_entries, iq2xxs_width>(iq2xxs_hex, iq2xxs_map);
constexpr auto iq2xs_grid = unpack<iq2xs_entries, iq2xs_width>(iq2xs_hex, iq2xs_map);
constexpr auto iq2s_grid = unpack<iq2s_entries, iq2s_width>(iq2s_hex, iq2s_map);
constexpr auto iq3xxs_grid = unpack<iq3xxs_entries, iq3xxs_width>(iq3xxs_hex, iq3xxs_map);
constexpr auto iq3s_grid = unpack<iq3s_entries, iq3s_width>(iq3s_hex, iq3s_map);
constexpr auto iq1s_grid = unpack<iq1s_entries, iq1s_width>(iq1s_hex, iq1s_map);

// ksigns_iq2xs: 7 stored sign bits plus an 8th that makes the count of minus signs even.
constexpr uint8_t ksigns(uint32_t i) {
  return uint8_t(i | (std::popcount(i) & 1) << 7);
}
constexpr float sign(uint8_t signs, int j) {
  return signs >> j & 1 ? -1.0f : 1.0f;
}

constexpr float IQ1S_DELTA = 0.125f;

// block_iq2_xxs { f16 d; u16 qs[32]; }: per 32 values two u32: 4 grid indices (bytes), then
// 4 × 7 sign bits and a 4-bit scale on top; db = d × (0.5 + scale) × 0.25.
void dequantize_iq2_xxs(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 66) {
    const float d = load_f16(src);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* idx = src + 2 + 8 * ib;
      const uint32_t aux = load_u32(idx + 4);
      const float db = d * (0.5f + float(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const int8_t* grid = &iq2xxs_grid[idx[l] * 8];
        const uint8_t signs = ksigns((aux >> (7 * l)) & 127);
        for (int j = 0; j < 8; ++j) y[j] = db * float(grid[j]) * sign(signs, j);
      }
    }
  }
}

// block_iq2_xs { f16 d; u16 qs[32]; uint8 scales[8]; }: each u16 is a 9-bit grid index and
// a 7-bit sign index; two 4-bit scales per 32 values, one per 16.
void dequantize_iq2_xs(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 74) {
    const float d = load_f16(src);
    const uint8_t* scales = src + 66;
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {d * (0.5f + float(scales[ib] & 0xF)) * 0.25f,
                           d * (0.5f + float(scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = load_u16(src + 2 + 2 * (4 * ib + l));
        const int8_t* grid = &iq2xs_grid[(q & 511) * 8];
        const uint8_t signs = ksigns(q >> 9);
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * float(grid[j]) * sign(signs, j);
      }
    }
  }
}

// block_iq2_s { f16 d; uint8 qs[64]; uint8 qh[8]; uint8 scales[8]; }: qs[0..31] are the low
// 8 bits of the grid indices (2 more in qh[ib] at bits 2l, 2l+1), qs[32..63] explicit signs.
void dequantize_iq2_s(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 82) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    const uint8_t* signs = src + 34;
    const uint8_t* qh = src + 66;
    const uint8_t* scales = src + 74;
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {d * (0.5f + float(scales[ib] & 0xF)) * 0.25f,
                           d * (0.5f + float(scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const int g = 4 * ib + l;
        const int8_t* grid = &iq2s_grid[(qs[g] | ((qh[ib] >> (2 * l)) & 3) << 8) * 8];
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * float(grid[j]) * sign(signs[g], j);
      }
    }
  }
}

// block_iq3_xxs { f16 d; uint8 qs[96]; }: qs[0..63] index a grid of 4 values, two per group
// of 8; qs[64..95] hold per 32 values a u32 of 4 × 7 sign bits and a 4-bit scale;
// db = d × (0.5 + scale) × 0.5.
void dequantize_iq3_xxs(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 98) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const uint32_t aux = load_u32(src + 66 + 4 * ib);
      const float db = d * (0.5f + float(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = ksigns((aux >> (7 * l)) & 127);
        const int8_t* grid1 = &iq3xxs_grid[qs[8 * ib + 2 * l] * 4];
        const int8_t* grid2 = &iq3xxs_grid[qs[8 * ib + 2 * l + 1] * 4];
        for (int j = 0; j < 4; ++j) {
          y[j] = db * float(grid1[j]) * sign(signs, j);
          y[j + 4] = db * float(grid2[j]) * sign(signs, j + 4);
        }
      }
    }
  }
}

// block_iq3_s { f16 d; uint8 qs[64]; uint8 qh[8]; uint8 signs[32]; uint8 scales[4]; }: grid
// index k is qs[k] plus bit k%8 of qh[k/8]; 4-bit scales per 32 values, db = d × (1 + 2s).
void dequantize_iq3_s(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 110) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    const uint8_t* qh = src + 66;
    const uint8_t* signs = src + 74;
    const uint8_t* scales = src + 106;
    for (int ib = 0; ib < 8; ++ib) {
      const float db = d * float(1 + 2 * ((scales[ib / 2] >> (4 * (ib % 2))) & 0xF));
      for (int l = 0; l < 4; ++l, y += 8) {
        const int g = 4 * ib + l, k = 2 * g;
        const int8_t* grid1 = &iq3s_grid[(qs[k] | ((qh[k / 8] >> (k % 8)) & 1) << 8) * 4];
        const int8_t* grid2 = &iq3s_grid[(qs[k + 1] | ((qh[k / 8] >> (k % 8 + 1)) & 1) << 8) * 4];
        for (int j = 0; j < 4; ++j) {
          y[j] = db * float(grid1[j]) * sign(signs[g], j);
          y[j + 4] = db * float(grid2[j]) * sign(signs[g], j + 4);
        }
      }
    }
  }
}

// block_iq1_s { f16 d; uint8 qs[32]; u16 qh[8]; }: per 32 values qh holds 4 × 3 high index
// bits, a 3-bit scale (bits 12..14) and the sign of the shared offset delta (bit 15);
// v = d × (2s + 1) × (grid ∈ {-1, 0, 1} + delta).
void dequantize_iq1_s(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 50) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t qh = load_u16(src + 34 + 2 * ib);
      const float dl = d * float(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -IQ1S_DELTA : IQ1S_DELTA;
      for (int l = 0; l < 4; ++l, y += 8) {
        const int8_t* grid = &iq1s_grid[(qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8) * 8];
        for (int j = 0; j < 8; ++j) y[j] = dl * (float(grid[j]) + delta);
      }
    }
  }
}

// block_iq1_m { uint8 qs[32]; uint8 qh[16]; uint8 scales[8]; }: no d field; the f16 d is
// the top nibbles of the four u16 scale words (iq1m_scale_t). Each u16 also holds 4 3-bit
// scales, one per 16 values. qh byte per 16 values: high index bits (3 + 3) and delta signs
// (bits 3 and 7).
void dequantize_iq1_m(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 56) {
    const uint8_t* qs = src;
    const uint8_t* qh = src + 32;
    uint16_t sc[4];
    for (int i = 0; i < 4; ++i) sc[i] = load_u16(src + 48 + 2 * i);
    const float d = f16_to_f32(uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) |
                                        ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000)));
    for (int ib = 0; ib < 8; ++ib) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d * float(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3 * half)) & 7) + 1);
        const uint8_t h = qh[2 * ib + half];
        for (int l = 0; l < 2; ++l, y += 8) {
          const int idx = qs[4 * ib + 2 * half + l] | ((h >> (4 * l)) & 7) << 8;
          const float delta = (h >> (4 * l + 3)) & 1 ? -IQ1S_DELTA : IQ1S_DELTA;
          for (int j = 0; j < 8; ++j) y[j] = dl * (float(iq1s_grid[idx * 8 + j]) + delta);
        }
      }
    }
  }
}

// Every index and sign pattern is valid; the f16 d is drawn so values stay below ~16 (the
// divisor is the largest scale × grid value of the type).
template <int TypeSize, int Divisor>
void random_with_d(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * TypeSize);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + TypeSize * b, rng.uniform(0.25f, 1.0f) / Divisor);
  }
}

void random_iq1_m(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 56);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    const uint16_t d = f32_to_f16(rng.uniform(0.25f, 1.0f) / 17);
    for (int i = 0; i < 4; ++i) {
      uint8_t* word = dst + 56 * b + 48 + 2 * i;
      store_u16(word, uint16_t((load_u16(word) & 0x0FFF) | ((d >> (4 * i)) & 0xF) << 12));
    }
  }
}

constexpr std::array kCodecs = {
    Codec{gguf::Type::IQ2_XXS, dequantize_iq2_xxs, random_with_d<66, 167>},
    Codec{gguf::Type::IQ2_XS, dequantize_iq2_xs, random_with_d<74, 167>},
    Codec{gguf::Type::IQ3_XXS, dequantize_iq3_xxs, random_with_d<98, 480>},
    Codec{gguf::Type::IQ1_S, dequantize_iq1_s, random_with_d<50, 17>},
    Codec{gguf::Type::IQ3_S, dequantize_iq3_s, random_with_d<110, 465>},
    Codec{gguf::Type::IQ2_S, dequantize_iq2_s, random_with_d<82, 167>},
    Codec{gguf::Type::IQ1_M, dequantize_iq1_m, random_iq1_m},
};

}  // namespace

std::span<const Codec> iq_grid_codecs() {
  return kCodecs;
}

}  // namespace ml::quant::detail
