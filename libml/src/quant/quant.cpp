// Dispatch by type, size checks, and the three uses of a block codec: dequantize, dot
// (float64) and the threaded matvec.
#include <algorithm>
#include <array>
#include <system_error>
#include <thread>

#include "quant/blocks.h"

namespace ml::quant {

namespace {

using detail::Codec;

const Codec* find_codec(gguf::Type type) {
  for (auto family : {detail::float_codecs, detail::legacy_codecs, detail::k_quant_codecs,
                      detail::fp4_codecs, detail::ternary_codecs, detail::iq_grid_codecs}) {
    for (const Codec& c : family()) {
      if (c.type == type) return &c;
    }
  }
  return nullptr;
}

const Codec& codec(gguf::Type type) {
  const Codec* c = find_codec(type);
  if (!c) {
    const gguf::TypeTraits* t = gguf::find_type(uint32_t(type));
    fail("no CPU reference for ggml type ", t ? t->name : "?", " (", uint32_t(type), ")");
  }
  return *c;
}

// Number of blocks of n values held in exactly `bytes` bytes; throws naming the mismatch.
uint64_t checked_blocks(gguf::Type type, uint64_t n, uint64_t bytes, const char* what) {
  const gguf::TypeTraits& t = gguf::traits(type);
  if (n % t.block_size != 0) {
    fail(what, ": ", n, " values are not a whole number of ", t.name, " blocks (", t.block_size,
         " values each)");
  }
  const uint64_t n_blocks = n / t.block_size;
  if (bytes % t.type_size != 0 || bytes / t.type_size != n_blocks) {
    fail(what, ": ", n, " ", t.name, " values take ", n_blocks, " blocks of ", t.type_size,
         " bytes, but ", bytes, " bytes were given");
  }
  return n_blocks;
}

// Values dequantized per step of dot: a multiple of every block size (1, 32, 64, 128, 256),
// small enough for the stack.
constexpr uint64_t kChunk = 4096;

// row · x for a row already checked to hold x.size() values.
double dot_unchecked(const Codec& c, uint64_t block_size, uint64_t type_size, const uint8_t* row,
                     const float* x, uint64_t n) {
  std::array<float, kChunk> buf;
  double acc[4] = {0, 0, 0, 0};
  for (uint64_t i = 0; i < n; i += kChunk) {
    const uint64_t len = std::min(kChunk, n - i);
    c.dequantize(row + i / block_size * type_size, buf.data(), len / block_size);
    // Four partial sums break the chain of dependent f64 adds (the bottleneck of a single
    // accumulator); the order is fixed, so the result does not depend on threading.
    uint64_t j = 0;
    for (; j + 4 <= len; j += 4) {
      for (int a = 0; a < 4; ++a) acc[a] += double(buf[j + a]) * double(x[i + j + a]);
    }
    for (; j < len; ++j) acc[0] += double(buf[j]) * double(x[i + j]);
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

const uint8_t* bytes_of(std::span<const std::byte> s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

}  // namespace

bool has_reference(gguf::Type type) {
  return find_codec(type) != nullptr;
}

std::vector<gguf::Type> reference_types() {
  std::vector<gguf::Type> types;
  for (const gguf::TypeTraits& t : gguf::all_types()) {
    if (has_reference(t.type)) types.push_back(t.type);
  }
  return types;
}

void dequantize(gguf::Type type, std::span<const std::byte> src, std::span<float> dst) {
  const Codec& c = codec(type);
  const uint64_t n_blocks = checked_blocks(type, dst.size(), src.size(), "dequantize");
  c.dequantize(bytes_of(src), dst.data(), n_blocks);
}

std::vector<float> dequantize(gguf::Type type, std::span<const std::byte> src, uint64_t n) {
  checked_blocks(type, n, src.size(), "dequantize");
  std::vector<float> out(n);
  dequantize(type, src, out);
  return out;
}

double dot(gguf::Type type, std::span<const std::byte> row, std::span<const float> x) {
  const Codec& c = codec(type);
  checked_blocks(type, x.size(), row.size(), "dot");
  const gguf::TypeTraits& t = gguf::traits(type);
  return dot_unchecked(c, t.block_size, t.type_size, bytes_of(row), x.data(), x.size());
}

void matvec(gguf::Type type, std::span<const std::byte> w, uint64_t rows, uint64_t k,
            std::span<const float> x, std::span<float> y, unsigned threads) {
  const Codec& c = codec(type);
  const gguf::TypeTraits& t = gguf::traits(type);
  if (x.size() != k) fail("matvec: x has ", x.size(), " values, rows have ", k);
  if (y.size() != rows) fail("matvec: y has ", y.size(), " values for ", rows, " rows");
  const uint64_t row_size = gguf::row_bytes(type, k);
  if (row_size == 0 ? !w.empty() : (w.size() % row_size != 0 || w.size() / row_size != rows)) {
    fail("matvec: ", rows, " rows of ", k, " ", t.name, " values take ", row_size,
         " bytes each, but the matrix has ", w.size(), " bytes");
  }

  const uint8_t* base = bytes_of(w);
  auto run_rows = [&](uint64_t r0, uint64_t r1) {
    for (uint64_t r = r0; r < r1; ++r) {
      y[r] = float(dot_unchecked(c, t.block_size, t.type_size, base + r * row_size, x.data(), k));
    }
  };

  // Automatic threading only above ~64K values per thread: below that the spawn costs more
  // than it saves. An explicit count is honoured (up to one thread per row).
  constexpr uint64_t kMinValuesPerThread = 1 << 16;
  uint64_t n_threads = threads;
  if (n_threads == 0) {
    n_threads = std::max(1u, std::thread::hardware_concurrency());
    n_threads = std::min(n_threads, std::max<uint64_t>(1, rows * k / kMinValuesPerThread));
  }
  n_threads = std::min(n_threads, rows);
  if (n_threads <= 1) {
    run_rows(0, rows);
    return;
  }
  // Row ranges as even as they go; the calling thread takes the first. A thread that cannot
  // be started (std::system_error) has its range run here instead.
  const uint64_t per = rows / n_threads, extra = rows % n_threads;
  auto range_begin = [&](uint64_t i) { return i * per + std::min(i, extra); };
  std::vector<std::thread> pool;
  pool.reserve(n_threads - 1);
  for (uint64_t i = 1; i < n_threads; ++i) {
    try {
      pool.emplace_back(run_rows, range_begin(i), range_begin(i + 1));
    } catch (const std::system_error&) {
      run_rows(range_begin(i), range_begin(i + 1));
    }
  }
  run_rows(0, range_begin(1));
  for (std::thread& th : pool) th.join();
}

std::vector<std::byte> random_blocks(gguf::Type type, uint64_t n, uint64_t seed) {
  const Codec& c = codec(type);
  const gguf::TypeTraits& t = gguf::traits(type);
  const uint64_t bytes = gguf::row_bytes(type, n);
  std::vector<std::byte> out(bytes);
  // Mixing the type into the seed keeps two types' streams from lining up.
  detail::Rng rng{seed * 0x2545F4914F6CDD1Dull + uint64_t(type)};
  c.random(rng, reinterpret_cast<uint8_t*>(out.data()), n / t.block_size);
  return out;
}

}  // namespace ml::quant
