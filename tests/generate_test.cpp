// The Generator (libml/src/run/generate.cpp) and the Sampler's shortlist on the CPU backend:
// the sampler over a device-style shortlist (top-k plus penalized tokens) equals the full
// chain; greedy generation equals the golden greedy continuation of the tiny models; seeded
// sampling through the shortlist equals the Sampler over full logits step by step; every stop
// reason; streamed text; and the end-of-generation lists against the GGUF metadata.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "ml/tok.h"
#include "test_util.h"

namespace ml {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int kSteps = 4;  // ~30x slower under ASan: the same paths, fewer tokens
#else
constexpr int kSteps = 16;
#endif

bool same(const std::vector<Sampler::Candidate>& a, const std::vector<Sampler::Candidate>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].logit != b[i].logit || a[i].p != b[i].p) return false;
  return true;
}

// What Generator::choose reads back: the shortlist() highest logits and the penalized ones.
std::vector<Sampler::Candidate> shortlist(const Sampler& s, const std::vector<float>& logits) {
  const int64_t V = int64_t(logits.size());
  const int64_t k = s.shortlist(V);
  std::vector<int32_t> ids(static_cast<size_t>(k));
  ops::top_k(logits.data(), V, int(k), ids.data());
  for (int32_t id : s.penalized()) ids.push_back(id);
  std::vector<Sampler::Candidate> c;
  for (int32_t id : ids) c.push_back({id, logits[size_t(id)], 0.0f});
  return c;
}

TEST(Sampler, ShortlistEqualsFullChain) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const std::vector<SamplerParams> variants = {
      {0.8f, 40, 0.95f, 0.05f, 1.3f, 64, 1},
      {1.0f, 5, 1.0f, 0.0f, 1.0f, 64, 2},
      {0.7f, 20, 0.9f, 0.1f, 0.7f, 16, 3},    // a penalty below 1 lifts recent tokens
      {0.0f, 40, 0.95f, 0.05f, 1.5f, 32, 4},  // greedy with a penalty
      {1.2f, 0, 0.95f, 0.05f, 1.1f, 8, 5}};   // top-k off: the whole vocabulary
  for (const SamplerParams& p : variants) {
    Sampler full(p), part(p);
    for (int step = 0; step < 40; ++step) {
      std::vector<float> logits(500);
      for (float& x : logits) x = dist(rng);
      // Make recent tokens strong, so the penalty moves them across the top-k cut.
      for (int32_t id : full.penalized()) logits[size_t(id)] += 4.0f;
      const auto want = full.candidates(logits);
      const auto got = part.candidates(shortlist(part, logits));
      ASSERT_TRUE(same(want, got)) << "temperature " << p.temperature << " step " << step;
      const int32_t a = full.draw(want), b = part.draw(got);
      ASSERT_EQ(a, b);
      full.accept(a);
      part.accept(b);
    }
    if (p.repeat_penalty != 1.0f) {
      EXPECT_FALSE(full.penalized().empty());
    }
  }
}

TEST(Sampler, ShortlistSize) {
  Sampler greedy({0.0f, 40, 0.95f, 0.05f, 1.0f, 64, 0});
  EXPECT_EQ(greedy.shortlist(1000), 1);
  Sampler s({0.8f, 40, 0.95f, 0.05f, 1.2f, 64, 0});
  for (int32_t t : {7, 9, 7, 11}) s.accept(t);
  EXPECT_EQ(s.penalized(), (std::vector<int32_t>{7, 9, 11}));
  EXPECT_EQ(s.shortlist(1000), 43);
  EXPECT_EQ(s.shortlist(30), 30);
  Sampler off({0.8f, 0, 0.95f, 0.05f, 1.0f, 64, 0});
  EXPECT_EQ(off.shortlist(1000), 1000);
}

struct Tiny {
  GoldenRecord golden;
  std::unique_ptr<gguf::Source> source;
  gguf::File file;
  std::unique_ptr<Backend> be = make_cpu_backend();
  Model model;
  tok::Tokenizer tokenizer;

  explicit Tiny(const std::string& record)
      : golden(load_golden(test::shared("golden/" + record + ".json").string())),
        source(gguf::open_source(test::shared("models/" + golden.model).string())),
        file(gguf::parse(*source)),
        model(load_model(*be, *source, file)),
        tokenizer(tok::Tokenizer::from_metadata(file.metadata)) {}
};

SessionOptions f32_kv(int64_t n_ctx = 512) {
  SessionOptions o;
  o.kv_type = gguf::Type::F32;
  o.n_ctx = n_ctx;
  return o;
}

TEST(Generator, GreedyEqualsGolden) {
  for (const char* record : {"llama-tiny-q4_k_m.story", "gptoss-tiny-mxfp4.harmony"}) {
    Tiny t(record);
    for (int n_probs : {0, 5}) {  // argmax on the device, or the top n_probs read back
      Session session(*t.be, t.model, f32_kv());
      GenerateOptions go;
      go.sampling.temperature = 0.0f;
      go.max_tokens = std::min<int>(kSteps, int(t.golden.greedy.size()));
      go.n_probs = n_probs;
      go.n_batch = 16;  // the prompt in several passes
      Generator gen(*t.be, session, t.tokenizer, go);
      std::vector<int32_t> seen;
      std::string text;
      GenerateCallbacks cb;
      cb.on_token = [&](const TokenEvent& ev) {
        EXPECT_EQ(ev.index, int64_t(seen.size()));
        EXPECT_EQ(ev.top.size(), size_t(n_probs));
        if (n_probs > 0) {
          EXPECT_EQ(ev.top[0].id, ev.id);
          for (size_t i = 1; i < ev.top.size(); ++i) EXPECT_GE(ev.top[i - 1].p, ev.top[i].p);
        }
        seen.push_back(ev.id);
        text += ev.text;
        return true;
      };
      int stages = 0;
      cb.on_stage = [&](const StageEvent& s) {
        EXPECT_EQ(s.stage, stages++ == 0 ? "prefill" : "decode");
      };
      const GenerateStats st = gen.run(t.golden.tokens, cb);
      const std::vector<int32_t> want(t.golden.greedy.begin(),
                                      t.golden.greedy.begin() + go.max_tokens);
      EXPECT_EQ(st.tokens, want) << record;
      EXPECT_EQ(seen, st.tokens);
      EXPECT_EQ(st.stop, StopReason::MaxTokens);
      EXPECT_EQ(st.n_prompt, int64_t(t.golden.tokens.size()));
      EXPECT_EQ(st.n_decode, go.max_tokens - 1);
      EXPECT_EQ(stages, 2);
      EXPECT_EQ(text, st.text);
      tok::DecodeOptions plain;
      plain.special = false;
      EXPECT_EQ(text, tok::sanitize_utf8(t.tokenizer.decode(want, plain)));
    }
  }
}

// The shortlist path against the plain loop: full logits read back, Sampler::sample.
TEST(Generator, SeededSamplingEqualsFullLogits) {
  Tiny t("gptoss-tiny-mxfp4.harmony");
  SamplerParams p{0.9f, 20, 0.95f, 0.02f, 1.3f, 64, 42};
  std::vector<int32_t> want;
  {
    Session session(*t.be, t.model, f32_kv());
    Sampler sampler(p);
    std::vector<float> logits = session.prefill(t.golden.tokens, false);
    for (int i = 0; i < kSteps; ++i) {
      const int32_t id = sampler.sample(logits);
      sampler.accept(id);
      want.push_back(id);
      logits = read_f32(*t.be, session.forward(std::span(&id, 1), false));
    }
  }
  Session session(*t.be, t.model, f32_kv());
  GenerateOptions go;
  go.sampling = p;
  go.max_tokens = kSteps;
  go.n_probs = 3;
  Generator gen(*t.be, session, t.tokenizer, go);
  const GenerateStats st = gen.run(t.golden.tokens);
  EXPECT_EQ(st.tokens, want);
  EXPECT_NE(want, std::vector<int32_t>(t.golden.greedy.begin(), t.golden.greedy.begin() + kSteps));
}

TEST(Generator, StopReasons) {
  Tiny t("llama-tiny-q4_k_m.story");
  const auto& g = t.golden;
  GenerateOptions go;
  go.sampling.temperature = 0.0f;
  {  // an end-of-generation token: the golden third token made one
    tok::Vocab v = t.tokenizer.vocab();
    v.eog = {g.greedy[2]};
    const tok::Tokenizer eog_at_3(std::move(v));
    Session session(*t.be, t.model, f32_kv());
    Generator gen(*t.be, session, eog_at_3, go);
    bool last_eog = false;
    GenerateCallbacks cb;
    cb.on_token = [&](const TokenEvent& ev) { return last_eog = ev.eog, true; };
    const GenerateStats st = gen.run(g.tokens, cb);
    EXPECT_EQ(st.stop, StopReason::Eog);
    EXPECT_EQ(st.tokens, std::vector<int32_t>(g.greedy.begin(), g.greedy.begin() + 3));
    EXPECT_TRUE(last_eog);
  }
  {  // the callback
    Session session(*t.be, t.model, f32_kv());
    Generator gen(*t.be, session, t.tokenizer, go);
    GenerateCallbacks cb;
    cb.on_token = [](const TokenEvent& ev) { return ev.index < 1; };
    const GenerateStats st = gen.run(g.tokens, cb);
    EXPECT_EQ(st.stop, StopReason::Callback);
    EXPECT_EQ(st.tokens.size(), 2u);
  }
  {  // a full context: room for the prompt and 3 tokens fed back
    Session session(*t.be, t.model, f32_kv(int64_t(g.tokens.size()) + 3));
    Generator gen(*t.be, session, t.tokenizer, go);
    const GenerateStats st = gen.run(g.tokens);
    EXPECT_EQ(st.stop, StopReason::ContextFull);
    EXPECT_EQ(st.tokens, std::vector<int32_t>(g.greedy.begin(), g.greedy.begin() + 4));
    EXPECT_THROW(gen.run(g.tokens), Error);  // no room for another prompt
  }
  {  // a second run continues the session where the first stopped
    Session session(*t.be, t.model, f32_kv());
    go.max_tokens = 2;
    Generator gen(*t.be, session, t.tokenizer, go);
    const std::span<const int32_t> prompt(g.tokens);
    const GenerateStats a = gen.run(prompt.first(prompt.size() - 1));
    EXPECT_EQ(a.tokens.size(), 2u);
    EXPECT_EQ(session.n_past(), int64_t(prompt.size()));  // one token fed back
    const GenerateStats b = gen.run(prompt.last(1));
    EXPECT_EQ(session.n_past(), int64_t(prompt.size()) + 2);
    EXPECT_EQ(b.n_prompt, 1);
    EXPECT_THROW(gen.run({}), Error);
  }
  go.max_tokens = -1;
  Session session(*t.be, t.model, f32_kv());
  EXPECT_THROW(Generator(*t.be, session, t.tokenizer, go), Error);
}

// The end-of-generation ids against the metadata's eos/eot/eom and the family's end-of-turn.
TEST(Tokenizer, EogListsMatchMetadata) {
  struct Case {
    const char* model;
    std::vector<int32_t> eog;
  };
  const std::vector<Case> cases = {
      {"models/llama-tiny-q4_k_m.gguf", {2}},   // </s> = eos
      {"models/gemma3-tiny-q5_k_m.gguf", {2}},  // </s> = eos; no <end_of_turn> in 4096
      // <|return|> = eos, <|call|>, <|endoftext|>; not <|end|>, which ends analysis messages
      {"models/gptoss-tiny-mxfp4.gguf", {4101, 4102, 4104}},
      // No eos key and the special tokens cut off by the 4096-token truncation: llama.cpp's
      // BPE default eos 11 (",") stands, so generation stops at a comma as llama.cpp's would.
      {"models/qwen3-tiny-q6_k.gguf", {11}},
  };
  for (const Case& c : cases) {
    const auto source = gguf::open_source(test::shared(c.model).string());
    const gguf::File file = gguf::parse(*source);
    const tok::Tokenizer tokenizer = tok::Tokenizer::from_metadata(file.metadata);
    const tok::Vocab& v = tokenizer.vocab();
    EXPECT_EQ(v.eog, c.eog) << c.model;
    if (file.metadata.has("tokenizer.ggml.eos_token_id")) {
      EXPECT_TRUE(std::binary_search(v.eog.begin(), v.eog.end(), v.eos)) << c.model;
    }
  }
}

}  // namespace
}  // namespace ml
