#pragma once
// Pieces every architecture's forward pass shares (llama.cpp's llm_graph_context helpers:
// build_inp_embd, build_norm, build_attn, build_ffn, the LM head). An architecture file
// composes them into its block and names what its block does differently.
#include <string_view>

#include "ml/model.h"

namespace ml::layers {

// token_embd, output_norm and output (or the tied embedding).
void load_io(WeightLoader& ld, const Config& c, Weights& w);

// Calls load_layer(b, l) for layers 0 .. c.n_layer-1 with b = "blk.N." and l the layer's
// fresh entry in w.layers.
template <class LoadLayer>
void load_layers(const Config& c, Weights& w, LoadLayer load_layer) {
  for (int64_t il = 0; il < c.n_layer; ++il)
    load_layer("blk." + std::to_string(il) + ".", w.layers.emplace_back());
}

// Whether a tensor is read: absent, loaded when the file has it, or an error when missing.
enum class Need { none, optional, required };

// What an architecture's attention has beyond Llama's. It decides which tensors
// load_attention reads; attention() then uses whatever was loaded.
struct AttnSpec {
  Need qkv_bias = Need::none;  // attn_q/k/v.bias [n_embd_q | n_embd_kv]
  Need o_bias = Need::none;    // attn_output.bias [n_embd]
  bool qk_norm = false;        // attn_q_norm, attn_k_norm [head_dim]: RMSNorm per head
  bool sinks = false;          // attn_sinks [n_head]: a learned logit per head in the softmax
};

// attn_norm, the q/k/v/output projections and what `s` adds.
void load_attention(WeightLoader& ld, const Config& c, const std::string& b, LayerWeights& l,
                    const AttnSpec& s);
// ffn_norm and the gated FFN's gate/up/down matrices.
void load_ffn(WeightLoader& ld, const Config& c, const std::string& b, LayerWeights& l);

// The whole pass: embed, then `layer` for layers 0 .. f.n_layer-1, then the LM head.
Tensor forward(const Forward& f, Tensor (*layer)(const Forward& f, const Tensor& x, int il));
// The same as an Architecture::forward: `forward<layer>`.
template <Tensor (*layer)(const Forward&, const Tensor&, int)>
Tensor forward(const Forward& f) {
  return forward(f, layer);
}

// Token embeddings [n_embd, T], times cfg.embed_scale (Gemma's √n_embd).
Tensor embed(const Forward& f);
// RMSNorm with the model's eps, times w.
Tensor norm(const Forward& f, const Tensor& x, const Tensor& w);
// The same, its result named `name` for layer il.
Tensor norm(const Forward& f, const Tensor& x, const Tensor& w, std::string_view name, int il);
// The RoPE parameters of layer il (sliding-window layers may use another base).
const ops::RopeParams& rope_params(const Forward& f, int il);
// The sliding window of layer il (0: the layer attends to everything).
int32_t window(const Forward& f, int il);
// Whether layer il's batch may go into its KV cache before attention (store_before_attention).
bool store_early(const Forward& f, int il);
// rope(q), rope(k) in one op; with `store` (store_early) it also stores rope(k) and v in layer
// il's KV cache, and attend(..., stored = true) must not store them again; with `norm` it first
// normalizes each head of q and k (Backend::QkNorm).
Backend::QK rope_qk(const Forward& f, const Tensor& q, const Tensor& k, const Tensor& v, int il,
                    bool store, const Backend::QkNorm* norm = nullptr);
// Splits a projection [n·head_dim, T] into heads [head_dim, n, T].
Tensor heads(const Forward& f, const Tensor& x, int64_t n);
// Attention of roped q [head_dim, n_head, T] over layer il's KV cache and the batch's k, v
// [head_dim, n_head_kv, T]; then stores k, v in the cache unless `stored` (rope_qk did).
// → [n_embd_q, T].
Tensor attend(const Forward& f, int il, const Tensor& q, const Tensor& k, const Tensor& v,
              float scale, const Tensor* sinks, bool stored);
// matmul plus an optional bias (an empty handle adds nothing), in one kernel.
Tensor linear(const Forward& f, const Tensor& w, const Tensor& b, const Tensor& x);
// A block's output projection w·x + b, named `name` for layer il, plus the residual `inp`
// when given: then one kernel does all of it, unless an observer is set, which needs `name`
// alone (gate H, test_layer compare it between backends): then matmul, name, add.
Tensor project(const Forward& f, const Tensor& w, const Tensor& b, const Tensor& x,
               std::string_view name, int il, const Tensor* inp);

// The attention half of a block, x [n_embd, T] → [n_embd, T] (llama.cpp build_attn and its
// callers): attn_norm → Wq, Wk, Wv (+ biases) → per-head RMSNorm of q and k → RoPE with the
// layer's parameters → attention over layer il's KV cache (its sliding window; sinks) → Wo
// (+ bias). Biases, q/k norms and sinks enter when the layer has them (AttnSpec). Names
// attn_norm, Qcur_normed and Kcur_normed (with q/k norms; they run inside the rope op, and for
// an observer also beside it), Qcur, Kcur, kqv_out, attn_out.
// With inp, returns inp + that (the residual fused into Wo's matmul, see project).
Tensor attention(const Forward& f, const Tensor& x, int il, const Tensor* inp = nullptr);

// The gate of a gated FFN: SiLU (Llama, Qwen) or tanh GELU (Gemma).
enum class Glu { swiglu, geglu };
// The dense gated FFN of layer il, x [n_embd, T] → Wdown·(act(Wgate·x) ⊙ Wup·x), named ffn_out.
// With inp, returns inp + that (the residual fused into Wdown's matmul, see project).
Tensor ffn(const Forward& f, const Tensor& x, Glu glu, int il, const Tensor* inp = nullptr);
// RMSNorm of x times w plus the residual inp, in one kernel; with an observer, the norm named
// `name` for layer il and then the add (Gemma 3's post-attention and post-FFN norms).
Tensor norm_add(const Forward& f, const Tensor& x, const Tensor& w, std::string_view name, int il,
                const Tensor& inp);
// norm_add and then the RMSNorm of that sum times w2 (named name2), in one kernel without an
// observer: → {sum, its norm}.
Backend::NormSum norm_add_norm(const Forward& f, const Tensor& x, const Tensor& w,
                               std::string_view name, int il, const Tensor& inp, const Tensor& w2,
                               std::string_view name2);
// The block's last residual add cur + inp, named l_out.
Tensor residual(const Forward& f, const Tensor& cur, const Tensor& inp, int il);

// The rows f.out_rows of x, final norm, LM head, optional soft-capping → [n_vocab, n_out].
Tensor lm_head(const Forward& f, const Tensor& x);

}  // namespace ml::layers
