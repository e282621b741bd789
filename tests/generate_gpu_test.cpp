// The Generator on the Vulkan backend against the CPU backend (the reference): greedy with
// the argmax and with the top n_probs read back equals the golden continuation, and seeded
// sampling (device top-k, penalized logits gathered beside it) draws the CPU's tokens up to a
// near tie of the two backends' logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>

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

// Seeded sampling on both backends: the same tokens, each step's candidates (the sampler's,
// after its filters) with the same probabilities within 1e-3, until the backends' logits
// (~1e-4 apart: x rounded to int8 twice on the GPU) part at a near tie. There the draw,
// the same on both, lands on neighbours of the CPU's order (two candidates swapped, or a
// cumulative sum moved across it), and the runs are compared no further: their contexts
// differ from then on.
void expect_same_draws(const std::vector<int32_t>& cpu, const std::vector<int32_t>& gpu,
                       const std::vector<std::vector<Sampler::Candidate>>& top_cpu,
                       const std::vector<std::vector<Sampler::Candidate>>& top_gpu) {
  ASSERT_EQ(cpu.size(), top_cpu.size());
  ASSERT_EQ(gpu.size(), top_gpu.size());
  for (size_t s = 0; s < std::min(cpu.size(), gpu.size()); ++s) {
    SCOPED_TRACE(testing::Message() << "step " << s);
    const auto& c = top_cpu[s];
    const auto& g = top_gpu[s];
    auto find = [](const std::vector<Sampler::Candidate>& list, int32_t id) {
      for (size_t i = 0; i < list.size(); ++i)
        if (list[i].id == id) return std::ptrdiff_t(i);
      return std::ptrdiff_t(-1);
    };
    size_t shared = 0;
    for (const auto& x : c)
      if (const auto j = find(g, x.id); j >= 0) {
        ++shared;
        EXPECT_NEAR(g[size_t(j)].p, x.p, 1e-3) << "token " << x.id;
      }
    EXPECT_GE(shared + 1, c.size());  // only a near tie at the cut may differ
    if (cpu[s] == gpu[s]) continue;
    const auto i = find(c, cpu[s]), j = find(c, gpu[s]);
    ASSERT_GE(i, 0);
    ASSERT_GE(j, 0) << "the GPU drew " << gpu[s] << ", not a CPU candidate";
    EXPECT_EQ(std::abs(i - j), 1) << "the GPU drew " << gpu[s] << ", not a neighbour of " << cpu[s];
    EXPECT_NEAR(c[size_t(i)].p, c[size_t(j)].p, 1e-3);
    return;
  }
  EXPECT_EQ(cpu.size(), gpu.size());
}

TEST(GeneratorGpu, SeededSamplingEqualsCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_vulkan_backend();
  for (const char* record : {"gptoss-tiny-mxfp4.harmony", "llama-tiny-q4_k_m.story"}) {
    SCOPED_TRACE(record);
    GenerateOptions go;
    go.sampling = {0.9f, 20, 0.95f, 0.02f, 1.3f, 64, 7};
    go.n_probs = 20;  // top_k: every candidate
    std::vector<std::vector<Sampler::Candidate>> top_cpu, top_gpu;
    const std::vector<int32_t> a = generate(*cpu, record, go, &top_cpu);
    const std::vector<int32_t> b = generate(*gpu, record, go, &top_gpu);
    expect_same_draws(a, b, top_cpu, top_gpu);
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
  auto run = [&](Session& session, std::span<const int32_t> prompt, int max_tokens, int n_probs) {
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
