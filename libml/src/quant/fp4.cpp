// 4-bit codebook types: each nibble indexes a table of 16 values, scaled per block.
// MXFP4 and NVFP4 use E2M1 floats (OCP Microscaling spec), IQ4_NL and IQ4_XS a non-linear
// int8 table. Nibble order as in Q4_0: byte j holds value j (low) and value j + half (high).
#include <array>
#include <cstring>

#include "quant/blocks.h"

namespace ml::quant::detail {

namespace {

// kvalues_mxfp4: the E2M1 values doubled so they are integers; the scales below carry the
// compensating factor 1/2.
constexpr int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// kvalues_iq4nl (ggml-common.h).
constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

// ggml_e8m0_to_fp32_half: 2^(e - 127) / 2 = 2^(e - 128), built from bits; e < 2 gives an f32
// subnormal, e = 255 (the E8M0 NaN) decodes as 2^127 like ggml.
float e8m0_to_fp32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : uint32_t(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ggml_ue4m3_to_fp32: unsigned E4M3 (4 exponent bits, bias 7, 3 mantissa bits; bit 7
// ignored), halved for the doubled codebook; 0x00 and 0x7F (NaN) decode as 0.
float ue4m3_to_fp32(uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  const int exp = (x >> 3) & 0xF, man = x & 0x7;
  const float raw =
      exp == 0 ? float(man) * 0x1p-9f : (1.0f + float(man) / 8.0f) * float(1u << exp) / 128.0f;
  return raw * 0.5f;
}

// block_mxfp4 { uint8 e; uint8 qs[16]; }: 32 values, v = kvalues_mxfp4[q] × 2^(e-128).
void dequantize_mxfp4(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 17, dst += 32) {
    const float d = e8m0_to_fp32_half(src[0]);
    const uint8_t* qs = src + 1;
    for (int j = 0; j < 16; ++j) {
      dst[j] = float(kvalues_mxfp4[qs[j] & 0xF]) * d;
      dst[j + 16] = float(kvalues_mxfp4[qs[j] >> 4]) * d;
    }
  }
}

// block_nvfp4 { uint8 d[4]; uint8 qs[32]; }: 64 values in 4 sub-blocks of 16; sub-block s
// has scale ue4m3(d[s]) and bytes qs[8s .. 8s+7] (value j low nibble, j + 8 high).
void dequantize_nvfp4(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 36) {
    for (int s = 0; s < 4; ++s, dst += 16) {
      const float d = ue4m3_to_fp32(src[s]);
      const uint8_t* qs = src + 4 + 8 * s;
      for (int j = 0; j < 8; ++j) {
        dst[j] = float(kvalues_mxfp4[qs[j] & 0xF]) * d;
        dst[j + 8] = float(kvalues_mxfp4[qs[j] >> 4]) * d;
      }
    }
  }
}

// block_iq4_nl { f16 d; uint8 qs[16]; }: 32 values, v = d × kvalues_iq4nl[q].
void dequantize_iq4_nl(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 18, dst += 32) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * float(kvalues_iq4nl[qs[j] & 0xF]);
      dst[j + 16] = d * float(kvalues_iq4nl[qs[j] >> 4]);
    }
  }
}

// block_iq4_xs { f16 d; u16 scales_h; uint8 scales_l[4]; uint8 qs[128]; }: 8 sub-blocks of
// 32 with 6-bit scales stored + 32: low 4 bits in nibble ib%2 of scales_l[ib/2], high 2 bits
// at bit 2×ib of scales_h. Each sub-block is an IQ4_NL block without its own d.
void dequantize_iq4_xs(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 136) {
    const float d = load_f16(src);
    const uint16_t scales_h = load_u16(src + 2);
    const uint8_t* scales_l = src + 4;
    const uint8_t* qs = src + 8;
    for (int ib = 0; ib < 8; ++ib, qs += 16, dst += 32) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | ((scales_h >> (2 * ib)) & 3)
                                                                        << 4;
      const float dl = d * float(ls - 32);
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * float(kvalues_iq4nl[qs[j] & 0xF]);
        dst[j + 16] = dl * float(kvalues_iq4nl[qs[j] >> 4]);
      }
    }
  }
}

// Scales drawn so that |v| stays below about 12.
void random_mxfp4(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 17);
  for (uint64_t b = 0; b < n_blocks; ++b) dst[17 * b] = uint8_t(rng.range(123, 128));
}

void random_nvfp4(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 36);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    for (int s = 0; s < 4; ++s) dst[36 * b + s] = uint8_t(rng.range(3, 7) << 3 | rng.range(0, 7));
  }
}

void random_iq4_nl(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 18);
  for (uint64_t b = 0; b < n_blocks; ++b) store_f16(dst + 18 * b, rng.uniform(0.25f, 1.0f) / 127);
}

void random_iq4_xs(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 136);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 136 * b, rng.uniform(0.25f, 1.0f) / (32 * 127));
  }
}

constexpr std::array kCodecs = {
    Codec{gguf::Type::IQ4_NL, dequantize_iq4_nl, random_iq4_nl},
    Codec{gguf::Type::IQ4_XS, dequantize_iq4_xs, random_iq4_xs},
    Codec{gguf::Type::MXFP4, dequantize_mxfp4, random_mxfp4},
    Codec{gguf::Type::NVFP4, dequantize_nvfp4, random_nvfp4},
};

}  // namespace

std::span<const Codec> fp4_codecs() {
  return kCodecs;
}

}  // namespace ml::quant::detail
