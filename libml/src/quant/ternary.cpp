// Ternary and binary weights: TQ1_0 and TQ2_0 (values in {-1, 0, 1} × d, BitNet b1.58
// models) and Q1_0 (one sign bit per value, ± d).
#include <array>

#include "quant/blocks.h"

namespace ml::quant::detail {

namespace {

// block_tq1_0 { uint8 qs[48]; uint8 qh[4]; f16 d; }: 5 trits per byte in qs and 4 per byte
// in qh, stored as a fixed-point fraction of 3^5 (quantize_row_tq1_0_ref: byte =
// ceil(t × 256 / 243) for the base-3 number t). Trit n of a byte is recovered by
// multiplying by 3^n mod 256, which shifts it to the top, and reading the top "digit":
// (q × 3) >> 8. Order: qs[0..31] give values 0..159 (trit n of byte m at 32n + m),
// qs[32..47] values 160..239 (16n + m), qh values 240..255 (4n + j).
void dequantize_tq1_0(const uint8_t* src, float* y, uint64_t n_blocks) {
  constexpr uint8_t pow3[5] = {1, 3, 9, 27, 81};
  auto trit = [](uint8_t byte, uint8_t p) { return int((uint16_t(uint8_t(byte * p)) * 3) >> 8); };
  for (uint64_t b = 0; b < n_blocks; ++b, src += 54) {
    const float d = load_f16(src + 52);
    for (int n = 0; n < 5; ++n) {
      for (int m = 0; m < 32; ++m) *y++ = float(trit(src[m], pow3[n]) - 1) * d;
    }
    for (int n = 0; n < 5; ++n) {
      for (int m = 0; m < 16; ++m) *y++ = float(trit(src[32 + m], pow3[n]) - 1) * d;
    }
    for (int n = 0; n < 4; ++n) {
      for (int j = 0; j < 4; ++j) *y++ = float(trit(src[48 + j], pow3[n]) - 1) * d;
    }
  }
}

// block_tq2_0 { uint8 qs[64]; f16 d; }: 2 bits per value, v = (q - 1) × d. Each 32 bytes
// hold 128 values as four planes (shift 0, 2, 4, 6) of 32.
void dequantize_tq2_0(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 66) {
    const float d = load_f16(src + 64);
    for (int j = 0; j < 64; j += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int m = 0; m < 32; ++m) *y++ = float(((src[j + m] >> shift) & 3) - 1) * d;
      }
    }
  }
}

// block_q1_0 { f16 d; uint8 qs[16]; }: 128 values, bit j%8 of qs[j/8] set gives +d, clear -d.
void dequantize_q1_0(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 18, y += 128) {
    const float d = load_f16(src);
    for (int j = 0; j < 128; ++j) y[j] = float(((src[2 + j / 8] >> (j % 8)) & 1) * 2 - 1) * d;
  }
}

// Any byte decodes to valid trits; the scale is the block's absmax, positive.
void random_tq1_0(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 54);
  for (uint64_t b = 0; b < n_blocks; ++b) store_f16(dst + 54 * b + 52, rng.uniform(0.25f, 1.0f));
}

// Codes 0..2 only: code 3 (+2d) decodes but the quantizer never writes it.
void random_tq2_0(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    uint8_t* block = dst + 66 * b;
    for (int j = 0; j < 64; ++j) {
      uint8_t byte = 0;
      for (int shift = 0; shift < 8; shift += 2) byte |= uint8_t(rng.range(0, 2) << shift);
      block[j] = byte;
    }
    store_f16(block + 64, rng.uniform(0.25f, 1.0f));
  }
}

void random_q1_0(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 18);
  for (uint64_t b = 0; b < n_blocks; ++b) store_f16(dst + 18 * b, rng.uniform(0.25f, 1.0f));
}

constexpr std::array kCodecs = {
    Codec{gguf::Type::TQ1_0, dequantize_tq1_0, random_tq1_0},
    Codec{gguf::Type::TQ2_0, dequantize_tq2_0, random_tq2_0},
    Codec{gguf::Type::Q1_0, dequantize_q1_0, random_q1_0},
};

}  // namespace

std::span<const Codec> ternary_codecs() {
  return kCodecs;
}

}  // namespace ml::quant::detail
