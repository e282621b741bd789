// Embedding rows from a quantized table: ggml_get_rows, which dequantizes the chosen rows.
#include "ml/ops.h"
#include "ml/quant.h"

namespace ml::ops {

void dequantize_row(gguf::Type type, const std::byte* table, int64_t K, int64_t row, float* out) {
  const uint64_t row_bytes = gguf::row_bytes(type, uint64_t(K));
  quant::dequantize(type, std::span<const std::byte>(table + uint64_t(row) * row_bytes, row_bytes),
                    std::span<float>(out, size_t(K)));
}

}  // namespace ml::ops
