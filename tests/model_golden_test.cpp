// Golden logits: every record in $ML_SHARED_DIR/golden is a test. The record's tokens go
// through the CPU backend (f32 KV: max |Δlogit| ≤ 1e-2, identical top-5 up to near-ties and
// identical greedy continuation; f16 KV with a 16-token prefill batch, so the prompt also
// runs through the cache and the sliding-window ring buffers: ≤ 5e-2, greedy identical
// while the golden gap exceeds 0.1). The reference is llama.cpp on F32-dequantized models.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "test_util.h"

namespace ml {
namespace {

// Under AddressSanitizer (a Debug build, ~30x slower) the f32 variant compares the first 4
// greedy steps and the f16 variant is skipped: the same code paths run, and the cache's ring
// buffers are covered by ops_test's Attention.RingBufferDecodeMatchesOneBatch.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

std::vector<std::string> golden_records() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(test::shared("golden"), ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void check(gguf::Type kv, int64_t n_batch, float tol) {
    const GoldenRecord g = load_golden(test::shared("golden/" + GetParam() + ".json").string());
    const std::string path = test::shared("models/" + g.model).string();
    auto source = gguf::open_source(path);
    const gguf::File file = gguf::parse(*source);
    auto be = make_cpu_backend();
    const Model model = load_model(*be, *source, file);
    SessionOptions o;
    o.kv_type = kv;
    o.n_batch = n_batch;
    o.n_ctx = 512;
    const GoldenReport r = compare_golden(*be, model, g, o, tol, kSanitized ? 4 : -1);
    EXPECT_LE(r.max_diff, tol) << "at position " << r.max_diff_position;
    EXPECT_EQ(r.top5_mismatches, 0);
    EXPECT_TRUE(r.greedy_ok) << "diverged after " << r.greedy_compared << " tokens";
    EXPECT_LE(r.greedy_max_diff, tol);
    if (kv == gguf::Type::F32) {
      EXPECT_EQ(r.greedy,
                std::vector<int32_t>(g.greedy.begin(), g.greedy.begin() + r.greedy.size()));
      EXPECT_EQ(r.greedy.size(),
                kSanitized ? std::min<size_t>(4, g.greedy.size()) : g.greedy.size());
    }
    EXPECT_GT(r.greedy_compared, 0);
  }
};

TEST_P(Golden, LogitsAndGreedyWithF32Cache) {
  check(gguf::Type::F32, 512, 1e-2f);
}
TEST_P(Golden, LogitsAndGreedyWithF16CacheInBatchesOf16) {
  check(gguf::Type::F16, 16, 5e-2f);
}

INSTANTIATE_TEST_SUITE_P(Shared, Golden, ::testing::ValuesIn(golden_records()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

TEST(GoldenData, RecordsArePresent) {
  EXPECT_GE(golden_records().size(), 8u);
}

}  // namespace
}  // namespace ml
