// Mixture-of-experts routing, llama.cpp's build_moe_ffn with
// LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT (gpt-oss): pick the top k router logits, then
// softmax over just those k to weight the experts' outputs.
#include "ml/ops.h"

namespace ml::ops {

void moe_route(const float* logits, int64_t n_expert, int k, int32_t* ids, float* w) {
  top_k(logits, n_expert, k, ids);
  for (int j = 0; j < k; ++j) w[j] = logits[ids[j]];
  softmax(w, k, nullptr);
}

}  // namespace ml::ops
