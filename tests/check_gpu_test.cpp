// ml/check.h on the Vulkan backend against the CPU reference: embedding rows of every weight
// type the kernels decode, one block of gpt-oss, attention across gemma3's window, and the
// --moe-fallback path.
#include <gtest/gtest.h>

#include "check_util.h"
#include "ml/check.h"
#include "ml/ops.h"

namespace ml {
namespace {

using gguf::Type;

TEST(CheckGpu, EmbeddingRowsOfEveryGpuType) {
  const std::vector<Type> types = ops::gpu_types();
  gguf::MemorySource source(test::tables_gguf(types), "tables.gguf");
  const gguf::File file = gguf::parse(source);
  auto be = make_vulkan_backend();
  for (Type t : types) {
    const check::EmbedReport r =
        check::embed_table(*be, source, file, gguf::type_name(t), std::vector{5, 0, 7});
    for (size_t i = 0; i < r.rows.size(); ++i)
      EXPECT_LE(r.max_diff[i], 1e-6f * std::max(1.0f, r.max_ref[i]))
          << gguf::type_name(t) << " row " << r.rows[i];
  }
}

TEST(CheckGpu, GptOssBlockAndFallbackMatchTheCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_vulkan_backend();
  const test::Loaded lc = test::load_shared(*cpu, "gptoss-tiny-mxfp4.gguf");
  const test::Loaded lg = test::load_shared(*gpu, "gptoss-tiny-mxfp4.gguf");
  const auto x = check::embeddings(*cpu, lc.model, check::spread_ids(6, lc.model.config.n_vocab));
  for (bool fallback : {false, true}) {
    check::LayerRunner rc(*cpu, lc.model, 0, 6, Type::F32, fallback);
    check::LayerRunner rg(*gpu, lg.model, 0, 6, Type::F32, fallback);
    const auto diffs = check::compare(rc.step(x), rg.step(x));
    EXPECT_EQ(diffs.back().name, "l_out");
    for (const auto& d : diffs) {
      EXPECT_LE(d.scaled(), 1e-4f) << d.name << (fallback ? " (fallback)" : "");
      if (d.name == "ffn_moe_topk") {
        EXPECT_EQ(d.max_diff, 0.0f);
      }
    }
  }
}

TEST(CheckGpu, AttentionAcrossTheWindow) {
  auto cpu = make_cpu_backend();
  auto gpu = make_vulkan_backend();
  const test::Loaded lc = test::load_shared(*cpu, "gemma3-tiny-q5_k_m.gguf");
  const test::Loaded lg = test::load_shared(*gpu, "gemma3-tiny-q5_k_m.gguf");
  const auto x = check::embeddings(*cpu, lc.model, check::spread_ids(36, 4096));
  const check::AttentionReport r =
      check::attention(*cpu, lc.model, *gpu, lg.model, x, 4, 0, Type::F32);
  EXPECT_EQ(r.n_cells, 16);
  ASSERT_EQ(r.steps.size(), 33u);
  for (const auto& s : r.steps) {
    EXPECT_TRUE(s.finite);
    // test_attention's f32 tolerance: one-token projections run the integer matvec, whose
    // int8 rounding of x leaves ~1e-5 of the row norm per dot product (1.4e-4 seen here).
    EXPECT_LE(s.test_diff, 1e-3f * std::max(1.0f, s.max_ref)) << "position " << s.pos0;
    EXPECT_LE(s.batch_diff, 1e-6f) << "position " << s.pos0;
  }
}

}  // namespace
}  // namespace ml
