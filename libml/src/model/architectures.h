#pragma once
// The architectures this build runs, one per file in libml/src/model/; registry.cpp maps
// general.architecture to them.
#include "ml/model.h"

namespace ml {

extern const Architecture kLlama;   // llama.cpp
extern const Architecture kQwen2;   // llama.cpp (biases, NeoX RoPE from the config)
extern const Architecture kQwen3;   // qwen3.cpp
extern const Architecture kGemma3;  // gemma3.cpp
extern const Architecture kGptOss;  // gpt_oss.cpp

// Llama's pre-norm block (llama.cpp), shared by the families whose block differs from it
// only in the tensors their attention loads (qwen2, qwen3).
Tensor llama_layer(const Forward& f, const Tensor& x, int il);

}  // namespace ml
