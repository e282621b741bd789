#pragma once
#include <cstdint>
#include <string>

#include "ml/gguf.h"

namespace ml::synth {

// A byte-level BPE vocabulary of n_vocab tokens: the 256 byte symbols, a few merges, the
// family's special tokens at their real ids where known, the rest reserved control tokens.
void add_vocab(gguf::Writer& w, const std::string& arch, uint32_t n_vocab);

}  // namespace ml::synth
