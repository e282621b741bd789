// The pre-tokenizer regexes by `tokenizer.ggml.pre`, one place. Each entry is the list
// llama.cpp's llm_tokenizer_bpe uses for that value (llama-vocab.cpp; its adapted forms, e.g.
// "(?i:'s|...)" spelled as "(?:'[sS]|...)") and the flags llama_vocab::impl::load sets beside it.
#include "tok/pretokenize.h"

#include <algorithm>

namespace ml::tok {
namespace {

// GPT-2's pattern (tiktoken r50k); also the word splitter of many later tables.
constexpr std::string_view kGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

// Llama 3 (tiktoken cl100k): letters with one leading non-letter, numbers in threes.
constexpr std::string_view kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen 2/3: as Llama 3 but every digit alone.
constexpr std::string_view kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kQwen35 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// o200k (gpt-oss, gpt-4o): a word is an optional run of "upper" letters then "lower" ones, or
// the reverse, with an optional contraction. The case test is ASCII only ([^a-z] / [^A-Z]
// behind a letter lookahead), exactly as llama.cpp adapted it.
constexpr std::string_view kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kGraniteEmbMulti =
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kTekken =
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kJais2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})re";

constexpr std::string_view kCasedWords =  // youtu and tiny_aya (llama.cpp reads \p{Lu} as \p{L})
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kYoutuWords =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kCjkPunctWords =  // deepseek-v3 and relatives
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kFinnish = R"re( ?[^(\s|.,!?…。，、।۔،)]+)re";

// Greek and letterlike code points with a canonical singleton decomposition are escaped so no
// Unicode normalization of this file can change them.
constexpr std::string_view kDeepseekLatin =
    R"re(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)re";

std::vector<PreSpec> make_table() {
  std::vector<PreSpec> t;
  auto add = [&](std::vector<std::string_view> names, std::vector<std::string_view> regexes) {
    t.push_back(PreSpec{std::move(names), std::move(regexes)});
    return &t.back();
  };
  // BPE without a pre value (or "default"): llama.cpp's catch-all list.
  add({"default"}, {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"});
  {
    PreSpec* s = add({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                      "midm-2.0", "lfm2", "jina-v5-nano"},
                     {kLlama3});
    s->ignore_merges = true;
    s->add_bos = true;
  }
  add({"dbrx", "smaug-bpe"}, {kLlama3});
  add({"glm4", "chatglm-bpe"}, {kLlama3})->no_bos = true;
  add({"jais-2"}, {kJais2});
  add({"deepseek-llm"}, {R"re([\r\n])re", kDeepseekLatin, R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re",
                         R"re(\s+$)re", R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N}+)re"})
      ->clean_spaces = false;
  add({"deepseek-coder"}, {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re",
                           R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N})re"})
      ->clean_spaces = false;
  add({"deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"},
      {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re", kCjkPunctWords})
      ->clean_spaces = false;
  add({"spark2_5"},
      {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
       R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)re",
       R"re(\p{N})re"})
      ->clean_spaces = false;
  {
    PreSpec* s = add(
        {"youtu"},
        {R"re([가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+)re",
         kYoutuWords});
    s->clean_spaces = false;
    s->ignore_merges = true;
  }
  add({"falcon"}, {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, "[0-9][0-9][0-9]"});
  add({"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
      {R"re(\p{N})re", kGpt2});
  add({"command-r", "smollm"}, {R"re(\p{N})re", kGpt2})->clean_spaces = false;
  add({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
       "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt",
       "olmo", "jais"},
      {kGpt2});
  add({"trillion", "granite-docling"}, {kGpt2})->clean_spaces = false;
  add({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"},
      {kQwen2})
      ->clean_spaces = false;
  add({"megrez", "stablelm2"}, {kQwen2});
  add({"qwen35"}, {kQwen35})->clean_spaces = false;
  add({"poro-chat"}, {kFinnish})->clean_spaces = false;
  add({"bloom", "gpt3-finnish"}, {kFinnish});
  add({"viking"}, {kFinnish, R"re(\p{N})re"})->clean_spaces = false;
  {
    PreSpec* s = add({"tekken"}, {kTekken});
    s->clean_spaces = false;
    s->ignore_merges = true;
    s->add_bos = true;
  }
  {
    PreSpec* s =
        add({"chameleon"},
            {R"re(<sentinel:[0-9]+>)re", R"re((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)re",
             R"re(([\t\n]|    |  ))re", R"re(\p{N})re", R"re([\p{P}!-/:-@\[-`{-~])re", kGpt2});
    s->clean_spaces = false;
    s->add_bos = true;
  }
  add({"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o})->clean_spaces = false;
  {
    PreSpec* s = add({"granite-embed-multi-97m"}, {kGraniteEmbMulti});
    s->clean_spaces = false;
    s->ignore_merges = true;
  }
  add({"tiny_aya", "cohere2moe"}, {R"re(\d{1,3}(?=(?:\d{3})*\b))re", kCasedWords})->clean_spaces =
      false;
  add({"superbpe"}, {R"re(\p{N}+)re", R"re((?=(\d{3})+(?!\d)))re"})->clean_spaces = false;
  add({"bailingmoe", "bailingmoe2", "llada-moe"},
      {R"re('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re"})
      ->clean_spaces = false;
  add({"seed-coder"},
      {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re"})
      ->clean_spaces = false;
  add({"ufakzeka"},
      {R"re([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"})
      ->clean_spaces = false;
  add({"laguna"}, {R"re([^\n]+|[\n]+)re", kQwen2})->clean_spaces = false;
  add({"exaone-moe"},
      {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)re"});
  {
    PreSpec* s = add(
        {"minicpm5"},
        {R"re(\p{N}{1,3})re",
         R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"});
    s->ignore_merges = true;
  }
  return t;
}

}  // namespace

const std::vector<PreSpec>& pre_table() {
  static const std::vector<PreSpec> table = make_table();
  return table;
}

const PreSpec* find_pre(std::string_view name) {
  if (name.empty()) name = "default";
  for (const PreSpec& spec : pre_table()) {
    if (std::find(spec.names.begin(), spec.names.end(), name) != spec.names.end()) return &spec;
  }
  return nullptr;
}

}  // namespace ml::tok
