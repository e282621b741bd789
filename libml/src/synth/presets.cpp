// Synthetic-model presets: the hyper-parameters, tensor list and weight types of real
// releases. Weight types follow llama.cpp's Q4_K_M mix (llama-quant.cpp): attn_v and
// ffn_down get Q6_K on the layers `use_more_bits` picks, the rest Q4_K; the output matrix
// (or the tied embedding) Q6_K; a K-quant whose rows are not a multiple of 256 falls back
// to Q5_0 (Q4_K) or Q8_0 (Q6_K). gpt-oss keeps its release's MXFP4 experts and Q8_0
// elsewhere.
#include <cstring>
#include <memory>

#include "ml/quant.h"
#include "ml/synth.h"
#include "synth/vocab.h"

namespace ml::synth {
namespace {

using gguf::Type;

struct Shape {
  std::string arch;
  uint32_t n_layer, n_embd, n_head, n_kv, head_dim, n_ff, n_vocab, ctx;
  bool tied;
  float rope_base, eps;
  uint32_t n_expert = 0, n_expert_used = 0, window = 0;
};

struct Preset {
  PresetInfo info;
  Shape shape;
};

const std::vector<Preset>& table() {
  static const std::vector<Preset> t = {
      {{"llama3.2-1b", "llama", "Llama 3.2 1B Instruct, Q4_K_M"},
       {"llama", 16, 2048, 32, 8, 64, 8192, 128256, 131072, true, 500000.f, 1e-5f}},
      {{"llama3-8b", "llama", "Llama 3.1 8B Instruct, Q4_K_M"},
       {"llama", 32, 4096, 32, 8, 128, 14336, 128256, 131072, false, 500000.f, 1e-5f}},
      {{"qwen3-0.6b", "qwen3", "Qwen3 0.6B, Q4_K_M"},
       {"qwen3", 28, 1024, 16, 8, 128, 3072, 151936, 40960, true, 1000000.f, 1e-6f}},
      {{"gemma3-270m", "gemma3", "Gemma 3 270M, Q4_K_M"},
       {"gemma3", 18, 640, 4, 1, 256, 2048, 262144, 32768, true, 1000000.f, 1e-6f, 0, 0, 512}},
      {{"gemma3-1b", "gemma3", "Gemma 3 1B, Q4_K_M"},
       {"gemma3", 26, 1152, 4, 1, 256, 6912, 262144, 32768, true, 1000000.f, 1e-6f, 0, 0, 512}},
      {{"gpt-oss-20b", "gpt-oss", "gpt-oss 20B, MXFP4 experts"},
       {"gpt-oss", 24, 2880, 64, 8, 64, 2880, 201088, 131072, false, 150000.f, 1e-5f, 32, 4, 128}},
      {{"gpt-oss-120b", "gpt-oss", "gpt-oss 120B, MXFP4 experts"},
       {"gpt-oss", 36, 2880, 64, 8, 64, 2880, 201088, 131072, false, 150000.f, 1e-5f, 128, 4, 128}},
  };
  return t;
}

// llama-quant.cpp's use_more_bits: the first and last eighth of the layers and every third
// in between get the larger type.
bool use_more_bits(uint32_t layer, uint32_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// A K-quant needs rows that are whole 256-value super-blocks.
Type fit(Type want, uint64_t ne0) {
  if (ne0 % 256 == 0) return want;
  switch (want) {
    case Type::Q4_K: return Type::Q5_0;
    case Type::Q5_K: return Type::Q5_1;
    case Type::Q6_K: return Type::Q8_0;
    default: return want;
  }
}

// Random valid blocks of one type, made once and tiled over every tensor of that type: the
// writer then runs at memcpy speed, so an 8B file takes seconds, not minutes.
class BlockPool {
 public:
  const std::vector<std::byte>& get(Type type, uint64_t seed) {
    for (auto& [t, bytes] : pools_) {
      if (t == type) return *bytes;
    }
    const auto& tr = gguf::traits(type);
    uint64_t n = uint64_t(tr.block_size) * 4099;  // a prime count of blocks: no short period
    pools_.push_back({type, std::make_shared<std::vector<std::byte>>(
                                quant::random_blocks(type, n, seed + uint32_t(type)))});
    return *pools_.back().second;
  }

 private:
  std::vector<std::pair<Type, std::shared_ptr<std::vector<std::byte>>>> pools_;
};

class Builder {
 public:
  explicit Builder(uint64_t seed) : seed_(seed), pools_(std::make_shared<BlockPool>()) {}

  void weight(const std::string& name, Type type, std::vector<uint64_t> shape) {
    type = fit(type, shape[0]);
    auto pools = pools_;
    uint64_t salt = (seed_ * 1000003 + ++count_) * 7919;
    uint64_t seed = seed_;
    w_.add_tensor(name, type, std::move(shape), [pools, type, salt, seed](uint64_t off, std::span<std::byte> out) {
      const std::vector<std::byte>& pool = pools->get(type, seed);
      uint64_t block = gguf::traits(type).type_size;
      uint64_t start = ((off / block + salt) % (pool.size() / block)) * block;
      for (size_t done = 0; done < out.size();) {
        size_t n = std::min<size_t>(out.size() - done, pool.size() - start);
        std::memcpy(out.data() + done, pool.data() + start, n);
        done += n;
        start = 0;
      }
    });
  }

  // F32 vectors: norms at 1 (Gemma's converter stores 1 + w, so 1 is a neutral weight too),
  // biases small.
  void f32(const std::string& name, std::vector<uint64_t> shape, float base, float spread) {
    uint64_t salt = seed_ * 31 + ++count_;
    w_.add_tensor(name, Type::F32, std::move(shape), [=](uint64_t off, std::span<std::byte> out) {
      for (size_t i = 0; i + 4 <= out.size(); i += 4) {
        uint64_t h = (off + i + salt) * 0x9E3779B97F4A7C15ull;
        float v = base + spread * (float((h >> 40) & 0xffff) / 32768.f - 1.f);
        std::memcpy(out.data() + i, &v, 4);
      }
    });
  }

  gguf::Writer& writer() { return w_; }

 private:
  uint64_t seed_;
  uint64_t count_ = 0;
  std::shared_ptr<BlockPool> pools_;
  gguf::Writer w_;
};

void metadata(gguf::Writer& w, const Preset& p) {
  const Shape& s = p.shape;
  std::string a = s.arch + ".";
  w.set("general.architecture", s.arch);
  w.set("general.name", "synthetic-" + p.info.name);
  w.set("general.file_type", uint32_t(s.arch == "gpt-oss" ? 38 : 15));  // MXFP4_MOE, Q4_K_M
  w.set("general.quantization_version", uint32_t(2));
  w.set(a + "context_length", s.ctx);
  w.set(a + "embedding_length", s.n_embd);
  w.set(a + "block_count", s.n_layer);
  w.set(a + "feed_forward_length", s.n_ff);
  w.set(a + "attention.head_count", s.n_head);
  w.set(a + "attention.head_count_kv", s.n_kv);
  w.set(a + "attention.key_length", s.head_dim);
  w.set(a + "attention.value_length", s.head_dim);
  w.set(a + "rope.dimension_count", s.head_dim);
  w.set(a + "rope.freq_base", s.rope_base);
  w.set(a + "attention.layer_norm_rms_epsilon", s.eps);
  w.set(a + "vocab_size", s.n_vocab);
  if (s.window) w.set(a + "attention.sliding_window", s.window);
  if (s.n_expert) {
    w.set(a + "expert_count", s.n_expert);
    w.set(a + "expert_used_count", s.n_expert_used);
    w.set(a + "expert_feed_forward_length", s.n_ff);
    w.set(a + "rope.scaling.type", std::string("yarn"));
    w.set(a + "rope.scaling.factor", 32.0f);
    w.set(a + "rope.scaling.original_context_length", uint32_t(4096));
  }
  add_vocab(w, s.arch, s.n_vocab);
}

void dense_layers(Builder& b, const Shape& s) {
  uint64_t d = s.n_embd, q = uint64_t(s.n_head) * s.head_dim, kv = uint64_t(s.n_kv) * s.head_dim;
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    Type more = use_more_bits(l, s.n_layer) ? Type::Q6_K : Type::Q4_K;
    b.f32(p + "attn_norm.weight", {d}, 1.f, 0.f);
    b.weight(p + "attn_q.weight", Type::Q4_K, {d, q});
    b.weight(p + "attn_k.weight", Type::Q4_K, {d, kv});
    b.weight(p + "attn_v.weight", more, {d, kv});
    b.weight(p + "attn_output.weight", Type::Q4_K, {q, d});
    if (s.arch != "llama") {
      b.f32(p + "attn_q_norm.weight", {s.head_dim}, 1.f, 0.f);
      b.f32(p + "attn_k_norm.weight", {s.head_dim}, 1.f, 0.f);
    }
    if (s.arch == "gemma3") b.f32(p + "post_attention_norm.weight", {d}, 1.f, 0.f);
    b.f32(p + "ffn_norm.weight", {d}, 1.f, 0.f);
    b.weight(p + "ffn_gate.weight", Type::Q4_K, {d, s.n_ff});
    b.weight(p + "ffn_up.weight", Type::Q4_K, {d, s.n_ff});
    b.weight(p + "ffn_down.weight", more, {s.n_ff, d});
    if (s.arch == "gemma3") b.f32(p + "post_ffw_norm.weight", {d}, 1.f, 0.f);
  }
}

void gpt_oss_layers(Builder& b, const Shape& s) {
  uint64_t d = s.n_embd, q = uint64_t(s.n_head) * s.head_dim, kv = uint64_t(s.n_kv) * s.head_dim;
  uint64_t ff = s.n_ff, ne = s.n_expert;
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    b.f32(p + "attn_norm.weight", {d}, 1.f, 0.f);
    b.weight(p + "attn_q.weight", Type::Q8_0, {d, q});
    b.weight(p + "attn_k.weight", Type::Q8_0, {d, kv});
    b.weight(p + "attn_v.weight", Type::Q8_0, {d, kv});
    b.weight(p + "attn_output.weight", Type::Q8_0, {q, d});
    b.f32(p + "attn_q.bias", {q}, 0.f, 0.1f);
    b.f32(p + "attn_k.bias", {kv}, 0.f, 0.1f);
    b.f32(p + "attn_v.bias", {kv}, 0.f, 0.1f);
    b.f32(p + "attn_output.bias", {d}, 0.f, 0.1f);
    b.f32(p + "attn_sinks.weight", {s.n_head}, 0.f, 1.f);
    b.f32(p + "post_attention_norm.weight", {d}, 1.f, 0.f);
    b.f32(p + "ffn_gate_inp.weight", {d, ne}, 0.f, 0.05f);  // llama-quant never quantizes the router
    b.f32(p + "ffn_gate_inp.bias", {ne}, 0.f, 0.1f);
    b.weight(p + "ffn_gate_exps.weight", Type::MXFP4, {d, ff, ne});
    b.weight(p + "ffn_up_exps.weight", Type::MXFP4, {d, ff, ne});
    b.weight(p + "ffn_down_exps.weight", Type::MXFP4, {ff, d, ne});
    b.f32(p + "ffn_gate_exps.bias", {ff, ne}, 0.f, 0.1f);
    b.f32(p + "ffn_up_exps.bias", {ff, ne}, 0.f, 0.1f);
    b.f32(p + "ffn_down_exps.bias", {d, ne}, 0.f, 0.1f);
  }
}

}  // namespace

const std::vector<PresetInfo>& presets() {
  static const std::vector<PresetInfo> infos = [] {
    std::vector<PresetInfo> v;
    for (const Preset& p : table()) v.push_back(p.info);
    return v;
  }();
  return infos;
}

gguf::Writer build(std::string_view name, uint64_t seed) {
  const Preset* preset = nullptr;
  std::string names;
  for (const Preset& p : table()) {
    if (p.info.name == name) preset = &p;
    names += (names.empty() ? "" : ", ") + p.info.name;
  }
  if (!preset) fail("unknown preset ", name, " (presets: ", names, ")");
  const Shape& s = preset->shape;
  Builder b(seed);
  metadata(b.writer(), *preset);
  bool gpt_oss = s.arch == "gpt-oss";
  Type embd = gpt_oss ? Type::Q8_0 : (s.tied ? Type::Q6_K : Type::Q4_K);
  b.weight("token_embd.weight", embd, {s.n_embd, s.n_vocab});
  if (gpt_oss) {
    gpt_oss_layers(b, s);
  } else {
    dense_layers(b, s);
  }
  b.f32("output_norm.weight", {s.n_embd}, 1.f, 0.f);
  if (!s.tied) b.weight("output.weight", gpt_oss ? Type::Q8_0 : Type::Q6_K, {s.n_embd, s.n_vocab});
  if (s.arch == "llama") b.f32("rope_freqs.weight", {s.head_dim / 2}, 1.f, 0.f);
  return std::move(b.writer());
}

}  // namespace ml::synth
