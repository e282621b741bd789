// Hyper-parameters from GGUF metadata, with llama.cpp's per-architecture defaults
// (llama-model.cpp load_hparams). Keys are `<arch>.<name>`; every number is checked against
// a sane range before anything is sized by it.
#include <cmath>

#include "ml/model.h"

namespace ml {
namespace {

struct Keys {
  const gguf::Metadata& md;
  std::string prefix;  // "llama."

  std::string key(std::string_view name) const { return prefix + std::string(name); }
  int64_t uint(std::string_view name, int64_t lo, int64_t hi) const {
    return checked(name, int64_t(md.uint(key(name))), lo, hi);
  }
  int64_t uint_or(std::string_view name, int64_t fallback, int64_t lo, int64_t hi) const {
    return checked(name, int64_t(md.uint_or(key(name), uint64_t(fallback))), lo, hi);
  }
  float number(std::string_view name, double lo, double hi) const {
    return number_or(name, md.number(key(name)), lo, hi);
  }
  float number_or(std::string_view name, double fallback, double lo, double hi) const {
    const double v = md.number_or(key(name), fallback);
    if (!(v >= lo && v <= hi))
      fail("metadata ", key(name), " = ", v, " is outside [", lo, ", ", hi, "]");
    return float(v);
  }
  int64_t checked(std::string_view name, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi)
      fail("metadata ", key(name), " = ", v, " is outside [", lo, ", ", hi, "]");
    return v;
  }
};

}  // namespace

Config load_config(const gguf::Metadata& md) {
  Config c;
  c.arch = md.string("general.architecture");
  const bool llama = c.arch == "llama", qwen2 = c.arch == "qwen2", qwen3 = c.arch == "qwen3";
  const bool gemma3 = c.arch == "gemma3", gpt_oss = c.arch == "gpt-oss";
  if (!(llama || qwen2 || qwen3 || gemma3 || gpt_oss))
    fail("general.architecture '", c.arch,
         "' is not supported (llama, qwen2, qwen3, gemma3, gpt-oss)");
  const Keys k{md, c.arch + "."};

  c.n_embd = k.uint("embedding_length", 1, 1 << 16);
  c.n_layer = k.uint("block_count", 1, 1024);
  c.n_head = k.uint("attention.head_count", 1, 1024);
  c.n_head_kv = k.uint_or("attention.head_count_kv", c.n_head, 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    fail("metadata ", k.key("attention.head_count"), " = ", c.n_head, " is not a multiple of ",
         k.key("attention.head_count_kv"), " = ", c.n_head_kv);
  c.head_dim = k.uint_or("attention.key_length", c.n_embd / c.n_head, 2, 1024);
  c.head_dim_v = k.uint_or("attention.value_length", c.head_dim, 2, 1024);
  if (c.head_dim_v != c.head_dim)
    fail("metadata ", k.key("attention.value_length"), " = ", c.head_dim_v,
         " differs from attention.key_length = ", c.head_dim, " (not supported)");
  c.n_ff = gpt_oss ? 0 : k.uint("feed_forward_length", 1, 1 << 20);
  c.n_ctx_train = k.uint("context_length", 1, 1 << 24);
  c.norm_eps = k.number("attention.layer_norm_rms_epsilon", 1e-12, 1.0);
  if (md.has(k.key("vocab_size"))) {
    c.n_vocab = k.uint("vocab_size", 1, 1 << 24);
  } else if (md.has("tokenizer.ggml.tokens")) {
    c.n_vocab = int64_t(md.array("tokenizer.ggml.tokens").items.size());
  }

  // RoPE: NORM for llama, NEOX for qwen2/3, gemma3 and gpt-oss (llama_model_rope_type).
  ops::RopeParams& r = c.rope;
  r.mode = llama ? ops::RopeMode::normal : ops::RopeMode::neox;
  r.n_dims = int(k.uint_or("rope.dimension_count", c.head_dim, 2, c.head_dim));
  if (r.n_dims % 2 != 0)
    fail("metadata ", k.key("rope.dimension_count"), " = ", r.n_dims, " is odd");
  r.freq_base = k.number_or("rope.freq_base", 10000.0, 1.0, 1e12);
  const std::string scaling = md.string_or(k.key("rope.scaling.type"), "none");
  const float factor = k.number_or("rope.scaling.factor", 1.0, 0.0, 1e6);
  if (scaling == "linear" || scaling == "yarn") {
    if (factor < 1.0f)
      fail("metadata ", k.key("rope.scaling.factor"), " = ", factor, " is below 1");
    r.freq_scale = 1.0f / factor;
  } else if (scaling != "none") {
    fail("metadata ", k.key("rope.scaling.type"), " = '", scaling,
         "' is not supported (none, linear, yarn)");
  }
  r.n_ctx_orig = int(k.uint_or("rope.scaling.original_context_length", c.n_ctx_train, 1, 1 << 24));
  if (scaling == "yarn") {
    // llama.cpp: ext_factor 1; its attn_factor cancels the mscale rope_yarn applies, then
    // multiplies it back in, so the net magnitude is 0.1·ln(factor) + 1 as in ggml.
    r.ext_factor = k.number_or("rope.scaling.yarn_ext_factor", 1.0, 0.0, 1.0);
    r.attn_factor = k.number_or("rope.scaling.yarn_attn_factor", 1.0, 0.0, 100.0);
    r.beta_fast = k.number_or("rope.scaling.yarn_beta_fast", 32.0, 0.0, 1e4);
    r.beta_slow = k.number_or("rope.scaling.yarn_beta_slow", 1.0, 0.0, 1e4);
  }
  c.rope_swa = r;

  // Sliding window and its layer pattern (llama.cpp set_swa_pattern: layer il slides when
  // il % n_pattern < n_pattern - 1).
  c.swa_layers.assign(size_t(c.n_layer), false);
  c.n_swa = int32_t(k.uint_or("attention.sliding_window", 0, 0, 1 << 24));
  int64_t pattern = 0;
  if (gemma3 && c.n_swa > 0) {
    pattern = 6;  // 5 local layers, then 1 global
    c.rope_swa.freq_base = k.number_or("rope.freq_base_swa", 10000.0, 1.0, 1e12);
    c.rope_swa.freq_scale = 1.0f;
  } else if (gpt_oss) {
    if (c.n_swa == 0) fail("metadata ", k.key("attention.sliding_window"), " is missing or 0");
    pattern = 2;  // even layers slide, odd layers attend to everything
  } else {
    c.n_swa = 0;
  }
  for (int64_t il = 0; pattern && il < c.n_layer; ++il)
    c.swa_layers[size_t(il)] = il % pattern < pattern - 1;

  c.attn_scale = 1.0f / std::sqrt(float(gpt_oss ? r.n_dims : c.head_dim));
  if (gemma3 && c.n_layer == 62)  // Gemma 3 27B: query_pre_attn_scalar = n_embd / n_head
    c.attn_scale = 1.0f / std::sqrt(float(c.n_embd / c.n_head));
  c.attn_scale = k.number_or("attention.scale", c.attn_scale, 1e-6, 1e3);
  if (gemma3) {
    c.embed_scale = std::sqrt(float(c.n_embd));
    c.final_logit_softcap = k.number_or("final_logit_softcapping", 0.0, 0.0, 1e6);
  }
  c.attn_bias = qwen2 || gpt_oss;
  if (gpt_oss) {
    c.n_expert = k.uint("expert_count", 1, 1024);
    c.n_expert_used = k.uint("expert_used_count", 1, c.n_expert);
    c.n_ff_exp = k.uint("expert_feed_forward_length", 1, 1 << 20);
  }
  return c;
}

}  // namespace ml
