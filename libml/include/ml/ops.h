#pragma once
// ops: each op's CPU reference and its Vulkan dispatch, side by side (libml/src/ops/<op>.cpp).
#include <cstdint>
#include <span>
#include <vector>

#include "ml/gguf.h"
#include "ml/vk.h"

namespace ml::ops {

// ---------------------------------------------------------------------------------------
// matmul (libml/src/ops/matmul.cpp, shaders/matmul_vec.comp, matmul_tiled.comp,
// dequant.comp): y = W x with W in its GGUF type, x and y f32.
// ---------------------------------------------------------------------------------------

// CPU reference. w: [m][k] in `type` (m * row_bytes(type, k) bytes), x: [n_tokens][k],
// y: [n_tokens][m]; each dot product in float64 (ml::quant::matvec).
void matmul(gguf::Type type, std::span<const std::byte> w, uint64_t m, uint64_t k,
            std::span<const float> x, uint64_t n_tokens, std::span<float> y);

// CPU reference of the expert matmul. w: [n_expert][m][k]; ids: [n_tokens][n_used] expert
// numbers; x: [n_tokens][k], or [n_tokens][n_used][k] when x_per_slot;
// y: [n_tokens][n_used][m] = W[ids[t][s]] x[t] (or x[t][s]).
void matmul_id(gguf::Type type, std::span<const std::byte> w, uint64_t n_expert, uint64_t m,
               uint64_t k, std::span<const float> x, bool x_per_slot, std::span<const int32_t> ids,
               uint64_t n_used, uint64_t n_tokens, std::span<float> y);

// A weight matrix (or n_expert of them, one after the other) in a device buffer, raw GGUF
// bytes from `offset`. The buffer must extend to a multiple of 4 bytes past the last row
// (upload_weight pads) because kernels read whole words.
struct GpuWeight {
  const vk::Buffer* buffer = nullptr;
  uint64_t offset = 0;
  gguf::Type type = gguf::Type::F32;
  uint64_t k = 0;  // values per row
  uint64_t m = 0;  // rows per matrix
  uint64_t n_expert = 1;
};

// Types the kernels decode: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K
// MXFP4 IQ4_NL IQ4_XS.
bool gpu_supports(gguf::Type type);
std::vector<gguf::Type> gpu_types();

// Copies bytes into a new device buffer padded to a multiple of 16 bytes.
std::unique_ptr<vk::Buffer> upload_weight(vk::Device& device, vk::StagingRing& ring,
                                          std::span<const std::byte> bytes, std::string name);

enum class MatmulKernel {
  automatic,  // matvec for up to 8 tokens, tiled beyond
  vec,        // matmul_vec.comp, one workgroup per ROWS rows per token
  tiled,      // matmul_tiled.comp
};

// Records y = W x: x [n_tokens][k] f32, y [n_tokens][m] f32. A weight larger than
// maxStorageBufferRange is bound and dispatched in row slices.
void matmul(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, uint64_t n_tokens,
            const vk::Buffer& y, MatmulKernel kernel = MatmulKernel::automatic);

// Records the expert matmul (see the CPU matmul_id); ids is an int32 buffer
// [n_tokens][n_used]. An id outside [0, n_expert) yields NaN rows.
void matmul_id(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& x, bool x_per_slot,
               const vk::Buffer& ids, uint64_t n_used, uint64_t n_tokens, const vk::Buffer& y);

// Records y = all n_expert * m rows of W dequantized to f32, [n_expert * m][k].
void dequantize(vk::Recorder& rec, const GpuWeight& w, const vk::Buffer& y);

}  // namespace ml::ops
