// Harmony output parsed token by token (chat.h: HarmonyStream). The model writes
//   <|channel|>analysis<|message|>...<|end|><|start|>assistant<|channel|>final<|message|>...<|return|>
// after the prompt's "<|start|>assistant"; a header is parsed once its <|message|> arrives.
#include "chat/harmony.h"
#include "ml/chat.h"

namespace ml::chat {

HarmonyMessage& HarmonyStream::open() {
  if (!open_) {
    out_.messages.emplace_back().role = "assistant";
    header_.clear();
    in_content_ = false;
    open_ = true;
  }
  return out_.messages.back();
}

bool HarmonyStream::control(std::string_view token) {
  if (token != "<|start|>" && token != "<|channel|>" && token != "<|constrain|>" &&
      token != "<|message|>" && token != "<|end|>" && token != "<|return|>" && token != "<|call|>")
    return false;
  if (done()) return true;
  if (token == "<|start|>") {
    // A new message. An open one ends here even without its <|end|>; a header that had not
    // reached its content starts over.
    if (open_ && in_content_) open_ = false;
    HarmonyMessage& m = open();
    m = HarmonyMessage{};
    m.role = "assistant";
    header_ = token;
  } else if (token == "<|channel|>" || token == "<|constrain|>") {
    open();
    if (!in_content_) header_ += token;
  } else if (token == "<|message|>") {
    HarmonyMessage& m = open();
    if (in_content_) return true;
    parse_header(header_, m);
    in_content_ = true;
  } else if (token == "<|end|>" || token == "<|return|>" || token == "<|call|>") {
    HarmonyMessage& m = open();
    if (!in_content_) parse_header(header_, m);  // a message without content
    m.complete = true;
    open_ = in_content_ = false;
    if (token == "<|return|>") out_.stop = Stop::Return;
    if (token == "<|call|>") out_.stop = Stop::Call;
  }
  return true;
}

std::string_view HarmonyStream::text(std::string_view s) {
  if (done() || s.empty()) return {};
  HarmonyMessage& m = open();
  if (!in_content_) {
    header_ += s;
    parse_header(header_, m);  // channel known as early as possible (still streaming)
    return {};
  }
  m.content += s;
  return s;
}

}  // namespace ml::chat
