// Qwen3: llama.cpp src/models/qwen3.cpp. Llama's block (llama_layer) with NeoX RoPE and a
// per-head RMSNorm of q and k (attn_q_norm, attn_k_norm) before RoPE, which
// layers::attention applies because they are loaded; no biases, no rope_freqs.
#include "model/architectures.h"
#include "model/layers.h"

namespace ml {
namespace {

void load(WeightLoader& ld, const Config& c, Weights& w) {
  layers::load_io(ld, c, w);
  layers::load_layers(c, w, [&](const std::string& b, LayerWeights& l) {
    layers::load_attention(ld, c, b, l, {.qk_norm = true});
    layers::load_ffn(ld, c, b, l);
  });
}

}  // namespace

const Architecture kQwen3{"qwen3", load, llama_layer, layers::forward<llama_layer>};

}  // namespace ml
