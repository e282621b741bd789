// general.architecture → forward pass. Adding a family: its file and one line here.
#include "model/architectures.h"

namespace ml {

const Architecture& find_architecture(std::string_view name) {
  for (const Architecture* a : {&kLlama, &kQwen2, &kQwen3, &kGemma3, &kGptOss})
    if (a->name == name) return *a;
  fail("general.architecture '", name,
       "' has no forward pass (llama, qwen2, qwen3, gemma3, gpt-oss)");
}

}  // namespace ml
