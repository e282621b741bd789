// Shared forward-pass pieces; see layers.h.
#include "model/layers.h"

namespace ml::layers {

void load_io(WeightLoader& ld, const Config& c, Weights& w) {
  using K = WeightLoader::Kind;
  w.token_embd = ld.need("token_embd.weight", {c.n_embd, c.n_vocab}, K::matrix);
  w.output_norm = ld.need("output_norm.weight", {c.n_embd}, K::f32);
  w.output =
      c.tied_output ? w.token_embd : ld.need("output.weight", {c.n_embd, c.n_vocab}, K::matrix);
}

void load_attention(WeightLoader& ld, const Config& c, const std::string& b, LayerWeights& l,
                    const AttnSpec& s) {
  using K = WeightLoader::Kind;
  auto f32 = [&](Need need, const std::string& name, int64_t n) {
    if (need == Need::none) return Tensor{};
    return need == Need::required ? ld.need(b + name, {n}, K::f32)
                                  : ld.optional(b + name, {n}, K::f32);
  };
  l.attn_norm = ld.need(b + "attn_norm.weight", {c.n_embd}, K::f32);
  l.wq = ld.need(b + "attn_q.weight", {c.n_embd, c.n_embd_q()}, K::matrix);
  l.wk = ld.need(b + "attn_k.weight", {c.n_embd, c.n_embd_kv()}, K::matrix);
  l.wv = ld.need(b + "attn_v.weight", {c.n_embd, c.n_embd_kv()}, K::matrix);
  l.wo = ld.need(b + "attn_output.weight", {c.n_embd_q(), c.n_embd}, K::matrix);
  l.bq = f32(s.qkv_bias, "attn_q.bias", c.n_embd_q());
  l.bk = f32(s.qkv_bias, "attn_k.bias", c.n_embd_kv());
  l.bv = f32(s.qkv_bias, "attn_v.bias", c.n_embd_kv());
  l.bo = f32(s.o_bias, "attn_output.bias", c.n_embd);
  const Need qk_norm = s.qk_norm ? Need::required : Need::none;
  l.attn_q_norm = f32(qk_norm, "attn_q_norm.weight", c.head_dim);
  l.attn_k_norm = f32(qk_norm, "attn_k_norm.weight", c.head_dim);
  l.attn_sinks = f32(s.sinks ? Need::required : Need::none, "attn_sinks.weight", c.n_head);
}

void load_ffn(WeightLoader& ld, const Config& c, const std::string& b, LayerWeights& l) {
  using K = WeightLoader::Kind;
  l.ffn_norm = ld.need(b + "ffn_norm.weight", {c.n_embd}, K::f32);
  l.ffn_gate = ld.need(b + "ffn_gate.weight", {c.n_embd, c.n_ff}, K::matrix);
  l.ffn_up = ld.need(b + "ffn_up.weight", {c.n_embd, c.n_ff}, K::matrix);
  l.ffn_down = ld.need(b + "ffn_down.weight", {c.n_ff, c.n_embd}, K::matrix);
}

Tensor forward(const Forward& f, Tensor (*layer)(const Forward& f, const Tensor& x, int il)) {
  Tensor x = embed(f);
  for (int il = 0; il < int(f.n_layer); ++il) x = layer(f, x, il);
  return lm_head(f, x);
}

Tensor embed(const Forward& f) {
  Tensor x = f.be.get_rows(f.w.token_embd, f.tokens);
  if (f.cfg.embed_scale != 1.0f) x = f.be.scale(x, f.cfg.embed_scale);
  f.cb(x, "inp_embd", -1);
  return x;
}

Tensor norm(const Forward& f, const Tensor& x, const Tensor& w) {
  return f.be.rmsnorm(x, &w, f.cfg.norm_eps);
}

Tensor norm(const Forward& f, const Tensor& x, const Tensor& w, std::string_view name, int il) {
  Tensor y = norm(f, x, w);
  f.cb(y, name, il);
  return y;
}

const ops::RopeParams& rope_params(const Forward& f, int il) {
  return f.cfg.swa_layers[size_t(il)] ? f.cfg.rope_swa : f.cfg.rope;
}

int32_t window(const Forward& f, int il) {
  return f.cfg.swa_layers[size_t(il)] ? f.cfg.n_swa : 0;
}

bool store_early(const Forward& f, int il) {
  return store_before_attention(f.pos0, f.n_tokens, window(f, il), f.kv.k[size_t(il)].ne[1]);
}

Backend::QK rope_qk(const Forward& f, const Tensor& q, const Tensor& k, const Tensor& v, int il,
                    bool store, const Backend::QkNorm* norm) {
  const Backend::KvStore kv{f.kv.k[size_t(il)], f.kv.v[size_t(il)], v, f.pos0};
  return f.be.rope_qk(q, k, f.pos, f.w.rope_freqs ? &f.w.rope_freqs : nullptr, rope_params(f, il),
                      store ? &kv : nullptr, norm);
}

Tensor heads(const Forward& f, const Tensor& x, int64_t n) {
  return reshape(x, {f.cfg.head_dim, n, f.n_tokens, 1});
}

Tensor attend(const Forward& f, int il, const Tensor& q, const Tensor& k, const Tensor& v,
              float scale, const Tensor* sinks, bool stored) {
  ops::AttentionParams p;
  p.pos0 = f.pos0;
  p.n_swa = window(f, il);
  p.scale = scale;
  const Tensor& k_cache = f.kv.k[size_t(il)];
  const Tensor& v_cache = f.kv.v[size_t(il)];
  Tensor out = f.be.attention(q, k, v, k_cache, v_cache, sinks, p);
  if (!stored) {
    f.be.kv_store(k_cache, k, f.pos0);
    f.be.kv_store(v_cache, v, f.pos0);
  }
  f.cb(out, "kqv_out", il);
  return out;
}

Tensor linear(const Forward& f, const Tensor& w, const Tensor& b, const Tensor& x) {
  return f.be.matmul(w, x, b ? &b : nullptr);
}

Tensor project(const Forward& f, const Tensor& w, const Tensor& b, const Tensor& x,
               std::string_view name, int il, const Tensor* inp) {
  if (inp && !f.be.observed()) return f.be.matmul(w, x, b ? &b : nullptr, inp);
  Tensor y = linear(f, w, b, x);
  f.cb(y, name, il);
  return inp ? f.be.add(y, *inp) : y;
}

Tensor attention(const Forward& f, const Tensor& x, int il, const Tensor* inp) {
  const Config& c = f.cfg;
  const LayerWeights& l = f.w.layers[size_t(il)];
  Tensor cur = norm(f, x, l.attn_norm, "attn_norm", il);

  const Tensor q = heads(f, linear(f, l.wq, l.bq, cur), c.n_head);
  const Tensor k = heads(f, linear(f, l.wk, l.bk, cur), c.n_head_kv);
  const Tensor v = heads(f, linear(f, l.wv, l.bv, cur), c.n_head_kv);
  // The per-head q/k norms run inside the rope op. An observer gets them from ops of their
  // own beside it, off the path to the logits, which stay those of the pass without one.
  const Backend::QkNorm qk_norm{l.attn_q_norm, l.attn_k_norm, c.norm_eps};
  if (l.attn_q_norm && f.be.observed()) {
    norm(f, q, l.attn_q_norm, "Qcur_normed", il);
    norm(f, k, l.attn_k_norm, "Kcur_normed", il);
  }
  // One op ropes q and k and, where no query of the batch still reads the rows it takes,
  // stores k and v in the cache before attention (attend stores them after otherwise).
  const bool stored = store_early(f, il);
  const Backend::QK roped = rope_qk(f, q, k, v, il, stored, l.attn_q_norm ? &qk_norm : nullptr);
  f.cb(roped.q, "Qcur", il);
  f.cb(roped.k, "Kcur", il);
  cur = attend(f, il, roped.q, roped.k, v, c.attn_scale, l.attn_sinks ? &l.attn_sinks : nullptr,
               stored);
  return project(f, l.wo, l.bo, cur, "attn_out", il, inp);
}

Tensor ffn(const Forward& f, const Tensor& x, Glu glu, int il, const Tensor* inp) {
  Backend& be = f.be;
  const LayerWeights& l = f.w.layers[size_t(il)];
  const Tensor gate = be.matmul(l.ffn_gate, x), up = be.matmul(l.ffn_up, x);
  const Tensor act = glu == Glu::swiglu ? be.swiglu(gate, up) : be.geglu(gate, up);
  return project(f, l.ffn_down, Tensor{}, act, "ffn_out", il, inp);
}

Tensor norm_add(const Forward& f, const Tensor& x, const Tensor& w, std::string_view name, int il,
                const Tensor& inp) {
  if (!f.be.observed()) return f.be.rmsnorm(x, &w, f.cfg.norm_eps, &inp);
  return f.be.add(norm(f, x, w, name, il), inp);
}

Backend::NormSum norm_add_norm(const Forward& f, const Tensor& x, const Tensor& w,
                               std::string_view name, int il, const Tensor& inp, const Tensor& w2,
                               std::string_view name2) {
  if (!f.be.observed()) return f.be.rmsnorm_add_norm(x, w, inp, w2, f.cfg.norm_eps);
  const Tensor sum = norm_add(f, x, w, name, il, inp);
  return {sum, norm(f, sum, w2, name2, il)};
}

Tensor residual(const Forward& f, const Tensor& cur, const Tensor& inp, int il) {
  Tensor out = f.be.add(cur, inp);
  f.cb(out, "l_out", il);
  return out;
}

Tensor lm_head(const Forward& f, const Tensor& x) {
  // Every row (a one-token step, all logits) needs no gather: one stage less per token.
  Tensor cur = f.out_rows ? f.be.get_rows(x, f.out_rows) : x;
  cur = norm(f, cur, f.w.output_norm);
  f.cb(cur, "result_norm", -1);
  cur = f.be.matmul(f.w.output, cur);
  if (f.cfg.final_logit_softcap > 0.0f) cur = f.be.softcap(cur, f.cfg.final_logit_softcap);
  f.cb(cur, "result_output", -1);
  return cur;
}

}  // namespace ml::layers
