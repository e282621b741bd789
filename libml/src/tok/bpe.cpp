// Byte-level BPE (llama.cpp llm_tokenizer_bpe_session): the pre-tokenizer cuts the text into
// words; in each word, starting from single bytes, the adjacent pair with the lowest merge
// rank (leftmost on ties) is merged until no pair has a merge. Tables live in raw-byte space
// (see BpeTables), which gives the same result as merging GPT-2-encoded text.
#include <algorithm>

#include "tok/impl.h"
#include "tok/utf8.h"

namespace ml::tok {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

int32_t intern(BpeTables& b, std::string text, Token token) {
  auto [it, fresh] = b.intern.emplace(std::move(text), int32_t(b.intern_token.size()));
  if (fresh) b.intern_token.push_back(token);
  if (token != kNoToken && b.intern_token[it->second] == kNoToken) {
    b.intern_token[it->second] = token;
  }
  return it->second;
}

struct Symbol {
  uint32_t offset, length;  // bytes of the word
  int32_t id;               // intern id, -1 when the bytes are not interned
  int32_t prev, next;
};

struct Bigram {
  int32_t left, right;
  int32_t left_id, right_id;
  int32_t rank;
  int32_t result;
};

// Heap order: lowest rank on top, then leftmost (llm_bigram_bpe::comparator).
bool after(const Bigram& a, const Bigram& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

}  // namespace

void build_bpe(Tokenizer::Impl& t) {
  const Vocab& v = t.vocab;
  t.splitter.emplace(*find_pre(v.pre), v.pre);
  BpeTables& b = t.bpe;
  b.intern.reserve(v.size() + v.merges.size() / 4);
  std::string raw;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.byte_encode ? byte_decode(v.tokens[i], raw) : (raw = v.tokens[i], true)) {
      intern(b, raw, Token(i));
    }
  }
  b.merges.reserve(v.merges.size());
  std::string left, right;
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    const std::string_view m = v.merges[rank];
    const size_t space = m.find(' ', 1);  // load_vocab checked there is one
    const std::string_view l = m.substr(0, space), r = m.substr(space + 1);
    if (v.byte_encode) {
      if (!byte_decode(l, left) || !byte_decode(r, right)) continue;  // can never apply
    } else {
      left = l, right = r;
    }
    const int32_t li = intern(b, left, kNoToken), ri = intern(b, right, kNoToken);
    const int32_t result = intern(b, left + right, kNoToken);
    b.merges.emplace(pair_key(li, ri), BpeTables::Merge{int32_t(rank), result});  // first wins
  }
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, char(c));
    b.encoded_byte_token[c] = t.find(one);
    auto it = b.intern.find(one);
    b.byte_intern[c] = it == b.intern.end() ? -1 : it->second;
  }
}

void encode_bpe(const Tokenizer::Impl& t, std::string_view input, std::vector<Token>& out) {
  const BpeTables& b = t.bpe;
  // llama.cpp reads each byte of invalid UTF-8 as U+FFFD before splitting.
  std::string repaired;
  std::string_view text = input;
  if (!is_valid_utf8(input)) {
    for (uint32_t cpt : decode_lenient(input)) append_utf8(repaired, cpt);
    text = repaired;
  }
  auto find_interned = [&](std::string_view s) {
    auto it = b.intern.find(s);
    return it == b.intern.end() ? -1 : it->second;
  };

  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
  for (auto [begin, length] : t.splitter->split(text)) {
    const std::string_view word = text.substr(begin, length);
    if (t.vocab.ignore_merges) {
      const int32_t id = find_interned(word);
      if (id >= 0 && b.intern_token[id] != kNoToken) {
        out.push_back(b.intern_token[id]);
        continue;
      }
    }
    symbols.clear();
    heap.clear();
    // One symbol per byte when words are byte-encoded (each byte is one GPT-2 character),
    // one per UTF-8 character otherwise.
    for (uint32_t i = 0; i < word.size();) {
      const uint32_t n =
          t.vocab.byte_encode ? 1 : uint32_t(std::min(utf8_len(word[i]), word.size() - i));
      const int32_t id =
          n == 1 ? b.byte_intern[uint8_t(word[i])] : find_interned(word.substr(i, n));
      const int32_t index = int32_t(symbols.size());
      symbols.push_back({i, n, id, index - 1, i + n < word.size() ? index + 1 : -1});
      i += n;
    }
    auto add_bigram = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const int32_t li = symbols[left].id, ri = symbols[right].id;
      if (li < 0 || ri < 0) return;
      auto it = b.merges.find(pair_key(li, ri));
      if (it == b.merges.end()) return;
      heap.push_back({left, right, li, ri, it->second.rank, it->second.result});
      std::push_heap(heap.begin(), heap.end(), after);
    };
    for (int32_t i = 1; i < int32_t(symbols.size()); ++i) add_bigram(i - 1, i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), after);
      const Bigram bg = heap.back();
      heap.pop_back();
      Symbol& l = symbols[bg.left];
      Symbol& r = symbols[bg.right];
      // Stale when either side has changed since the pair was queued.
      if (l.length == 0 || r.length == 0 || l.id != bg.left_id || r.id != bg.right_id) continue;
      l.length += r.length;
      l.id = bg.result;
      r.length = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = bg.left;
      add_bigram(l.prev, bg.left);
      add_bigram(bg.left, l.next);
    }
    for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
      const Symbol& s = symbols[i];
      const Token token = s.id >= 0 ? b.intern_token[s.id] : kNoToken;
      if (token != kNoToken) {
        out.push_back(token);
        continue;
      }
      for (uint32_t k = 0; k < s.length; ++k) {
        const uint8_t byte = uint8_t(word[s.offset + k]);
        if (!t.vocab.byte_encode) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          const char name[] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
          if (const Token id = t.find(std::string_view(name, 6)); id != kNoToken) out.push_back(id);
          continue;
        }
        for (char e : byte_unicode().encode[byte]) {
          if (const Token id = b.encoded_byte_token[uint8_t(e)]; id != kNoToken) out.push_back(id);
        }
      }
    }
  }
}

}  // namespace ml::tok
