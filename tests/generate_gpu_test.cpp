// The Generator on the Vulkan backend against the CPU backend (the reference): greedy with
// the argmax and with the top n_probs read back equals the golden continuation, and seeded
// sampling (device top-k, penalized logits gathered beside it) draws the CPU's tokens.
#include <gtest/gtest.h>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "ml/tok.h"
#include "test_util.h"

namespace ml {
namespace {

constexpr int kSteps = 8;

std::vector<int32_t> generate(Backend& be, const std::string& record, GenerateOptions go,
                              std::vector<std::vector<Sampler::Candidate>>* tops = nullptr) {
  const GoldenRecord g = load_golden(test::shared("golden/" + record + ".json").string());
  auto source = gguf::open_source(test::shared("models/" + g.model).string());
  const gguf::File file = gguf::parse(*source);
  const Model model = load_model(be, *source, file);
  const auto tokenizer = tok::Tokenizer::from_metadata(file.metadata);
  SessionOptions so;
  so.kv_type = gguf::Type::F32;
  so.n_ctx = 256;
  Session session(be, model, so);
  go.max_tokens = kSteps;
  Generator gen(be, session, tokenizer, go);
  GenerateCallbacks cb;
  cb.on_token = [&](const TokenEvent& ev) {
    if (tops) tops->emplace_back(ev.top.begin(), ev.top.end());
    return true;
  };
  return gen.run(g.tokens, cb).tokens;
}

TEST(GeneratorGpu, GreedyEqualsGoldenAndCpu) {
  const std::string record = "gptoss-tiny-mxfp4.harmony";
  const GoldenRecord g = load_golden(test::shared("golden/" + record + ".json").string());
  const std::vector<int32_t> want(g.greedy.begin(), g.greedy.begin() + kSteps);
  auto cpu = make_cpu_backend();
  auto gpu = make_vulkan_backend();
  GenerateOptions go;
  go.sampling.temperature = 0.0f;
  EXPECT_EQ(generate(*gpu, record, go), want);
  go.n_probs = 4;
  std::vector<std::vector<Sampler::Candidate>> top_cpu, top_gpu;
  EXPECT_EQ(generate(*gpu, record, go, &top_gpu), want);
  EXPECT_EQ(generate(*cpu, record, go, &top_cpu), want);
  ASSERT_EQ(top_gpu.size(), top_cpu.size());
  for (size_t s = 0; s < top_cpu.size(); ++s) {
    ASSERT_EQ(top_gpu[s].size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(top_gpu[s][i].id, top_cpu[s][i].id) << "step " << s;
      EXPECT_NEAR(top_gpu[s][i].logit, top_cpu[s][i].logit, 1e-2) << "step " << s;
      EXPECT_NEAR(top_gpu[s][i].p, top_cpu[s][i].p, 1e-3) << "step " << s;
    }
  }
}

TEST(GeneratorGpu, SeededSamplingEqualsCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_vulkan_backend();
  for (const char* record : {"gptoss-tiny-mxfp4.harmony", "llama-tiny-q4_k_m.story"}) {
    GenerateOptions go;
    go.sampling = {0.9f, 20, 0.95f, 0.02f, 1.3f, 64, 7};
    const std::vector<int32_t> a = generate(*cpu, record, go);
    EXPECT_EQ(generate(*gpu, record, go), a) << record;
    const GoldenRecord g =
        load_golden(test::shared("golden/" + std::string(record) + ".json").string());
    EXPECT_NE(a, std::vector<int32_t>(g.greedy.begin(), g.greedy.begin() + kSteps));
  }
}

// Greedy generation sends each pass before reading the token it feeds (GreedyPipeline); when
// it stops, the session stands where the step-by-step loop leaves it: the last token not
// fed, so a second run that starts from that token continues the first one exactly.
TEST(GeneratorGpu, PipelinedGreedyStopsWhereTheStepByStepLoopDoes) {
  const GoldenRecord g = load_golden(test::shared("golden/llama-tiny-q4_k_m.story.json").string());
  auto source = gguf::open_source(test::shared("models/" + g.model).string());
  const gguf::File file = gguf::parse(*source);
  auto gpu = make_vulkan_backend();
  const Model model = load_model(*gpu, *source, file);
  const auto tokenizer = tok::Tokenizer::from_metadata(file.metadata);
  SessionOptions so;
  so.kv_type = gguf::Type::F32;
  so.n_ctx = int64_t(g.tokens.size()) + 5;
  auto run = [&](Session& session, std::span<const int32_t> prompt, int max_tokens,
                 int n_probs) {
    GenerateOptions go;
    go.sampling.temperature = 0.0f;
    go.max_tokens = max_tokens;
    go.n_probs = n_probs;  // n_probs > 0: the step-by-step loop
    return Generator(*gpu, session, tokenizer, go).run(prompt, {});
  };
  // The context holds the prompt and 5 more: the sixth token has no room to be fed.
  const auto full = int64_t(g.tokens.size()) + 5;
  Session whole(*gpu, model, so);
  const GenerateStats all = run(whole, g.tokens, 8, 1);
  EXPECT_EQ(all.stop, StopReason::ContextFull);
  ASSERT_EQ(all.tokens.size(), 6u);
  EXPECT_EQ(whole.n_past(), full);

  Session parts(*gpu, model, so);
  const GenerateStats first = run(parts, g.tokens, 3, 0);
  EXPECT_EQ(first.stop, StopReason::MaxTokens);
  EXPECT_EQ(parts.n_past(), full - 3);
  const GenerateStats second = run(parts, std::span(&first.tokens.back(), 1), 8, 0);
  EXPECT_EQ(second.stop, StopReason::ContextFull);
  std::vector<int32_t> joined = first.tokens;
  joined.insert(joined.end(), second.tokens.begin(), second.tokens.end());
  EXPECT_EQ(joined, all.tokens);
  EXPECT_EQ(parts.n_past(), full);
}

}  // namespace
}  // namespace ml
