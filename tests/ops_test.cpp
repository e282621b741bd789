// The CPU reference ops (libml/src/ops) and the CPU backend against hand-computed values,
// plus the sampler's filters and determinism.
#include "ml/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "ml/backend.h"
#include "ml/run.h"

namespace ml {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor upload_f32(Backend& be, const std::vector<float>& v, std::array<int64_t, 4> ne) {
  Tensor t = be.scratch(gguf::Type::F32, ne);
  be.upload(t, std::as_bytes(std::span(v)));
  return t;
}

TEST(Norm, RmsnormOfKnownRow) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
  float y[4];
  ops::rmsnorm(x, w, y, 4, 0.0f);  // mean(x²) = 7.5
  const float s = 1.0f / std::sqrt(7.5f);
  EXPECT_FLOAT_EQ(y[0], 1 * s);
  EXPECT_FLOAT_EQ(y[2], 3 * s * 2);
  EXPECT_FLOAT_EQ(y[3], 4 * s * 0.5f);
}

TEST(Rope, NormalModeAtKnownAngles) {
  ops::RopeParams p;
  p.n_dims = 4;
  p.mode = ops::RopeMode::normal;
  float cs[4];
  ops::rope_cache(p, 1, nullptr, cs);  // θ0 = 1, θ1 = 10000^(-1/2) = 0.01
  float x[6] = {1, 0, 1, 0, 5, 6};     // dims 4, 5 pass through
  ops::rope_head(p, cs, x, 6);
  EXPECT_NEAR(x[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(x[1], std::sin(1.0f), 1e-6);
  EXPECT_NEAR(x[2], std::cos(0.01f), 1e-6);
  EXPECT_NEAR(x[3], std::sin(0.01f), 1e-6);
  EXPECT_EQ(x[4], 5);
  EXPECT_EQ(x[5], 6);
}

TEST(Rope, NeoxPairsHalves) {
  ops::RopeParams p;
  p.n_dims = 4;
  p.mode = ops::RopeMode::neox;
  float cs[4];
  ops::rope_cache(p, 2, nullptr, cs);  // θ0 = 2, θ1 = 0.02
  float x[4] = {1, 1, 0, 0};           // pairs (0, 2) and (1, 3)
  ops::rope_head(p, cs, x, 4);
  EXPECT_NEAR(x[0], std::cos(2.0f), 1e-6);
  EXPECT_NEAR(x[2], std::sin(2.0f), 1e-6);
  EXPECT_NEAR(x[1], std::cos(0.02f), 1e-6);
  EXPECT_NEAR(x[3], std::sin(0.02f), 1e-6);
}

TEST(Rope, FreqFactorsDivideTheFrequency) {
  ops::RopeParams p;
  p.n_dims = 2;
  const float ff[1] = {4.0f};
  float cs[2];
  ops::rope_cache(p, 8, ff, cs);  // θ = 8 / 4
  EXPECT_NEAR(cs[0], std::cos(2.0f), 1e-6);
  EXPECT_NEAR(cs[1], std::sin(2.0f), 1e-6);
}

TEST(Rope, YarnCorrectionDimsAndMagnitude) {
  // gpt-oss: 64 dims, base 150000, original context 4096, β 32 / 1 (numpy: floor 8, ceil 18).
  float dims[2];
  ops::rope_yarn_corr_dims(64, 4096, 150000.0f, 32.0f, 1.0f, dims);
  EXPECT_EQ(dims[0], 8.0f);
  EXPECT_EQ(dims[1], 18.0f);
  ops::RopeParams p;
  p.n_dims = 64;
  p.mode = ops::RopeMode::neox;
  p.freq_base = 150000.0f;
  p.freq_scale = 1.0f / 32.0f;
  p.ext_factor = 1.0f;
  p.n_ctx_orig = 4096;
  std::vector<float> cs(64);
  const int32_t pos = 100;
  ops::rope_cache(p, pos, nullptr, cs.data());
  const float mscale = 1.0f + 0.1f * std::log(32.0f);  // 1.3466
  for (int i = 0; i < 32; ++i)
    EXPECT_NEAR(std::hypot(cs[2 * i], cs[2 * i + 1]), mscale, 1e-5) << "pair " << i;
  // Pair 0 is below dims[0]: pure extrapolation, θ = pos. Pair 31 is above dims[1]:
  // interpolation, θ = pos · base^(-62/64) / 32.
  EXPECT_NEAR(cs[0], std::cos(100.0f) * mscale, 1e-4);
  const float theta31 = 100.0f * std::pow(150000.0f, -62.0f / 64.0f) / 32.0f;
  EXPECT_NEAR(cs[62], std::cos(theta31) * mscale, 1e-5);
  EXPECT_NEAR(cs[63], std::sin(theta31) * mscale, 1e-5);
}

TEST(Attention, WindowMaskEdges) {
  EXPECT_FALSE(ops::attention_masked(20, 20, 16));
  EXPECT_FALSE(ops::attention_masked(20, 5, 16));   // 20 - 5 = 15 < 16
  EXPECT_TRUE(ops::attention_masked(20, 4, 16));    // 16 ≥ window
  EXPECT_TRUE(ops::attention_masked(20, 21, 16));   // the future
  EXPECT_FALSE(ops::attention_masked(1000, 0, 0));  // no window: causal only
}

TEST(Attention, SoftmaxWithSink) {
  float s[2] = {0.0f, std::log(2.0f)};
  const float sink = 0.0f;  // exp: 1, 2 and the sink's 1 → 1/4, 2/4
  ops::softmax(s, 2, &sink);
  EXPECT_NEAR(s[0], 0.25f, 1e-6);
  EXPECT_NEAR(s[1], 0.5f, 1e-6);
  float t[2] = {0.0f, std::log(3.0f)};
  ops::softmax(t, 2, nullptr);
  EXPECT_NEAR(t[0], 0.25f, 1e-6);
  EXPECT_NEAR(t[1], 0.75f, 1e-6);
}

TEST(Attention, SingleKeyReturnsItsValue) {
  // One token attends only to itself: the output is v, whatever the scores.
  const float q[4] = {1, 2, 3, 4}, k[2] = {0.5f, -1}, v[2] = {7, 8};
  float out[4];
  ops::attention(q, k, v, {}, {}, nullptr, 2, 2, 1, 1, {}, out, 1);
  EXPECT_FLOAT_EQ(out[0], 7);
  EXPECT_FLOAT_EQ(out[1], 8);
  EXPECT_FLOAT_EQ(out[2], 7);
  EXPECT_FLOAT_EQ(out[3], 8);
  const float sink = 0.0f;  // with a sink the weight is e^s / (e^s + 1)
  ops::AttentionParams p;
  p.scale = 1.0f;
  float sunk[4];
  const float sinks[2] = {sink, sink};
  ops::attention(q, k, v, {}, {}, sinks, 2, 2, 1, 1, p, sunk, 1);
  const float s0 = 1 * 0.5f + 2 * -1.0f, w0 = 1.0f / (1.0f + std::exp(-s0));
  EXPECT_NEAR(sunk[0], 7 * w0, 1e-5);
}

// Attention over a prompt in one batch equals the same prompt fed token by token through a
// ring-buffer cache of n_swa rows (F32), with a window, sinks and GQA.
TEST(Attention, RingBufferDecodeMatchesOneBatch) {
  auto be = make_cpu_backend(2);
  const int64_t hd = 8, nh = 4, nkv = 2, T = 11;
  const int32_t n_swa = 4;
  const auto q = random_values(size_t(hd * nh * T), 1), k = random_values(size_t(hd * nkv * T), 2),
             v = random_values(size_t(hd * nkv * T), 3), sinks = random_values(size_t(nh), 4);
  ops::AttentionParams p;
  p.n_swa = n_swa;
  p.scale = 0.35f;
  Tensor ts = upload_f32(*be, sinks, {nh, 1, 1, 1});
  Tensor kc = be->alloc(gguf::Type::F32, {hd * nkv, n_swa, 1, 1}, "k");
  Tensor vc = be->alloc(gguf::Type::F32, {hd * nkv, n_swa, 1, 1}, "v");
  Tensor all =
      be->attention(upload_f32(*be, q, {hd, nh, T, 1}), upload_f32(*be, k, {hd, nkv, T, 1}),
                    upload_f32(*be, v, {hd, nkv, T, 1}), kc, vc, &ts, p);
  const std::vector<float> want = read_f32(*be, all);
  for (int64_t t = 0; t < T; ++t) {
    auto slice = [&](const std::vector<float>& x, int64_t n) {
      return std::vector<float>(x.begin() + t * n, x.begin() + (t + 1) * n);
    };
    p.pos0 = int32_t(t);
    Tensor kt = upload_f32(*be, slice(k, hd * nkv), {hd, nkv, 1, 1});
    Tensor vt = upload_f32(*be, slice(v, hd * nkv), {hd, nkv, 1, 1});
    Tensor one =
        be->attention(upload_f32(*be, slice(q, hd * nh), {hd, nh, 1, 1}), kt, vt, kc, vc, &ts, p);
    be->kv_store(kc, kt, p.pos0);
    be->kv_store(vc, vt, p.pos0);
    const std::vector<float> got = read_f32(*be, one);
    for (int64_t i = 0; i < hd * nh; ++i)
      ASSERT_NEAR(got[size_t(i)], want[size_t(t * hd * nh + i)], 1e-5) << "token " << t;
  }
}

TEST(Activation, KnownValues) {
  EXPECT_NEAR(ops::gelu_tanh(1.0f), 0.8411920f, 1e-6);
  EXPECT_NEAR(ops::gelu_tanh(-1.0f), 0.8411920f - 1.0f, 1e-6);  // gelu(x) - gelu(-x) = x
  EXPECT_NEAR(ops::silu(1.0f), 1.0f / (1.0f + std::exp(-1.0f)), 1e-7);
  const float g[3] = {10.0f, 1.0f, -3.0f}, u[3] = {-10.0f, 10.0f, 0.5f};
  float y[3];
  ops::swiglu_oai(g, u, y, 3, 1.702f, 7.0f);
  EXPECT_NEAR(y[0], -41.9997188f, 1e-4);  // gate 10 → 7, up -10 → -7: 7·σ(11.914)·(-6)
  EXPECT_NEAR(y[1], 1.0f / (1.0f + std::exp(-1.702f)) * 8.0f, 1e-5);  // up 10 → 7
  EXPECT_NEAR(y[2], -3.0f / (1.0f + std::exp(5.106f)) * 1.5f, 1e-6);  // no clamp below
}

TEST(Moe, RouteSoftmaxOverSelected) {
  const float logits[4] = {1, 3, 2, 0};
  int32_t ids[2];
  float w[2];
  ops::moe_route(logits, 4, 2, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 1.0f / (1.0f + std::exp(-1.0f)), 1e-6);
  EXPECT_NEAR(w[0] + w[1], 1.0f, 1e-6);
}

TEST(CpuBackend, ExpertMatmulEqualsPerExpertMatmul) {
  auto be = make_cpu_backend(2);
  const int64_t K = 32, N = 3, E = 4, T = 2, n_used = 2;
  const auto w = random_values(size_t(K * N * E), 5), x = random_values(size_t(K * T), 6);
  Tensor tw = upload_f32(*be, w, {K, N, E, 1});
  Tensor tx = upload_f32(*be, x, {K, 1, T, 1});
  const std::vector<int32_t> ids = {3, 0, 1, 3};  // [n_used, T]
  Tensor tid = be->scratch(gguf::Type::I32, {n_used, T, 1, 1});
  be->upload(tid, std::as_bytes(std::span(ids)));
  const std::vector<float> y = read_f32(*be, be->matmul_id(tw, tx, tid));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < n_used; ++j) {
      const int32_t e = ids[size_t(t * n_used + j)];
      const std::vector<float> we(w.begin() + e * K * N, w.begin() + (e + 1) * K * N);
      const std::vector<float> xt(x.begin() + t * K, x.begin() + (t + 1) * K);
      const std::vector<float> ref = read_f32(
          *be, be->matmul(upload_f32(*be, we, {K, N, 1, 1}), upload_f32(*be, xt, {K, 1, 1, 1})));
      for (int64_t n = 0; n < N; ++n)
        EXPECT_FLOAT_EQ(y[size_t((t * n_used + j) * N + n)], ref[size_t(n)]);
    }
  const std::vector<int32_t> bad = {4, 0, 1, 3};
  be->upload(tid, std::as_bytes(std::span(bad)));
  EXPECT_THROW(be->matmul_id(tw, tx, tid), Error);
}

TEST(CpuBackend, RouterBiasesAndCombine) {
  auto be = make_cpu_backend(1);
  // Two tokens over 3 experts, top 2: token 0 picks 2 then 0, token 1 picks 1 then 2.
  Tensor logits = upload_f32(*be, {1, -1, 2, 0, 3, 1}, {3, 2, 1, 1});
  const Backend::Route r = be->moe_route(logits, 2);
  EXPECT_EQ(read_i32(*be, r.ids), (std::vector<int32_t>{2, 0, 1, 2}));
  const std::vector<float> w = read_f32(*be, r.weights);
  const float w_hi = 1.0f / (1.0f + std::exp(-1.0f));  // softmax of a logit gap of 1 / 2
  EXPECT_NEAR(w[0], w_hi, 1e-6);
  EXPECT_NEAR(w[2], 1.0f / (1.0f + std::exp(-2.0f)), 1e-6);
  // Per-expert bias [N = 2, E = 3] added by id, then the weighted sum over the slots.
  Tensor bias = upload_f32(*be, {0, 0, 10, 20, 100, 200}, {2, 3, 1, 1});
  Tensor y = be->add_id(upload_f32(*be, {1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 1}), bias, r.ids);
  EXPECT_EQ(read_f32(*be, y), (std::vector<float>{101, 201, 1, 1, 11, 21, 101, 201}));
  const std::vector<float> out = read_f32(*be, be->moe_combine(y, r.weights));
  EXPECT_NEAR(out[0], w[0] * 101 + w[1] * 1, 1e-4);
  EXPECT_NEAR(out[3], w[2] * 21 + w[3] * 201, 1e-4);
  EXPECT_EQ(read_i32(*be, be->top_k(logits, 2)), (std::vector<int32_t>{2, 0, 1, 2}));
  EXPECT_EQ(read_i32(*be, be->argmax(logits)), (std::vector<int32_t>{2, 1}));
}

TEST(CpuBackend, KvStoreF16RoundsAndWraps) {
  auto be = make_cpu_backend(1);
  Tensor cache = be->alloc(gguf::Type::F16, {2, 3, 1, 1}, "k");
  const std::vector<float> k = {1, 2, 3, 4, 5, 6, 7, 8, 1.0f / 3.0f, 10};  // 5 rows of 2
  be->kv_store(cache, upload_f32(*be, k, {2, 5, 1, 1}), 0);  // rows 3, 4 wrap to cells 0, 1
  std::vector<uint16_t> h(6);
  be->read(cache, std::as_writable_bytes(std::span(h)));
  EXPECT_EQ(h[0], 0x4700);  // 7.0
  EXPECT_EQ(h[2], 0x3555);  // 1/3 to nearest binary16
  EXPECT_EQ(h[4], 0x4500);  // 5.0 (row 2, not overwritten)
}

TEST(Sampling, ArgmaxAndTopK) {
  const float x[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.5f, 0.0f};
  EXPECT_EQ(ops::argmax(x, 6), 1);  // the first of equal maxima
  int32_t ids[3];
  ops::top_k(x, 6, 3, ids);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(ids[2], 4);
}

TEST(Sampler, DeterministicForASeed) {
  const auto logits = random_values(500, 7);
  SamplerParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> ra, rb, rc;
  for (int i = 0; i < 64; ++i) {
    ra.push_back(a.sample(logits));
    rb.push_back(b.sample(logits));
    rc.push_back(c.sample(logits));
  }
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
  EXPECT_GT(std::set<int32_t>(ra.begin(), ra.end()).size(), 10u);  // it does sample
}

TEST(Sampler, Filters) {
  // probabilities ∝ e^logit: 0.6439, 0.2369, 0.0871, 0.0321 for logits 3, 2, 1, 0
  const std::vector<float> logits = {1, 3, 0, 2};
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  EXPECT_EQ(Sampler(p).candidates(logits).size(), 4u);
  p.top_k = 2;
  auto c = Sampler(p).candidates(logits);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 3);
  EXPECT_NEAR(c[0].p, 1.0f / (1.0f + std::exp(-1.0f)), 1e-6);
  p.top_k = 0;
  p.top_p = 0.85f;  // 0.644 + 0.237 = 0.881 ≥ 0.85: two survive
  EXPECT_EQ(Sampler(p).candidates(logits).size(), 2u);
  p.top_p = 1.0f;
  p.min_p = 0.1f;  // floor 0.0644: 0.0871 stays, 0.0321 goes
  EXPECT_EQ(Sampler(p).candidates(logits).size(), 3u);
  p.min_p = 0.0f;
  p.temperature = 0.0f;  // greedy
  Sampler greedy(p);
  EXPECT_EQ(greedy.sample(logits), 1);
  p.temperature = 1.0f;
  p.top_k = 1;
  p.repeat_penalty = 4.0f;  // 3 / 4 < 2: the penalized token loses its lead
  Sampler penalized(p);
  penalized.accept(1);
  EXPECT_EQ(penalized.sample(logits), 3);
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
}  // namespace ml
