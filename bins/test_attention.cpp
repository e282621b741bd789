// Gate I: attention over a growing KV cache. Layer L's block runs a prefill and then one
// token per step up to --seq-len on the CPU reference and on --backend (embeddings of spread
// token ids or of --prompt as its input); its attention output (kqv_out) must be finite,
// agree between the backends at every step, and agree with one prefill of the whole
// sequence on the CPU (the cache and its sliding-window ring against the batch path).
#include <iostream>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"test_attention: attention over a growing KV cache, CPU against a backend"};
  ml::cli::ModelFlags m;
  std::string prompt;
  int64_t seq_len = 0, prefill = 0;
  int layer = -1;
  float tol = -1.0f;
  ml::cli::add_model_flags(app, m, "backend compared with the CPU");
  auto* seq_opt = app.add_option("--seq-len", seq_len, "positions in all (spread token ids)")
                      ->check(CLI::Range(int64_t(2), int64_t(4096)));
  app.add_option("--prompt", prompt, "prompt text whose embeddings are the input")
      ->excludes(seq_opt);
  app.add_option("--layer", layer, "block index (default: the first sliding-window layer)");
  app.add_option("--prefill", prefill, "tokens in the first pass (default: a quarter, ≤ 8)")
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  ml::cli::add_tol_flag(app, tol);
  return ml::cli::run(app, argc, argv, [&] {
    if (seq_len == 0 && prompt.empty()) throw CLI::RequiredError("--seq-len or --prompt");
    const ml::cli::ModelPair p(m);
    const ml::Config& c = p.model.config;
    if (layer < 0) {
      layer = 0;
      for (int il = 0; il < int(c.n_layer); ++il)
        if (c.swa_layers[size_t(il)]) {
          layer = il;
          break;
        }
    }
    const std::vector<int32_t> tokens = ml::cli::input_tokens(p.file, prompt, seq_len, c.n_vocab);
    const auto N = int64_t(tokens.size());
    if (prefill == 0) prefill = std::clamp<int64_t>(N / 4, 1, 8);
    const std::vector<float> x = ml::check::embeddings(*p.cpu, p.cpu_model, tokens);
    tol = ml::cli::tolerance(tol, m);
    const ml::check::AttentionReport r =
        ml::check::attention(*p.cpu, p.cpu_model, *p.be, p.model, x, prefill, layer, m.kv_type());

    std::cout << c.arch << " layer " << layer << ": "
              << (r.n_swa ? "sliding window " + std::to_string(r.n_swa) + " (ring of " +
                                std::to_string(r.n_cells) + " cells)"
                          : "full causal (" + std::to_string(r.n_cells) + " cells)")
              << (r.sinks ? ", attention sinks" : "") << "; " << N << " positions, prefill "
              << prefill << ", cpu vs " << m.backend << ", kv " << m.kv << "\n";
    if (r.n_swa && N <= r.n_swa)
      std::cout << "note: " << N << " positions do not cross the window of " << r.n_swa << "\n";
    float worst_test = 0.0f, worst_batch = 0.0f;
    bool ok = true;
    for (const auto& s : r.steps) {
      const float scale = std::max(1.0f, s.max_ref);
      const bool pass = s.finite && s.test_diff <= tol * scale && s.batch_diff <= tol * scale;
      ok = ok && pass;
      worst_test = std::max(worst_test, s.test_diff);
      worst_batch = std::max(worst_batch, s.batch_diff);
      std::cout << "  pos " << s.pos0;
      if (s.n_tokens > 1) std::cout << ".." << s.pos0 + s.n_tokens - 1 << " (prefill)";
      std::cout << ": cpu/" << m.backend << " max|d| " << s.test_diff << ", decode/batch max|d| "
                << s.batch_diff << ", max|ref| " << s.max_ref << (s.finite ? "" : ", NOT FINITE")
                << (pass ? "" : " OVER") << "\n";
    }
    std::cout << "test_attention: " << (ok ? "PASS" : "FAIL") << " layer " << layer << ", "
              << r.steps.size() << " steps: cpu/" << m.backend << " max|d| " << worst_test
              << ", decode/batch max|d| " << worst_batch << " (tolerance " << tol
              << " x max(1, max|ref|))\n";
    return ok ? 0 : 1;
  });
}
