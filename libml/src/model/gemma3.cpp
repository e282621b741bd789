// Gemma 3: llama.cpp src/models/gemma3.cpp. Embeddings scaled by √n_embd; q/k RMSNorm per
// head; local layers (5 of every 6) attend within a sliding window with their own RoPE base;
// extra RMSNorms after attention and after the FFN (post_attention_norm, post_ffw_norm);
// GeGLU FFN with tanh GELU; optional final logit soft-capping. The GGUF converter already
// stores Gemma's norm weights as (1 + w), so the norms are plain RMSNorm times w.
#include "model/architectures.h"
#include "model/layers.h"

namespace ml {
namespace {

void load(WeightLoader& ld, const Config& c, Weights& w) {
  using K = WeightLoader::Kind;
  layers::load_io(ld, c, w);
  layers::load_layers(c, w, [&](const std::string& b, LayerWeights& l) {
    layers::load_attention(ld, c, b, l, {.qk_norm = true});
    l.attn_post_norm = ld.need(b + "post_attention_norm.weight", {c.n_embd}, K::f32);
    layers::load_ffn(ld, c, b, l);
    l.ffn_post_norm = ld.need(b + "post_ffw_norm.weight", {c.n_embd}, K::f32);
  });
}

// Llama's block with a norm after each half, before its residual add ("sandwich" norms).
Tensor layer(const Forward& f, const Tensor& x, int il) {
  const LayerWeights& l = f.w.layers[size_t(il)];
  Tensor cur = layers::attention(f, x, il);
  // attn_post_norm, + x, ffn_norm: one op (a stage at decode).
  const Backend::NormSum sa = layers::norm_add_norm(f, cur, l.attn_post_norm, "attn_post_norm", il,
                                                    x, l.ffn_norm, "ffn_norm");
  const Tensor& sa_out = sa.sum;

  cur = layers::ffn(f, sa.norm, layers::Glu::geglu, il);
  cur = layers::norm_add(f, cur, l.ffn_post_norm, "ffn_post_norm", il, sa_out);
  f.cb(cur, "l_out", il);
  return cur;
}

}  // namespace

const Architecture kGemma3{"gemma3", load, layer, layers::forward<layer>};

}  // namespace ml
