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
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    LayerWeights& l = w.layers.emplace_back();
    layers::load_attention(ld, c, b, l);
    l.attn_q_norm = ld.need(b + "attn_q_norm.weight", {c.head_dim}, K::f32);
    l.attn_k_norm = ld.need(b + "attn_k_norm.weight", {c.head_dim}, K::f32);
    l.attn_post_norm = ld.need(b + "post_attention_norm.weight", {c.n_embd}, K::f32);
    layers::load_ffn(ld, c, b, l);
    l.ffn_post_norm = ld.need(b + "post_ffw_norm.weight", {c.n_embd}, K::f32);
  }
}

Tensor layer(const Forward& f, const Tensor& x, int il) {
  Backend& be = f.be;
  const Config& c = f.cfg;
  const LayerWeights& l = f.w.layers[size_t(il)];
  Tensor cur = layers::norm(f, x, l.attn_norm);
  f.cb(cur, "attn_norm", il);

  Tensor q = layers::heads(f, be.matmul(l.wq, cur), c.n_head);
  Tensor k = layers::heads(f, be.matmul(l.wk, cur), c.n_head_kv);
  Tensor v = layers::heads(f, be.matmul(l.wv, cur), c.n_head_kv);
  q = layers::rope(f, layers::norm(f, q, l.attn_q_norm), il);
  k = layers::rope(f, layers::norm(f, k, l.attn_k_norm), il);
  f.cb(q, "Qcur", il);
  f.cb(k, "Kcur", il);
  cur = layers::attend(f, il, q, k, v, c.attn_scale, nullptr);
  cur = be.matmul(l.wo, cur);
  cur = layers::norm(f, cur, l.attn_post_norm);
  f.cb(cur, "attn_post_norm", il);
  Tensor sa_out = be.add(cur, x);

  cur = layers::norm(f, sa_out, l.ffn_norm);
  f.cb(cur, "ffn_norm", il);
  cur = be.geglu(be.matmul(l.ffn_gate, cur), be.matmul(l.ffn_up, cur));
  cur = be.matmul(l.ffn_down, cur);
  cur = layers::norm(f, cur, l.ffn_post_norm);
  f.cb(cur, "ffn_post_norm", il);
  Tensor l_out = be.add(cur, sa_out);
  f.cb(l_out, "l_out", il);
  return l_out;
}

Tensor forward(const Forward& f) {
  return layers::forward(f, layer);
}

}  // namespace

const Architecture kGemma3{"gemma3", load, layer, forward};

}  // namespace ml
