// SentencePiece BPE (llama.cpp llm_tokenizer_spm_session): start from UTF-8 characters and
// keep merging the adjacent pair whose concatenation is the vocabulary token with the highest
// score (leftmost on ties); a final piece that is no token is spelled with byte tokens <0xNN>.
#include <algorithm>

#include "tok/impl.h"
#include "tok/utf8.h"

namespace ml::tok {
namespace {

struct Symbol {
  uint32_t offset, length;
  int32_t prev, next;
};

struct Bigram {
  int32_t left, right;
  float score;
  uint32_t size;
};

// Heap order: highest score on top, then leftmost (llm_bigram_spm::comparator).
bool before(const Bigram& a, const Bigram& b) {
  return a.score < b.score || (a.score == b.score && a.left > b.left);
}

}  // namespace

void encode_spm(const Tokenizer::Impl& t, std::string_view text, std::vector<Token>& out) {
  std::vector<Symbol> symbols;
  for (uint32_t i = 0; i < text.size();) {
    const uint32_t n = uint32_t(std::min(utf8_len(text[i]), text.size() - i));
    const int32_t index = int32_t(symbols.size());
    symbols.push_back({i, n, index - 1, i + n < text.size() ? index + 1 : -1});
    i += n;
  }
  std::vector<Bigram> heap;
  auto add_bigram = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].length + symbols[right].length;
    const Token id = t.find(text.substr(symbols[left].offset, size));
    if (id == kNoToken) return;
    heap.push_back({left, right, t.vocab.scores[id], size});
    std::push_heap(heap.begin(), heap.end(), before);
  };
  for (int32_t i = 1; i < int32_t(symbols.size()); ++i) add_bigram(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), before);
    const Bigram bg = heap.back();
    heap.pop_back();
    Symbol& l = symbols[bg.left];
    Symbol& r = symbols[bg.right];
    if (l.length == 0 || r.length == 0 || l.length + r.length != bg.size) continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = bg.left;
    add_bigram(l.prev, bg.left);
    add_bigram(bg.left, l.next);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (const Token id = t.find(text.substr(s.offset, s.length)); id != kNoToken) {
      out.push_back(id);
      continue;
    }
    // Byte fallback; a vocabulary without the byte token gets <unk> (llama.cpp would throw).
    for (uint32_t k = 0; k < s.length; ++k) {
      const Token id = t.byte_token[uint8_t(text[s.offset + k])];
      if (id != kNoToken) {
        out.push_back(id);
      } else if (t.vocab.unk != kNoToken) {
        out.push_back(t.vocab.unk);
      }
    }
  }
}

}  // namespace ml::tok
