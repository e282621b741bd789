// Config and weights validation on small models made with ml::gguf::Writer: a well-formed
// one loads and runs; each malformed variant fails with an ml::Error naming the key, tensor
// or limit at fault. Plus the session's context and memory limits.
#include "ml/model.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "ml/backend.h"
#include "ml/run.h"

namespace ml {
namespace {

using gguf::Type;

constexpr uint64_t kEmbd = 32, kHeads = 2, kKvHeads = 1, kHeadDim = 16, kFf = 48, kVocab = 64;

std::vector<std::byte> f32_bytes(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  const auto b = std::as_bytes(std::span(v));
  return {b.begin(), b.end()};
}

struct Edit {
  std::function<void(gguf::Writer&)> metadata;  // after the defaults are set
  std::string skip_tensor;                      // leave this tensor out
  std::string reshape_tensor;                   // give this tensor a wrong shape
  Type norm_type = Type::F32;
  uint64_t n_layer = 2;
};

// A tiny llama: the layout llama.cpp's converter writes, F32 weights.
std::vector<std::byte> tiny_llama(const Edit& e = {}) {
  gguf::Writer w;
  w.set("general.architecture", std::string("llama"));
  w.set("llama.embedding_length", uint32_t(kEmbd));
  w.set("llama.block_count", uint32_t(e.n_layer));
  w.set("llama.feed_forward_length", uint32_t(kFf));
  w.set("llama.attention.head_count", uint32_t(kHeads));
  w.set("llama.attention.head_count_kv", uint32_t(kKvHeads));
  w.set("llama.context_length", uint32_t(256));
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set("llama.vocab_size", uint32_t(kVocab));
  if (e.metadata) e.metadata(w);
  uint32_t seed = 1;
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, Type type = Type::F32) {
    if (name == e.skip_tensor) return;
    if (name == e.reshape_tensor) shape[0] *= 2;
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<std::byte> bytes = f32_bytes(n, seed++);
    if (type == Type::F16) bytes.resize(n * 2);  // any bit pattern is a valid half
    w.add_tensor(name, type, shape, std::move(bytes));
  };
  add("token_embd.weight", {kEmbd, kVocab});
  add("output_norm.weight", {kEmbd}, e.norm_type);
  for (uint64_t il = 0; il < e.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    add(b + "attn_norm.weight", {kEmbd}, e.norm_type);
    add(b + "attn_q.weight", {kEmbd, kHeads * kHeadDim});
    add(b + "attn_k.weight", {kEmbd, kKvHeads * kHeadDim});
    add(b + "attn_v.weight", {kEmbd, kKvHeads * kHeadDim});
    add(b + "attn_output.weight", {kHeads * kHeadDim, kEmbd});
    add(b + "ffn_norm.weight", {kEmbd});
    add(b + "ffn_gate.weight", {kEmbd, kFf});
    add(b + "ffn_up.weight", {kEmbd, kFf});
    add(b + "ffn_down.weight", {kFf, kEmbd});
  }
  return w.bytes();
}

// Loads bytes as a model; returns the ml::Error message, or "" when it loads.
std::string load_error(std::vector<std::byte> bytes) {
  try {
    gguf::MemorySource source(std::move(bytes), "tiny.gguf");
    const gguf::File file = gguf::parse(source);
    auto be = make_cpu_backend(1);
    load_model(*be, source, file);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Model, TinyLlamaLoadsAndRuns) {
  gguf::MemorySource source(tiny_llama(), "tiny.gguf");
  const gguf::File file = gguf::parse(source);
  auto be = make_cpu_backend(1);
  const Model m = load_model(*be, source, file);
  EXPECT_EQ(m.config.head_dim, int64_t(kHeadDim));
  EXPECT_TRUE(m.config.tied_output);
  EXPECT_EQ(m.config.rope.mode, ops::RopeMode::normal);
  EXPECT_FLOAT_EQ(m.config.attn_scale, 0.25f);
  SessionOptions o;
  o.kv_type = Type::F32;
  Session s(*be, m, o);
  const std::vector<int32_t> prompt = {1, 5, 9, 3};
  const std::vector<float> all = s.prefill(prompt, true);
  ASSERT_EQ(all.size(), prompt.size() * kVocab);
  // The same prompt fed one token at a time through the cache gives the same last logits.
  s.reset();
  std::vector<float> last;
  for (int32_t t : prompt) last = s.prefill(std::span(&t, 1), false);
  for (size_t v = 0; v < kVocab; ++v) EXPECT_NEAR(last[v], all[3 * kVocab + v], 1e-5);
  EXPECT_THROW(s.prefill(std::vector<int32_t>{int32_t(kVocab)}, false), Error);
}

TEST(Model, ForwardNamesItsIntermediates) {
  gguf::MemorySource source(tiny_llama(), "tiny.gguf");
  const gguf::File file = gguf::parse(source);
  auto be = make_cpu_backend(1);
  const Model m = load_model(*be, source, file);
  std::vector<std::string> seen;
  be->set_observer([&](std::string_view name, int il, const Tensor& t) {
    seen.push_back(std::string(name) + "/" + std::to_string(il));
    if (name == "attn_norm") {
      EXPECT_EQ(read_f32(*be, t).size(), 3 * kEmbd);
    }
  });
  Session s(*be, m);
  s.prefill(std::vector<int32_t>{1, 2, 3}, false);
  for (const char* want :
       {"inp_embd/-1", "attn_norm/0", "kqv_out/1", "l_out/1", "result_output/-1"})
    EXPECT_NE(std::find(seen.begin(), seen.end(), want), seen.end()) << want;
}

TEST(Model, ConfigErrorsNameTheKey) {
  EXPECT_NE(load_error(tiny_llama({.metadata =
                                       [](gguf::Writer& w) {
                                         w.metadata() = gguf::Metadata();
                                         w.set("general.architecture", std::string("llama"));
                                       }}))
                .find("llama.embedding_length"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_llama({.metadata =
                                       [](gguf::Writer& w) {
                                         w.set("llama.attention.head_count_kv", uint32_t(3));
                                       }}))
                .find("llama.attention.head_count_kv"),
            std::string::npos);
  EXPECT_NE(
      load_error(
          tiny_llama(
              {.metadata = [](gguf::Writer& w) { w.set("llama.block_count", uint32_t(1) << 30); }}))
          .find("llama.block_count"),
      std::string::npos);
  EXPECT_NE(load_error(tiny_llama({.metadata =
                                       [](gguf::Writer& w) {
                                         w.set("llama.rope.scaling.type", std::string("longrope"));
                                       }}))
                .find("rope.scaling.type"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_llama({.metadata =
                                       [](gguf::Writer& w) {
                                         w.set("general.architecture", std::string("mamba"));
                                       }}))
                .find("mamba"),
            std::string::npos);
}

TEST(Model, WeightErrorsNameTheTensor) {
  EXPECT_EQ(load_error(tiny_llama()), "");
  const std::string missing = load_error(tiny_llama({.skip_tensor = "blk.1.ffn_up.weight"}));
  EXPECT_NE(missing.find("blk.1.ffn_up.weight is missing"), std::string::npos) << missing;
  const std::string shape = load_error(tiny_llama({.reshape_tensor = "blk.0.attn_k.weight"}));
  EXPECT_NE(shape.find("blk.0.attn_k.weight has shape [64, 16], expected [32, 16]"),
            std::string::npos)
      << shape;
  const std::string type = load_error(tiny_llama({.norm_type = Type::F16}));
  EXPECT_NE(type.find("has type F16, expected F32"), std::string::npos) << type;
}

TEST(Session, ContextAndMemoryLimits) {
  gguf::MemorySource source(tiny_llama(), "tiny.gguf");
  const gguf::File file = gguf::parse(source);
  auto be = make_cpu_backend(1);
  const Model m = load_model(*be, source, file);
  SessionOptions o;
  o.n_ctx = 4;
  Session s(*be, m, o);
  EXPECT_EQ(s.n_ctx(), 4);
  s.prefill(std::vector<int32_t>{1, 2, 3}, false);
  EXPECT_THROW(s.prefill(std::vector<int32_t>{1, 2}, false), Error);  // 3 + 2 > 4
  o.n_layer = 3;
  EXPECT_THROW(Session(*be, m, o), Error);  // more layers than the model has

  // A context of 2^24 positions over 256 layers needs 2^24·16·4·2·256 B = 128 TiB of cache.
  gguf::MemorySource big(
      tiny_llama(
          {.metadata = [](gguf::Writer& w) { w.set("llama.context_length", uint32_t(1) << 24); },
           .n_layer = 256}),
      "big.gguf");
  const gguf::File big_file = gguf::parse(big);
  const Model bm = load_model(*be, big, big_file);
  SessionOptions f32;
  f32.kv_type = Type::F32;
  try {
    Session huge(*be, bm, f32);
    FAIL() << "a 128 TiB cache was allocated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ml
