// Elementwise ops and the binary16 conversions the F16 KV cache needs.
#include <bit>
#include <cmath>
#include <thread>
#include <vector>

#include "ml/ops.h"

namespace ml::ops {

void parallel_for(int64_t n, int n_threads, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(n_threads, n));
  if (workers == 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t begin = w * chunk, end = std::min(n, begin + chunk);
    if (begin < end) threads.emplace_back(fn, begin, end);
  }
  fn(0, std::min(n, chunk));
  for (auto& t : threads) t.join();
}

// IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds past 65504: infinity
  if (abs < 0x38800000u) {
    // subnormal or zero: value = m · 2^-24; round the shifted mantissa to nearest even
    if (abs < 0x33000000u) return uint16_t(sign);
    const uint32_t e = abs >> 23, m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 113 - e + 13
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    const float v = std::ldexp(float(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));
}

void add(const float* a, const float* b, int64_t nb, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i % nb];
}

void mul(const float* a, const float* b, int64_t nb, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i % nb];
}

void scale(const float* a, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s;
}

void softcap(const float* a, float cap, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = cap * std::tanh(a[i] / cap);
}

}  // namespace ml::ops
