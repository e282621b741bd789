// Tensor table → backend tensors. Every tensor an architecture names is checked for
// presence, shape (ggml order) and type before its bytes are uploaded.
#include <algorithm>

#include "ml/model.h"
#include "ml/quant.h"

namespace ml {
namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

Tensor WeightLoader::optional(const std::string& name, std::vector<int64_t> shape, Kind kind) {
  const gguf::TensorInfo* info = file_.find_tensor(name);
  if (!info) return {};
  std::vector<int64_t> have(info->shape.begin(), info->shape.end());
  while (have.size() > shape.size() && have.back() == 1) have.pop_back();
  while (shape.size() < have.size()) shape.push_back(1);
  if (have != shape)
    fail("tensor ", name, " has shape ", shape_text(have), ", expected ", shape_text(shape));
  if (kind == Kind::f32 && info->type != gguf::Type::F32)
    fail("tensor ", name, " has type ", gguf::type_name(info->type), ", expected F32");
  if (kind == Kind::matrix && !quant::has_reference(info->type))
    fail("tensor ", name, " has type ", gguf::type_name(info->type),
         ", which matmul does not take");
  if (shape.size() > 4) fail("tensor ", name, " has more than 4 dimensions");
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  std::copy(shape.begin(), shape.end(), ne.begin());
  if (ne[0] % int64_t(gguf::traits(info->type).block_size) != 0)
    fail("tensor ", name, ": row of ", ne[0], " values is not whole ", gguf::type_name(info->type),
         " blocks");
  Tensor t = be_.alloc(info->type, ne, name);
  if (tensor_bytes(t) != info->size)
    fail("tensor ", name, ": ", info->size, " bytes in the file, expected ", tensor_bytes(t));
  std::span<const std::byte> view = source_.view(info->offset, info->size);
  if (view.size() == info->size) {
    be_.upload(t, view);
  } else {
    be_.upload(t, gguf::read_tensor(source_, *info));
  }
  bytes_ += info->size;
  return t;
}

Tensor WeightLoader::need(const std::string& name, std::vector<int64_t> shape, Kind kind) {
  Tensor t = optional(name, shape, kind);
  if (!t) fail("tensor ", name, " is missing from ", source_.name());
  return t;
}

Model load_model(Backend& be, gguf::Source& source, const gguf::File& file) {
  Model m;
  m.config = load_config(file.metadata);
  m.arch = &find_architecture(m.config.arch);
  const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
  if (!embd) fail("tensor token_embd.weight is missing from ", source.name());
  if (embd->shape.size() < 2) fail("tensor token_embd.weight is not 2-D");
  if (m.config.n_vocab == 0) m.config.n_vocab = int64_t(embd->shape[1]);
  if (m.config.n_vocab > int64_t(embd->shape[1]))
    fail("vocabulary of ", m.config.n_vocab, " tokens but token_embd.weight has ", embd->shape[1],
         " rows");
  m.config.n_vocab = int64_t(embd->shape[1]);
  m.config.tied_output = file.find_tensor("output.weight") == nullptr;
  WeightLoader loader(be, source, file);
  m.arch->load(loader, m.config, m.weights);
  m.weights.bytes = loader.bytes();
  return m;
}

}  // namespace ml
