// Special-token partitioning (llama.cpp tokenizer_st_partition): before any tokenizer runs, the
// text is cut at every occurrence of a special token's text, longest tokens first, and those
// occurrences become single tokens. Control and unknown tokens take part only when special
// tokens are parsed; user-defined tokens always do (as Hugging Face's added tokens).
#include <cctype>

#include "tok/impl.h"

namespace ml::tok {
namespace {

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

std::vector<Fragment> partition_special(const Tokenizer::Impl& t, std::string_view text,
                                        bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (const Token id : t.special_by_length) {
    const uint32_t attr = t.vocab.attrs[id];
    if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& special = t.vocab.tokens[id];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t base = f.offset, length = f.length;
      const std::string_view window = text.substr(0, f.offset + f.length);
      while (length > 0) {
        const size_t match = window.find(special, base);
        if (match == std::string_view::npos) {
          next.push_back({kNoToken, base, length});
          break;
        }
        size_t left = match - base;
        if (attr & kAttrLstrip) {
          while (left > 0 && is_space(text[base + left - 1])) --left;
        }
        if (left > 0) next.push_back({kNoToken, base, left});
        next.push_back({id, match, special.size()});
        size_t right = match + special.size();
        size_t right_length = base + length - right;
        if (attr & kAttrRstrip) {
          while (right_length > 0 && is_space(text[right])) ++right, --right_length;
        }
        base = right;
        length = right_length;
      }
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace ml::tok
