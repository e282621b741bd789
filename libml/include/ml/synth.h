#pragma once
// Synthetic models: random weights in the exact tensor names, shapes and per-tensor weight
// types of a real release, for benchmarks where the real weights are not at hand.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ml/gguf.h"

namespace ml::synth {

struct PresetInfo {
  std::string name;   // "llama3.2-1b"
  std::string arch;   // general.architecture
  std::string about;  // the release it mirrors
};

const std::vector<PresetInfo>& presets();

// The preset as a GGUF writer whose tensors are produced while writing (random valid blocks
// of each type, norms at 1, small biases), with a byte-level BPE vocabulary of the real size
// that holds the family's special tokens. Throws ml::Error listing the presets for an
// unknown name.
gguf::Writer build(std::string_view preset, uint64_t seed = 1);

}  // namespace ml::synth
