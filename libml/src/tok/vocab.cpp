// The vocabulary from `tokenizer.ggml.*` metadata, with the defaults and token-attribute fixups
// of llama.cpp's llama_vocab::impl::load, so the same file tokenizes the same way.
#include <algorithm>
#include <cctype>
#include <unordered_map>
#include <unordered_set>

#include "ml/tok.h"
#include "tok/pretokenize.h"

namespace ml::tok {
namespace {

constexpr std::string_view kKey = "tokenizer.ggml.";

std::string key(std::string_view name) {
  return std::string(kKey) + std::string(name);
}

// GGUF token types (llama_token_type) to attribute bits.
uint32_t attr_of_type(int64_t type) {
  switch (type) {
    case 1:
      return kAttrNormal;
    case 2:
      return kAttrUnknown;
    case 3:
      return kAttrControl;
    case 4:
      return kAttrUserDefined;
    case 5:
      return kAttrUnused;
    case 6:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

// Texts llama.cpp treats as end-of-generation whatever their stored type, making them control.
const std::vector<std::string_view> kEogTexts = {"<|eot_id|>",
                                                 "<|im_end|>",
                                                 "<|end|>",
                                                 "<|return|>",
                                                 "<|call|>",
                                                 "<|flush|>",
                                                 "<|calls|>",
                                                 "<end_of_turn>",
                                                 "<|endoftext|>",
                                                 "</s>",
                                                 "<|eom_id|>",
                                                 "<EOT>",
                                                 "_<EOT>",
                                                 "[EOT]",
                                                 "[EOS]",
                                                 "<|end_of_text|>",
                                                 "<end_of_utterance>",
                                                 "<eos>",
                                                 "<turn|>",
                                                 "<|tool_response>",
                                                 "<｜end▁of▁sentence｜>",
                                                 "[e~["};
const std::vector<std::string_view> kEotTexts = {
    "<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>",   "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
    "<end_of_utterance>"};

// Fill-in-the-middle tokens found by text when their id key is absent (also made control).
struct FimKind {
  std::vector<std::string_view> keys;
  std::vector<std::string_view> texts;
  bool eog;
};
const std::vector<FimKind> kFimKinds = {
    {{"fim_pre_token_id", "prefix_token_id"},
     {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
      "<|code_prefix|>", "<|prefix|>"},
     false},
    {{"fim_suf_token_id", "suffix_token_id"},
     {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
      "<|code_suffix|>", "<|suffix|>"},
     false},
    {{"fim_mid_token_id", "middle_token_id"},
     {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
      "<|code_middle|>", "<|middle|>"},
     false},
    {{"fim_pad_token_id"}, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}, true},
    {{"fim_rep_token_id"},
     {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
     true},
    {{"fim_sep_token_id"}, {"<|file_sep|>"}, true},
};

}  // namespace

std::vector<std::string> supported_pre() {
  std::vector<std::string> names;
  for (const PreSpec& spec : pre_table()) {
    for (std::string_view n : spec.names) names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Vocab load_vocab(const gguf::Metadata& md) {
  Vocab v;
  const std::string model = md.string(key("model"));
  const std::string pre = md.string_or(key("pre"), "");
  const PreSpec* spec = nullptr;
  if (model == "llama") {
    v.model = Model::SPM;
    v.pre = pre.empty() ? "default" : pre;
    v.bos = 1, v.eos = 2, v.unk = 0;
    v.add_space_prefix = true;
    v.add_bos = true;
  } else if (model == "gpt2") {
    v.model = Model::BPE;
    v.pre = pre.empty() ? "default" : pre;
    spec = find_pre(v.pre);
    if (!spec) {
      std::string known;
      for (const std::string& n : supported_pre()) known += (known.empty() ? "" : ", ") + n;
      fail(key("pre"), " = '", v.pre, "' is a pre-tokenizer this build does not support (", known,
           ")");
    }
    v.bos = 11, v.eos = 11;  // llama.cpp's BPE defaults, dropped below when out of range
    v.clean_spaces = spec->clean_spaces;
    v.ignore_merges = spec->ignore_merges;
    v.add_bos = spec->add_bos;
    if (spec->no_bos) v.bos = kNoToken;
  } else {
    fail(key("model"), " = '", model, "' is not a supported tokenizer (llama, gpt2)");
  }
  v.add_space_prefix = md.boolean_or(key("add_space_prefix"), v.add_space_prefix);

  v.tokens = md.strings(key("tokens"));
  const size_t n = v.tokens.size();
  if (n == 0) fail(key("tokens"), " is empty");
  if (n >= size_t(INT32_MAX)) fail(key("tokens"), ": ", n, " tokens is more than ids can hold");

  if (md.has(key("scores"))) {
    v.scores = md.floats(key("scores"));
    if (v.scores.size() != n) {
      fail(key("scores"), " has ", v.scores.size(), " entries for ", n, " tokens");
    }
  } else {
    v.scores.assign(n, 0.0f);
  }
  v.attrs.assign(n, kAttrNormal);
  if (md.has(key("token_type"))) {
    const std::vector<int64_t> types = md.integers(key("token_type"));
    if (types.size() != n) {
      fail(key("token_type"), " has ", types.size(), " entries for ", n, " tokens");
    }
    for (size_t i = 0; i < n; ++i) v.attrs[i] = attr_of_type(types[i]);
  }
  if (v.model == Model::BPE) {
    if (!md.has(key("merges"))) fail(key("merges"), " is missing (required for a gpt2 tokenizer)");
    v.merges = md.strings(key("merges"));
  }

  std::unordered_map<std::string_view, Token> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
  }
  for (size_t i = 0; i < n; ++i) {
    auto [it, fresh] = ids.emplace(v.tokens[i], Token(i));
    if (!fresh) {
      fail(key("tokens"), ": token ", i, " '", v.tokens[i], "' duplicates token ", it->second);
    }
  }
  auto find = [&](std::string_view text) {
    auto it = ids.find(text);
    return it == ids.end() ? kNoToken : it->second;
  };
  // Every merge is "left right" of two tokens whose concatenation is a token too.
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    const size_t space = m.find(' ', 1);
    if (space == std::string::npos) fail(key("merges"), "[", i, "] '", m, "' has no space");
    const std::string_view left = std::string_view(m).substr(0, space);
    const std::string_view right = std::string_view(m).substr(space + 1);
    if (find(left) == kNoToken || find(right) == kNoToken ||
        find(std::string(left) + std::string(right)) == kNoToken) {
      fail(key("merges"), "[", i, "] '", m, "' names a token that is not in the vocabulary");
    }
  }

  // Defaults that do not fit this vocabulary are dropped (llama.cpp: "out of vocab range,
  // disabling"); ids the metadata names must fit.
  for (Token* id : {&v.bos, &v.eos, &v.unk}) {
    if (*id >= 0 && size_t(*id) >= n) *id = kNoToken;
  }
  auto id_key = [&](std::string_view name, Token& id) {
    if (!md.has(key(name))) return false;
    const uint64_t value = md.uint(key(name));
    if (value >= n) fail(key(name), " = ", value, " is out of range (", n, " tokens)");
    id = Token(value);
    return true;
  };
  id_key("bos_token_id", v.bos);
  id_key("eos_token_id", v.eos);
  id_key("eot_token_id", v.eot);
  id_key("eom_token_id", v.eom);
  id_key("unknown_token_id", v.unk);
  id_key("seperator_token_id", v.sep);  // sic: the GGUF key is spelled this way
  id_key("padding_token_id", v.pad);
  v.add_bos = md.boolean_or(key("add_bos_token"), v.add_bos);
  v.add_eos = md.boolean_or(key("add_eos_token"), v.add_eos);
  if (v.add_bos && v.bos == kNoToken) fail(key("add_bos_token"), " is true but there is no BOS id");
  if (v.add_eos && v.eos == kNoToken) fail(key("add_eos_token"), " is true but there is no EOS id");

  // Fixups by token text (llama.cpp load(): "auto-detect special tokens by text").
  auto lowest = [&](const std::vector<std::string_view>& texts) {
    Token best = kNoToken;
    for (std::string_view t : texts) {
      const Token id = find(t);
      if (id != kNoToken && (best == kNoToken || id < best)) best = id;
    }
    return best;
  };
  if (v.eot == kNoToken) v.eot = lowest(kEotTexts);
  if (v.eot != kNoToken) v.attrs[v.eot] |= kAttrControl;
  if (v.eom == kNoToken) v.eom = find("<|eom_id|>");
  if (v.eom != kNoToken) v.attrs[v.eom] |= kAttrControl;
  std::unordered_set<Token> eog;
  for (const FimKind& kind : kFimKinds) {
    Token id = kNoToken;
    bool from_key = false;
    for (std::string_view k : kind.keys) {
      if (!from_key) from_key = id_key(k, id);
    }
    if (!from_key) {
      id = lowest(kind.texts);
      if (id != kNoToken) v.attrs[id] |= kAttrControl;
    }
    if (kind.eog && id != kNoToken) eog.insert(id);
  }
  for (std::string_view t : kEogTexts) {
    const Token id = find(t);
    if (id == kNoToken) continue;
    eog.insert(id);
    v.attrs[id] |= kAttrControl;
  }
  // gpt-oss (o200k_harmony): these structure tokens always render, and the text matcher sees
  // them even when special tokens are not parsed.
  for (std::string_view t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    if (const Token id = find(t); id != kNoToken) v.attrs[id] = kAttrUserDefined;
  }
  for (Token id : {v.eos, v.eot, v.eom}) {
    if (id != kNoToken) eog.insert(id);
  }
  // With <|return|> and <|call|> (or solar-open's <|calls|> and <|flush|>) ending the turn,
  // <|end|> only separates messages: not end-of-generation.
  {
    auto in_eog = [&](std::string_view t) {
      const Token id = find(t);
      return id != kNoToken && eog.count(id) > 0;
    };
    const Token end = find("<|end|>");
    if (in_eog("<|end|>") && ((in_eog("<|return|>") && in_eog("<|call|>")) ||
                              (in_eog("<|calls|>") && in_eog("<|flush|>")))) {
      eog.erase(end);
      v.attrs[end] = kAttrUserDefined;
    }
    const Token s = find("</s>");
    if (in_eog("<|tool_response>") && in_eog("</s>")) {
      eog.erase(s);
      v.attrs[s] = kAttrNormal;
    }
  }
  v.eog.assign(eog.begin(), eog.end());
  std::sort(v.eog.begin(), v.eog.end());

  // Strip flags by model name (llama.cpp: "set attributes by model/tokenizer/architecture name").
  std::string name = md.string_or("general.name", "");
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  auto set_flag = [&](std::string_view t, uint32_t flag, bool on) {
    if (const Token id = find(t); id != kNoToken) {
      v.attrs[id] = on ? (v.attrs[id] | flag) : (v.attrs[id] & ~flag);
    }
  };
  if (v.pre.find("jina-v2-de") != std::string::npos ||
      v.pre.find("jina-v2-es") != std::string::npos ||
      v.pre.find("jina-v2-code") != std::string::npos) {
    set_flag("<mask>", kAttrLstrip, true);
  } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (size_t i = 0; i < n; ++i) {
      if (v.attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.attrs[i] |= kAttrRstrip;
    }
    set_flag("</s>", kAttrRstrip, true);
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) set_flag(t, kAttrRstrip, false);
  } else if (name.find("modern-bert") != std::string::npos) {
    set_flag("[MASK]", kAttrLstrip, true);
  }
  return v;
}

}  // namespace ml::tok
