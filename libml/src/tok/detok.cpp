// Streaming detokenizer: a token may end in the middle of a UTF-8 character (byte tokens,
// byte-level BPE pieces), so bytes are held until the character they start is complete.
#include "ml/tok.h"
#include "tok/utf8.h"

namespace ml::tok {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::string StreamDecoder::push(Token id) {
  held_ += tokenizer_->piece(id, special_);
  std::string out;
  size_t i = 0;
  while (i < held_.size()) {
    const Utf8Step step = utf8_step(held_, i);
    if (step.truncated) break;  // wait for the token that completes it
    if (step.valid) {
      out.append(held_, i, step.len);
    } else {
      out += kReplacement;
    }
    i += step.len;
  }
  held_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = sanitize_utf8(held_);
  held_.clear();
  return out;
}

}  // namespace ml::tok
