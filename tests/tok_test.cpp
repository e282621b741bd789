// Tokenizer tests: llama.cpp's vectors (vocab.tar.xz), the golden prompt ids of the shared
// models, round trips, invalid UTF-8, the streaming decoder, special tokens, and errors for
// malformed vocabulary metadata.
#include "ml/tok.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "test_util.h"
#include "tok/pretokenize.h"
#include "tok/utf8.h"

namespace fs = std::filesystem;
using ml::tok::Token;
using ml::tok::Tokenizer;

namespace {

// vocab.tar.xz extracted once into a temp dir beside the build, removed at exit.
class Vocabs : public ::testing::Environment {
 public:
  static fs::path dir() { return dir_; }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ml_tok_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    const std::string cmd =
        "tar xJf '" + ml::test::shared("vocab.tar.xz").string() + "' -C '" + dir_.string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void TearDown() override { fs::remove_all(dir_); }

 private:
  static inline fs::path dir_;
};
const auto* const kVocabs = ::testing::AddGlobalTestEnvironment(new Vocabs);

const Tokenizer& vocab(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    it = cache
             .emplace(name, Tokenizer::from_file(
                                (Vocabs::dir() / ("ggml-vocab-" + name + ".gguf")).string()))
             .first;
  }
  return it->second;
}

const Tokenizer& model(const std::string& file) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(file);
  if (it == cache.end()) {
    it = cache.emplace(file, Tokenizer::from_file(ml::test::shared("models/" + file).string()))
             .first;
  }
  return it->second;
}

ml::gguf::Value strings(std::vector<std::string> items) {
  ml::gguf::Array a{ml::gguf::ValueType::STRING, {}};
  for (auto& s : items) a.items.emplace_back(std::move(s));
  return ml::gguf::Value(std::move(a));
}

// A small byte-level BPE vocabulary: the 256 GPT-2 byte characters, "he" and "hel".
ml::gguf::Metadata tiny_bpe(const std::string& pre) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(ml::tok::byte_unicode().encode[b]);
  tokens.push_back("he");
  tokens.push_back("hel");
  ml::gguf::Metadata md;
  md.set("tokenizer.ggml.model", std::string("gpt2"));
  md.set("tokenizer.ggml.pre", pre);
  md.set("tokenizer.ggml.tokens", strings(tokens));
  md.set("tokenizer.ggml.merges", strings({"h e", "he l"}));
  return md;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

class VectorFile : public ::testing::TestWithParam<std::string> {};

TEST_P(VectorFile, MatchesLlamaCpp) {
  const fs::path base = Vocabs::dir() / ("ggml-vocab-" + GetParam() + ".gguf");
  const auto cases =
      ml::tok::run_vectors(vocab(GetParam()), base.string() + ".inp", base.string() + ".out");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) EXPECT_EQ(c.actual, c.expected) << "text: '" << c.text << "'";
}

INSTANTIATE_TEST_SUITE_P(Vocab, VectorFile,
                         ::testing::Values("gpt-2", "llama-spm", "llama-bpe", "qwen2", "phi-3"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

TEST(Golden, PromptIdsFromSharedModels) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(ml::test::shared("golden"))) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const auto j = nlohmann::json::parse(in);
    SCOPED_TRACE(entry.path().filename().string());
    const Tokenizer& tok = model(j.at("model").get<std::string>());
    EXPECT_EQ(tok.encode(j.at("prompt").get<std::string>(), true, true),
              j.at("tokens").get<std::vector<Token>>());
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(RoundTrip, DecodeGivesTheTextBack) {
  const std::vector<std::string> texts = {"Hello world", " leading and  double  spaces ",
                                          "naïve café, Äpfel über 日本語 🦙\n\ttabs",
                                          "<|begin_of_text|> not parsed", "x = a[i] + 3.14159;"};
  for (const std::string name : {"llama-bpe", "gpt-2", "qwen2", "llama-spm"}) {
    for (const std::string& t : texts) {
      EXPECT_EQ(vocab(name).decode(vocab(name).encode(t, false, false)), t) << name << ": " << t;
    }
  }
}

TEST(InvalidUtf8, BpeReadsEachBadByteAsReplacement) {
  const Tokenizer& tok = vocab("llama-bpe");
  const std::string bad = "ab\xff cd\xc3\x28 \xe2\x82";  // stray, broken pair, truncated
  const std::string replaced = "ab\xEF\xBF\xBD cd\xEF\xBF\xBD( \xEF\xBF\xBD\xEF\xBF\xBD";
  EXPECT_EQ(tok.encode(bad, false, false), tok.encode(replaced, false, false));
  EXPECT_EQ(tok.decode(tok.encode(bad, false, false)), replaced);
  EXPECT_EQ(ml::tok::sanitize_utf8(bad), "ab\xEF\xBF\xBD cd\xEF\xBF\xBD( \xEF\xBF\xBD");
}

TEST(InvalidUtf8, SpmKeepsTheBytesThroughByteTokens) {
  const Tokenizer& tok = vocab("llama-spm");
  const std::string bad = "ab\x80\xbf cd\xc3( x\xe2\x82";  // stray, broken pair, truncated
  const auto ids = tok.encode(bad, true, false);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_NE(std::find(ids.begin(), ids.end(), tok.find("<0x80>")), ids.end());
  // Without the BOS the first piece's space prefix is removed, as llama_detokenize does.
  EXPECT_EQ(tok.decode(std::span(ids).subspan(1)), bad);
  // llama.cpp steps over a lead byte by the length it announces (0xFF: 4), so the escaped
  // space after it is spelled with byte tokens and comes back as U+2581.
  const auto ff = tok.encode("ab\xff cd", false, false);
  EXPECT_EQ(tok.decode(ff),
            "ab\xff\xe2\x96\x81"
            "cd");
}

TEST(InvalidUtf8, RandomBytesNeverFail) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = char(rng());
    std::string repaired;  // each bad byte as U+FFFD, as llama.cpp reads it
    for (uint32_t cpt : ml::tok::decode_lenient(s)) ml::tok::append_utf8(repaired, cpt);
    for (const std::string name : {"llama-bpe", "qwen2", "gpt-2"}) {
      EXPECT_EQ(vocab(name).decode(vocab(name).encode(s, false, true)), repaired) << name;
    }
    const auto ids = vocab("llama-spm").encode(s, true, true);
    EXPECT_TRUE(ml::tok::is_valid_utf8(ml::tok::sanitize_utf8(vocab("llama-spm").decode(ids))));
  }
}

TEST(StreamDecoder, HoldsSplitCharactersUntilComplete) {
  const Tokenizer& tok = vocab("llama-spm");
  ml::tok::StreamDecoder dec(tok);
  // U+1F999 (llama) as four byte tokens: nothing until the fourth.
  EXPECT_EQ(dec.push(tok.find("<0xF0>")), "");
  EXPECT_EQ(dec.push(tok.find("<0x9F>")), "");
  EXPECT_EQ(dec.push(tok.find("<0xA6>")), "");
  EXPECT_EQ(dec.pending(), 3u);
  EXPECT_EQ(dec.push(tok.find("<0x99>")), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(dec.push(tok.find("▁the")), " the");
  // A byte that can never start a character, and a lead byte that the next token breaks.
  EXPECT_EQ(dec.push(tok.find("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.push(tok.find("<0xE2>")), "");
  EXPECT_EQ(dec.push(tok.find("a")),
            "\xEF\xBF\xBD"
            "a");
  // A truncated character at the end comes out of flush as one U+FFFD.
  EXPECT_EQ(dec.push(tok.find("<0xE2>")), "");
  EXPECT_EQ(dec.push(tok.find("<0x82>")), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.pending(), 0u);
}

TEST(StreamDecoder, ConcatenationEqualsSanitizedDecode) {
  const Tokenizer& tok = vocab("gpt-2");  // byte-level: multi-byte characters span tokens
  const auto ids = tok.encode("日本語のテキスト 🦙🚀 naïve", false, false);
  ml::tok::StreamDecoder dec(tok);
  std::string streamed;
  bool split_seen = false;
  for (Token id : ids) {
    const std::string part = dec.push(id);
    split_seen |= dec.pending() > 0;
    EXPECT_TRUE(ml::tok::is_valid_utf8(part));
    streamed += part;
  }
  streamed += dec.flush();
  EXPECT_TRUE(split_seen);
  EXPECT_EQ(streamed, "日本語のテキスト 🦙🚀 naïve");
}

TEST(Special, ParsedOnlyWhenAsked) {
  const Tokenizer& tok = vocab("llama-bpe");
  EXPECT_EQ(tok.encode("<|begin_of_text|>hi", false, true),
            (std::vector<Token>{128000, tok.encode("hi", false, false)[0]}));
  const auto plain = tok.encode("<|begin_of_text|>hi", false, false);
  EXPECT_GT(plain.size(), 2u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 128000), 0);
  EXPECT_EQ(tok.encode("hi", true, false).front(), 128000);  // llama-bpe adds BOS
  EXPECT_TRUE(tok.is_eog(128009));                           // <|eot_id|>
  EXPECT_EQ(tok.piece(128009, false), "");
  EXPECT_EQ(tok.piece(128009, true), "<|eot_id|>");
}

TEST(Special, HarmonyStructureTokensAlwaysMatch) {
  const Tokenizer& tok = model("gptoss-tiny-mxfp4.gguf");
  // <|start|> and <|message|> are user-defined for gpt-oss (llama.cpp's o200k_harmony fixup);
  // <|return|> stays control and is only matched when special tokens are parsed.
  const auto ids = tok.encode("<|start|>user<|message|>", false, false);
  EXPECT_EQ(ids.front(), 4096);
  EXPECT_EQ(ids.back(), 4098);
  EXPECT_EQ(tok.encode("<|return|>", false, true), (std::vector<Token>{4101}));
  EXPECT_NE(tok.encode("<|return|>", false, false), (std::vector<Token>{4101}));
  EXPECT_TRUE(tok.is_eog(4101));
  EXPECT_TRUE(tok.is_eog(4102));
  EXPECT_FALSE(tok.is_eog(4097));  // <|end|> separates messages
}

TEST(PreTokenizers, EverySupportedNameCompilesAndSplits) {
  for (const std::string& pre : ml::tok::supported_pre()) {
    SCOPED_TRACE(pre);
    const Tokenizer tok(ml::tok::load_vocab(tiny_bpe(pre)));
    const std::string text = "hello World 12345 it's\n\n  x  日本 ﬁ!?";
    const auto ids = tok.encode(text, false, false);
    EXPECT_EQ(tok.decode(ids), text);
    EXPECT_EQ(ids.front(), 257);  // "hel" from the merges "h e", "he l"
  }
}

TEST(PreTokenizers, SplitsLikeTheReferenceRegexes) {
  auto words = [](std::string_view pre, std::string_view text) {
    const ml::tok::Splitter s(*ml::tok::find_pre(pre), pre);
    std::vector<std::string> out;
    for (auto [b, n] : s.split(text)) out.emplace_back(text.substr(b, n));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(words("llama-bpe", "I'VE 12345 apples!!\n\n x"),
            (V{"I", "'VE", " ", "123", "45", " apples", "!!\n\n", " x"}));
  EXPECT_EQ(words("qwen2", "ab 123"), (V{"ab", " ", "1", "2", "3"}));
  EXPECT_EQ(words("gpt-2", "Hello  world\u00a0\u3000x"),
            (V{"Hello", " ", " world", "\u00a0", "\u3000", "x"}));
  EXPECT_EQ(words("gpt-4o", "HelloWorld don't"), (V{"Hello", "World", " don't"}));
  EXPECT_EQ(ml::tok::translate_pattern(R"(\S+)"), ml::tok::translate_pattern(R"([^\s]+)"));
}

TEST(Errors, MalformedVocabularyMetadata) {
  EXPECT_NE(error_of([] { ml::tok::load_vocab(tiny_bpe("no-such-pre")); }).find("no-such-pre"),
            std::string::npos);
  {
    auto md = tiny_bpe("gpt-2");
    md.set("tokenizer.ggml.bos_token_id", uint32_t(9999));
    EXPECT_NE(
        error_of([&] { ml::tok::load_vocab(md); }).find("bos_token_id = 9999 is out of range"),
        std::string::npos);
  }
  {
    auto md = tiny_bpe("gpt-2");
    md.set("tokenizer.ggml.merges", strings({"h e", "q zz"}));
    EXPECT_NE(error_of([&] { ml::tok::load_vocab(md); }).find("merges[1] 'q zz'"),
              std::string::npos);
  }
  {
    auto md = tiny_bpe("gpt-2");
    md.set("tokenizer.ggml.scores",
           ml::gguf::Value(ml::gguf::Array{ml::gguf::ValueType::FLOAT32, {0.5f}}));
    EXPECT_NE(
        error_of([&] { ml::tok::load_vocab(md); }).find("scores has 1 entries for 258 tokens"),
        std::string::npos);
  }
  {
    auto md = tiny_bpe("gpt-2");
    md.set("tokenizer.ggml.tokens", strings({"a", "b", "a"}));
    md.set("tokenizer.ggml.merges", strings({}));
    EXPECT_NE(error_of([&] { ml::tok::load_vocab(md); }).find("duplicates token 0"),
              std::string::npos);
  }
  {
    auto md = tiny_bpe("gpt-2");
    md.set("tokenizer.ggml.model", std::string("t5"));
    EXPECT_NE(error_of([&] { ml::tok::load_vocab(md); }).find("'t5' is not a supported tokenizer"),
              std::string::npos);
  }
  EXPECT_FALSE(error_of([] { ml::tok::load_vocab(ml::gguf::Metadata{}); }).empty());
  EXPECT_NE(error_of([] { vocab("gpt-2").piece(50257); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([] { vocab("gpt-2").piece(-1); }).find("out of range"), std::string::npos);
}
