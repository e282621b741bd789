// Golden logits: every record in $ML_SHARED_DIR/golden is a test. The record's tokens go
// through the CPU backend (f32 KV: max |Δlogit| ≤ 1e-2, identical top-5 up to near-ties and
// identical greedy continuation; f16 KV with a 16-token prefill batch, so the prompt also
// runs through the cache and the sliding-window ring buffers: ≤ 5e-2, greedy identical
// while the golden gap exceeds 0.1). The reference is llama.cpp on F32-dequantized models.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "golden_util.h"
#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"

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

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void check(gguf::Type kv, int64_t n_batch, float tol) {
    const test::GoldenCase c(GetParam());
    auto be = make_cpu_backend();
    const Model model = c.load(*be);
    const GoldenReport r = compare_golden(*be, model, c.g, test::golden_options(kv, n_batch), tol,
                                          kSanitized ? 4 : -1);
    test::expect_golden(r, tol);
    if (kv == gguf::Type::F32) {
      EXPECT_EQ(r.greedy,
                std::vector<int32_t>(c.g.greedy.begin(), c.g.greedy.begin() + r.greedy.size()));
      EXPECT_EQ(r.greedy.size(),
                kSanitized ? std::min<size_t>(4, c.g.greedy.size()) : c.g.greedy.size());
    }
  }
};

TEST_P(Golden, LogitsAndGreedyWithF32Cache) {
  check(gguf::Type::F32, 512, 1e-2f);
}
TEST_P(Golden, LogitsAndGreedyWithF16CacheInBatchesOf16) {
  check(gguf::Type::F16, 16, 5e-2f);
}

INSTANTIATE_TEST_SUITE_P(Shared, Golden, ::testing::ValuesIn(test::golden_records()),
                         test::golden_test_name);

TEST(GoldenData, RecordsArePresent) {
  EXPECT_GE(test::golden_records().size(), 8u);
}

}  // namespace
}  // namespace ml
