// The legacy 32-value blocks (ggml-common.h): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
// Nibble order, as in every 4-bit ggml block: byte j holds value j in its low nibble and
// value j + 16 in its high nibble.
#include <array>

#include "quant/blocks.h"

namespace ml::quant::detail {

namespace {

constexpr int QK = 32;

// A signed scale of magnitude in [0.25, 1) / qmax: values come out O(1).
float random_scale(Rng& rng, float qmax) {
  const float d = rng.uniform(0.25f, 1.0f) / qmax;
  return rng.byte() & 1 ? -d : d;
}

// block_q4_0 { f16 d; uint8 qs[16]; }: v = d × (q - 8).
void dequantize_q4_0(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 18, dst += QK) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < QK / 2; ++j) {
      dst[j] = float((qs[j] & 0xF) - 8) * d;
      dst[j + QK / 2] = float((qs[j] >> 4) - 8) * d;
    }
  }
}

// block_q4_1 { f16 d, m; uint8 qs[16]; }: v = d × q + m.
void dequantize_q4_1(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 20, dst += QK) {
    const float d = load_f16(src), m = load_f16(src + 2);
    const uint8_t* qs = src + 4;
    for (int j = 0; j < QK / 2; ++j) {
      dst[j] = float(qs[j] & 0xF) * d + m;
      dst[j + QK / 2] = float(qs[j] >> 4) * d + m;
    }
  }
}

// block_q5_0 { f16 d; uint8 qh[4]; uint8 qs[16]; }: the 5th bit of value j is bit j of the
// little-endian u32 qh; v = d × (q - 16).
void dequantize_q5_0(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 22, dst += QK) {
    const float d = load_f16(src);
    const uint32_t qh = load_u32(src + 2);
    const uint8_t* qs = src + 6;
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = (qh >> j) & 1, h1 = (qh >> (j + QK / 2)) & 1;
      dst[j] = float(((qs[j] & 0xF) | h0 << 4) - 16) * d;
      dst[j + QK / 2] = float(((qs[j] >> 4) | h1 << 4) - 16) * d;
    }
  }
}

// block_q5_1 { f16 d, m; uint8 qh[4]; uint8 qs[16]; }: v = d × q + m.
void dequantize_q5_1(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 24, dst += QK) {
    const float d = load_f16(src), m = load_f16(src + 2);
    const uint32_t qh = load_u32(src + 4);
    const uint8_t* qs = src + 8;
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = (qh >> j) & 1, h1 = (qh >> (j + QK / 2)) & 1;
      dst[j] = float((qs[j] & 0xF) | h0 << 4) * d + m;
      dst[j + QK / 2] = float((qs[j] >> 4) | h1 << 4) * d + m;
    }
  }
}

// block_q8_0 { f16 d; int8 qs[32]; }: v = d × q.
void dequantize_q8_0(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 34, dst += QK) {
    const float d = load_f16(src);
    for (int j = 0; j < QK; ++j) dst[j] = float(int8_t(src[2 + j])) * d;
  }
}

// block_q8_1 { f16 d; f16 s; int8 qs[32]; }: v = d × q; s = d × Σq is a cache for dot
// products that dequantization ignores.
void dequantize_q8_1(const uint8_t* src, float* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 36, dst += QK) {
    const float d = load_f16(src);
    for (int j = 0; j < QK; ++j) dst[j] = float(int8_t(src[4 + j])) * d;
  }
}

void random_q4_0(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 18);
  for (uint64_t b = 0; b < n_blocks; ++b) store_f16(dst + 18 * b, random_scale(rng, 8));
}

void random_q4_1(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 20);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 20 * b, rng.uniform(0.25f, 1.0f) / 15);
    store_f16(dst + 20 * b + 2, rng.uniform(-1, 0));
  }
}

void random_q5_0(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 22);
  for (uint64_t b = 0; b < n_blocks; ++b) store_f16(dst + 22 * b, random_scale(rng, 16));
}

void random_q5_1(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 24);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 24 * b, rng.uniform(0.25f, 1.0f) / 31);
    store_f16(dst + 24 * b + 2, rng.uniform(-1, 0));
  }
}

void random_q8_0(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 34);
  for (uint64_t b = 0; b < n_blocks; ++b) store_f16(dst + 34 * b, random_scale(rng, 127));
}

// Keeps the block consistent: s = d × Σq as quantize_row_q8_1_ref stores it.
void random_q8_1(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 36);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    uint8_t* block = dst + 36 * b;
    const float d = random_scale(rng, 127);
    int sum = 0;
    for (int j = 0; j < QK; ++j) sum += int8_t(block[4 + j]);
    store_f16(block, d);
    store_f16(block + 2, float(sum) * load_f16(block));
  }
}

constexpr std::array kCodecs = {
    Codec{gguf::Type::Q4_0, dequantize_q4_0, random_q4_0},
    Codec{gguf::Type::Q4_1, dequantize_q4_1, random_q4_1},
    Codec{gguf::Type::Q5_0, dequantize_q5_0, random_q5_0},
    Codec{gguf::Type::Q5_1, dequantize_q5_1, random_q5_1},
    Codec{gguf::Type::Q8_0, dequantize_q8_0, random_q8_0},
    Codec{gguf::Type::Q8_1, dequantize_q8_1, random_q8_1},
};

}  // namespace

std::span<const Codec> legacy_codecs() {
  return kCodecs;
}

}  // namespace ml::quant::detail
