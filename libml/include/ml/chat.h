#pragma once
// Prompt formats: conversations rendered the way each family was trained (Harmony for gpt-oss,
// Gemma, Llama 3, ChatML for Qwen), and Harmony model output parsed back into channels.
// Rendered text carries special tokens as text; tokenize it with parse_special = true.
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ml::chat {

enum class Format { Harmony, Gemma, Llama3, ChatML };

Format format_from_name(std::string_view name);  // "harmony", "gemma", "llama3", "chatml"
const char* format_name(Format format);
// The format a GGUF `general.architecture` was trained with; throws ml::Error for one
// without a known format (pass a name to format_from_name instead).
Format format_for_architecture(std::string_view architecture);

struct Message {
  std::string role;  // system, developer, user, assistant
  std::string content;
  std::string channel;  // Harmony assistant turns: analysis, commentary, final (default final)
};

// Harmony's system and developer messages (openai-harmony's SystemContent/DeveloperContent).
struct HarmonyOptions {
  std::string identity = "You are ChatGPT, a large language model trained by OpenAI.";
  std::string knowledge_cutoff = "2024-06";
  std::string date;               // YYYY-MM-DD; empty leaves the "Current date" line out
  std::string reasoning = "low";  // low | medium | high
  std::string developer;          // instructions; empty: no developer message
};

// The prompt for the next assistant turn. Harmony: system and developer messages from the
// options (a "system" or "developer" message in `messages` adds to the developer instructions),
// then the turns, ending with "<|start|>assistant". The others follow llama.cpp's built-in
// templates; BOS is left to the tokenizer.
std::string render(Format format, std::span<const Message> messages,
                   const HarmonyOptions& harmony = {});

// Harmony output, from the text after the prompt's "<|start|>assistant" (special tokens rendered
// as text): each message's header and content, and what ended it.
enum class Stop {
  None,    // the text ended inside a message (still streaming)
  Return,  // <|return|>: the final answer is done
  Call,    // <|call|>: a tool call waits for its result
};
struct HarmonyMessage {
  std::string role;          // "assistant" unless the header names another
  std::string channel;       // analysis, commentary, final
  std::string recipient;     // "functions.get_weather" from " to=functions.get_weather"
  std::string content_type;  // "json" from "<|constrain|>json"
  std::string content;
  bool complete = false;  // ended by <|end|>, <|return|> or <|call|>
};
struct HarmonyOutput {
  std::vector<HarmonyMessage> messages;
  Stop stop = Stop::None;
  std::string final_text() const;  // content of the "final" channel messages
};
HarmonyOutput parse_harmony(std::string_view text);

// Harmony output as it streams, one token at a time. Control tokens (<|start|>, <|channel|>,
// <|constrain|>, <|message|>, <|end|>, <|return|>, <|call|>) move between a message's header
// and its content; other text belongs to whichever is open. On the same output it agrees with
// parse_harmony, and ordinary text that happens to spell "<|end|>" stays text.
class HarmonyStream {
 public:
  // A special token, by its text. Returns false for one that is not Harmony's (the caller
  // passes its text to text(), as any other).
  bool control(std::string_view token);
  // Ordinary text; returns the part of it that is message content (none inside a header or
  // after the output stopped). The message it belongs to is output().messages.back().
  std::string_view text(std::string_view s);

  const HarmonyOutput& output() const { return out_; }
  bool in_content() const { return in_content_; }
  bool done() const { return out_.stop != Stop::None; }

 private:
  HarmonyMessage& open();  // the message being written; starts one after <|end|>

  HarmonyOutput out_;
  std::string header_;  // the open message's header so far
  bool open_ = false;   // out_.messages.back() is still being written
  bool in_content_ = false;
};

}  // namespace ml::chat
