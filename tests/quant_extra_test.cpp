// The CPU reference against gguf-py for every type gguf-py can dequantize, including those
// the shared golden file lacks (IQ2_XXS .. IQ1_M, TQ1_0, TQ2_0, NVFP4, F32): vectors made by
// tests/tools/make_quant_golden.py into the build tree. Needs python3 with gguf and numpy
// (CI installs them); skipped with the reason otherwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "ml/quant.h"
#include "quant_golden.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;

bool have_gguf_py() {
  return std::system("python3 -c 'import gguf, numpy' >/dev/null 2>&1") == 0;
}

std::string script() {
  return (ml::test::source_dir() / "tests/tools/make_quant_golden.py").string();
}

// A file per process: ctest may run the tests of this binary in parallel.
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(ML_BIN_DIR).parent_path() / "quant_extra";
  fs::create_directories(dir);
  return dir / (std::to_string(getpid()) + "-" + name);
}

TEST(QuantExtra, EveryTypeGgufPyDequantizesMatches) {
  if (!have_gguf_py()) GTEST_SKIP() << "python3 with the gguf and numpy packages is not available";
  std::string types;
  for (ml::gguf::Type t : ml::quant::reference_types()) {
    if (!types.empty()) types += ',';
    types += ml::gguf::type_name(t);
  }
  const fs::path out = scratch("quant-extra.gguf");
  const std::string cmd = "python3 '" + script() +
                          "' --skip-unsupported --seed 11 --rows 8 --cols 1024 --types " + types +
                          " --out '" + out.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  std::set<std::string> checked;
  {
    ml::test::QuantGolden g(out.string());
    for (const std::string& name : g.types()) {
      ml::test::check_golden_type(g, name);
      checked.insert(name);
    }
  }
  fs::remove(out);
  // What gguf-py 0.19 dequantizes; it has no Q8_1, Q8_K or Q1_0 (those are checked against
  // hand-built blocks in quant_test).
  for (const char* name :
       {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
        "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "NVFP4"}) {
    EXPECT_TRUE(checked.count(name)) << name << " was not generated";
  }
}

// The shared file was "generated the same way": gguf-py's dequantization of every shared T.q
// is T.deq, and T.deq · x in float64 is T.y.
TEST(QuantExtra, SharedFileMatchesGgufPy) {
  if (!have_gguf_py()) GTEST_SKIP() << "python3 with the gguf and numpy packages is not available";
  const std::string cmd = "python3 '" + script() + "' --check-shared '" +
                          ml::test::shared("quant/quant-golden.gguf").string() + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
