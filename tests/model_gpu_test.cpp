// Golden logits on the Vulkan backend: every record in $ML_SHARED_DIR/golden runs through the
// same forward pass as model_golden_test, on the GPU. f32 KV: max |Δlogit| ≤ 1e-2 against
// llama.cpp's logits, the greedy continuation identical to the golden one, and the prompt's
// logits within 1e-2 of the CPU backend's; f16 KV in batches of 16: ≤ 5e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "golden_util.h"
#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"

namespace ml {
namespace {

class GoldenGpu : public ::testing::TestWithParam<std::string> {
 protected:
  void check(gguf::Type kv, int64_t n_batch, float tol) {
    const test::GoldenCase c(GetParam());
    auto be = make_vulkan_backend();
    const Model model = c.load(*be);
    const SessionOptions o = test::golden_options(kv, n_batch);
    const GoldenReport r = compare_golden(*be, model, c.g, o, tol, -1);
    test::expect_golden(r, tol);
    if (kv != gguf::Type::F32) return;
    EXPECT_EQ(r.greedy, c.g.greedy);

    // The same prompt on the CPU backend: all positions' logits.
    auto cpu = make_cpu_backend();
    const Model cpu_model = c.load(*cpu);
    Session gs(*be, model, o), cs(*cpu, cpu_model, o);
    const auto lg = gs.prefill(c.g.tokens, true), lc = cs.prefill(c.g.tokens, true);
    ASSERT_EQ(lg.size(), lc.size());
    float worst = 0;
    for (size_t i = 0; i < lg.size(); ++i) worst = std::max(worst, std::fabs(lg[i] - lc[i]));
    EXPECT_LE(worst, tol) << "GPU vs CPU logits";
  }
};

TEST_P(GoldenGpu, LogitsAndGreedyWithF32Cache) {
  check(gguf::Type::F32, 512, 1e-2f);
}
TEST_P(GoldenGpu, LogitsAndGreedyWithF16CacheInBatchesOf16) {
  check(gguf::Type::F16, 16, 5e-2f);
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenGpu, ::testing::ValuesIn(test::golden_records()),
                         test::golden_test_name);

}  // namespace
}  // namespace ml
