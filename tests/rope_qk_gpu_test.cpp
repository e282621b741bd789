// Backend::rope_qk (shaders/rope.comp: RoPE of q and k, and with a KvStore their cache rows, in
// one dispatch) on the Vulkan backend against the CPU backend, whose rope_qk is the reference
// ops (rope, rope, kv_store, kv_store); and attention after the early store against the
// reference order (attention, then kv_store) over a ring cache that wraps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include "backend_util.h"
#include "ml/backend.h"
#include "ml/quant.h"

namespace ml {
namespace {

using gguf::Type;

using test::put_f32;
using test::put_i32;
using test::randoms;
using test::rel_diff;
using test::rope_variants;

std::vector<float> cache_f32(Backend& be, const Tensor& cache) {
  std::vector<std::byte> bytes(tensor_bytes(cache));
  be.read(cache, bytes);
  std::vector<float> out(size_t(cache.n_elements()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (cache.type == Type::F32) {
      std::memcpy(&out[i], bytes.data() + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      out[i] = quant::f16_to_f32(h);
    }
  }
  return out;
}

Tensor zeroed(Backend& be, Type type, std::array<int64_t, 4> ne) {
  Tensor t = be.alloc(type, ne, "cache");
  be.upload(t, std::vector<std::byte>(tensor_bytes(t)));
  return t;
}

TEST(RopeQkGpu, StoreBeforeAttentionOnlyWhereNoReadKeyIsOverwritten) {
  // One token: a ring of the window's size is safe at every position.
  for (int32_t pos0 : {0, 5, 7, 8, 100}) EXPECT_TRUE(store_before_attention(pos0, 1, 8, 8));
  // A full-attention cache: safe until the batch wraps onto keys it reads.
  EXPECT_TRUE(store_before_attention(0, 512, 0, 512));
  EXPECT_TRUE(store_before_attention(500, 12, 0, 512));
  EXPECT_FALSE(store_before_attention(500, 13, 0, 512));
  // A batch in a ring of 8 with window 8: from position 0 nothing cached is read, so even a
  // batch longer than the ring is safe; later, only a batch that stays clear of the window.
  EXPECT_TRUE(store_before_attention(0, 20, 8, 8));
  EXPECT_TRUE(store_before_attention(6, 2, 8, 8));    // cells 6, 7; reads keys 0..5
  EXPECT_FALSE(store_before_attention(10, 2, 8, 8));  // key 11 → cell 3, and 10 reads key 3
  EXPECT_TRUE(store_before_attention(10, 2, 8, 9));   // cells 1, 2; reads keys 3..9
}

TEST(RopeQkGpu, QAndKMatchTheCpuRopeWithoutStore) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t D = 16, H = 4, HK = 2, T = 3;
  const auto q = randoms(size_t(D * H * T), 1), k = randoms(size_t(D * HK * T), 2);
  const std::vector<int32_t> pos = {3, 9, 41};
  const std::vector<float> ff = {1, 1, 2, 4, 8, 8, 8, 8};
  for (const auto& p : rope_variants())
    for (bool with_ff : {false, true}) {
      std::vector<std::vector<float>> out;
      for (Backend* be : {cpu.get(), gpu.get()}) {
        const Tensor f = put_f32(*be, {8}, ff);
        const Tensor qt = put_f32(*be, {D, H, T}, q), kt = put_f32(*be, {D, HK, T}, k);
        const Tensor pt = put_i32(*be, {T}, pos);
        const Backend::QK r = be->rope_qk(qt, kt, pt, with_ff ? &f : nullptr, p, nullptr);
        ASSERT_EQ(r.q.ne, qt.ne);
        ASSERT_EQ(r.k.ne, kt.ne);
        auto both = read_f32(*be, r.q);
        const auto kr = read_f32(*be, r.k);
        both.insert(both.end(), kr.begin(), kr.end());
        // The fused op is the two ropes of the backend.
        auto single = read_f32(*be, be->rope(qt, pt, with_ff ? &f : nullptr, p));
        const auto ks = read_f32(*be, be->rope(kt, pt, with_ff ? &f : nullptr, p));
        single.insert(single.end(), ks.begin(), ks.end());
        EXPECT_LE(rel_diff(single, both), 1e-6) << be->name();
        out.push_back(both);
      }
      EXPECT_LE(rel_diff(out[0], out[1]), 1e-4) << "n_dims " << p.n_dims << " ff " << with_ff;
    }
}

// Batches of T tokens from pos0 into a ring of `cells`: the caches after the store and the
// roped q, k agree between the backends; T > cells keeps the last writer of each cell.
TEST(RopeQkGpu, StoreWritesTheCachesAsKvStoreDoes) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t D = 16, H = 4, HK = 2, cells = 5;
  struct Case {
    int32_t pos0;
    int64_t T;
  };
  for (Type kv : {Type::F32, Type::F16})
    for (const auto& p : rope_variants())
      for (Case c : {Case{0, 1}, Case{7, 1}, Case{3, 4}, Case{2, 12}}) {
        const auto q = randoms(size_t(D * H * c.T), 1), k = randoms(size_t(D * HK * c.T), 2),
                   v = randoms(size_t(D * HK * c.T), 3);
        std::vector<std::vector<float>> out;
        for (Backend* be : {cpu.get(), gpu.get()}) {
          const Tensor kc = zeroed(*be, kv, {D * HK, cells, 1, 1});
          const Tensor vc = zeroed(*be, kv, {D * HK, cells, 1, 1});
          // pos holds other positions: with a store the cache positions pos0 + t rule.
          const Tensor pt = put_i32(*be, {c.T}, std::vector<int32_t>(size_t(c.T), 1000));
          const Backend::KvStore st{kc, vc, put_f32(*be, {D, HK, c.T}, v), c.pos0};
          const Backend::QK r = be->rope_qk(put_f32(*be, {D, H, c.T}, q),
                                            put_f32(*be, {D, HK, c.T}, k), pt, nullptr, p, &st);
          std::vector<float> all;
          for (const auto& part :
               {read_f32(*be, r.q), read_f32(*be, r.k), cache_f32(*be, kc), cache_f32(*be, vc)})
            all.insert(all.end(), part.begin(), part.end());
          out.push_back(all);
        }
        // Every cell a batch reaches holds a k row the CPU wrote too (F16 rounds alike).
        EXPECT_LE(rel_diff(out[0], out[1]), kv == Type::F16 ? 1e-3 : 1e-4)
            << gguf::type_name(kv) << " n_dims " << p.n_dims << " pos0 " << c.pos0 << " T " << c.T;
      }
}

// With a QkNorm the GPU normalizes each head row inside the rope kernel (rope.comp NORM): the
// same as the CPU's rmsnorm of q and k, then rope_qk, with and without the store, for the
// head sizes of Qwen3 (128) and Gemma 3 (256) and small ones.
TEST(RopeQkGpu, FusedQkNormMatchesRmsnormThenRope) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t H = 4, HK = 2, cells = 5;
  for (const int64_t D : {16, 64, 128, 256})
    for (ops::RopeParams p : rope_variants())
      for (const int64_t T : {1, 3})
        for (const bool store : {false, true}) {
          SCOPED_TRACE(cat("head_dim ", D, " n_dims ", p.n_dims, " T ", T, " store ", store));
          p.n_dims = int32_t(D) - (p.mode == ops::RopeMode::neox ? 4 : 0);
          const auto q = randoms(size_t(D * H * T), 1, 3.0f),
                     k = randoms(size_t(D * HK * T), 2, 3.0f), v = randoms(size_t(D * HK * T), 3),
                     qw = randoms(size_t(D), 4), kw = randoms(size_t(D), 5);
          const std::vector<int32_t> pos = {2, 3, 4};  // the store's pos0 + t
          auto run = [&](Backend& be, bool fused) {
            const Tensor kc = zeroed(be, Type::F32, {D * HK, cells, 1, 1});
            const Tensor vc = zeroed(be, Type::F32, {D * HK, cells, 1, 1});
            const Tensor pt = put_i32(be, {T}, std::vector<int32_t>(pos.begin(), pos.begin() + T));
            const Backend::KvStore st{kc, vc, put_f32(be, {D, HK, T}, v), 2};
            const Backend::QkNorm norm{put_f32(be, {D}, qw), put_f32(be, {D}, kw), 1e-6f};
            Tensor qt = put_f32(be, {D, H, T}, q), kt = put_f32(be, {D, HK, T}, k);
            if (!fused) {
              qt = be.rmsnorm(qt, &norm.q, norm.eps);
              kt = be.rmsnorm(kt, &norm.k, norm.eps);
            }
            const Backend::QK r =
                be.rope_qk(qt, kt, pt, nullptr, p, store ? &st : nullptr, fused ? &norm : nullptr);
            std::vector<float> all;
            for (const auto& part :
                 {read_f32(be, r.q), read_f32(be, r.k), cache_f32(be, kc), cache_f32(be, vc)})
              all.insert(all.end(), part.begin(), part.end());
            return all;
          };
          const auto want = run(*cpu, false);
          EXPECT_LE(rel_diff(want, run(*cpu, true)), 1e-6);
          EXPECT_LE(rel_diff(want, run(*gpu, true)), 1e-4);
          EXPECT_LE(rel_diff(run(*gpu, false), run(*gpu, true)), 1e-5);
        }
}

// Decode steps over a sliding-window ring (window = cells = 6) that wraps twice, then a
// batch into a full cache: the GPU's rope_qk with the early store then attention equals the
// CPU's reference order (rope, attention, kv_store after) at every step.
TEST(RopeQkGpu, AttentionAfterTheEarlyStoreMatchesStoringAfter) {
  auto gpu = make_vulkan_backend();
  auto cpu = make_cpu_backend(1);
  const int64_t D = 16, H = 4, HK = 2;
  ops::RopeParams rp;
  rp.n_dims = 16;
  rp.mode = ops::RopeMode::neox;
  for (Type kv : {Type::F32, Type::F16})
    for (int32_t n_swa : {6, 0}) {
      const int64_t cells = n_swa > 0 ? n_swa : 32;
      const Tensor kc[2] = {zeroed(*cpu, kv, {D * HK, cells, 1, 1}),
                            zeroed(*gpu, kv, {D * HK, cells, 1, 1})};
      const Tensor vc[2] = {zeroed(*cpu, kv, {D * HK, cells, 1, 1}),
                            zeroed(*gpu, kv, {D * HK, cells, 1, 1})};
      int32_t pos0 = 0;
      // n_swa 6: 14 single tokens; full cache: a batch of 5 then single tokens.
      for (int step = 0; step < 14; ++step) {
        const int64_t T = n_swa == 0 && step == 0 ? 5 : 1;
        ASSERT_TRUE(store_before_attention(pos0, T, n_swa, cells));
        const auto q = randoms(size_t(D * H * T), 10 + uint64_t(step), 2.0f),
                   k = randoms(size_t(D * HK * T), 40 + uint64_t(step), 2.0f),
                   v = randoms(size_t(D * HK * T), 70 + uint64_t(step));
        std::vector<int32_t> pos(static_cast<size_t>(T));
        std::iota(pos.begin(), pos.end(), pos0);
        ops::AttentionParams ap;
        ap.pos0 = pos0;
        ap.n_swa = n_swa;
        ap.scale = 0.25f;
        std::vector<std::vector<float>> out;
        for (int b = 0; b < 2; ++b) {
          Backend& be = b == 0 ? *cpu : *gpu;
          be.reset_transient();
          const Tensor qt = put_f32(be, {D, H, T}, q), kt = put_f32(be, {D, HK, T}, k),
                       vt = put_f32(be, {D, HK, T}, v), pt = put_i32(be, {T}, pos);
          Tensor y;
          if (b == 0) {
            const Tensor qr = be.rope(qt, pt, nullptr, rp), kr = be.rope(kt, pt, nullptr, rp);
            y = be.attention(qr, kr, vt, kc[b], vc[b], nullptr, ap);
            be.kv_store(kc[b], kr, pos0);
            be.kv_store(vc[b], vt, pos0);
          } else {
            const Backend::KvStore st{kc[b], vc[b], vt, pos0};
            const Backend::QK r = be.rope_qk(qt, kt, pt, nullptr, rp, &st);
            y = be.attention(r.q, r.k, vt, kc[b], vc[b], nullptr, ap);
          }
          out.push_back(read_f32(be, y));
        }
        EXPECT_LE(rel_diff(out[0], out[1]), kv == Type::F16 ? 2e-3 : 1e-4)
            << gguf::type_name(kv) << " window " << n_swa << " step " << step;
        pos0 += int32_t(T);
      }
    }
}

}  // namespace
}  // namespace ml
