// The matmul epilogue (shaders/matmul_epilogue.glsl, ops::MatmulEpilogue): a bias and a
// residual added in the matmul kernels' final write, the per-expert bias in the expert
// matmul, the residual in moe_combine. Each is checked three ways: the Vulkan backend against
// the CPU backend (whose matmul is ops::dequantize_row + ops::dot, then the same adds), each
// backend's fused op bit for bit against its unfused ops (matmul, then add / add_id), and a
// whole forward pass with the fusions (no observer) against the one without them (observer).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend_util.h"
#include "ml/backend.h"
#include "ml/model.h"
#include "ml/quant.h"
#include "ml/run.h"
#include "test_util.h"

namespace ml {
namespace {

using gguf::Type;

using test::put;
using test::put_f32;
using test::put_i32;
using test::randoms;
using test::rel_diff;

// Per backend (CPU, then Vulkan): the fused result and the unfused one.
struct Results {
  std::vector<std::vector<float>> fused, unfused;
};

// The integer matvec rounds x to two int8 roundings (~1e-5 of |row| |x|), the float kernels
// only in f32.
constexpr double kTolerance = 1e-4;

// matmul with bias and/or add for one weight type and T tokens: T ≤ 8 takes the matvec kernel
// the type's config picks (Q8_0 direct, Q4_K integer on pre-quantized x, Q3_K staged, F16
// direct), T > 8 the tiled kernel. Big bias and add values so that a missing term shows.
Results run_matmul(Backend& cpu, Backend& gpu, Type type, int64_t K, int64_t N, int64_t T,
                   bool with_bias, bool with_add) {
  const auto w = quant::random_blocks(type, uint64_t(K * N), 11);
  const auto x = randoms(size_t(K * T), 12);
  const auto b = randoms(size_t(N), 13, 4.0f);
  const auto a = randoms(size_t(N * T), 14, 4.0f);
  Results r;
  for (Backend* be : {&cpu, &gpu}) {
    const Tensor wt = put(*be, type, {K, N, 1, 1}, w);
    const Tensor xt = put_f32(*be, {K, T, 1, 1}, x);
    const Tensor bt = put_f32(*be, {N, 1, 1, 1}, b);
    const Tensor at = put_f32(*be, {N, T, 1, 1}, a);
    const Tensor* bias = with_bias ? &bt : nullptr;
    const Tensor* add = with_add ? &at : nullptr;
    r.fused.push_back(read_f32(*be, be->matmul(wt, xt, bias, add)));
    Tensor y = be->matmul(wt, xt);
    if (bias) y = be->add(y, bt);
    if (add) y = be->add(y, at);
    r.unfused.push_back(read_f32(*be, y));
    be->reset_transient();
  }
  return r;
}

TEST(MatmulEpilogueGpu, BiasAndResidualInMatvecAndTiledKernels) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  for (Type type : {Type::Q8_0, Type::Q4_K, Type::Q3_K, Type::F16})
    for (int64_t T : {1, 3, 12})
      for (int mode = 1; mode < 4; ++mode) {
        const bool with_bias = mode & 1, with_add = mode & 2;
        SCOPED_TRACE(cat(gguf::type_name(type), " T = ", T, with_bias ? " bias" : "",
                         with_add ? " add" : ""));
        const Results r = run_matmul(*cpu, *gpu, type, 256, 37, T, with_bias, with_add);
        EXPECT_EQ(r.fused[0], r.unfused[0]) << "CPU fused vs unfused";
        EXPECT_EQ(r.fused[1], r.unfused[1]) << "GPU fused vs unfused";
        EXPECT_LE(rel_diff(r.fused[0], r.fused[1]), kTolerance) << "GPU vs CPU";
      }
}

// A weight bound in slices (maxStorageBufferRange capped to 4 KiB: 15 rows of 272 bytes per
// slice): the matvec's bias index is the global row, not the slice's. (The tiled kernel's x
// of 9+ tokens would exceed the cap that slices W; its row index is global as well.)
TEST(MatmulEpilogueGpu, BiasOfASlicedWeightFollowsTheGlobalRow) {
  vk::DeviceOptions o;
  o.storage_buffer_range_cap = 4096;
  auto gpu = make_vulkan_backend(o);
  auto cpu = make_cpu_backend(1);
  for (int64_t T : {1, 3}) {
    SCOPED_TRACE(cat("T = ", T));
    const Results r = run_matmul(*cpu, *gpu, Type::Q8_0, 256, 50, T, true, true);
    EXPECT_EQ(r.fused[1], r.unfused[1]);
    EXPECT_LE(rel_diff(r.fused[0], r.fused[1]), kTolerance);
  }
}

// The expert matmul with bias [N, E] equals add_id of its product: row ids[j, t] of the bias
// for slot j of token t, with x shared by the slots or one per slot.
TEST(MatmulEpilogueGpu, ExpertBiasFollowsTheSlotsExpert) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t K = 256, N = 19, E = 5, n_used = 2, T = 3;
  const std::vector<int32_t> ids = {4, 1, 0, 4, 3, 2};
  for (Type type : {Type::MXFP4, Type::Q8_0, Type::Q4_K, Type::F16})
    for (int64_t X : {int64_t(1), n_used}) {
      SCOPED_TRACE(cat(gguf::type_name(type), X == 1 ? " shared x" : " x per slot"));
      const auto w = quant::random_blocks(type, uint64_t(K * N * E), 21);
      const auto x = randoms(size_t(K * X * T), 22);
      const auto b = randoms(size_t(N * E), 23, 4.0f);
      Results r;
      for (Backend* be : {cpu.get(), gpu.get()}) {
        const Tensor wt = put(*be, type, {K, N, E, 1}, w);
        const Tensor xt = put_f32(*be, {K, X, T, 1}, x);
        const Tensor bt = put_f32(*be, {N, E, 1, 1}, b);
        const Tensor it = put_i32(*be, {n_used, T, 1, 1}, ids);
        r.fused.push_back(read_f32(*be, be->matmul_id(wt, xt, it, &bt)));
        r.unfused.push_back(read_f32(*be, be->add_id(be->matmul_id(wt, xt, it), bt, it)));
        be->reset_transient();
      }
      EXPECT_EQ(r.fused[0], r.unfused[0]) << "CPU fused vs unfused";
      EXPECT_EQ(r.fused[1], r.unfused[1]) << "GPU fused vs unfused";
      EXPECT_LE(rel_diff(r.fused[0], r.fused[1]), kTolerance) << "GPU vs CPU";
    }
}

TEST(MatmulEpilogueGpu, MoeCombineAddsTheResidualAfterTheSum) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t N = 70, k = 4, T = 3;
  const auto y = randoms(size_t(N * k * T), 31);
  const auto wts = randoms(size_t(k * T), 32);
  const auto a = randoms(size_t(N * T), 33, 4.0f);
  Results r;
  for (Backend* be : {cpu.get(), gpu.get()}) {
    const Tensor yt = put_f32(*be, {N, k, T, 1}, y);
    const Tensor wt = put_f32(*be, {k, T, 1, 1}, wts);
    const Tensor at = put_f32(*be, {N, T, 1, 1}, a);
    r.fused.push_back(read_f32(*be, be->moe_combine(yt, wt, &at)));
    r.unfused.push_back(read_f32(*be, be->add(be->moe_combine(yt, wt), at)));
    be->reset_transient();
  }
  EXPECT_EQ(r.fused[0], r.unfused[0]);
  EXPECT_EQ(r.fused[1], r.unfused[1]);
  EXPECT_LE(rel_diff(r.fused[0], r.fused[1]), 1e-6);
}

TEST(MatmulEpilogueGpu, ShapesAreChecked) {
  for (const char* kind : {"cpu", "vulkan"}) {
    auto be = make_backend(kind);
    SCOPED_TRACE(kind);
    const Tensor w = put(*be, Type::Q8_0, {32, 4, 1, 1}, quant::random_blocks(Type::Q8_0, 128, 1));
    const Tensor x = put_f32(*be, {32, 2, 1, 1}, randoms(64, 2));
    const Tensor b5 = put_f32(*be, {5, 1, 1, 1}, randoms(5, 3));
    const Tensor a4 = put_f32(*be, {4, 1, 1, 1}, randoms(4, 4));
    EXPECT_THROW(be->matmul(w, x, &b5), Error);
    EXPECT_THROW(be->matmul(w, x, nullptr, &a4), Error);  // y is [4, 2]
    const Tensor we = put(*be, Type::Q8_0, {32, 4, 2, 1}, quant::random_blocks(Type::Q8_0, 256, 5));
    const Tensor ids = put_i32(*be, {1, 2, 1, 1}, {0, 1});
    const Tensor xe = reshape(x, {32, 1, 2, 1});
    EXPECT_THROW(be->matmul_id(we, xe, ids, &a4), Error);  // bias [4] for 2 experts
    EXPECT_THROW(be->moe_combine(put_f32(*be, {4, 1, 2, 1}, randoms(8, 6)),
                                 put_f32(*be, {1, 2, 1, 1}, randoms(2, 7)), &a4),
                 Error);
  }
}

// The shared tiny models: a forward pass without an observer (residuals and biases fused)
// gives the logits of the same pass with one (every intermediate kept apart), bit for bit,
// on both backends: a prompt of 5 (tiled kernels on the GPU), then one decode token.
TEST(MatmulEpilogueGpu, FusedForwardEqualsObservedForward) {
  for (const char* name : {"llama-tiny-q4_k_m.gguf", "qwen3-tiny-q6_k.gguf",
                           "gptoss-tiny-mxfp4.gguf", "gemma3-tiny-q5_k_m.gguf"}) {
    SCOPED_TRACE(name);
    const auto source = gguf::open_source(test::shared(std::string("models/") + name).string());
    const gguf::File file = gguf::parse(*source);
    for (const char* kind : {"cpu", "vulkan"}) {
      auto be = make_backend(kind);
      SCOPED_TRACE(kind);
      const Model model = load_model(*be, *source, file);
      SessionOptions o;
      o.kv_type = Type::F32;
      o.n_ctx = 64;
      std::vector<std::vector<float>> logits;
      int named = 0;
      for (bool observed : {false, true}) {
        if (observed) be->set_observer([&](std::string_view, int, const Tensor&) { ++named; });
        Session s(*be, model, o);
        auto all = s.prefill(std::vector<int32_t>{1, 7, 3, 9, 4}, true);
        const auto next = s.prefill(std::vector<int32_t>{5}, false);
        all.insert(all.end(), next.begin(), next.end());
        logits.push_back(std::move(all));
      }
      EXPECT_GT(named, 0);
      ASSERT_EQ(logits[0].size(), 6 * size_t(model.config.n_vocab));
      EXPECT_EQ(logits[0], logits[1]);
    }
  }
}

}  // namespace
}  // namespace ml
