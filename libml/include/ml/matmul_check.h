#pragma once
// The checks behind gates C and D: GPU matmul and dequantize against the CPU reference and
// golden vectors. In the library so that tests and the thin gate binaries share them.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ml/gguf.h"
#include "ml/vk.h"

namespace ml::ops {

// Gate D, one weight type of a quant-golden GGUF (tensors x, T.q, T.deq, T.y; see
// ../shared/README.md). Errors: dequantize as max |v - T.deq| / max |T.deq| over the tensor;
// matmul as max over rows of |y - T.y| / (||T.deq row|| * ||x||).
struct GoldenResult {
  std::string type;
  uint64_t rows = 0, k = 0;
  double cpu_deq = NAN, cpu_y = NAN;  // CPU reference (ml::quant); NaN: not measured
  double gpu_deq = NAN, gpu_y = NAN, gpu_y_tiled = NAN;  // dequant.comp, matmul_vec, matmul_tiled
  bool passed = false;
  std::string error;  // why it failed, if it did
};
constexpr double kGoldenDeqTolerance = 1e-6;  // FMA contraction may round a product once less
constexpr double kGoldenYTolerance = 1e-4;
std::vector<GoldenResult> check_quant_golden(vk::Device& device, const std::string& path);

// Gate C: a real tensor (its first `rows` rows, 0: all) times `n_vectors` random vectors
// on the GPU, compared with the CPU reference, timed over `reps` runs.
struct TensorCheck {
  std::string tensor;
  gguf::Type type = gguf::Type::F32;
  uint64_t k = 0, rows = 0, n_vectors = 0, weight_bytes = 0;
  uint64_t n_slices = 0;     // descriptor ranges the weight was bound as
  double max_rel_err = 0;    // max |y - y_cpu| / (||row|| * ||x||), rows dequantized on the CPU
  double ms_per_matmul = 0;  // GPU time per multiply (timestamps, else wall clock)
  double gb_per_s = 0;       // weight bytes read per second
  bool passed = false;
};
TensorCheck check_tensor(vk::Device& device, gguf::Source& source, const gguf::File& file,
                         const std::string& tensor, uint64_t n_vectors, uint64_t rows,
                         uint64_t reps, uint64_t seed = 1);

}  // namespace ml::ops
