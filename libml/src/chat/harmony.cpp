// Harmony, gpt-oss's prompt format (https://github.com/openai/harmony, docs/format.md):
//   <|start|>{role}<|message|>{content}<|end|>
// with assistant headers "<|start|>assistant<|channel|>{channel}[ to={recipient}]
// [<|constrain|>{type}]<|message|>", and a reply that ends with <|return|> (answer done) or
// <|call|> (tool call) instead of <|end|>.
#include "chat/harmony.h"

#include "ml/error.h"

namespace ml::chat {
namespace {

constexpr std::string_view kStart = "<|start|>", kEnd = "<|end|>", kMessage = "<|message|>",
                           kChannel = "<|channel|>", kConstrain = "<|constrain|>",
                           kReturn = "<|return|>", kCall = "<|call|>";

bool valid_date(std::string_view d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (d[i] < '0' || d[i] > '9') return false;
  }
  return true;
}

// A header word: up to a space or the next special token.
std::string word_at(std::string_view h, size_t i) {
  size_t end = i;
  while (end < h.size() && h[end] != ' ' && h.compare(end, 2, "<|") != 0) ++end;
  return std::string(h.substr(i, end - i));
}

}  // namespace

void parse_header(std::string_view h, HarmonyMessage& m) {
  if (h.substr(0, kStart.size()) == kStart) {
    h.remove_prefix(kStart.size());
    m.role = word_at(h, 0);
  }
  if (size_t c = h.find(kChannel); c != std::string_view::npos) {
    m.channel = word_at(h, c + kChannel.size());
  }
  if (size_t t = h.find("to="); t != std::string_view::npos) m.recipient = word_at(h, t + 3);
  if (size_t c = h.find(kConstrain); c != std::string_view::npos) {
    m.content_type = word_at(h, c + kConstrain.size());
  }
}

std::string render_harmony(std::span<const Message> messages, const HarmonyOptions& o) {
  if (o.reasoning != "low" && o.reasoning != "medium" && o.reasoning != "high") {
    fail("harmony: reasoning '", o.reasoning, "' is not low, medium or high");
  }
  if (!o.date.empty() && !valid_date(o.date))
    fail("harmony: date '", o.date, "' is not YYYY-MM-DD");
  std::string out;
  out += kStart;
  out += "system";
  out += kMessage;
  out += o.identity + "\nKnowledge cutoff: " + o.knowledge_cutoff + "\n";
  if (!o.date.empty()) out += "Current date: " + o.date + "\n";
  out += "\nReasoning: " + o.reasoning + "\n\n";
  out +=
      "# Valid channels: analysis, commentary, final. Channel must be included for every message.";
  out += kEnd;
  std::string developer = o.developer;
  for (const Message& m : messages) {
    if (m.role == "system" || m.role == "developer") {
      developer += (developer.empty() ? "" : "\n\n") + m.content;
    }
  }
  if (!developer.empty()) {
    out += std::string(kStart) + "developer" + std::string(kMessage) + "# Instructions\n\n" +
           developer + std::string(kEnd);
  }
  for (const Message& m : messages) {
    if (m.role == "user") {
      out += std::string(kStart) + "user" + std::string(kMessage) + m.content + std::string(kEnd);
    } else if (m.role == "assistant") {
      // A finished answer goes back into the history ending with <|end|>, not <|return|>.
      const std::string channel = m.channel.empty() ? "final" : m.channel;
      out += std::string(kStart) + "assistant" + std::string(kChannel) + channel +
             std::string(kMessage) + m.content + std::string(kEnd);
    } else if (m.role != "system" && m.role != "developer") {
      fail("harmony: unknown role '", m.role, "'");
    }
  }
  out += std::string(kStart) + "assistant";
  return out;
}

HarmonyOutput parse_harmony(std::string_view text) {
  HarmonyOutput out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t body = text.find(kMessage, i);
    HarmonyMessage m;
    m.role = "assistant";
    parse_header(text.substr(i, body == std::string_view::npos ? text.size() - i : body - i), m);
    if (body == std::string_view::npos) {  // the header is still arriving
      out.messages.push_back(std::move(m));
      break;
    }
    const size_t begin = body + kMessage.size();
    size_t end = text.size();
    std::string_view stop;
    for (std::string_view s : {kEnd, kReturn, kCall}) {
      const size_t at = text.find(s, begin);
      if (at < end) end = at, stop = s;
    }
    m.content = std::string(text.substr(begin, end - begin));
    m.complete = !stop.empty();
    out.messages.push_back(std::move(m));
    if (stop.empty()) break;
    i = end + stop.size();
    if (stop == kReturn) {
      out.stop = Stop::Return;
      break;
    }
    if (stop == kCall) {
      out.stop = Stop::Call;
      break;
    }
  }
  return out;
}

std::string HarmonyOutput::final_text() const {
  std::string s;
  for (const HarmonyMessage& m : messages) {
    if (m.channel == "final") s += m.content;
  }
  return s;
}

}  // namespace ml::chat
