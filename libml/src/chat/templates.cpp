// The prompt formats of the other families, as llama.cpp's built-in templates write them
// (llama-chat.cpp): Gemma, Llama 3, ChatML.
#include "chat/harmony.h"
#include "ml/chat.h"
#include "ml/error.h"

namespace ml::chat {
namespace {

std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

void check_role(const Message& m, Format f) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant") {
    fail(format_name(f), ": unknown role '", m.role, "'");
  }
}

// <start_of_turn>user\n...<end_of_turn>\n, "model" for the assistant; Gemma has no system
// turn, so system text opens the first user turn followed by a blank line.
std::string render_gemma(std::span<const Message> messages) {
  std::string out, system;
  for (const Message& m : messages) {
    check_role(m, Format::Gemma);
    if (m.role == "system") {
      system += trim(m.content) + "\n\n";
      continue;
    }
    std::string content = trim(m.content);
    if (m.role == "user" && !system.empty()) content = system + content, system.clear();
    out += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : "user") + "\n" +
           content + "<end_of_turn>\n";
  }
  return out + "<start_of_turn>model\n";
}

std::string render_llama3(std::span<const Message> messages) {
  std::string out;
  for (const Message& m : messages) {
    check_role(m, Format::Llama3);
    out +=
        "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
  return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

std::string render_chatml(std::span<const Message> messages) {
  std::string out;
  for (const Message& m : messages) {
    check_role(m, Format::ChatML);
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  return out + "<|im_start|>assistant\n";
}

}  // namespace

Format format_from_name(std::string_view name) {
  if (name == "harmony") return Format::Harmony;
  if (name == "gemma") return Format::Gemma;
  if (name == "llama3") return Format::Llama3;
  if (name == "chatml") return Format::ChatML;
  fail("unknown prompt format '", name, "' (harmony, gemma, llama3, chatml)");
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Harmony:
      return "harmony";
    case Format::Gemma:
      return "gemma";
    case Format::Llama3:
      return "llama3";
    case Format::ChatML:
      return "chatml";
  }
  return "?";
}

Format format_for_architecture(std::string_view arch) {
  if (arch == "gpt-oss") return Format::Harmony;
  if (arch == "gemma" || arch == "gemma2" || arch == "gemma3" || arch == "gemma3n") {
    return Format::Gemma;
  }
  if (arch == "llama" || arch == "llama4") return Format::Llama3;
  if (arch == "qwen2" || arch == "qwen2moe" || arch == "qwen3" || arch == "qwen3moe" ||
      arch == "qwen35") {
    return Format::ChatML;
  }
  fail("no prompt format known for architecture '", arch,
       "' (choose harmony, gemma, llama3 or chatml)");
}

std::string render(Format format, std::span<const Message> messages,
                   const HarmonyOptions& harmony) {
  switch (format) {
    case Format::Harmony:
      return render_harmony(messages, harmony);
    case Format::Gemma:
      return render_gemma(messages);
    case Format::Llama3:
      return render_llama3(messages);
    case Format::ChatML:
      return render_chatml(messages);
  }
  fail("unknown prompt format");
}

}  // namespace ml::chat
