// Tensor table → backend tensors. Every tensor an architecture names is checked for
// presence, shape (ggml order) and type and allocated first; then the bytes of all of them
// are fetched in file order (gguf::fetch: several ranges in flight, resumed per piece after a
// dropped connection) and uploaded piece by piece as they arrive, each tensor's byte count
// checked. Telemetry gets a load_stage event per tensor (started/completed/failed).
#include <algorithm>
#include <chrono>

#include "ml/model.h"
#include "ml/quant.h"
#include "ml/telemetry.h"

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
  pending_.push_back({t, info});
  return t;
}

void WeightLoader::finish() {
  std::vector<Pending> todo = std::move(pending_);
  pending_.clear();
  std::stable_sort(todo.begin(), todo.end(), [](const Pending& a, const Pending& b) {
    return a.info->offset < b.info->offset;
  });
  std::vector<gguf::FetchRange> ranges;
  uint64_t total = 0;
  for (const Pending& p : todo) {
    ranges.push_back({p.info->offset, p.info->size});
    total += p.info->size;
  }
  telemetry::Telemetry* tm = options_.telemetry;
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  auto event = [&](const Pending& p, const char* status, double ms, std::string error = {}) {
    if (!tm) return;
    tm->emit(telemetry::LoadStage{"tensors", p.info->name, gguf::type_name(p.info->type), status,
                                  p.info->size, bytes_, total, ms, std::move(error)});
  };
  const auto stage_start = Clock::now();
  if (tm) tm->emit(telemetry::LoadStage{"tensors", "", "", "started", total, 0, total, 0, {}});

  std::vector<uint64_t> got(todo.size(), 0);
  auto tensor_start = Clock::now();
  try {
    gguf::fetch(source_, ranges, options_.fetch,
                [&](size_t i, uint64_t begin, std::span<const std::byte> bytes) {
                  const Pending& p = todo[i];
                  if (begin != got[i])  // fetch() promises order; a gap would be silent garbage
                    fail("tensor ", p.info->name, ": bytes arrived at ", begin, " after ", got[i]);
                  if (begin == 0) {
                    tensor_start = Clock::now();
                    event(p, "started", 0);
                  }
                  be_.upload(p.tensor, bytes, begin);
                  got[i] += bytes.size();
                  bytes_ += bytes.size();
                  if (got[i] == p.info->size) event(p, "completed", ms_since(tensor_start));
                });
    for (size_t i = 0; i < todo.size(); ++i) {
      if (got[i] != todo[i].info->size)
        fail("tensor ", todo[i].info->name, ": ", got[i], " of ", todo[i].info->size,
             " bytes arrived");
    }
  } catch (const Error& e) {
    // Pieces arrive in order, so the tensor at fault is the first one still incomplete.
    size_t current = 0;
    while (current + 1 < todo.size() && got[current] == todo[current].info->size) ++current;
    const std::string why = todo.empty() ? e.what()
                                         : cat("tensor ", todo[current].info->name, " (",
                                               gguf::type_name(todo[current].info->type), ", ",
                                               todo[current].info->size, " bytes): ", e.what());
    if (!todo.empty()) event(todo[current], "failed", ms_since(tensor_start), e.what());
    if (tm)
      tm->emit(telemetry::LoadStage{"tensors", "", "", "failed", total, bytes_, total,
                                    ms_since(stage_start), why});
    throw Error(why);
  }
  if (tm)
    tm->emit(telemetry::LoadStage{
        "tensors", "", "", "completed", total, bytes_, total, ms_since(stage_start), {}});
}

Tensor WeightLoader::need(const std::string& name, std::vector<int64_t> shape, Kind kind) {
  Tensor t = optional(name, shape, kind);
  if (!t) fail("tensor ", name, " is missing from ", source_.name());
  return t;
}

gguf::File load_header(gguf::Source& source, telemetry::Telemetry* tm) {
  const auto start = std::chrono::steady_clock::now();
  auto ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  if (tm) tm->emit(telemetry::LoadStage{"header", "", "", "started", 0, 0, 0, 0, {}});
  try {
    gguf::File file = gguf::parse(source);
    if (tm)
      tm->emit(telemetry::LoadStage{"header",
                                    "",
                                    "",
                                    "completed",
                                    file.header_bytes,
                                    file.header_bytes,
                                    file.header_bytes,
                                    ms(),
                                    {}});
    return file;
  } catch (const Error& e) {
    if (tm) tm->emit(telemetry::LoadStage{"header", "", "", "failed", 0, 0, 0, ms(), e.what()});
    throw;
  }
}

Model load_model(Backend& be, gguf::Source& source, const gguf::File& file,
                 const LoadOptions& options) {
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
  WeightLoader loader(be, source, file, options);
  m.arch->load(loader, m.config, m.weights);
  loader.finish();
  m.weights.bytes = loader.bytes();
  return m;
}

}  // namespace ml
