#pragma once
// Tokenizers from GGUF metadata alone (`tokenizer.ggml.*`), matching llama.cpp's llama-vocab.cpp
// token for token: byte-level BPE (`tokenizer.ggml.model` = "gpt2", merges by rank, the
// pre-tokenizer regexes of every `tokenizer.ggml.pre` value llama.cpp knows) and SentencePiece
// (`llama`: score-ordered merges, byte fallback `<0xNN>`, the U+2581 space escape). Special tokens
// in text are matched as single tokens when asked; ids decode to bytes, and a streaming decoder
// never emits part of a UTF-8 character.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ml/gguf.h"

namespace ml::tok {

using Token = int32_t;
inline constexpr Token kNoToken = -1;

// llama_token_attr: what a token is. GGUF stores `tokenizer.ggml.token_type` (1 normal,
// 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); llama.cpp turns each into one bit
// and adds the strip flags by model name.
enum Attr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,  // a matched special token eats the spaces before it
  kAttrRstrip = 1u << 8,  // ... and after it
};

enum class Model { SPM, BPE };  // tokenizer.ggml.model "llama" / "gpt2"

// The vocabulary as plain data, validated: every id in range, array lengths equal, merges
// naming tokens that exist.
struct Vocab {
  Model model = Model::BPE;
  std::string pre;                  // tokenizer.ggml.pre ("default" when absent)
  std::vector<std::string> tokens;  // [n_vocab] as stored (BPE: GPT-2 byte-to-unicode text)
  std::vector<float> scores;        // [n_vocab] SPM merge priority; 0 when absent
  std::vector<uint32_t> attrs;      // [n_vocab] Attr bits
  std::vector<std::string> merges;  // [n_merges] "left right", rank = index (BPE only)

  Token bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken, unk = kNoToken,
        pad = kNoToken, sep = kNoToken;
  std::vector<Token> eog;  // ids that end generation (eos, eot, <|return|>, ...), sorted

  bool add_bos = false, add_eos = false;
  bool add_space_prefix = false;    // SPM: a space before the first text fragment
  bool escape_whitespaces = false;  // BPE of the SPM kind (gemma4): ' ' becomes U+2581
  bool byte_encode = true;          // BPE: GPT-2 byte-to-unicode mapping of words
  bool ignore_merges = false;       // BPE (llama3 ...): a word that is a token is taken whole
  bool clean_spaces = false;        // decode: " ." -> "." and the like

  size_t size() const { return tokens.size(); }
};

// Reads and validates `tokenizer.ggml.*`. Throws ml::Error naming the key and index at fault,
// and for a `tokenizer.ggml.pre` this build has no pre-tokenizer for.
Vocab load_vocab(const gguf::Metadata& metadata);

// Every `tokenizer.ggml.pre` value that load_vocab accepts.
std::vector<std::string> supported_pre();

struct DecodeOptions {
  bool special = true;          // render control/unknown tokens as their text
  bool remove_special = false;  // drop a leading BOS / trailing EOS the vocab adds
  bool clean_spaces = false;    // apply the vocab's clean_spaces rule
};

// A tokenizer: the vocabulary plus the tables and compiled regexes built from it. Immutable
// after construction; encode/decode may run on several threads at once.
class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  static Tokenizer from_metadata(const gguf::Metadata& metadata);
  static Tokenizer from_file(const std::string& gguf_path);

  // Text to ids. add_special: BOS/EOS as the vocab says. parse_special: control tokens written
  // in the text become single tokens (user-defined tokens always do, as in llama.cpp).
  // Invalid UTF-8 never fails: BPE reads each bad byte as U+FFFD (as llama.cpp does), SPM
  // spells it with byte tokens.
  std::vector<Token> encode(std::string_view text, bool add_special = true,
                            bool parse_special = false) const;

  // One token's bytes (llama_token_to_piece); may end in the middle of a UTF-8 character.
  // special = false renders control and unknown tokens as nothing. Throws for an id out of range.
  std::string piece(Token id, bool special = true) const;
  // Ids to bytes (llama_detokenize); the result may hold invalid UTF-8 when the ids do.
  std::string decode(std::span<const Token> ids, const DecodeOptions& options = {}) const;

  const Vocab& vocab() const;
  size_t size() const;
  Token find(std::string_view text) const;  // the token whose text is exactly this; kNoToken
  bool is_eog(Token id) const;
  const std::string& text(Token id) const;  // the stored token text; throws when out of range

  struct Impl;  // opaque: the tables of libml/src/tok/impl.h

 private:
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of ids into text that is always whole UTF-8 characters: bytes of a character
// split across tokens are held until the token that completes it; bytes that can never form a
// character come out as U+FFFD (one per maximal invalid subsequence, as Unicode recommends).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool special = true)
      : tokenizer_(&tokenizer), special_(special) {}
  std::string push(Token id);  // the text that became complete with this token
  std::string flush();         // what is still held, an incomplete character as U+FFFD
  size_t pending() const { return held_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool special_;
  std::string held_;
};

// UTF-8 helpers the decoders and tests share.
bool is_valid_utf8(std::string_view s);
// Replaces each maximal invalid subsequence by U+FFFD; valid input comes back unchanged.
std::string sanitize_utf8(std::string_view s);

// llama.cpp's tokenizer test vectors (tests/test-tokenizer-0): strings separated by a line
// `__ggml_vocab_test__` in NAME.inp, the expected ids of each on one line of NAME.out,
// tokenized without BOS and without parsing special tokens.
struct VectorCase {
  std::string text;
  std::vector<Token> expected;
  std::vector<Token> actual;
  bool passed() const { return expected == actual; }
};
std::vector<VectorCase> run_vectors(const Tokenizer& tokenizer, const std::string& inp_path,
                                    const std::string& out_path);

}  // namespace ml::tok
