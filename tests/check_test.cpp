// ml/check.h on the CPU backend: id parsing, comparisons, embedding rows against the quant
// reference for every weight type, LayerRunner against the full forward pass, the sliding
// window and the decode path in attention(), and gpt-oss's --moe-fallback against a hand
// computation of expert 0 from the quant reference.
#include "ml/check.h"

#include <gtest/gtest.h>

#include <cmath>

#include "check_util.h"
#include "ml/ops.h"
#include "ml/run.h"

namespace ml {
namespace {

using gguf::Type;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckIds, ParsesAndRejects) {
  EXPECT_EQ(check::parse_ids("1,2,30", "--tokens"), (std::vector<int32_t>{1, 2, 30}));
  EXPECT_EQ(check::parse_ids("0", "--tokens"), (std::vector<int32_t>{0}));
  EXPECT_NE(error_of([] { check::parse_ids("-1", "--tokens"); }).find("negative"),
            std::string::npos);
  for (const char* bad : {"", "abc", "1,,2", "1,", "2x", "99999999999", " 1"})
    EXPECT_NE(error_of([&] { check::parse_ids(bad, "--tokens"); }).find("--tokens"),
              std::string::npos)
        << bad;
  const auto ids = check::spread_ids(50, 64);
  ASSERT_EQ(ids.size(), 50u);
  for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < 64);
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_THROW(check::spread_ids(0, 64), Error);
}

TEST(CheckDiff, MaxAbsAndNonFinite) {
  const std::vector<float> a{1, -2, 3}, b{1.5f, -2, 2};
  EXPECT_FLOAT_EQ(check::max_abs_diff(a, b), 1.0f);
  EXPECT_FLOAT_EQ(check::max_abs(a), 3.0f);
  const std::vector<float> nan{1, NAN, 3};
  EXPECT_TRUE(std::isinf(check::max_abs_diff(a, nan)));
  EXPECT_TRUE(std::isinf(check::max_abs(nan)));
  EXPECT_FALSE(check::all_finite(nan));
  EXPECT_TRUE(check::all_finite(a));
  EXPECT_THROW(check::max_abs_diff(a, std::vector<float>{1}), Error);
  EXPECT_FLOAT_EQ((check::Diff{"x", 0.5f, 10.0f}).scaled(), 0.05f);
  EXPECT_FLOAT_EQ((check::Diff{"x", 0.5f, 0.1f}).scaled(), 0.5f);
}

TEST(CheckEmbed, EveryReferenceTypeMatchesItsRows) {
  const std::vector<Type> types = quant::reference_types();
  gguf::MemorySource source(test::tables_gguf(types), "tables.gguf");
  const gguf::File file = gguf::parse(source);
  auto be = make_cpu_backend(1);
  const std::vector<int32_t> rows{7, 0, 3};
  for (Type t : types) {
    const check::EmbedReport r = check::embed_table(*be, source, file, gguf::type_name(t), rows);
    EXPECT_EQ(r.type, t);
    EXPECT_EQ(r.n_embd, int64_t(test::kTableK));
    ASSERT_EQ(r.max_diff.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(r.max_diff[i], 0.0f) << gguf::type_name(t) << " row " << rows[i];
      EXPECT_GT(r.max_ref[i], 0.0f);
    }
  }
  EXPECT_NE(error_of([&] {
              check::embed_table(*be, source, file, "Q8_0", std::vector{8});
            }).find("outside Q8_0's 8 rows"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check::embed_table(*be, source, file, "nope", std::vector{0});
            }).find("tensor nope is missing"),
            std::string::npos);
}

TEST(CheckEmbed, GemmaScalesBySqrtNembdLlamaDoesNot) {
  auto be = make_cpu_backend();
  for (const auto& [name, scale] :
       {std::pair{"gemma3-tiny-q5_k_m.gguf", 16.0f}, std::pair{"llama-tiny-q4_k_m.gguf", 1.0f}}) {
    auto source = gguf::open_source(test::shared(std::string("models/") + name).string());
    const gguf::File file = gguf::parse(*source);
    const std::vector<int32_t> tokens{2, 4095};
    const check::EmbedReport r = check::embed_model(*be, *source, file, tokens);
    EXPECT_FLOAT_EQ(r.scale, scale) << name;
    for (float d : r.max_diff) EXPECT_EQ(d, 0.0f) << name;
    // The embedding rows are the raw table rows times the scale.
    const check::EmbedReport raw =
        check::embed_table(*be, *source, file, "token_embd.weight", tokens);
    for (size_t i = 0; i < tokens.size(); ++i)
      EXPECT_FLOAT_EQ(r.max_ref[i], raw.max_ref[i] * scale) << name;
    EXPECT_NE(error_of([&] {
                check::embed_model(*be, *source, file, std::vector{4096});
              }).find("token id 4096 is outside token_embd.weight"),
              std::string::npos);
  }
}

// Layer by layer, LayerRunner fed the forward pass's own input of layer il gives the forward
// pass's l_out of layer il: it runs the same block code.
TEST(CheckLayer, RunnerReproducesTheForwardPass) {
  for (const char* name : {"gemma3-tiny-q5_k_m.gguf", "gptoss-tiny-mxfp4.gguf"}) {
    auto be = make_cpu_backend();
    const test::Loaded l = test::load_shared(*be, name);
    const Config& c = l.model.config;
    std::vector<std::vector<float>> inputs, outputs;  // [layer][T * n_embd]
    be->set_observer([&](std::string_view n, int, const Tensor& t) {
      if (n == "inp_embd") inputs.push_back(read_f32(*be, t));
      if (n == "l_out") outputs.push_back(read_f32(*be, t));
    });
    SessionOptions o;
    o.kv_type = Type::F32;
    Session s(*be, l.model, o);
    const std::vector<int32_t> tokens = check::spread_ids(12, c.n_vocab);
    s.prefill(tokens, true);
    be->set_observer(nullptr);
    ASSERT_EQ(outputs.size(), size_t(c.n_layer));
    EXPECT_EQ(inputs[0], check::embeddings(*be, l.model, tokens));
    for (int il = 0; il < int(c.n_layer); ++il) {
      check::LayerRunner runner(*be, l.model, il, 12, Type::F32);
      const auto run = runner.step(il == 0 ? inputs[0] : outputs[size_t(il) - 1]);
      EXPECT_EQ(run.back().name, "l_out");
      EXPECT_LE(check::max_abs_diff(run.back().values, outputs[size_t(il)]), 1e-6f)
          << name << " layer " << il;
    }
  }
}

TEST(CheckLayer, CompareAndErrors) {
  auto be = make_cpu_backend();
  const test::Loaded l = test::load_shared(*be, "llama-tiny-q4_k_m.gguf");
  const auto x = check::embeddings(*be, l.model, std::vector<int32_t>{1, 2, 3});
  check::LayerRunner a(*be, l.model, 1, 3, Type::F32), b(*be, l.model, 1, 4, Type::F16);
  const auto ra = a.step(x), rb = b.step(x);
  const auto diffs = check::compare(ra, rb);
  ASSERT_EQ(diffs.size(), ra.size());
  for (const auto& d : diffs) EXPECT_LE(d.scaled(), 1e-6f) << d.name;
  EXPECT_EQ(check::find(ra, "kqv_out").ne[1], 3);
  EXPECT_NE(error_of([&] { check::find(ra, "nope"); }).find("attn_norm"), std::string::npos);
  auto renamed = rb;
  renamed[0].name = "other";
  EXPECT_THROW(check::compare(ra, renamed), Error);
  EXPECT_NE(error_of([&] { a.step(x); }).find("layer cache full"), std::string::npos);
  EXPECT_NE(error_of([&] {
              check::LayerRunner(*be, l.model, 4, 3, Type::F32);
            }).find("layer 4 is outside"),
            std::string::npos);
  EXPECT_THROW(check::LayerRunner(*be, l.model, 0, 1 << 30, Type::F32), Error);
  EXPECT_THROW(check::LayerRunner(*be, l.model, 0, 3, Type::Q8_0), Error);
}

// Gemma 3's local layer attends within 16 positions: widening the window leaves the first
// 16 positions' attention alone and changes every later one.
TEST(CheckAttention, SlidingWindowHidesOldKeys) {
  auto be = make_cpu_backend();
  const test::Loaded l = test::load_shared(*be, "gemma3-tiny-q5_k_m.gguf");
  ASSERT_TRUE(l.model.config.swa_layers[0]);
  ASSERT_EQ(l.model.config.n_swa, 16);
  Model wide = l.model;
  wide.config.n_swa = 1000;
  const int64_t N = 24, W = l.model.config.n_embd_q();
  const auto x = check::embeddings(*be, l.model, check::spread_ids(N, 4096));
  check::LayerRunner a(*be, l.model, 0, N, Type::F32), b(*be, wide, 0, N, Type::F32);
  EXPECT_EQ(a.n_cells(), 16);
  EXPECT_EQ(b.n_cells(), N);
  const auto ya = check::find(a.step(x), "kqv_out").values;
  const auto yb = check::find(b.step(x), "kqv_out").values;
  for (int64_t p = 0; p < N; ++p) {
    const float d = check::max_abs_diff(std::span(ya).subspan(size_t(p * W), size_t(W)),
                                        std::span(yb).subspan(size_t(p * W), size_t(W)));
    if (p < 16)
      EXPECT_EQ(d, 0.0f) << "position " << p;
    else
      EXPECT_GT(d, 1e-3f) << "position " << p;
  }
}

// Decoding through the cache (a ring for gpt-oss's even layers, with sinks) equals one prefill
// of the whole sequence; with an f16 cache the decode steps read rounded keys, so they
// differ from the batch a little: the steps do read the cache.
TEST(CheckAttention, DecodeThroughTheCacheEqualsTheBatch) {
  auto be = make_cpu_backend();
  const test::Loaded l = test::load_shared(*be, "gptoss-tiny-mxfp4.gguf");
  const int64_t N = 24;
  const auto x = check::embeddings(*be, l.model, check::spread_ids(N, l.model.config.n_vocab));
  for (int il : {0, 1}) {
    const check::AttentionReport r =
        check::attention(*be, l.model, *be, l.model, x, 4, il, Type::F32);
    EXPECT_EQ(r.n_swa, il == 0 ? 16 : 0);
    EXPECT_EQ(r.n_cells, il == 0 ? 16 : N);
    EXPECT_TRUE(r.sinks);
    ASSERT_EQ(r.steps.size(), size_t(1 + N - 4));
    EXPECT_EQ(r.steps[0].n_tokens, 4);
    EXPECT_EQ(r.steps.back().pos0, N - 1);
    for (const auto& s : r.steps) {
      EXPECT_TRUE(s.finite);
      EXPECT_EQ(s.test_diff, 0.0f);
      EXPECT_LE(s.batch_diff, 1e-6f) << "layer " << il << " position " << s.pos0;
      EXPECT_GT(s.max_ref, 0.1f);
    }
  }
  const check::AttentionReport f16 =
      check::attention(*be, l.model, *be, l.model, x, 4, 0, Type::F16);
  float worst = 0.0f;
  for (const auto& s : f16.steps) worst = std::max(worst, s.batch_diff);
  EXPECT_GT(worst, 1e-6f);
  EXPECT_LE(worst, 1e-2f);
  EXPECT_THROW(check::attention(*be, l.model, *be, l.model, x, 0, 0, Type::F32), Error);
  EXPECT_THROW(check::attention(*be, l.model, *be, l.model, x, N + 1, 0, Type::F32), Error);
}

// --moe-fallback: each token goes to expert 0 with weight 1; its output is
// down0 · swiglu_oai(gate0 · x + bg0, up0 · x + bu0) + bd0 from the quant reference.
TEST(CheckMoe, FallbackIsExpertZero) {
  auto be = make_cpu_backend();
  const test::Loaded l = test::load_shared(*be, "gptoss-tiny-mxfp4.gguf");
  const Config& c = l.model.config;
  const LayerWeights& w = l.model.weights.layers[1];
  const int64_t T = 5;
  const auto x = check::embeddings(*be, l.model, check::spread_ids(T, c.n_vocab));
  check::LayerRunner runner(*be, l.model, 1, T, Type::F32, true);
  const auto run = runner.step(x);
  for (float id : check::find(run, "ffn_moe_topk").values) EXPECT_EQ(id, 0.0f);
  for (float p : check::find(run, "ffn_moe_weights").values) EXPECT_EQ(p, 1.0f);
  EXPECT_THROW(check::find(run, "ffn_moe_logits"), Error);  // the router is skipped

  auto expert0 = [&](const Tensor& t, uint64_t m, uint64_t k) {
    std::vector<std::byte> all(tensor_bytes(t));
    be->read(t, all);
    all.resize(m * gguf::row_bytes(t.type, k));
    return all;
  };
  auto bias0 = [&](const Tensor& t) { return read_f32(*be, t); };  // expert 0: the first row
  const uint64_t E = uint64_t(c.n_embd), F = uint64_t(c.n_ff_exp);
  const auto in = check::find(run, "attn_post_norm").values;
  std::vector<float> gate(T * F), up(T * F), act(T * F), down(T * E);
  ops::matmul(w.ffn_gate_exps.type, expert0(w.ffn_gate_exps, F, E), F, E, in, T, gate);
  ops::matmul(w.ffn_up_exps.type, expert0(w.ffn_up_exps, F, E), F, E, in, T, up);
  const auto bg = bias0(w.ffn_gate_exps_b), bu = bias0(w.ffn_up_exps_b);
  const auto bd = bias0(w.ffn_down_exps_b);
  for (uint64_t t = 0; t < uint64_t(T); ++t)
    for (uint64_t j = 0; j < F; ++j) {
      gate[t * F + j] += bg[j];
      up[t * F + j] += bu[j];
    }
  ops::swiglu_oai(gate.data(), up.data(), act.data(), int64_t(T * F), 1.702f, 7.0f);
  ops::matmul(w.ffn_down_exps.type, expert0(w.ffn_down_exps, E, F), E, F, act, T, down);
  for (uint64_t t = 0; t < uint64_t(T); ++t)
    for (uint64_t j = 0; j < E; ++j) down[t * E + j] += bd[j];
  const auto out = check::find(run, "ffn_moe_out").values;
  EXPECT_LE(check::max_abs_diff(out, down), 1e-5f * std::max(1.0f, check::max_abs(down)));

  // Without the flag the router picks n_used experts per token, not all expert 0.
  check::LayerRunner routed(*be, l.model, 1, T, Type::F32);
  const auto ids = check::find(routed.step(x), "ffn_moe_topk");
  EXPECT_EQ(ids.ne[0], c.n_expert_used);
  EXPECT_GT(check::max_abs(ids.values), 0.0f);
}

}  // namespace
}  // namespace ml
