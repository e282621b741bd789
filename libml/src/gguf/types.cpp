// The ggml type table: block size and bytes per block of every type in current ggml
// (ggml.c's type_traits; gguf-py's GGML_QUANT_SIZES, except Q8_1, which gguf-py lists as
// 40 bytes while ggml's block_q8_1 is two f16 and 32 int8: 36).
#include <algorithm>

#include "ml/gguf.h"

namespace ml::gguf {

const std::vector<TypeTraits>& all_types() {
  static const std::vector<TypeTraits> table = {
      {Type::F32, "F32", 1, 4},
      {Type::F16, "F16", 1, 2},
      {Type::Q4_0, "Q4_0", 32, 18},        // f16 d, 16 bytes of nibbles
      {Type::Q4_1, "Q4_1", 32, 20},        // f16 d, m, 16 bytes of nibbles
      {Type::Q5_0, "Q5_0", 32, 22},        // f16 d, 4 bytes of 5th bits, 16 of nibbles
      {Type::Q5_1, "Q5_1", 32, 24},        // f16 d, m, 4 + 16
      {Type::Q8_0, "Q8_0", 32, 34},        // f16 d, 32 int8
      {Type::Q8_1, "Q8_1", 32, 36},        // f16 d, s, 32 int8
      {Type::Q2_K, "Q2_K", 256, 84},       // 16 scales, 64 qs, f16 d, dmin
      {Type::Q3_K, "Q3_K", 256, 110},      // 32 hmask, 64 qs, 12 scales, f16 d
      {Type::Q4_K, "Q4_K", 256, 144},      // f16 d, dmin, 12 scales, 128 qs
      {Type::Q5_K, "Q5_K", 256, 176},      // f16 d, dmin, 12 scales, 32 qh, 128 qs
      {Type::Q6_K, "Q6_K", 256, 210},      // 128 ql, 64 qh, 16 scales, f16 d
      {Type::Q8_K, "Q8_K", 256, 292},      // f32 d, 256 int8, 16 int16 bsums
      {Type::IQ2_XXS, "IQ2_XXS", 256, 66},
      {Type::IQ2_XS, "IQ2_XS", 256, 74},
      {Type::IQ3_XXS, "IQ3_XXS", 256, 98},
      {Type::IQ1_S, "IQ1_S", 256, 50},
      {Type::IQ4_NL, "IQ4_NL", 32, 18},
      {Type::IQ3_S, "IQ3_S", 256, 110},
      {Type::IQ2_S, "IQ2_S", 256, 82},
      {Type::IQ4_XS, "IQ4_XS", 256, 136},
      {Type::I8, "I8", 1, 1},
      {Type::I16, "I16", 1, 2},
      {Type::I32, "I32", 1, 4},
      {Type::I64, "I64", 1, 8},
      {Type::F64, "F64", 1, 8},
      {Type::IQ1_M, "IQ1_M", 256, 56},
      {Type::BF16, "BF16", 1, 2},
      {Type::TQ1_0, "TQ1_0", 256, 54},
      {Type::TQ2_0, "TQ2_0", 256, 66},
      {Type::MXFP4, "MXFP4", 32, 17},      // e8m0 shared exponent, 16 bytes of e2m1 nibbles
      {Type::NVFP4, "NVFP4", 64, 36},      // 4 e4m3 scales, 32 bytes of e2m1 nibbles
      {Type::Q1_0, "Q1_0", 128, 18},       // f16 d, 128 sign bits
  };
  return table;
}

const TypeTraits* find_type(uint32_t raw) {
  for (const TypeTraits& t : all_types()) {
    if (uint32_t(t.type) == raw) return &t;
  }
  return nullptr;
}

const TypeTraits& traits(Type type) {
  const TypeTraits* t = find_type(uint32_t(type));
  if (!t) fail("unknown ggml type ", uint32_t(type));
  return *t;
}

const char* type_name(Type type) { return traits(type).name; }

std::optional<Type> type_from_name(std::string_view name) {
  for (const TypeTraits& t : all_types()) {
    if (name == t.name) return t.type;
  }
  return std::nullopt;
}

uint64_t row_bytes(Type type, uint64_t n) {
  const TypeTraits& t = traits(type);
  if (n % t.block_size != 0) {
    fail("a row of ", n, " values is not a whole number of ", t.name, " blocks (", t.block_size,
         " values each)");
  }
  return n / t.block_size * t.type_size;
}

uint64_t TensorInfo::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

uint64_t TensorInfo::n_rows() const {
  uint64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

}  // namespace ml::gguf
