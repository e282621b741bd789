// Gate J: the MoE router, per token. Runs the prompt through the model on the CPU backend
// (the reference) and on Vulkan, catches each layer's "ffn_moe_logits", "ffn_moe_topk" and
// "ffn_moe_weights" through the backend observer, and compares: the same expert ids (as
// sets: equal weights may come in either order) and weights within 1e-4. Where the ids
// differ but the router logits at the cut (the k-th and the next) lie within 1e-3, it is a
// near-tie that either backend may break its own way: reported, not failed.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "common.h"
#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "ml/tok.h"

namespace {

constexpr float kWeightTol = 1e-4f;
constexpr float kTieTol = 1e-3f;

// One backend's router output for every layer: [layer][token * k + j].
struct Routes {
  std::vector<std::vector<float>> logits;  // [layer][token * n_expert + e]
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<float>> weights;
};

Routes route(const std::string& backend, ml::gguf::Source& source, const ml::gguf::File& file,
             const std::vector<int32_t>& tokens) {
  auto be = ml::make_backend(backend);
  const ml::Model model = ml::load_model(*be, source, file);
  const auto L = size_t(model.config.n_layer);
  std::map<std::pair<std::string, int>, ml::Tensor> seen;
  be->set_observer([&](std::string_view name, int il, const ml::Tensor& t) {
    if (name == "ffn_moe_logits" || name == "ffn_moe_topk" || name == "ffn_moe_weights")
      seen[{std::string(name), il}] = t;
  });
  ml::SessionOptions options;
  options.kv_type = ml::gguf::Type::F32;
  options.n_batch = std::max<int64_t>(512, int64_t(tokens.size()));
  ml::Session session(*be, model, options);
  session.forward(tokens, false);  // the caught tensors live until the next forward pass
  Routes r;
  for (size_t il = 0; il < L; ++il) {
    auto get = [&](const char* name) {
      auto it = seen.find({name, int(il)});
      if (it == seen.end()) ml::fail(backend, ": layer ", il, " named no ", name);
      return it->second;
    };
    r.logits.push_back(ml::read_f32(*be, get("ffn_moe_logits")));
    r.ids.push_back(ml::read_i32(*be, get("ffn_moe_topk")));
    r.weights.push_back(ml::read_f32(*be, get("ffn_moe_weights")));
  }
  return r;
}

// (id, weight) of one token's experts, ordered by id.
std::vector<std::pair<int32_t, float>> experts(const Routes& r, size_t il, size_t t, size_t k) {
  std::vector<std::pair<int32_t, float>> e;
  for (size_t j = 0; j < k; ++j) e.emplace_back(r.ids[il][t * k + j], r.weights[il][t * k + j]);
  std::sort(e.begin(), e.end());
  return e;
}

std::string show(const std::vector<std::pair<int32_t, float>>& e) {
  std::string s;
  char buf[32];
  for (const auto& [id, w] : e) {
    std::snprintf(buf, sizeof buf, " %d:%.4f", id, w);
    s += buf;
  }
  return s;
}

// The gap between the k-th and the (k+1)-th largest router logit of token t.
float cut_gap(const std::vector<float>& logits, size_t t, size_t n_expert, size_t k) {
  if (k >= n_expert) return INFINITY;
  std::vector<float> row(logits.begin() + long(t * n_expert),
                         logits.begin() + long((t + 1) * n_expert));
  std::sort(row.begin(), row.end(), std::greater<>());
  return row[k - 1] - row[k];
}

std::string printable(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\t' || ch == '\r') ch = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"test_moe_router: MoE router top-k per token, CPU against Vulkan"};
  std::string gguf_path, prompt = "The quick brown fox jumps over the lazy dog. It was 1984.";
  int layer = -1;
  bool show_experts = false;
  app.add_option("--gguf", gguf_path, "model file (a mixture-of-experts architecture)")->required();
  app.add_option("--layer", layer, "layer to check (default: every layer)")
      ->check(CLI::Range(0, 4095));
  app.add_option("--prompt", prompt, "prompt text (special tokens parsed)");
  app.add_flag("--show-experts", show_experts, "print every token's experts and weights");
  return ml::cli::run(app, argc, argv, [&] {
    auto source = ml::gguf::open_source(gguf_path);
    const ml::gguf::File file = ml::gguf::parse(*source);
    const ml::Config cfg = ml::load_config(file.metadata);
    if (cfg.n_expert == 0) ml::fail(gguf_path, ": ", cfg.arch, " has no experts to route");
    if (layer >= cfg.n_layer) ml::fail("--layer ", layer, " is outside [0, ", cfg.n_layer, ")");
    const auto tokenizer = ml::tok::Tokenizer::from_metadata(file.metadata);
    const std::vector<int32_t> tokens = tokenizer.encode(prompt, true, true);
    if (tokens.empty()) ml::fail("the prompt has no tokens");
    const Routes cpu = route("cpu", *source, file, tokens);
    const Routes gpu = route("vulkan", *source, file, tokens);

    const auto k = size_t(cfg.n_expert_used), E = size_t(cfg.n_expert);
    int disagree = 0;
    for (int il = 0; il < int(cfg.n_layer); ++il) {
      if (layer >= 0 && il != layer) continue;
      int agree = 0, ties = 0, bad = 0;
      float max_dw = 0.0f;
      for (size_t t = 0; t < tokens.size(); ++t) {
        const auto a = experts(cpu, size_t(il), t, k), b = experts(gpu, size_t(il), t, k);
        bool same_ids = true;
        float dw = 0.0f;
        for (size_t j = 0; j < k; ++j) {
          same_ids = same_ids && a[j].first == b[j].first;
          dw = std::max(dw, std::fabs(a[j].second - b[j].second));
        }
        const char* verdict = "ok";
        if (same_ids && dw <= kWeightTol) {
          ++agree;
          max_dw = std::max(max_dw, dw);
        } else if (!same_ids && cut_gap(cpu.logits[size_t(il)], t, E, k) <= kTieTol) {
          ++ties;
          verdict = "near-tie";
        } else {
          ++bad;
          verdict = same_ids ? "WEIGHTS DIFFER" : "IDS DIFFER";
        }
        if (show_experts || std::string_view(verdict) != "ok") {
          std::printf(
              "layer %d token %zu '%s': cpu%s | gpu%s  %s\n", il, t,
              printable(ml::tok::sanitize_utf8(tokenizer.decode(std::span(&tokens[t], 1)))).c_str(),
              show(a).c_str(), show(b).c_str(), verdict);
        }
      }
      std::printf("layer %d: %zu tokens, %d agree (max |dw| %.2e), %d near-ties, %d disagree\n", il,
                  tokens.size(), agree, double(max_dw), ties, bad);
      disagree += bad;
    }
    std::printf("router: %s\n", disagree == 0 ? "PASS" : "FAIL");
    return disagree == 0 ? 0 : 1;
  });
}
