// Qwen3: llama.cpp src/models/qwen3.cpp. Llama's block with NeoX RoPE and a per-head RMSNorm
// of q and k (attn_q_norm, attn_k_norm) before RoPE; no biases.
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
    layers::load_ffn(ld, c, b, l);
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
  q = layers::norm(f, q, l.attn_q_norm);
  k = layers::norm(f, k, l.attn_k_norm);
  f.cb(q, "Qcur_normed", il);
  f.cb(k, "Kcur_normed", il);
  q = layers::rope(f, q, il);
  k = layers::rope(f, k, il);
  cur = layers::attend(f, il, q, k, v, c.attn_scale, nullptr);
  cur = be.matmul(l.wo, cur);
  f.cb(cur, "attn_out", il);
  Tensor ffn_inp = be.add(cur, x);

  cur = layers::norm(f, ffn_inp, l.ffn_norm);
  f.cb(cur, "ffn_norm", il);
  cur = be.swiglu(be.matmul(l.ffn_gate, cur), be.matmul(l.ffn_up, cur));
  cur = be.matmul(l.ffn_down, cur);
  f.cb(cur, "ffn_out", il);
  Tensor l_out = be.add(cur, ffn_inp);
  f.cb(l_out, "l_out", il);
  return l_out;
}

Tensor forward(const Forward& f) {
  return layers::forward(f, layer);
}

}  // namespace

const Architecture kQwen3{"qwen3", load, layer, forward};

}  // namespace ml
