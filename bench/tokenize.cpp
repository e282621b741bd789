// Tokenizer throughput: about 1 MB of mixed text (prose, numbers, code, whitespace runs,
// accented Latin, Cyrillic, CJK, emoji) with a GGUF vocabulary, by default Llama 3's
// (ggml-vocab-llama-bpe.gguf from $ML_SHARED_DIR/vocab.tar.xz, extracted to a temp dir).
// Prints one JSON line; never asserts a time.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "ml/tok.h"

namespace {

std::string mixed_text(size_t bytes) {
  static const char* kWords[] = {"the",    "quick",  "brown",   "fox",   "jumps",   "over",
                                 "lazy",   "dog",    "model",   "token", "vector",  "matrix",
                                 "shader", "Vulkan", "compute", "It's",  "they're", "we'll"};
  static const char* kOther[] = {"naïve café", "Äpfel über",  "日本語のテキスト", "中文字符测试",
                                 "Привет мир", "🦙🚀✨", "ﬁnancial",         "   ",
                                 "\n\n",       "\t"};
  static const char* kCode[] = {"for (int i = 0; i < n; ++i) { x[i] += y[i]; }\n",
                                "def f(x):\n    return x**2\n", "<div class=\"a\">\n",
                                "$ ls -la | grep foo\n"};
  static const char* kEnds[] = {". ", ", ", "! ", "? ", "\n"};
  std::mt19937 rng(1);
  auto pick = [&](auto& list) { return list[rng() % std::size(list)]; };
  std::string s;
  while (s.size() < bytes) {
    const unsigned r = rng() % 100;
    if (r < 60) {
      for (unsigned i = 0, n = 3 + rng() % 10; i < n; ++i)
        s += std::string(i ? " " : "") + pick(kWords);
      s += pick(kEnds);
    } else if (r < 75) {
      s += std::to_string(rng() % 1000000000) + " ";
    } else if (r < 90) {
      s += std::string(pick(kOther)) + " ";
    } else {
      s += pick(kCode);
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_tokenize: tokenizer throughput on mixed text"};
  std::string gguf;
  double mb = 1.0;
  int repeat = 3;
  app.add_option("--gguf", gguf, "vocabulary GGUF (default: llama-bpe from vocab.tar.xz)");
  app.add_option("--mb", mb, "megabytes of text")->check(CLI::Range(0.001, 1024.0));
  app.add_option("--repeat", repeat, "runs; the fastest is reported")->check(CLI::Range(1, 100));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::filesystem::path tmp;
  try {
    if (gguf.empty()) {
      const char* env = std::getenv("ML_SHARED_DIR");
      const std::string shared = env && *env ? env : "../shared";
      tmp = std::filesystem::temp_directory_path() /
            ("ml_bench_tokenize_" + std::to_string(std::random_device{}()));
      std::filesystem::create_directories(tmp);
      const std::string cmd = "tar xJf '" + shared + "/vocab.tar.xz' -C '" + tmp.string() +
                              "' ggml-vocab-llama-bpe.gguf";
      if (std::system(cmd.c_str()) != 0)
        throw ml::Error("cannot extract " + shared + "/vocab.tar.xz");
      gguf = (tmp / "ggml-vocab-llama-bpe.gguf").string();
    }
    const auto tok = ml::tok::Tokenizer::from_file(gguf);
    const std::string text = mixed_text(size_t(mb * 1024 * 1024));
    double best = 1e30;
    size_t n_tokens = 0;
    for (int i = 0; i < repeat; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      n_tokens = tok.encode(text, false, false).size();
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const nlohmann::json j = {{"bench", "tokenize"},
                              {"vocab", std::filesystem::path(gguf).filename().string()},
                              {"pre", tok.vocab().pre},
                              {"bytes", text.size()},
                              {"tokens", n_tokens},
                              {"seconds", best},
                              {"mb_per_s", text.size() / 1e6 / best},
                              {"tokens_per_s", n_tokens / best}};
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    if (!tmp.empty()) std::filesystem::remove_all(tmp);
    return 1;
  }
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  return 0;
}
