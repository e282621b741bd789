// HarmonyStream (libml/src/chat/harmony_stream.cpp): Harmony output tokenized with the tiny
// gpt-oss model's o200k-style vocabulary and fed token by token, as gptoss_cli feeds it,
// gives parse_harmony's messages on the whole text, and the content arrives per channel as
// it streams.
#include <gtest/gtest.h>

#include <map>

#include "ml/chat.h"
#include "ml/gguf.h"
#include "ml/tok.h"
#include "test_util.h"

namespace ml::chat {
namespace {

const tok::Tokenizer& tokenizer() {
  static const tok::Tokenizer t = [] {
    auto source = gguf::open_source(test::shared("models/gptoss-tiny-mxfp4.gguf").string());
    return tok::Tokenizer::from_metadata(gguf::parse(*source).metadata);
  }();
  return t;
}

struct Streamed {
  HarmonyStream stream;
  std::map<std::string, std::string> by_channel;  // content as text() returned it
  std::vector<size_t> message_at_content;         // messages.size() when content arrived
};

// Feeds `text` one token at a time: control tokens by their text, the others through the
// streaming detokenizer (whole UTF-8 characters), the way gptoss_cli does.
Streamed feed(std::string_view text) {
  const tok::Tokenizer& t = tokenizer();
  Streamed s;
  tok::StreamDecoder decoder(t, false);
  for (tok::Token id : t.encode(text, false, true)) {
    const std::string piece = decoder.push(id);
    const bool special = t.vocab().attrs[size_t(id)] & (tok::kAttrControl | tok::kAttrUserDefined);
    if (special && s.stream.control(t.text(id))) continue;
    const std::string_view content = s.stream.text(piece);
    if (content.empty()) continue;
    s.by_channel[s.stream.output().messages.back().channel] += content;
    s.message_at_content.push_back(s.stream.output().messages.size());
  }
  return s;
}

void expect_same(const HarmonyOutput& got, const HarmonyOutput& want) {
  ASSERT_EQ(got.messages.size(), want.messages.size());
  for (size_t i = 0; i < want.messages.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got.messages[i].role, want.messages[i].role);
    EXPECT_EQ(got.messages[i].channel, want.messages[i].channel);
    EXPECT_EQ(got.messages[i].recipient, want.messages[i].recipient);
    EXPECT_EQ(got.messages[i].content_type, want.messages[i].content_type);
    EXPECT_EQ(got.messages[i].content, want.messages[i].content);
    EXPECT_EQ(got.messages[i].complete, want.messages[i].complete);
  }
  EXPECT_EQ(got.stop, want.stop);
}

TEST(HarmonyStream, AnalysisThenFinal) {
  const std::string text =
      "<|channel|>analysis<|message|>User asks the capital. Answer: Paris — één word.<|end|>"
      "<|start|>assistant<|channel|>final<|message|>Paris, of course.<|return|>";
  const Streamed s = feed(text);
  expect_same(s.stream.output(), parse_harmony(text));
  EXPECT_EQ(s.by_channel.at("analysis"), "User asks the capital. Answer: Paris — één word.");
  EXPECT_EQ(s.by_channel.at("final"), "Paris, of course.");
  EXPECT_EQ(s.stream.output().final_text(), "Paris, of course.");
  EXPECT_TRUE(s.stream.done());
  EXPECT_FALSE(s.stream.in_content());
  EXPECT_EQ(s.message_at_content.front(), 1u);
  EXPECT_EQ(s.message_at_content.back(), 2u);
}

TEST(HarmonyStream, ToolCall) {
  const std::string text =
      "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary"
      " to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>";
  const Streamed s = feed(text);
  expect_same(s.stream.output(), parse_harmony(text));
  EXPECT_EQ(s.stream.output().messages[1].recipient, "functions.get_weather");
  EXPECT_EQ(s.stream.output().stop, Stop::Call);
  EXPECT_EQ(s.by_channel.at("commentary"), "{\"city\":\"Paris\"}");
}

TEST(HarmonyStream, StillStreaming) {
  for (std::string_view text : {"<|channel|>final<|message|>Par", "<|channel|>fin", ""}) {
    const Streamed s = feed(text);
    expect_same(s.stream.output(), parse_harmony(text));
    EXPECT_FALSE(s.stream.done());
  }
}

TEST(HarmonyStream, TextThatSpellsAControlTokenStaysText) {
  HarmonyStream s;
  s.control("<|channel|>");
  EXPECT_EQ(s.text("final"), "");  // header
  s.control("<|message|>");
  EXPECT_TRUE(s.in_content());
  EXPECT_EQ(s.text("write <|end|> to end"), "write <|end|> to end");
  s.control("<|return|>");
  EXPECT_EQ(s.text("after the stop"), "");
  ASSERT_EQ(s.output().messages.size(), 1u);
  EXPECT_EQ(s.output().messages[0].content, "write <|end|> to end");
  EXPECT_EQ(s.output().stop, Stop::Return);
}

TEST(HarmonyStream, StartWithoutEndOpensANewMessage) {
  HarmonyStream s;
  s.control("<|channel|>");
  s.text("analysis");
  s.control("<|message|>");
  s.text("thinking");
  s.control("<|start|>");  // the model skipped <|end|>
  s.text("assistant");
  s.control("<|channel|>");
  s.text("final");
  s.control("<|message|>");
  EXPECT_EQ(s.text("42"), "42");
  EXPECT_FALSE(s.control("<|endoftext|>"));  // not Harmony's: the caller's text
  s.control("<|return|>");
  const auto& m = s.output().messages;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].content, "thinking");
  EXPECT_FALSE(m[0].complete);
  EXPECT_EQ(m[1].channel, "final");
  EXPECT_EQ(m[1].content, "42");
  EXPECT_TRUE(m[1].complete);
}

}  // namespace
}  // namespace ml::chat
