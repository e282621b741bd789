#pragma once
// quant: the one place that knows every ggml block layout. CPU dequantize and dot for each
// weight type; the reference the GPU kernels and the CPU backend are tested against.
//
// Layouts follow ggml's ggml-common.h (block_q4_0, block_q4_K, block_mxfp4, ...) and the
// values its ggml-quants.c dequantize_row_* functions produce, bit for bit.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ml/gguf.h"

namespace ml::quant {

// IEEE binary16, round to nearest even; NaN stays NaN (quieted), overflow goes to infinity.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// bfloat16 as ggml converts it: the top 16 bits of an f32, rounded to nearest even; NaN
// keeps its top bits and is forced quiet (ggml_compute_fp32_to_bf16).
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

// True when dequantize/dot/matvec/random_blocks exist for the type.
bool has_reference(gguf::Type type);
// The types that have a reference, in ggml enum order.
std::vector<gguf::Type> reference_types();

// dst.size() values (a multiple of the block size) from src, which must hold exactly their
// blocks. Throws ml::Error on a size mismatch or a type without a reference.
void dequantize(gguf::Type type, std::span<const std::byte> src, std::span<float> dst);
std::vector<float> dequantize(gguf::Type type, std::span<const std::byte> src, uint64_t n);

// row · x over x.size() values, products and sum in float64.
double dot(gguf::Type type, std::span<const std::byte> row, std::span<const float> x);

// y[r] = W[r,:] · x for `rows` rows of k values each (w: rows × row_bytes(type, k) bytes),
// split over `threads` threads by row ranges (at most one per row; 0: as many as the
// hardware has, one per 64K values, so small matrices run on the calling thread). y[r] is
// float(dot(row r, x)) whatever the split. The matmul reference for kernels and the CPU
// backend's matvec.
void matvec(gguf::Type type, std::span<const std::byte> w, uint64_t rows, uint64_t k,
            std::span<const float> x, std::span<float> y, unsigned threads = 0);

// Valid random blocks of `type` holding n values (a multiple of the block size),
// deterministic in `seed` on every platform. Scale fields are drawn so that the values are
// finite and O(1) (|v| below about 16): input for tests and benchmarks.
std::vector<std::byte> random_blocks(gguf::Type type, uint64_t n, uint64_t seed);

}  // namespace ml::quant
