// Gate H: one transformer block. The architecture's own block (Architecture::layer) runs on
// the CPU reference and on --backend over the same hidden states (embeddings of --prompt or
// of --seq spread token ids, computed on the CPU); every intermediate the block names is
// compared. Exit 1 when one is over tolerance.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iomanip>
#include <iostream>

#include "ml/backend.h"
#include "ml/check.h"
#include "ml/tok.h"

int main(int argc, char** argv) {
  CLI::App app{"test_layer: one transformer block on the CPU and on a backend"};
  std::string gguf_path, prompt, backend = "vulkan", kv = "f32";
  int layer = 0;
  int64_t seq = 8;
  float tol = -1.0f;  // by --kv when not given
  bool moe_fallback = false;
  app.add_option("--gguf", gguf_path, "model file")->required();
  app.add_option("--layer", layer, "block index")->required();
  auto* seq_opt = app.add_option("--seq", seq, "tokens (spread ids) when no prompt")
                      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--prompt", prompt, "prompt text whose embeddings feed the block")
      ->excludes(seq_opt);
  app.add_option("--backend", backend, "backend compared with the CPU")
      ->check(CLI::IsMember({"cpu", "vulkan"}));
  app.add_option("--kv", kv, "KV cache type")->check(CLI::IsMember({"f16", "f32"}));
  app.add_option("--tol", tol,
                 "tolerance on max|d| / max(1, max|ref|) (default 1e-3, 1e-2 with --kv f16)")
      ->check(CLI::Range(0.0f, 1.0f));
  app.add_flag("--moe-fallback", moe_fallback, "gpt-oss bring-up: expert 0 only, no router");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    auto source = ml::gguf::open_source(gguf_path);
    const ml::gguf::File file = ml::gguf::parse(*source);
    auto cpu = ml::make_cpu_backend();
    auto be = ml::make_backend(backend);
    const ml::Model cpu_model = ml::load_model(*cpu, *source, file);
    const ml::Model model = ml::load_model(*be, *source, file);
    const ml::Config& c = model.config;
    const std::vector<int32_t> tokens =
        prompt.empty()
            ? ml::check::spread_ids(seq, c.n_vocab)
            : ml::tok::Tokenizer::from_metadata(file.metadata).encode(prompt, true, true);
    const std::vector<float> x = ml::check::embeddings(*cpu, cpu_model, tokens);
    const auto kv_type = kv == "f32" ? ml::gguf::Type::F32 : ml::gguf::Type::F16;
    if (tol < 0.0f) tol = kv == "f32" ? 1e-3f : 1e-2f;
    const auto T = int64_t(tokens.size());
    ml::check::LayerRunner ref(*cpu, cpu_model, layer, T, kv_type, moe_fallback);
    ml::check::LayerRunner test(*be, model, layer, T, kv_type, moe_fallback);

    std::cout << c.arch << " layer " << layer << ": "
              << (c.swa_layers[size_t(layer)] ? "sliding window " + std::to_string(c.n_swa)
                                              : std::string("full attention"))
              << ", " << T << " tokens, cpu vs " << backend << ", kv " << kv << "\n";
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
