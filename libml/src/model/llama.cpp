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
  layers::load_io(ld, c, w);
  w.rope_freqs = ld.optional("rope_freqs.weight", {c.rope.n_dims / 2}, K::f32);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    LayerWeights& l = w.layers.emplace_back();
    layers::load_attention(ld, c, b, l);
    // Biases: required by qwen2, optional for llama (llama.cpp loads them when present).
    auto bias = [&](const std::string& name, int64_t n) {
      return c.attn_bias ? ld.need(b + name, {n}, K::f32) : ld.optional(b + name, {n}, K::f32);
    };
    l.bq = bias("attn_q.bias", c.n_embd_q());
    l.bk = bias("attn_k.bias", c.n_embd_kv());
    l.bv = bias("attn_v.bias", c.n_embd_kv());
    l.bo = ld.optional(b + "attn_output.bias", {c.n_embd}, K::f32);
    layers::load_ffn(ld, c, b, l);
  }
}

Tensor layer(const Forward& f, const Tensor& x, int il) {
  Backend& be = f.be;
  const Config& c = f.cfg;
  const LayerWeights& l = f.w.layers[size_t(il)];
  Tensor cur = layers::norm(f, x, l.attn_norm);
  f.cb(cur, "attn_norm", il);

  Tensor q = layers::heads(f, layers::linear(f, l.wq, l.bq, cur), c.n_head);
  Tensor k = layers::heads(f, layers::linear(f, l.wk, l.bk, cur), c.n_head_kv);
  Tensor v = layers::heads(f, layers::linear(f, l.wv, l.bv, cur), c.n_head_kv);
  q = layers::rope(f, q, il);
  k = layers::rope(f, k, il);
  f.cb(q, "Qcur", il);
  f.cb(k, "Kcur", il);
  cur = layers::attend(f, il, q, k, v, c.attn_scale, nullptr);
  cur = layers::linear(f, l.wo, l.bo, cur);
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

const Architecture kLlama{"llama", load, layer, forward};
const Architecture kQwen2{"qwen2", load, layer, forward};

}  // namespace ml
