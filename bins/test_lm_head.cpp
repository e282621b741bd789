// Gate G: prompt → logits. Prints the prompt's token ids, the top 5 logits at the last
// position, optionally writes every position's logits (float32, n_vocab per row) and decodes
// greedily with the KV cache; with --golden it compares with a ../shared/golden record.
#include <fstream>
#include <iostream>

#include "common.h"
#include "ml/run.h"

namespace {

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"test_lm_head: logits of a prompt, top-5 and greedy continuation"};
  ml::cli::ModelFlags m{.backend = "cpu", .kv = "f16"};
  std::string prompt, prompt_file, tokens_text, logits_out, golden;
  int greedy = 0;
  int64_t layers = 0, ctx = 0;
  bool moe_fallback = false;
  ml::cli::add_model_flags(app, m, "backend to run on");
  auto* prompt_opt = app.add_option("--prompt", prompt, "prompt text (special tokens parsed)");
  auto* file_opt = app.add_option("--prompt-file", prompt_file, "read the prompt from a file");
  auto* tokens_opt = app.add_option("--tokens", tokens_text, "prompt as comma-separated token ids");
  prompt_opt->excludes(file_opt)->excludes(tokens_opt);
  file_opt->excludes(tokens_opt);
  app.add_option("--logits-out", logits_out, "write float32 logits of every prompt position");
  app.add_option("--greedy", greedy, "decode N argmax tokens")->check(CLI::Range(0, 1 << 20));
  app.add_option("--layers", layers, "run only the first N layers")
      ->check(CLI::Range(int64_t(0), int64_t(4096)));
  app.add_option("--ctx", ctx, "cap the context length")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  app.add_option("--golden", golden,
                 "golden record JSON to compare with (its tokens when no prompt)");
  app.add_flag("--moe-fallback", moe_fallback,
               "gpt-oss bring-up: every token to expert 0 alone, router skipped");
  return ml::cli::run(app, argc, argv, [&] {
    auto source = ml::gguf::open_source(m.gguf);
    const ml::gguf::File file = ml::gguf::parse(*source);
    if (!prompt_file.empty()) {
      std::ifstream in(prompt_file, std::ios::binary);
      if (!in) ml::fail("cannot read ", prompt_file);
      prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::vector<int32_t> tokens;
    if (*tokens_opt) tokens = ml::check::parse_ids(tokens_text, "--tokens");
    if (*prompt_opt || *file_opt) {
      // BOS as the metadata says (add_special), special tokens like <|start|> parsed.
      tokens = ml::tok::Tokenizer::from_metadata(file.metadata).encode(prompt, true, true);
    }
    ml::GoldenRecord record;
    if (!golden.empty()) {
      record = ml::load_golden(golden);
      if (tokens.empty()) tokens = record.tokens;
    }
    if (tokens.empty()) throw CLI::RequiredError("--prompt, --prompt-file, --tokens or --golden");
    auto be = ml::make_backend(m.backend);
    const ml::Model model = ml::load_model(*be, *source, file);
    if (moe_fallback && model.config.n_expert == 0)
      ml::fail("--moe-fallback: ", model.config.arch, " has no experts");
    ml::SessionOptions options;
    options.kv_type = m.kv_type();
    options.n_ctx = ctx;
    options.n_layer = layers;
    options.n_batch = std::max<int64_t>(512, int64_t(tokens.size()));
    options.moe_fallback = moe_fallback;
    // On stdout beside the numbers it qualifies: they are not the model's with the router off.
    if (moe_fallback)
      std::cout << "moe-fallback: ON (expert 0 only, router skipped; not the model's logits)\n";
    std::cout << "tokens: " << join(tokens) << "\n";

    ml::Session session(*be, model, options);
    const std::vector<float> logits = session.prefill(tokens, true);
    const int64_t V = model.config.n_vocab;
    const float* last = logits.data() + (tokens.size() - 1) * size_t(V);
    std::vector<int32_t> top(5);
    ml::ops::top_k(last, V, 5, top.data());
    std::cout << "top5:";
    for (int32_t id : top) std::cout << " " << id << ":" << last[id];
    std::cout << "\n";
    if (!logits_out.empty()) {
      std::ofstream out(logits_out, std::ios::binary);
      out.write(reinterpret_cast<const char*>(logits.data()),
                std::streamsize(logits.size() * sizeof(float)));
      if (!out) ml::fail("cannot write ", logits_out);
    }
    if (greedy > 0) {
      session.reset();
      std::cout << "greedy: " << join(session.greedy(tokens, greedy)) << "\n";
    }
    if (!golden.empty()) {
      if (tokens != record.tokens) {
        std::cout << "golden: FAIL tokens differ from " << join(record.tokens) << "\n";
        return 1;
      }
      const float tol = options.kv_type == ml::gguf::Type::F32 ? 1e-2f : 5e-2f;
      const ml::GoldenReport r = ml::compare_golden(*be, model, record, options, tol);
      std::cout << "golden: " << (r.ok(tol) ? "PASS" : "FAIL") << " max|dlogit| " << r.max_diff
                << " (position " << r.max_diff_position << ", tolerance " << tol
                << "), top5 mismatches " << r.top5_mismatches << ", greedy " << join(r.greedy)
                << " (" << r.greedy_compared << "/" << record.greedy.size() << " compared, max|d| "
                << r.greedy_max_diff << ")" << (moe_fallback ? " [moe-fallback]" : "") << "\n";
      if (!r.ok(tol)) return 1;
    }
    return 0;
  });
}
