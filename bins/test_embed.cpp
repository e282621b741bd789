// Gate F: embedding rows. The model's token embeddings of --tokens through its architecture's
// embedding on a backend (get_rows of token_embd, times Gemma's √n_embd where the model scales)
// against the quant reference of those rows; or, with --tensor, rows of any table of the file
// (quant-golden.gguf's T.q tables: every weight type). Exit 1 over tolerance.
#include <cstdio>
#include <iostream>

#include "common.h"
#include "ml/backend.h"
#include "ml/check.h"

namespace {

bool report(const ml::check::EmbedReport& r, const std::string& backend, float tol) {
  std::cout << r.tensor << ": " << ml::gguf::type_name(r.type) << " [" << r.n_embd << ", "
            << r.n_rows << "]\n";
  float worst = 0.0f;
  bool ok = true;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    std::cout << "  row " << r.rows[i] << ": max|d| " << r.max_diff[i] << " (max|ref| "
              << r.max_ref[i] << ")\n";
    worst = std::max(worst, r.max_diff[i]);
    ok = ok && r.max_diff[i] <= tol * std::max(1.0f, r.max_ref[i]);
  }
  std::cout << "test_embed: " << (ok ? "PASS " : "FAIL ") << r.tensor << " "
            << ml::gguf::type_name(r.type) << " max|d| " << worst << " over " << r.rows.size()
            << " rows, " << backend << " vs quant reference (tolerance " << tol
            << " x max(1, max|ref|))\n";
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"test_embed: embedding rows on a backend against the quant reference"};
  std::string gguf_path, tokens_text, backend = "vulkan";
  std::vector<std::string> tensors;
  float tol = 1e-5f;
  app.add_option("--gguf", gguf_path, "model file")->required();
  app.add_option("--tokens", tokens_text, "comma-separated token ids (rows)")->required();
  app.add_option("--backend", backend, "backend under test")
      ->check(CLI::IsMember({"cpu", "vulkan"}));
  app.add_option("--tensor", tensors, "a 2-D table of the file instead of the model's token_embd");
  app.add_option("--tol", tol, "tolerance on max|d| / max(1, max|ref|)")
      ->check(CLI::Range(0.0f, 1.0f));
  return ml::cli::run(app, argc, argv, [&] {
    const std::vector<int32_t> ids = ml::check::parse_ids(tokens_text, "--tokens");
    auto source = ml::gguf::open_source(gguf_path);
    const ml::gguf::File file = ml::gguf::parse(*source);
    auto be = ml::make_backend(backend);
    bool ok = true;
    if (tensors.empty()) {
      const ml::check::EmbedReport r = ml::check::embed_model(*be, *source, file, ids);
      const std::string arch = file.metadata.string("general.architecture");
      if (r.scale != 1.0f)
        std::cout << "scale: " << r.scale << " (sqrt(n_embd), " << arch << " scales embeddings)\n";
      else
        std::cout << "scale: none (" << arch << " does not scale embeddings)\n";
      ok = report(r, backend, tol);
    } else {
      for (const std::string& t : tensors)
        ok = report(ml::check::embed_table(*be, *source, file, t, ids), backend, tol) && ok;
    }
    return ok ? 0 : 1;
  });
}
