// Golden logits on the Vulkan backend: every record in $ML_SHARED_DIR/golden runs through the
// same forward pass as model_golden_test, on the GPU. f32 KV: max |Δlogit| ≤ 1e-2 against
// llama.cpp's logits, the greedy continuation identical to the golden one, and the prompt's
// logits within 1e-2 of the CPU backend's; f16 KV in batches of 16: ≤ 5e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "test_util.h"

namespace ml {
namespace {

std::vector<std::string> golden_records() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(test::shared("golden"), ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class GoldenGpu : public ::testing::TestWithParam<std::string> {
 protected:
  void check(gguf::Type kv, int64_t n_batch, float tol) {
    const GoldenRecord g = load_golden(test::shared("golden/" + GetParam() + ".json").string());
    const std::string path = test::shared("models/" + g.model).string();
    auto source = gguf::open_source(path);
    const gguf::File file = gguf::parse(*source);
    auto be = make_vulkan_backend();
    const Model model = load_model(*be, *source, file);
    SessionOptions o;
    o.kv_type = kv;
    o.n_batch = n_batch;
    o.n_ctx = 512;
    const GoldenReport r = compare_golden(*be, model, g, o, tol, -1);
    EXPECT_LE(r.max_diff, tol) << "at position " << r.max_diff_position;
    EXPECT_EQ(r.top5_mismatches, 0);
    EXPECT_TRUE(r.greedy_ok) << "diverged after " << r.greedy_compared << " tokens";
    EXPECT_LE(r.greedy_max_diff, tol);
    EXPECT_GT(r.greedy_compared, 0);
    if (kv != gguf::Type::F32) return;
    EXPECT_EQ(r.greedy, g.greedy);

    // The same prompt on the CPU backend: all positions' logits.
    auto cpu = make_cpu_backend();
    const Model cpu_model = load_model(*cpu, *source, file);
    Session gs(*be, model, o), cs(*cpu, cpu_model, o);
    const auto lg = gs.prefill(g.tokens, true), lc = cs.prefill(g.tokens, true);
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

INSTANTIATE_TEST_SUITE_P(Shared, GoldenGpu, ::testing::ValuesIn(golden_records()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace ml
