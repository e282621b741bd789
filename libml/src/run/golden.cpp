// Golden comparisons against ../shared/golden (llama.cpp on F32-dequantized models).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ml/run.h"

namespace ml {

GoldenRecord load_golden(const std::string& json_path) {
  std::ifstream in(json_path);
  if (!in) fail("cannot open ", json_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    GoldenRecord g;
    g.model = j.at("model").get<std::string>();
    g.prompt = j.at("prompt").get<std::string>();
    g.n_vocab = j.at("n_vocab").get<int64_t>();
    g.tokens = j.at("tokens").get<std::vector<int32_t>>();
    g.prompt_top5 = j.at("prompt_top5").get<std::vector<std::vector<int32_t>>>();
    g.greedy = j.at("greedy").get<std::vector<int32_t>>();
    for (const auto& step : j.at("greedy_top2"))
      g.greedy_top2.push_back({step.at(0).get<float>(), step.at(1).get<float>(),
                               step.at(2).get<float>(), step.at(3).get<float>()});
    g.logits_positions = j.at("logits_positions").get<std::vector<int64_t>>();
    g.logits_file = j.at("logits_file").get<std::string>();
    if (g.n_vocab < 1 || g.n_vocab > (1 << 24)) fail(json_path, ": n_vocab ", g.n_vocab);
    for (int64_t p : g.logits_positions)
      if (p < 0 || p >= int64_t(g.tokens.size())) fail(json_path, ": logits position ", p);
    if (g.greedy_top2.size() != g.greedy.size()) fail(json_path, ": greedy_top2 length");
    const auto path = std::filesystem::path(json_path).parent_path() / g.logits_file;
    const uint64_t want = uint64_t(g.logits_positions.size()) * uint64_t(g.n_vocab) * 4;
    std::error_code ec;
    const uint64_t have = std::filesystem::file_size(path, ec);
    if (ec || have != want) fail(path.string(), ": ", have, " bytes, expected ", want);
    g.logits.resize(want / 4);
    std::ifstream lf(path, std::ios::binary);
    if (!lf.read(reinterpret_cast<char*>(g.logits.data()), std::streamsize(want)))
      fail("cannot read ", path.string());
    return g;
  } catch (const nlohmann::json::exception& e) {
    fail(json_path, ": ", e.what());
  }
}

GoldenReport compare_golden(Backend& be, const Model& model, const GoldenRecord& g,
                            SessionOptions options, float tol, int max_greedy) {
  const int64_t V = model.config.n_vocab;
  if (V != g.n_vocab) fail("model has ", V, " logits per row, golden ", g.n_vocab);
  if (g.tokens.empty()) fail("golden record has no tokens");
  options.n_batch = std::max<int64_t>(options.n_batch, int64_t(g.tokens.size()));
  Session s(be, model, options);
  GoldenReport r;
  const std::vector<float> logits = s.prefill(g.tokens, true);
  for (size_t i = 0; i < g.logits_positions.size(); ++i) {
    const int64_t p = g.logits_positions[i];
    for (int64_t v = 0; v < V; ++v) {
      const float d = std::fabs(logits[size_t(p * V + v)] - g.logits[i * size_t(V) + size_t(v)]);
      if (!(d <= r.max_diff)) {
        r.max_diff = d;
        r.max_diff_position = p;
      }
    }
  }
  for (size_t p = 0; p < g.prompt_top5.size() && p < g.tokens.size(); ++p) {
    std::vector<int32_t> ours(5);
    ops::top_k(logits.data() + p * size_t(V), V, 5, ours.data());
    const float* row = logits.data() + p * size_t(V);
    for (size_t k = 0; k < 5 && k < g.prompt_top5[p].size(); ++k) {
      const int32_t want = g.prompt_top5[p][k];
      if (want < 0 || want >= V) fail("golden top5 id ", want);
      if (ours[k] != want && std::fabs(row[ours[k]] - row[want]) > tol) {
        ++r.top5_mismatches;
        break;
      }
    }
  }
  // Greedy: feed back our own argmax. greedy_top2[i] is the top 2 of the logits after
  // feeding greedy[i] (so it predicts greedy[i + 1]); step 0 is predicted by the prompt's
  // last row. Once a step is a near-tie (gap ≤ 0.1) with an F16 cache, the rest may differ.
  const int64_t last_pos = int64_t(g.tokens.size()) - 1;
  float gap = 1e30f;
  for (size_t i = 0; i < g.logits_positions.size(); ++i) {
    if (g.logits_positions[i] != last_pos) continue;
    std::vector<int32_t> top2(2);
    ops::top_k(g.logits.data() + i * size_t(V), V, 2, top2.data());
    gap = g.logits[i * size_t(V) + size_t(top2[0])] - g.logits[i * size_t(V) + size_t(top2[1])];
  }
  std::vector<float> last(logits.end() - V, logits.end());
  const size_t n_steps =
      max_greedy < 0 ? g.greedy.size() : std::min(g.greedy.size(), size_t(max_greedy));
  for (size_t step = 0; step <= n_steps; ++step) {
    if (step > 0) {  // the logits after feeding greedy[step - 1]
      const auto& top2 = g.greedy_top2[step - 1];
      const auto id1 = int32_t(top2[0]);
      if (id1 < 0 || id1 >= V) fail("golden greedy_top2 id ", id1);
      r.greedy_max_diff = std::max(r.greedy_max_diff, std::fabs(last[size_t(id1)] - top2[1]));
      gap = top2[1] - top2[3];
    }
    if (step == n_steps) break;
    const int32_t id = ops::argmax(last.data(), V);
    r.greedy.push_back(id);
    if (id != g.greedy[step]) {
      if (!(options.kv_type == gguf::Type::F16 && gap <= 0.1f)) r.greedy_ok = false;
      break;
    }
    ++r.greedy_compared;
    last = read_f32(be, s.forward(std::span(&id, 1), false));
  }
  return r;
}

}  // namespace ml
