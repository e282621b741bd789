// gpt-oss: llama.cpp src/models/openai-moe-iswa.cpp. Attention with q/k/v/o biases, NeoX
// RoPE with YaRN, a learned sink logit per head, sliding window on even layers; then a
// mixture of experts: the router picks the top expert_used_count experts per token, weights
// them by a softmax over the picked logits, and each expert computes
// down(swiglu_oai(gate(x), up(x))) with per-expert biases (MXFP4 weights). Forward's
// moe_fallback (--moe-fallback) sends every token to expert 0 alone instead.
#include <span>
#include <vector>

#include "model/architectures.h"
#include "model/layers.h"

namespace ml {
namespace {

constexpr float kSwigluAlpha = 1.702f;  // swiglu_oai: gate·σ(1.702·gate)
constexpr float kSwigluLimit = 7.0f;    // gate ≤ 7, up ∈ [-7, 7]

void load(WeightLoader& ld, const Config& c, Weights& w) {
  using K = WeightLoader::Kind;
  using layers::Need;
  layers::load_io(ld, c, w);
  const int64_t E = c.n_expert, ff = c.n_ff_exp;
  layers::load_layers(c, w, [&](const std::string& b, LayerWeights& l) {
    layers::load_attention(ld, c, b, l,
                           {.qkv_bias = Need::required, .o_bias = Need::required, .sinks = true});
    l.attn_post_norm = ld.need(b + "post_attention_norm.weight", {c.n_embd}, K::f32);
    l.ffn_gate_inp = ld.need(b + "ffn_gate_inp.weight", {c.n_embd, E}, K::matrix);
    l.ffn_gate_inp_b = ld.need(b + "ffn_gate_inp.bias", {E}, K::f32);
    l.ffn_gate_exps = ld.need(b + "ffn_gate_exps.weight", {c.n_embd, ff, E}, K::matrix);
    l.ffn_up_exps = ld.need(b + "ffn_up_exps.weight", {c.n_embd, ff, E}, K::matrix);
    l.ffn_down_exps = ld.need(b + "ffn_down_exps.weight", {ff, c.n_embd, E}, K::matrix);
    l.ffn_gate_exps_b = ld.need(b + "ffn_gate_exps.bias", {ff, E}, K::f32);
    l.ffn_up_exps_b = ld.need(b + "ffn_up_exps.bias", {ff, E}, K::f32);
    l.ffn_down_exps_b = ld.need(b + "ffn_down_exps.bias", {c.n_embd, E}, K::f32);
  });
}

// Bring-up route (Forward::moe_fallback): every token to expert 0 alone with weight 1, the
// router skipped. Its ids and weights are host uploads, an extra submit per layer on the GPU:
// this path is for isolating expert matmuls from routing, not for speed.
Backend::Route expert0_route(const Forward& f) {
  const std::vector<int32_t> zeros(size_t(f.n_tokens), 0);
  const std::vector<float> ones(size_t(f.n_tokens), 1.0f);
  Backend::Route r;
  r.ids = reshape(upload_i32(f.be, zeros), {1, f.n_tokens, 1, 1});
  r.weights = f.be.scratch(gguf::Type::F32, {1, f.n_tokens, 1, 1});
  f.be.upload(r.weights, std::as_bytes(std::span(ones)));
  return r;
}

// The MoE FFN of llama.cpp's build_moe_ffn (LLM_FFN_SWIGLU_OAI_MOE, SOFTMAX_WEIGHT gating);
// the expert biases ride in the expert matmuls. With inp, returns inp + that: the residual
// fused into moe_combine unless an observer needs ffn_moe_out alone.
Tensor moe(const Forward& f, const LayerWeights& l, const Tensor& x, int il, const Tensor* inp) {
  Backend& be = f.be;
  Backend::Route route;
  if (f.moe_fallback) {
    route = expert0_route(f);
  } else {
    Tensor logits = layers::linear(f, l.ffn_gate_inp, l.ffn_gate_inp_b, x);  // [E, T]
    f.cb(logits, "ffn_moe_logits", il);
    route = be.moe_route(logits, int(f.cfg.n_expert_used));
  }
  f.cb(route.ids, "ffn_moe_topk", il);
  f.cb(route.weights, "ffn_moe_weights", il);
  Tensor xs = reshape(x, {f.cfg.n_embd, 1, f.n_tokens, 1});  // one input shared by the slots
  Tensor up = be.matmul_id(l.ffn_up_exps, xs, route.ids, &l.ffn_up_exps_b);
  Tensor gate = be.matmul_id(l.ffn_gate_exps, xs, route.ids, &l.ffn_gate_exps_b);
  Tensor act = be.swiglu_oai(gate, up, kSwigluAlpha, kSwigluLimit);  // [ff, n_used, T]
  Tensor down = be.matmul_id(l.ffn_down_exps, act, route.ids, &l.ffn_down_exps_b);
  if (inp && !be.observed()) return be.moe_combine(down, route.weights, inp);
  Tensor out = be.moe_combine(down, route.weights);
  f.cb(out, "ffn_moe_out", il);
  return inp ? be.add(out, *inp) : out;
}

// Attention with biases and sinks, then the MoE FFN; its pre-norm is stored as
// post_attention_norm (llama.cpp names it attn_post_norm too).
Tensor layer(const Forward& f, const Tensor& x, int il) {
  const LayerWeights& l = f.w.layers[size_t(il)];
  Tensor ffn_inp = layers::attention(f, x, il, &x);
  Tensor cur = layers::norm(f, ffn_inp, l.attn_post_norm, "attn_post_norm", il);
  cur = moe(f, l, cur, il, &ffn_inp);
  f.cb(cur, "l_out", il);
  return cur;
}

}  // namespace

const Architecture kGptOss{"gpt-oss", load, layer, layers::forward<layer>};

}  // namespace ml
