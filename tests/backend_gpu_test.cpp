// The Vulkan backend's paths for real model sizes, against the CPU backend (the references of
// libml/src/ops): get_rows of a table larger than maxStorageBufferRange (bound in slices,
// reached here by capping the range), flash-decoding attention (one token over a long cache,
// keys split over workgroups and combined), the two-pass argmax of a vocabulary-sized row,
// the transient buffers a forward pass reuses from the one before it, batched reads, and
// activations quantized alongside for the next matvec.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend_util.h"
#include "ml/backend.h"
#include "ml/error.h"
#include "ml/quant.h"

namespace ml {
namespace {

using gguf::Type;

using test::put;
using test::put_f32;
using test::put_i32;
using test::randoms;
using test::rel_diff;

TEST(BackendGpu, GetRowsOfATableLargerThanTheStorageBufferRange) {
  // A 4 KiB range: the tables below span 5 to 9 slices, rows not aligned to the binding.
  vk::DeviceOptions options;
  options.storage_buffer_range_cap = 4096;
  auto gpu = make_vulkan_backend(options);
  auto cpu = make_cpu_backend(1);
  for (Type type : {Type::Q8_0, Type::Q4_K, Type::F16, Type::F32}) {
    const int64_t K = type == Type::F32 ? 12 : 256, R = type == Type::F32 ? 1500 : 150;
    const auto table = quant::random_blocks(type, uint64_t(K * R), 3);
    // Three rows of 256 floats stay under the capped range that binds the output whole.
    const std::vector<int32_t> ids = {int32_t(R - 1), 0, 77};
    std::vector<std::vector<float>> out;
    for (Backend* be : {cpu.get(), gpu.get()}) {
      const Tensor t = put(*be, type, {K, R, 1, 1}, table);
      out.push_back(read_f32(*be, be->get_rows(t, put_i32(*be, {3, 1, 1, 1}, ids))));
    }
    EXPECT_EQ(out[0], out[1]) << gguf::type_name(type);
  }
}

// One decode token at position 290 over a cache of 290 keys: with 4 heads the keys are
// split over workgroups (flash-decoding) and combined, with a window, sinks and softcap.
TEST(BackendGpu, DecodeAttentionSplitOverALongCache) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t D = 64, H = 4, HK = 2, cells = 300, past = 290;
  for (Type kv : {Type::F32, Type::F16})
    for (int32_t n_swa : {0, 200})
      for (bool sinks : {false, true}) {
        std::vector<std::vector<float>> out;
        for (Backend* be : {cpu.get(), gpu.get()}) {
          const Tensor kc = be->alloc(kv, {D * HK, cells, 1, 1}, "k_cache");
          const Tensor vc = be->alloc(kv, {D * HK, cells, 1, 1}, "v_cache");
          be->kv_store(kc, put_f32(*be, {D * HK, past, 1, 1}, randoms(D * HK * past, 1)), 0);
          be->kv_store(vc, put_f32(*be, {D * HK, past, 1, 1}, randoms(D * HK * past, 2)), 0);
          const Tensor q = put_f32(*be, {D, H, 1, 1}, randoms(D * H, 3, 2.0f));
          const Tensor k = put_f32(*be, {D, HK, 1, 1}, randoms(D * HK, 4, 2.0f));
          const Tensor v = put_f32(*be, {D, HK, 1, 1}, randoms(D * HK, 5));
          const Tensor s = put_f32(*be, {H, 1, 1, 1}, randoms(H, 6, 2.0f));
          ops::AttentionParams p;
          p.pos0 = int32_t(past);
          p.n_swa = n_swa;
          p.scale = 0.125f;
          p.softcap = sinks ? 0.0f : 20.0f;
          out.push_back(read_f32(*be, be->attention(q, k, v, kc, vc, sinks ? &s : nullptr, p)));
        }
        EXPECT_LE(rel_diff(out[0], out[1]), kv == Type::F16 ? 2e-3 : 1e-4)
            << gguf::type_name(kv) << " window " << n_swa << " sinks " << sinks;
      }
}

// The clustered layout (head_dims 64, 128, 256) against ops::attention: GQA ratios 1, 4 and
// 8; keys in one step, split over workgroups (one token over 300 keys) and in several steps
// of one workgroup (40 tokens of 8 or 16 heads: too many to split); a window whose ring of cells
// has wrapped (the window crossing the ring's end); sinks; softcap; f16 caches, f32 at 64.
TEST(BackendGpu, AttentionHeadDimsGqaRatiosSplitsAndWindows) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t HK = 2;
  for (int64_t D : {64, 128, 256})
    for (int64_t ratio : {1, 4, 8})
      for (int64_t T : {1, 40})
        for (int64_t past : {5, 300})
          for (int32_t n_swa : {0, 100}) {
            const bool sinks = n_swa > 0 && ratio != 4, f16 = ratio != 8 || D != 64;
            const int64_t H = HK * ratio, cells = n_swa > 0 ? n_swa + 7 : past + T;
            const Type kv = f16 ? Type::F16 : Type::F32;
            SCOPED_TRACE(cat("head_dim ", D, " heads ", H, " tokens ", T, " past ", past,
                             " window ", n_swa, " ", gguf::type_name(kv)));
            std::vector<std::vector<float>> out;
            for (Backend* be : {cpu.get(), gpu.get()}) {
              const Tensor kc = be->alloc(kv, {D * HK, cells, 1, 1}, "k_cache");
              const Tensor vc = be->alloc(kv, {D * HK, cells, 1, 1}, "v_cache");
              const auto n = size_t(D * HK * past);
              be->kv_store(kc, put_f32(*be, {D * HK, past}, randoms(n, uint64_t(D + 1))), 0);
              be->kv_store(vc, put_f32(*be, {D * HK, past}, randoms(n, uint64_t(D + 2))), 0);
              const Tensor q = put_f32(*be, {D, H, T}, randoms(size_t(D * H * T), 3, 2.0f));
              const Tensor k = put_f32(*be, {D, HK, T}, randoms(size_t(D * HK * T), 4, 2.0f));
              const Tensor v = put_f32(*be, {D, HK, T}, randoms(size_t(D * HK * T), 5));
              const Tensor s = put_f32(*be, {H}, randoms(size_t(H), 6, 2.0f));
              ops::AttentionParams p;
              p.pos0 = int32_t(past);
              p.n_swa = n_swa;
              p.scale = 1.0f / std::sqrt(float(D));
              p.softcap = ratio == 4 ? 20.0f : 0.0f;
              out.push_back(read_f32(*be, be->attention(q, k, v, kc, vc, sinks ? &s : nullptr, p)));
            }
            EXPECT_LE(rel_diff(out[0], out[1]), f16 ? 2e-3 : 1e-4);
          }
}

TEST(BackendGpu, ArgmaxOfVocabularySizedRowsAcrossParts) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t V = 200000;
  auto x = randoms(size_t(2 * V), 9);
  x[size_t(150000)] = x[size_t(190001)] = 5.0f;     // row 0: a tie in two parts, the lower wins
  x[size_t(V + 3)] = x[size_t(V + 199999)] = 7.0f;  // row 1: first and last part
  std::vector<std::vector<int32_t>> out;
  for (Backend* be : {cpu.get(), gpu.get()})
    out.push_back(read_i32(*be, be->argmax(put_f32(*be, {V, 2, 1, 1}, x))));
  EXPECT_EQ(out[0], (std::vector<int32_t>{150000, 3}));
  EXPECT_EQ(out[0], out[1]);
}

// Several results read in one submit (router telemetry reads every layer's choices at once):
// each lands in its own output, including one too large for the readback buffer (4 MiB),
// which takes the single-tensor path, and a tensor the pass computed just before the read.
TEST(BackendGpu, ReadOfSeveralTensorsInOneSubmit) {
  auto gpu = make_vulkan_backend();
  const auto a = randoms(37, 1), big = randoms(1 << 20, 2);  // big: 4 MiB of floats
  std::vector<int32_t> ids(13);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i * 7 - 40);
  const Tensor ta = put_f32(*gpu, {37}, a), tb = put_f32(*gpu, {1 << 20}, big),
               ti = put_i32(*gpu, {13}, ids);
  gpu->reset_transient();
  const Tensor twice = gpu->scale(ta, 2.0f);
  std::vector<float> out_a(a.size()), out_big(big.size()), out_twice(a.size());
  std::vector<int32_t> out_ids(ids.size());
  const std::vector<Tensor> ts{ta, tb, ti, twice};
  const std::vector<std::span<std::byte>> outs{
      std::as_writable_bytes(std::span(out_a)), std::as_writable_bytes(std::span(out_big)),
      std::as_writable_bytes(std::span(out_ids)), std::as_writable_bytes(std::span(out_twice))};
  gpu->read(ts, outs);
  EXPECT_EQ(out_a, a);
  EXPECT_EQ(out_big, big);
  EXPECT_EQ(out_ids, ids);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(out_twice[i], 2.0f * a[i]);
  // A wrong-sized output is an error, not a short copy.
  std::vector<float> short_out(5);
  const std::vector<std::span<std::byte>> bad{std::as_writable_bytes(std::span(short_out))};
  EXPECT_THROW(gpu->read(std::span(ts).first(1), bad), Error);
}

// Reads started ahead (greedy decoding's): each pass's result arrives whole after the passes
// recorded behind it, finished in any order up to the backend's slots; a copy on the device
// feeds the next pass.
TEST(BackendGpu, ReadsStartedAheadKeepEachPassesResult) {
  auto gpu = make_vulkan_backend();
  const auto a = randoms(300, 3);
  const Tensor ta = put_f32(*gpu, {300}, a);
  const Tensor carried = gpu->alloc(Type::F32, {300, 1, 1, 1}, "carried");
  gpu->copy(ta, carried);
  std::vector<Backend::PendingRead> pending;
  for (int pass = 0; pass < 3; ++pass) {
    gpu->reset_transient();  // does not wait for the pass before
    const Tensor next = gpu->scale(carried, 2.0f);
    gpu->copy(next, carried);
    pending.push_back(gpu->read_start(next));
  }
  for (int pass : {1, 0, 2}) {
    std::vector<float> out(a.size());
    gpu->read_finish(pending[size_t(pass)], std::as_writable_bytes(std::span(out)));
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_FLOAT_EQ(out[i], a[i] * float(2 << pass)) << "pass " << pass << " at " << i;
  }
  // A slot is taken again by the fifth read after it: finishing the old one then is an error.
  std::vector<Backend::PendingRead> many;
  for (int i = 0; i < 5; ++i) many.push_back(gpu->read_start(ta));
  std::vector<float> out(a.size());
  EXPECT_THROW(gpu->read_finish(many[0], std::as_writable_bytes(std::span(out))), Error);
  gpu->read_finish(many[4], std::as_writable_bytes(std::span(out)));
  EXPECT_EQ(out, a);
  std::vector<float> wrong(3);
  EXPECT_THROW(gpu->read_finish(many[3], std::as_writable_bytes(std::span(wrong))), Error);
  EXPECT_THROW(gpu->copy(ta, gpu->alloc(Type::F32, {299, 1, 1, 1}, "short")), Error);
}

// rmsnorm and swiglu write their output quantized for the integer matvec alongside it, so the
// matmuls after them record no quantize_x; the result is bit for bit the one of quantizing
// separately (the same values rounded by the same code), here forced by reading the
// activation back into a persistent tensor, which is never shared.
TEST(BackendGpu, NormAndSwigluQuantizeForTheNextMatvec) {
  auto gpu = make_vulkan_backend();
  // Rows of 2560: the norm takes three steps of 1024 values, the last one partial.
  const int64_t k = 2560, m = 24;
  for (const int64_t T : {1, 3}) {
    SCOPED_TRACE(cat("tokens ", T));
    const auto wq = quant::random_blocks(Type::Q4_K, uint64_t(m * k), uint64_t(m));
    const Tensor w = put(*gpu, Type::Q4_K, {k, m}, wq);
    const Tensor x = put_f32(*gpu, {k, T}, randoms(size_t(k * T), 3));
    const Tensor g = put_f32(*gpu, {k, T}, randoms(size_t(k * T), 4, 3.0f));
    const Tensor u = put_f32(*gpu, {k, T}, randoms(size_t(k * T), 5));
    const Tensor norm_w = put_f32(*gpu, {k}, randoms(size_t(k), 6));
    gpu->reset_transient();
    gpu->set_profiling(true);
    // As in a layer: each activation straight into its matmuls (the backend keeps the last).
    const Tensor n = gpu->rmsnorm(x, &norm_w, 1e-5f);
    const Tensor yn = gpu->matmul(w, n);
    const Tensor s = gpu->swiglu(g, u);
    const Tensor ys = gpu->matmul(w, s);
    const Tensor e = gpu->geglu(g, u);
    const Tensor ye = gpu->matmul(w, e);
    const Backend::NormSum ns = gpu->rmsnorm_add_norm(x, norm_w, g, norm_w, 1e-5f);
    const Tensor yns = gpu->matmul(w, ns.norm);
    const auto fused_n = read_f32(*gpu, yn), fused_s = read_f32(*gpu, ys);
    const auto fused_e = read_f32(*gpu, ye), fused_ns = read_f32(*gpu, yns);
    for (const auto& op : gpu->take_op_times()) EXPECT_NE(op.label, "quantize_x");
    gpu->set_profiling(false);
    const Tensor n_copy = put_f32(*gpu, {k, T}, read_f32(*gpu, n));
    const Tensor s_copy = put_f32(*gpu, {k, T}, read_f32(*gpu, s));
    const Tensor e_copy = put_f32(*gpu, {k, T}, read_f32(*gpu, e));
    EXPECT_EQ(fused_n, read_f32(*gpu, gpu->matmul(w, n_copy)));
    EXPECT_EQ(fused_s, read_f32(*gpu, gpu->matmul(w, s_copy)));
    EXPECT_EQ(fused_e, read_f32(*gpu, gpu->matmul(w, e_copy)));
    const Tensor ns_copy = put_f32(*gpu, {k, T}, read_f32(*gpu, ns.norm));
    EXPECT_EQ(fused_ns, read_f32(*gpu, gpu->matmul(w, ns_copy)));
  }
}

// One-token attention writes its output quantized for the output projection too, in the
// single-workgroup and the split (flash-decoding) forms, with and without sinks.
TEST(BackendGpu, AttentionQuantizesForTheOutputProjection) {
  auto gpu = make_vulkan_backend();
  const int64_t d = 64, n_head = 4, n_kv = 2, cells = 1024, m = 24;
  const auto wq = quant::random_blocks(Type::Q4_K, uint64_t(m * d * n_head), uint64_t(m));
  const Tensor w = put(*gpu, Type::Q4_K, {d * n_head, m}, wq);
  const Tensor kc = put_f32(*gpu, {d * n_kv, cells}, randoms(size_t(d * n_kv * cells), 7));
  const Tensor vc = put_f32(*gpu, {d * n_kv, cells}, randoms(size_t(d * n_kv * cells), 8));
  const Tensor sinks = put_f32(*gpu, {n_head}, randoms(size_t(n_head), 9));
  for (const int32_t pos0 : {20, 900}) {
    SCOPED_TRACE(cat("pos0 ", pos0));
    const Tensor q = put_f32(*gpu, {d, n_head, 1}, randoms(size_t(d * n_head), 10));
    const Tensor k = put_f32(*gpu, {d, n_kv, 1}, randoms(size_t(d * n_kv), 11));
    const Tensor v = put_f32(*gpu, {d, n_kv, 1}, randoms(size_t(d * n_kv), 12));
    gpu->reset_transient();
    gpu->set_profiling(true);
    const ops::AttentionParams ap{pos0, 0, 0.125f, 0.0f};
    const Tensor o = gpu->attention(q, k, v, kc, vc, pos0 > 100 ? &sinks : nullptr, ap);
    const auto fused = read_f32(*gpu, gpu->matmul(w, reshape(o, {d * n_head, 1, 1, 1})));
    for (const auto& op : gpu->take_op_times()) EXPECT_NE(op.label, "quantize_x");
    gpu->set_profiling(false);
    const Tensor o_copy = put_f32(*gpu, {d * n_head, 1}, read_f32(*gpu, o));
    EXPECT_EQ(fused, read_f32(*gpu, gpu->matmul(w, o_copy)));
  }
}

TEST(BackendGpu, TransientsOfAnEarlierPassAreRejectedNotAliased) {
  auto gpu = make_vulkan_backend();
  const auto v = randoms(64, 1);
  const Tensor a = put_f32(*gpu, {64, 1, 1, 1}, v);
  for (int pass = 0; pass < 3; ++pass) {
    gpu->reset_transient();
    // The same shapes each pass (as decode steps are): the results must not depend on
    // which earlier buffer a transient reuses.
    const Tensor s = gpu->scale(a, 2.0f), t = gpu->add(s, a);
    const auto y = read_f32(*gpu, t);
    for (size_t i = 0; i < v.size(); ++i) ASSERT_FLOAT_EQ(y[i], 3.0f * v[i]) << "pass " << pass;
    if (pass == 2) {
      gpu->reset_transient();
      EXPECT_THROW(read_f32(*gpu, t), Error);
    }
  }
}

}  // namespace
}  // namespace ml
