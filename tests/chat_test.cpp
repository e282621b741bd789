// Prompt format tests: Harmony byte-exact against ../shared/prompts/harmony.txt and its token
// ids against the golden record, the other families' renderings, and Harmony output parsing.
#include "ml/chat.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ml/tok.h"
#include "test_util.h"

using ml::chat::Format;
using ml::chat::Message;

namespace {

std::string read(const std::string& relative) {
  std::ifstream in(ml::test::shared(relative), std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::vector<Message> kConversation = {{"system", "Be brief.", ""},
                                            {"user", "Hi there", ""},
                                            {"assistant", "Hello!", ""},
                                            {"user", "  Capital of France? ", ""}};

}  // namespace

TEST(Harmony, DefaultRenderingEqualsSharedPrompt) {
  ml::chat::HarmonyOptions o;
  o.date = "2026-11-22";
  const std::vector<Message> m = {
      {"user", "What is the capital of France? Answer in one word.", ""}};
  const std::string prompt = ml::chat::render(Format::Harmony, m, o);
  EXPECT_EQ(prompt, read("prompts/harmony.txt"));

  std::ifstream in(ml::test::shared("golden/gptoss-tiny-mxfp4.harmony.json"));
  const auto j = nlohmann::json::parse(in);
  const auto tok =
      ml::tok::Tokenizer::from_file(ml::test::shared("models/gptoss-tiny-mxfp4.gguf").string());
  EXPECT_EQ(tok.encode(prompt, true, true), j.at("tokens").get<std::vector<ml::tok::Token>>());
}

TEST(Harmony, DeveloperAndHistory) {
  ml::chat::HarmonyOptions o;
  o.date = "2025-01-02";
  o.reasoning = "high";
  o.developer = "Answer in French.";
  EXPECT_EQ(ml::chat::render(Format::Harmony, kConversation, o),
            "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
            "Knowledge cutoff: 2024-06\nCurrent date: 2025-01-02\n\nReasoning: high\n\n"
            "# Valid channels: analysis, commentary, final. Channel must be included for every "
            "message.<|end|>"
            "<|start|>developer<|message|># Instructions\n\nAnswer in French.\n\nBe brief.<|end|>"
            "<|start|>user<|message|>Hi there<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Hello!<|end|>"
            "<|start|>user<|message|>  Capital of France? <|end|>"
            "<|start|>assistant");
}

TEST(Harmony, RejectsBadOptions) {
  ml::chat::HarmonyOptions o;
  o.reasoning = "max";
  EXPECT_THROW(ml::chat::render(Format::Harmony, {}, o), ml::Error);
  o.reasoning = "low";
  o.date = "22.11.2026";
  EXPECT_THROW(ml::chat::render(Format::Harmony, {}, o), ml::Error);
}

TEST(Harmony, ParsesChannelsAndStops) {
  const auto out = ml::chat::parse_harmony(
      "<|channel|>analysis<|message|>User asks capital.<|end|>"
      "<|start|>assistant<|channel|>final<|message|>Paris<|return|>ignored");
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[0].role, "assistant");
  EXPECT_EQ(out.messages[0].channel, "analysis");
  EXPECT_EQ(out.messages[0].content, "User asks capital.");
  EXPECT_TRUE(out.messages[0].complete);
  EXPECT_EQ(out.messages[1].channel, "final");
  EXPECT_EQ(out.stop, ml::chat::Stop::Return);
  EXPECT_EQ(out.final_text(), "Paris");

  const auto call = ml::chat::parse_harmony(
      "<|channel|>commentary to=functions.get_weather "
      "<|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>");
  ASSERT_EQ(call.messages.size(), 1u);
  EXPECT_EQ(call.messages[0].channel, "commentary");
  EXPECT_EQ(call.messages[0].recipient, "functions.get_weather");
  EXPECT_EQ(call.messages[0].content_type, "json");
  EXPECT_EQ(call.messages[0].content, "{\"city\":\"Paris\"}");
  EXPECT_EQ(call.stop, ml::chat::Stop::Call);

  const auto partial = ml::chat::parse_harmony("<|channel|>final<|message|>Par");
  ASSERT_EQ(partial.messages.size(), 1u);
  EXPECT_EQ(partial.messages[0].content, "Par");
  EXPECT_FALSE(partial.messages[0].complete);
  EXPECT_EQ(partial.stop, ml::chat::Stop::None);
  EXPECT_EQ(ml::chat::parse_harmony("<|channel|>fin").messages.at(0).channel, "fin");
  EXPECT_TRUE(ml::chat::parse_harmony("").messages.empty());
}

TEST(Templates, Gemma) {
  EXPECT_EQ(ml::chat::render(Format::Gemma, kConversation),
            "<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nCapital of France?<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(Templates, Llama3) {
  EXPECT_EQ(ml::chat::render(Format::Llama3, kConversation),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nCapital of France?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(Templates, ChatML) {
  EXPECT_EQ(ml::chat::render(Format::ChatML, kConversation),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n  Capital of France? <|im_end|>\n<|im_start|>assistant\n");
}

TEST(Templates, ChosenByArchitectureOrName) {
  EXPECT_EQ(ml::chat::format_for_architecture("gpt-oss"), Format::Harmony);
  EXPECT_EQ(ml::chat::format_for_architecture("gemma3"), Format::Gemma);
  EXPECT_EQ(ml::chat::format_for_architecture("llama"), Format::Llama3);
  EXPECT_EQ(ml::chat::format_for_architecture("qwen3"), Format::ChatML);
  EXPECT_THROW(ml::chat::format_for_architecture("mamba"), ml::Error);
  EXPECT_EQ(ml::chat::format_from_name("chatml"), Format::ChatML);
  EXPECT_STREQ(ml::chat::format_name(Format::Llama3), "llama3");
  EXPECT_THROW(ml::chat::format_from_name("vicuna"), ml::Error);
  const std::vector<Message> bad = {{"tool", "x", ""}};
  EXPECT_THROW(ml::chat::render(Format::ChatML, bad), ml::Error);
}
