// Llama (and Qwen2 = Llama with q/k/v biases and NeoX RoPE): llama.cpp src/models/llama.cpp.
//   x = embed(tokens)
//   per layer: h = x + Wo·attn(rope(Wq·n), rope(Wk·n), Wv·n) with n = rmsnorm(x)
//              x = h + Wdown·(silu(Wgate·m) ⊙ Wup·m)        with m = rmsnorm(h)
//   logits = Wout · rmsnorm(x)
#include "model/architectures.h"
#include "model/layers.h"

namespace ml {
namespace {

void load(WeightLoader& ld, const Config& c, Weights& w) {
  using K = WeightLoader::Kind;
  using layers::Need;
  layers::load_io(ld, c, w);
  w.rope_freqs = ld.optional("rope_freqs.weight", {c.rope.n_dims / 2}, K::f32);
  // Biases: required by qwen2, optional for llama (llama.cpp loads them when present).
  const layers::AttnSpec attn{.qkv_bias = c.attn_bias ? Need::required : Need::optional,
                              .o_bias = Need::optional};
  layers::load_layers(c, w, [&](const std::string& b, LayerWeights& l) {
    layers::load_attention(ld, c, b, l, attn);
    layers::load_ffn(ld, c, b, l);
  });
}

}  // namespace

Tensor llama_layer(const Forward& f, const Tensor& x, int il) {
  const LayerWeights& l = f.w.layers[size_t(il)];
  // Both residual adds ride in the projections' matmuls (layers::project).
  Tensor ffn_inp = layers::attention(f, x, il, &x);
  Tensor cur = layers::norm(f, ffn_inp, l.ffn_norm, "ffn_norm", il);
  cur = layers::ffn(f, cur, layers::Glu::swiglu, il, &ffn_inp);
  f.cb(cur, "l_out", il);
  return cur;
}

const Architecture kLlama{"llama", load, llama_layer, layers::forward<llama_layer>};
const Architecture kQwen2{"qwen2", load, llama_layer, layers::forward<llama_layer>};

}  // namespace ml
