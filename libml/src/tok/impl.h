#pragma once
// Tokenizer internals shared by the files of libml/src/tok.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ml/tok.h"
#include "tok/pretokenize.h"

namespace ml::tok {

// std::string keys looked up by string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TextMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// BPE tables in raw-byte space: token texts and merges decoded from the GPT-2 byte encoding,
// so words are merged as bytes and never re-encoded. Every string that a merge can produce or
// consume is interned; a symbol whose bytes are not interned can take part in no merge.
struct BpeTables {
  TextMap intern;                   // raw bytes -> intern id
  std::vector<Token> intern_token;  // [n_interned] token id of the string, kNoToken if none
  struct Merge {
    int32_t rank;
    int32_t result;  // intern id of left + right
  };
  std::unordered_map<uint64_t, Merge> merges;  // (left id << 32 | right id) -> merge
  // Fallback for a symbol that is no token: each of its bytes, spelled in the GPT-2 encoding,
  // looked up one encoded byte at a time (llama.cpp's "token_multibyte" loop).
  std::array<Token, 256> encoded_byte_token;
  std::array<int32_t, 256> byte_intern;  // intern id of each single byte, -1 if none
};

struct Tokenizer::Impl {
  Vocab vocab;
  TextMap token_id;                      // stored text -> id
  std::vector<Token> special_by_length;  // control/user-defined/unknown ids, longest text first
  std::optional<Splitter> splitter;      // BPE
  BpeTables bpe;                         // BPE
  std::array<Token, 256> byte_token;     // SPM byte fallback <0xNN> (or the raw byte), kNoToken
  std::vector<std::string> pieces;       // [n_vocab] token_to_piece with special = true

  Token find(std::string_view text) const {
    auto it = token_id.find(text);
    return it == token_id.end() ? kNoToken : it->second;
  }
};

// A piece of input after special-token partitioning: a special token, or raw text.
struct Fragment {
  Token token;  // kNoToken for text
  size_t offset, length;
};
std::vector<Fragment> partition_special(const Tokenizer::Impl& t, std::string_view text,
                                        bool parse_special);

void build_bpe(Tokenizer::Impl& t);
void encode_bpe(const Tokenizer::Impl& t, std::string_view text, std::vector<Token>& out);
void encode_spm(const Tokenizer::Impl& t, std::string_view text, std::vector<Token>& out);

}  // namespace ml::tok
