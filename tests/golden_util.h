#pragma once
// What the golden-logit tests share (model_golden_test on the CPU backend, model_gpu_test on
// Vulkan): the record list, loading a record's model onto a backend, and the checks of a
// GoldenReport that hold for every backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "test_util.h"

namespace ml::test {

// Stems of the records in $ML_SHARED_DIR/golden ("llama-tiny-q4_k_m.fox"), sorted.
inline std::vector<std::string> golden_records() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(shared("golden"), ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A record name as a GoogleTest parameter name.
inline std::string golden_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

// A record with its model parsed; load_model puts the weights on a backend.
struct GoldenCase {
  GoldenRecord g;
  std::unique_ptr<gguf::Source> source;
  gguf::File file;

  explicit GoldenCase(const std::string& record)
      : g(load_golden(shared("golden/" + record + ".json").string())),
        source(gguf::open_source(shared("models/" + g.model).string())),
        file(gguf::parse(*source)) {}
  Model load(Backend& be) const { return load_model(be, *source, file); }
};

inline SessionOptions golden_options(gguf::Type kv, int64_t n_batch) {
  SessionOptions o;
  o.kv_type = kv;
  o.n_batch = n_batch;
  o.n_ctx = 512;
  return o;
}

// Logits within tol, the same top-5 up to near-ties, the greedy continuation agreeing while
// the golden gap exceeds 0.1, and at least one greedy step compared.
inline void expect_golden(const GoldenReport& r, float tol) {
  EXPECT_LE(r.max_diff, tol) << "at position " << r.max_diff_position;
  EXPECT_EQ(r.top5_mismatches, 0);
  EXPECT_TRUE(r.greedy_ok) << "diverged after " << r.greedy_compared << " tokens";
  EXPECT_LE(r.greedy_max_diff, tol);
  EXPECT_GT(r.greedy_compared, 0);
}

}  // namespace ml::test
