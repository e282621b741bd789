#pragma once
// Fixtures of check_test and check_gpu_test: a shared tiny model loaded on a backend, and an
// in-memory GGUF holding one [256, 8] table per weight type.
#include <memory>
#include <string>

#include "ml/backend.h"
#include "ml/gguf.h"
#include "ml/model.h"
#include "ml/quant.h"
#include "test_util.h"

namespace ml::test {

struct Loaded {
  std::unique_ptr<gguf::Source> source;
  gguf::File file;
  Model model;
};

inline Loaded load_shared(Backend& be, const std::string& name) {
  Loaded l;
  l.source = gguf::open_source(shared("models/" + name).string());
  l.file = gguf::parse(*l.source);
  l.model = load_model(be, *l.source, l.file);
  return l;
}

constexpr uint64_t kTableK = 256, kTableRows = 8;

// Tables named after their type ("Q4_K"), random valid blocks of it.
inline std::vector<std::byte> tables_gguf(const std::vector<gguf::Type>& types) {
  gguf::Writer w;
  for (gguf::Type t : types)
    w.add_tensor(gguf::type_name(t), t, {kTableK, kTableRows},
                 quant::random_blocks(t, kTableK * kTableRows, uint64_t(t) + 1));
  return w.bytes();
}

}  // namespace ml::test
