#pragma once
// BPE pre-tokenizers: the regexes llama.cpp (llama-vocab.cpp, llm_tokenizer_bpe) applies for each
// `tokenizer.ggml.pre` value, compiled with PCRE2, and the split they define.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ml::tok {

// What a `tokenizer.ggml.pre` value means besides its regexes (llama_vocab::impl::load).
struct PreSpec {
  std::vector<std::string_view> names;
  std::vector<std::string_view> regexes;  // applied in order, each splitting the last's pieces
  bool clean_spaces = true;
  bool ignore_merges = false;
  bool add_bos = false;  // the pre value turns BOS on (metadata can still turn it off)
  bool no_bos = false;   // chatglm: no BOS token at all
};

// nullptr when no pre-tokenizer is known for the name.
const PreSpec* find_pre(std::string_view name);
const std::vector<PreSpec>& pre_table();

// The compiled regexes of one pre-tokenizer. split() is const and thread-safe: each call
// makes its own PCRE2 match data and JIT stack.
class Splitter {
 public:
  Splitter(const PreSpec& spec, std::string_view name);
  ~Splitter();
  Splitter(Splitter&&) noexcept;
  Splitter& operator=(Splitter&&) noexcept;

  // Splits valid UTF-8 text into words: what each regex matches and the text between
  // matches, each regex working inside the pieces of the one before (unicode_regex_split).
  // Words are [offset, length) byte ranges of `text`, in order, covering it.
  std::vector<std::pair<size_t, size_t>> split(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// llama.cpp spells out what its \s, \S and \d mean (Unicode White_Space; ASCII digits) and
// treats \p{Lu} \p{Ll} \p{Lt} \p{Lm} \p{Lo} as \p{L} (its collapsed-category regex path);
// this rewrites a pattern so PCRE2 reads it the same way. Exposed for the tests.
std::string translate_pattern(std::string_view pattern);

}  // namespace ml::tok
