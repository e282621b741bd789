// The k-quants: super-blocks of QK_K = 256 values split into sub-blocks with their own
// quantized scales (ggml-common.h block_q2_K .. block_q8_K; dequantize_row_q*_K in
// ggml-quants.c). Every product is written in ggml's order, (d × scale) × q - (dmin × min),
// so the results match it bit for bit (the build does not contract them into FMAs).
#include <array>

#include "quant/blocks.h"

namespace ml::quant::detail {

namespace {

constexpr int QK_K = 256;

// The 6-bit scale and min of sub-block j (0..7) of Q4_K and Q5_K, packed in 12 bytes
// (get_scale_min_k4): bytes 0..3 hold scales 0..3 in their low 6 bits, bytes 4..7 mins 0..3;
// for j >= 4 the low 4 bits come from bytes 8..11 (scale low nibble, min high nibble) and
// the top 2 bits from the spare top bits of bytes j-4 (scale) and j (min).
void scale_min_k4(int j, const uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// block_q2_K { uint8 scales[16]; uint8 qs[64]; f16 d, dmin; }: 16 sub-blocks of 16; scale
// byte i = 4-bit scale (low) and 4-bit min (high). Each 32-byte half of qs holds 128 values
// as four 2-bit planes (shift 0, 2, 4, 6), each plane 32 values = two sub-blocks.
void dequantize_q2_K(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 84) {
    const uint8_t* scales = src;
    const float d = load_f16(src + 80), dmin = load_f16(src + 82);
    int is = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = src + 16 + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = scales[is++];
          const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; f16 d; }: 16 sub-blocks of
// 16 with 6-bit signed scales (stored + 32): low 4 bits of scale i in byte i%8 (low nibble
// for i < 8, high for i >= 8), top 2 bits in byte 8 + i%4 at bit 2×(i/4). The low 2 bits of
// each value are planes of qs as in Q2_K; the 3rd bit is in hmask (bit m of byte l for value
// 32×m + l), and a CLEAR bit subtracts 4: q = low2 - (hbit ? 0 : 4).
void dequantize_q3_K(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 110) {
    const uint8_t* hmask = src;
    const uint8_t* packed = src + 96;
    const float d = load_f16(src + 108);
    int scales[16];
    for (int i = 0; i < 16; ++i) {
      const int low = i < 8 ? packed[i] & 0xF : packed[i - 8] >> 4;
      const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
      scales[i] = (low | high << 4) - 32;
    }
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = src + 32 + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d * float(scales[is++]);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hmask[l] & m) ? 0 : 4);
            *y++ = dl * float(v);
          }
        }
      }
    }
  }
}

// block_q4_K { f16 d, dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32 with
// 6-bit scales and mins (scale_min_k4). Each 32 bytes of qs hold two sub-blocks: low nibbles
// first, then high nibbles.
void dequantize_q4_K(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 144) {
    const float d = load_f16(src), dmin = load_f16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* q = src + 16;
    for (int j = 0; j < 8; j += 2, q += 32) {
      int sc, m;
      scale_min_k4(j, scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      scale_min_k4(j + 1, scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

// block_q5_K { f16 d, dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }: Q4_K plus a
// 5th bit per value: bit j of qh[l] belongs to value l of sub-block j.
void dequantize_q5_K(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 176) {
    const float d = load_f16(src), dmin = load_f16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* ql = src + 48;
    for (int j = 0; j < 8; j += 2, ql += 32) {
      int sc, m;
      scale_min_k4(j, scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      scale_min_k4(j + 1, scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) | ((qh[l] >> j) & 1) << 4) - m1;
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * float((ql[l] >> 4) | ((qh[l] >> (j + 1)) & 1) << 4) - m2;
      }
    }
  }
}

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d; }: 16 sub-blocks of 16
// with int8 scales; q = (4 low bits | 2 high bits << 4) - 32. Per 128-value half: ql bytes
// l and l+32 give values l, l+32 (low nibbles) and l+64, l+96 (high nibbles); qh byte l
// holds the high bits of those four values at shifts 0, 2, 4, 6.
void dequantize_q6_K(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 210) {
    const float d = load_f16(src + 208);
    for (int half = 0; half < 2; ++half, y += 128) {
      const uint8_t* ql = src + 64 * half;
      const uint8_t* qh = src + 128 + 32 * half;
      const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192 + 8 * half);
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
        const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

// block_q8_K { f32 d; int8 qs[256]; int16 bsums[16]; }: v = d × q; bsums (sums of 16
// quants) only serve dot products.
void dequantize_q8_K(const uint8_t* src, float* y, uint64_t n_blocks) {
  for (uint64_t b = 0; b < n_blocks; ++b, src += 292, y += QK_K) {
    const float d = load_f32(src);
    for (int j = 0; j < QK_K; ++j) y[j] = d * float(int8_t(src[4 + j]));
  }
}

// Random quants and packed scales are all valid; only the f16 super-block scales need
// drawing so that (d × scale) × q stays O(1).
void random_q2_K(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 84);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 84 * b + 80, rng.uniform(0.25f, 1.0f) / 45);
    store_f16(dst + 84 * b + 82, rng.uniform(0.0f, 1.0f) / 15);
  }
}

void random_q3_K(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 110);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 110 * b + 108, rng.uniform(0.25f, 1.0f) / 128);
  }
}

void random_q4_K(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 144);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 144 * b, rng.uniform(0.25f, 1.0f) / (63 * 15));
    store_f16(dst + 144 * b + 2, rng.uniform(0.0f, 1.0f) / 63);
  }
}

void random_q5_K(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 176);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 176 * b, rng.uniform(0.25f, 1.0f) / (63 * 31));
    store_f16(dst + 176 * b + 2, rng.uniform(0.0f, 1.0f) / 63);
  }
}

void random_q6_K(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 210);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    store_f16(dst + 210 * b + 208, rng.uniform(0.25f, 1.0f) / (128 * 32));
  }
}

// Keeps bsums consistent with qs, as quantize_row_q8_K_ref stores them.
void random_q8_K(Rng& rng, uint8_t* dst, uint64_t n_blocks) {
  rng.fill(dst, n_blocks * 292);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    uint8_t* block = dst + 292 * b;
    store_f32(block, rng.uniform(0.25f, 1.0f) / 127);
    for (int i = 0; i < 16; ++i) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += int8_t(block[4 + 16 * i + j]);
      store_u16(block + 260 + 2 * i, uint16_t(int16_t(sum)));
    }
  }
}

constexpr std::array kCodecs = {
    Codec{gguf::Type::Q2_K, dequantize_q2_K, random_q2_K},
    Codec{gguf::Type::Q3_K, dequantize_q3_K, random_q3_K},
    Codec{gguf::Type::Q4_K, dequantize_q4_K, random_q4_K},
    Codec{gguf::Type::Q5_K, dequantize_q5_K, random_q5_K},
    Codec{gguf::Type::Q6_K, dequantize_q6_K, random_q6_K},
    Codec{gguf::Type::Q8_K, dequantize_q8_K, random_q8_K},
};

}  // namespace

std::span<const Codec> k_quant_codecs() {
  return kCodecs;
}

}  // namespace ml::quant::detail
