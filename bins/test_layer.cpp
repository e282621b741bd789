// Gate H: one transformer block. The architecture's own block (Architecture::layer) runs on
// the CPU reference and on --backend over the same hidden states (embeddings of --prompt or
// of --seq spread token ids, computed on the CPU); every intermediate the block names is
// compared. Exit 1 when one is over tolerance.
#include <iomanip>
#include <iostream>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"test_layer: one transformer block on the CPU and on a backend"};
  ml::cli::ModelFlags m;
  std::string prompt;
  int layer = 0;
  int64_t seq = 8;
  float tol = -1.0f;
  bool moe_fallback = false;
  ml::cli::add_model_flags(app, m, "backend compared with the CPU");
  app.add_option("--layer", layer, "block index")->required();
  auto* seq_opt = app.add_option("--seq", seq, "tokens (spread ids) when no prompt")
                      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--prompt", prompt, "prompt text whose embeddings feed the block")
      ->excludes(seq_opt);
  ml::cli::add_tol_flag(app, tol);
  app.add_flag("--moe-fallback", moe_fallback, "gpt-oss bring-up: expert 0 only, no router");
  return ml::cli::run(app, argc, argv, [&] {
    const ml::cli::ModelPair p(m);
    const ml::Config& c = p.model.config;
    const std::vector<int32_t> tokens = ml::cli::input_tokens(p.file, prompt, seq, c.n_vocab);
    const std::vector<float> x = ml::check::embeddings(*p.cpu, p.cpu_model, tokens);
    tol = ml::cli::tolerance(tol, m);
    const auto T = int64_t(tokens.size());
    ml::check::LayerRunner ref(*p.cpu, p.cpu_model, layer, T, m.kv_type(), moe_fallback);
    ml::check::LayerRunner test(*p.be, p.model, layer, T, m.kv_type(), moe_fallback);

    std::cout << c.arch << " layer " << layer << ": "
              << (c.swa_layers[size_t(layer)] ? "sliding window " + std::to_string(c.n_swa)
                                              : std::string("full attention"))
              << ", " << T << " tokens, cpu vs " << m.backend << ", kv " << m.kv << "\n";
    if (moe_fallback) std::cout << "moe-fallback: ON (expert 0 only, router skipped)\n";
    const auto diffs = ml::check::compare(ref.step(x), test.step(x));
    bool ok = true;
    for (const auto& d : diffs) {
      const bool pass = d.scaled() <= tol;
      ok = ok && pass;
      std::cout << "  " << std::left << std::setw(16) << d.name << " max|d| " << std::setw(12)
                << d.max_diff << " max|ref| " << std::setw(12) << d.max_ref << (pass ? "" : " OVER")
                << "\n";
    }
    const ml::check::Diff& out = diffs.back();
    std::cout << "test_layer: " << (ok ? "PASS" : "FAIL") << " layer " << layer << " " << out.name
              << " max|d| " << out.max_diff << " (scaled " << out.scaled() << ", tolerance " << tol
              << ")" << (moe_fallback ? " [moe-fallback]" : "") << "\n";
    return ok ? 0 : 1;
  });
}
