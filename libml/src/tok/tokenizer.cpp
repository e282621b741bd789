// Tokenizer: text -> ids (special-token partition, then SPM or BPE per fragment, with BOS/EOS
// as the vocabulary says) and ids -> bytes (llama.cpp token_to_piece / detokenize).
#include <algorithm>

#include "tok/impl.h"
#include "tok/utf8.h"

namespace ml::tok {
namespace {

constexpr std::string_view kSpaceEscape = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// "<0xNN>" -> NN; -1 when the text is not of that form.
int byte_of_token(std::string_view text) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  const int hi = hex(text[3]), lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// llama_decode_text: GPT-2 byte-encoded token text back to bytes; a character outside the
// mapping is written out as llama.cpp does, "[UNK_BYTE_0x<hex>" + text + "]".
std::string decode_byte_text(std::string_view text) {
  const ByteUnicode& bu = byte_unicode();
  std::string out;
  for (uint32_t cpt : decode_lenient(text)) {
    if (cpt < bu.decode.size() && bu.decode[cpt] >= 0) {
      out.push_back(char(bu.decode[cpt]));
      continue;
    }
    std::string utf8;
    append_utf8(utf8, cpt);
    static constexpr char kHex[] = "0123456789abcdef";
    out += "[UNK_BYTE_0x";
    for (char c : utf8) out += {kHex[uint8_t(c) >> 4], kHex[uint8_t(c) & 15]};
    out += std::string(text) + "]";
  }
  return out;
}

std::string make_piece(const Vocab& v, Token id) {
  const std::string& text = v.tokens[id];
  const uint32_t attr = v.attrs[id];
  if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return text;
  if (attr & kAttrNormal) {
    if (v.model == Model::SPM || v.escape_whitespaces) return replace_all(text, kSpaceEscape, " ");
    return decode_byte_text(text);
  }
  if (attr & kAttrByte) {
    const int byte = byte_of_token(text);
    return byte < 0 ? std::string() : std::string(1, char(byte));
  }
  return {};  // unused and undefined tokens render as nothing
}

// llama_detokenize's clean_spaces passes, in place as llama.cpp writes them (the passes read
// bytes the same pass may already have rewritten).
void clean_spaces(std::string& s) {
  int64_t total = int64_t(s.size());
  {
    const int64_t n = total;
    total = n ? 1 : 0;
    for (int64_t i = 1; i < n; ++i) {
      const char x = s[i];
      if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
      s[total++] = x;
    }
  }
  {
    const int64_t n = total;
    total = n ? 1 : 0;
    for (int64_t i = 1; i < n; ++i) {
      const char x = s[i];
      if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
        --total;
        s[++i] = '\0';
      }
      s[total++] = x;
    }
  }
  {
    const int64_t n = total;
    total = n ? 1 : 0;
    for (int64_t i = 1; i < n; ++i) {
      const char x = s[i];
      if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
        const char x1 = s[i + 1];
        if (x1 == 's' || x1 == 'm') {
          --total;
        } else if (i + 2 < n) {
          const char x2 = s[i + 2];
          if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
        }
      }
      s[total++] = x;
    }
  }
  s.resize(size_t(total));
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : impl_(std::make_unique<Impl>()) {
  Impl& t = *impl_;
  t.vocab = std::move(vocab);
  const Vocab& v = t.vocab;
  const size_t n = v.size();
  if (n == 0) fail("tokenizer: empty vocabulary");
  if (v.scores.size() != n || v.attrs.size() != n) {
    fail("tokenizer: ", n, " tokens but ", v.scores.size(), " scores and ", v.attrs.size(),
         " attributes");
  }
  for (Token id : {v.bos, v.eos, v.eot, v.eom, v.unk, v.pad, v.sep}) {
    if (id != kNoToken && (id < 0 || size_t(id) >= n)) {
      fail("tokenizer: special token id ", id, " is out of range (", n, " tokens)");
    }
  }
  t.token_id.reserve(n);
  for (size_t i = 0; i < n; ++i) t.token_id.emplace(v.tokens[i], Token(i));
  for (size_t i = 0; i < n; ++i) {
    if (v.attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      t.special_by_length.push_back(Token(i));
    }
  }
  std::stable_sort(t.special_by_length.begin(), t.special_by_length.end(),
                   [&](Token a, Token b) { return v.tokens[a].size() > v.tokens[b].size(); });
  if (v.model == Model::BPE) {
    if (!find_pre(v.pre)) fail("tokenizer: no pre-tokenizer '", v.pre, "'");
    build_bpe(t);
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    Token id = t.find(std::string_view(name, 6));
    if (id == kNoToken) id = t.find(std::string(1, char(b)));
    t.byte_token[b] = id;
  }
  t.pieces.reserve(n);
  for (size_t i = 0; i < n; ++i) t.pieces.push_back(make_piece(v, Token(i)));
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_metadata(const gguf::Metadata& metadata) {
  return Tokenizer(load_vocab(metadata));
}

Tokenizer Tokenizer::from_file(const std::string& gguf_path) {
  const gguf::File file = gguf::parse_file(gguf_path);
  try {
    return from_metadata(file.metadata);
  } catch (const Error& e) {
    fail(gguf_path, ": ", e.what());
  }
}

std::vector<Token> Tokenizer::encode(std::string_view text, bool add_special,
                                     bool parse_special) const {
  const Impl& t = *impl_;
  const Vocab& v = t.vocab;
  std::vector<Token> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && v.add_bos) out.push_back(v.bos);
  bool prev_special = true;  // SPM: the first text fragment gets the space prefix
  for (const Fragment& f : partition_special(t, text, parse_special)) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.offset, f.length);
    if (v.model == Model::SPM) {
      std::string s = v.add_space_prefix && prev_special ? " " : "";
      s += raw;
      encode_spm(t, replace_all(s, " ", kSpaceEscape), out);
    } else if (v.escape_whitespaces) {
      encode_bpe(t, replace_all(raw, " ", kSpaceEscape), out);
    } else {
      encode_bpe(t, raw, out);
    }
    prev_special = false;
  }
  if (add_special && v.add_eos) out.push_back(v.eos);
  return out;
}

std::string Tokenizer::piece(Token id, bool special) const {
  const Impl& t = *impl_;
  if (id < 0 || size_t(id) >= t.vocab.size()) {
    fail("token id ", id, " is out of range (", t.vocab.size(), " tokens)");
  }
  if (!special && (t.vocab.attrs[id] & (kAttrUnknown | kAttrControl))) return {};
  return t.pieces[id];
}

std::string Tokenizer::decode(std::span<const Token> ids, const DecodeOptions& options) const {
  const Vocab& v = impl_->vocab;
  bool remove_space = v.add_space_prefix;  // the space SPM put before the first word
  if (options.remove_special && v.add_bos && !ids.empty() && ids.front() == v.bos) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (options.remove_special && v.add_eos && !ids.empty() && ids.back() == v.eos) {
    ids = ids.first(ids.size() - 1);
  }
  std::string out;
  for (Token id : ids) {
    const std::string p = piece(id, options.special);
    out += remove_space && !p.empty() && p[0] == ' ' ? std::string_view(p).substr(1) : p;
    remove_space = false;
  }
  if (options.clean_spaces && v.clean_spaces) clean_spaces(out);
  return out;
}

const Vocab& Tokenizer::vocab() const {
  return impl_->vocab;
}
size_t Tokenizer::size() const {
  return impl_->vocab.size();
}
Token Tokenizer::find(std::string_view text) const {
  return impl_->find(text);
}

bool Tokenizer::is_eog(Token id) const {
  const std::vector<Token>& eog = impl_->vocab.eog;
  return std::binary_search(eog.begin(), eog.end(), id);
}

const std::string& Tokenizer::text(Token id) const {
  if (id < 0 || size_t(id) >= size())
    fail("token id ", id, " is out of range (", size(), " tokens)");
  return impl_->vocab.tokens[id];
}

}  // namespace ml::tok
