// The synthetic vocabulary. Any text tokenizes (every byte has a token, as in GPT-2's
// byte-level BPE), and each family's chat format finds its special tokens by name, so a
// synthetic model runs end to end through the tokenizer and the prompt formats.
#include "synth/vocab.h"

#include <array>
#include <map>

namespace ml::synth {
namespace {

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others map to
// code points from 256 up, so every byte is one visible character.
std::string byte_symbol(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int c = 0; c < b; ++c) {
      if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

struct Specials {
  std::string pre;
  std::map<uint32_t, std::string> at_id;  // real ids of the release
  std::vector<std::string> at_end;        // placed after the regular tokens
  std::string bos, eos, eot;
  bool add_bos;
};

Specials specials(const std::string& arch) {
  if (arch == "llama") {
    return {"llama-bpe", {}, {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>"}, "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", true};
  }
  if (arch == "qwen3" || arch == "qwen2") {
    return {"qwen2", {}, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, "", "<|im_end|>", "<|im_end|>", false};
  }
  if (arch == "gemma3") {
    return {"default", {{0, "<pad>"}, {1, "<eos>"}, {2, "<bos>"}, {3, "<unk>"}},
            {"<start_of_turn>", "<end_of_turn>"}, "<bos>", "<eos>", "<end_of_turn>", true};
  }
  if (arch == "gpt-oss") {
    return {"gpt-4o",
            {{199998, "<|startoftext|>"}, {199999, "<|endoftext|>"}, {200002, "<|return|>"},
             {200003, "<|constrain|>"}, {200005, "<|channel|>"}, {200006, "<|start|>"},
             {200007, "<|end|>"}, {200008, "<|message|>"}, {200012, "<|call|>"}},
            {}, "<|startoftext|>", "<|return|>", "<|end|>", false};
  }
  fail("synthetic vocabulary: no special tokens known for architecture ", arch);
}

}  // namespace

void add_vocab(gguf::Writer& w, const std::string& arch, uint32_t n_vocab) {
  Specials sp = specials(arch);
  std::vector<std::string> tokens(n_vocab);
  std::vector<int32_t> types(n_vocab, 3);  // CONTROL unless set below
  std::vector<bool> used(n_vocab, false);
  for (const auto& [id, text] : sp.at_id) {
    if (id >= n_vocab) fail("synthetic vocabulary: special id ", id, " >= n_vocab ", n_vocab);
    tokens[id] = text;
    used[id] = true;
  }
  uint32_t next = 0;
  auto place = [&](const std::string& text, int32_t type) {
    while (next < n_vocab && used[next]) ++next;
    if (next >= n_vocab) fail("synthetic vocabulary: ", n_vocab, " tokens are too few");
    tokens[next] = text;
    types[next] = type;
    used[next] = true;
    return next++;
  };
  for (int b = 0; b < 256; ++b) place(byte_symbol(b), 1);
  // A few merges of common English pairs ("Ġ" is the space byte's symbol).
  std::vector<std::array<std::string, 2>> merges = {
      {"Ġ", "t"}, {"h", "e"}, {"i", "n"}, {"e", "r"}, {"Ġ", "a"}, {"o", "n"}, {"r", "e"},
      {"Ġt", "he"}, {"a", "t"}, {"e", "n"}, {"o", "r"}, {"Ġ", "s"}};
  std::vector<std::string> merge_text;
  for (const auto& [l, r] : merges) {
    place(l + r, 1);
    merge_text.push_back(l + " " + r);
  }
  std::map<std::string, uint32_t> ids;
  for (const std::string& s : sp.at_end) ids[s] = place(s, 3);
  for (uint32_t i = 0; i < n_vocab; ++i) {
    if (!used[i]) tokens[i] = "<|reserved_" + std::to_string(i) + "|>";
    else if (ids.count(tokens[i]) == 0 && types[i] == 3) ids[tokens[i]] = i;
  }
  for (const auto& [id, text] : sp.at_id) ids[text] = id;

  gguf::Array tok{gguf::ValueType::STRING, {}}, typ{gguf::ValueType::INT32, {}},
      mer{gguf::ValueType::STRING, {}};
  tok.items.reserve(n_vocab);
  typ.items.reserve(n_vocab);
  for (uint32_t i = 0; i < n_vocab; ++i) {
    tok.items.emplace_back(tokens[i]);
    typ.items.emplace_back(types[i]);
  }
  for (const std::string& m : merge_text) mer.items.emplace_back(m);
  w.set("tokenizer.ggml.model", std::string("gpt2"));
  w.set("tokenizer.ggml.pre", sp.pre);
  w.set("tokenizer.ggml.tokens", std::move(tok));
  w.set("tokenizer.ggml.token_type", std::move(typ));
  w.set("tokenizer.ggml.merges", std::move(mer));
  if (!sp.bos.empty()) w.set("tokenizer.ggml.bos_token_id", ids.at(sp.bos));
  w.set("tokenizer.ggml.eos_token_id", ids.at(sp.eos));
  w.set("tokenizer.ggml.eot_token_id", ids.at(sp.eot));
  w.set("tokenizer.ggml.add_bos_token", sp.add_bos);
}

}  // namespace ml::synth
