// Gate E: the tokenizer matches reference vectors; prompt formats render exactly.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "ml/chat.h"
#include "ml/tok.h"

namespace {

std::string ids_line(const std::vector<ml::tok::Token>& ids) {
  std::string s;
  for (ml::tok::Token id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

int run_vectors(const ml::tok::Tokenizer& tok, const std::string& inp) {
  const std::string out = inp.size() > 4 && inp.substr(inp.size() - 4) == ".inp"
                              ? inp.substr(0, inp.size() - 4) + ".out"
                              : inp + ".out";
  int passed = 0, failed = 0;
  for (const ml::tok::VectorCase& c : ml::tok::run_vectors(tok, inp, out)) {
    if (c.passed()) {
      ++passed;
      continue;
    }
    ++failed;
    std::cout << "FAIL text: \"" << ml::tok::sanitize_utf8(c.text) << "\"\n"
              << "  expected: " << ids_line(c.expected) << "\n"
              << "  actual:   " << ids_line(c.actual) << "\n";
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

// A golden record (../shared/golden/MODEL.PROMPT.json): `prompt` tokenized with special tokens
// parsed and BOS as the model's metadata says must give `tokens`.
int check_golden(const std::string& path, std::string gguf) {
  std::ifstream in(path);
  if (!in) throw ml::Error(path + ": cannot open");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("prompt") || !j.contains("tokens")) {
    throw ml::Error(path + ": not a golden record (needs prompt and tokens)");
  }
  const std::filesystem::path p(path);
  if (gguf.empty()) {
    std::string model = j.value("model", "");
    if (model.empty()) model = p.stem().stem().string() + ".gguf";  // MODEL.PROMPT.json
    gguf = (p.parent_path() / ".." / "models" / model).string();
  }
  const auto tok = ml::tok::Tokenizer::from_file(gguf);
  const auto expected = j.at("tokens").get<std::vector<ml::tok::Token>>();
  const auto actual = tok.encode(j.at("prompt").get<std::string>(), true, true);
  if (actual == expected) {
    std::cout << "golden " << p.filename().string() << ": " << actual.size() << " ids match\n";
    return 0;
  }
  std::cout << "FAIL golden " << p.filename().string() << "\n  expected: " << ids_line(expected)
            << "\n  actual:   " << ids_line(actual) << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "test_tokenizer: tokenize with a GGUF vocabulary, run llama.cpp's vectors, render Harmony"};
  std::string gguf, text, file, test_file, golden, system, developer, user, date, reasoning = "low";
  bool count = false, harmony = false, render = false, no_special = false, parse_special = false;
  app.add_option("--gguf", gguf, "GGUF file with the tokenizer (model or vocab-only)");
  app.add_option("--text", text, "text to tokenize");
  app.add_flag("--parse-special", parse_special, "match special tokens written in the text");
  app.add_flag("--no-bos", no_special, "do not add BOS/EOS");
  app.add_option("--file", file, "file to tokenize");
  app.add_flag("--count", count, "with --file: print only the count and throughput");
  app.add_option("--test-file", test_file, "llama.cpp vector file V.gguf.inp (V.gguf beside it)");
  app.add_option("--golden", golden, "golden record MODEL.PROMPT.json: check its prompt's ids");
  app.add_flag("--harmony", harmony, "build a Harmony (gpt-oss) prompt");
  app.add_option("--system", system, "Harmony: model identity line");
  app.add_option("--developer", developer, "Harmony: developer instructions");
  app.add_option("--user", user, "Harmony: user message");
  app.add_option("--date", date, "Harmony: current date YYYY-MM-DD (default today, UTC)");
  app.add_option("--reasoning", reasoning, "Harmony: low|medium|high")
      ->check(CLI::IsMember({"low", "medium", "high"}));
  app.add_flag("--render", render, "Harmony: print the prompt text instead of its ids");
  return ml::cli::run(app, argc, argv, [&] {
    if (!test_file.empty()) {
      const std::string model =
          gguf.empty() && test_file.size() > 4 ? test_file.substr(0, test_file.size() - 4) : gguf;
      return run_vectors(ml::tok::Tokenizer::from_file(model), test_file);
    }
    if (!golden.empty()) return check_golden(golden, gguf);
    if (harmony) {
      ml::chat::HarmonyOptions o;
      if (!system.empty()) o.identity = system;
      o.developer = developer;
      o.date = date.empty() ? today() : date;
      o.reasoning = reasoning;
      std::vector<ml::chat::Message> messages;
      if (!user.empty()) messages.push_back({"user", user, ""});
      const std::string prompt = ml::chat::render(ml::chat::Format::Harmony, messages, o);
      if (render) {
        std::cout << prompt;
      } else {
        if (gguf.empty()) {
          std::fprintf(stderr, "error: --harmony without --render needs --gguf for the ids\n");
          return 2;
        }
        const auto tok = ml::tok::Tokenizer::from_file(gguf);
        std::cout << ids_line(tok.encode(prompt, true, true)) << "\n";
      }
      return 0;
    }
    if (gguf.empty()) {
      std::fprintf(stderr, "error: --gguf is required (or --test-file / --harmony --render)\n");
      return 2;
    }
    const auto tok = ml::tok::Tokenizer::from_file(gguf);
    if (!file.empty()) {
      std::ifstream in(file, std::ios::binary);
      if (!in) throw ml::Error(file + ": cannot open");
      std::ostringstream s;
      s << in.rdbuf();
      const std::string data = s.str();
      const auto t0 = std::chrono::steady_clock::now();
      const auto ids = tok.encode(data, !no_special, parse_special);
      const double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!count) std::cout << ids_line(ids) << "\n";
      std::printf("%zu tokens, %zu bytes, %.3f s, %.2f MB/s, %.0f tokens/s\n", ids.size(),
                  data.size(), sec, data.size() / 1e6 / sec, ids.size() / sec);
      return 0;
    }
    const auto ids = tok.encode(text, !no_special, parse_special);
    std::cout << "ids:    " << ids_line(ids) << "\n";
    std::cout << "pieces:";
    for (ml::tok::Token id : ids) std::cout << " '" << ml::tok::sanitize_utf8(tok.piece(id)) << "'";
    std::cout << "\ndecoded: " << ml::tok::sanitize_utf8(tok.decode(ids, {true, true, false}))
              << "\n";
    return 0;
  });
}
