// llama.cpp's tokenizer test vectors (tests/test-tokenizer-0.cpp): NAME.inp holds the strings,
// each followed by a line "__ggml_vocab_test__"; NAME.out the expected ids of each string on
// one line. Tokenized without BOS/EOS and without parsing special tokens.
#include <fstream>
#include <sstream>

#include "ml/tok.h"

namespace ml::tok {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::vector<VectorCase> run_vectors(const Tokenizer& tokenizer, const std::string& inp_path,
                                    const std::string& out_path) {
  static constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
  const std::string inp = read_all(inp_path);
  std::vector<VectorCase> cases;
  for (size_t begin = 0;;) {
    const size_t end = inp.find(kSeparator, begin);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(begin, end - begin), {}, {}});
    begin = end + kSeparator.size();
  }
  const std::string out = read_all(out_path);
  std::istringstream lines(out);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    if (n >= cases.size())
      fail(out_path, ": more lines than ", inp_path, " has strings (", cases.size(), ")");
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size() || id < 0 || uint64_t(id) >= tokenizer.size()) {
        fail(out_path, ":", n + 1, ": '", word, "' is not a token id of this vocabulary (",
             tokenizer.size(), " tokens)");
      }
      cases[n].expected.push_back(Token(id));
    }
    ++n;
  }
  if (n != cases.size()) {
    fail(out_path, ": ", n, " lines for ", cases.size(), " strings in ", inp_path);
  }
  for (VectorCase& c : cases) c.actual = tokenizer.encode(c.text, false, false);
  return cases;
}

}  // namespace ml::tok
