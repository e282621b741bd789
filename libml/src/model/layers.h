#pragma once
// Pieces every architecture's forward pass shares (llama.cpp's llm_graph_context helpers:
// build_inp_embd, build_norm, build_attn, the LM head).
#include "ml/model.h"

namespace ml::layers {

// Tensor lists every architecture shares (b is the layer prefix "blk.N.").
// token_embd, output_norm and output (or the tied embedding).
void load_io(WeightLoader& ld, const Config& c, Weights& w);
// attn_norm and the q/k/v/output projections.
void load_attention(WeightLoader& ld, const Config& c, const std::string& b, LayerWeights& l);
// ffn_norm and the gated FFN's gate/up/down matrices.
void load_ffn(WeightLoader& ld, const Config& c, const std::string& b, LayerWeights& l);

// The whole pass: embed, then `layer` for layers 0 .. f.n_layer-1, then the LM head.
Tensor forward(const Forward& f, Tensor (*layer)(const Forward& f, const Tensor& x, int il));

// Token embeddings [n_embd, T], times cfg.embed_scale (Gemma's √n_embd).
Tensor embed(const Forward& f);
// RMSNorm with the model's eps, times w.
Tensor norm(const Forward& f, const Tensor& x, const Tensor& w);
// The RoPE parameters of layer il (sliding-window layers may use another base).
const ops::RopeParams& rope_params(const Forward& f, int il);
// RoPE of [head_dim, n, T] at the batch positions, with Llama 3 rope_freqs when present.
Tensor rope(const Forward& f, const Tensor& x, int il);
// Splits a projection [n·head_dim, T] into heads [head_dim, n, T].
Tensor heads(const Forward& f, const Tensor& x, int64_t n);
// Attention of roped q [head_dim, n_head, T] over layer il's KV cache and the batch's k, v
// [head_dim, n_head_kv, T]; then stores k, v in the cache. → [n_embd_q, T].
Tensor attend(const Forward& f, int il, const Tensor& q, const Tensor& k, const Tensor& v,
              float scale, const Tensor* sinks);
// matmul plus an optional bias.
Tensor linear(const Forward& f, const Tensor& w, const Tensor& b, const Tensor& x);
// The rows f.out_rows of x, final norm, LM head, optional soft-capping → [n_vocab, n_out].
Tensor lm_head(const Forward& f, const Tensor& x);

}  // namespace ml::layers
