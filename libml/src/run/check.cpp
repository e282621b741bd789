// Value comparisons and gate F's embedding check (see ml/check.h).
#include "ml/check.h"

#include <charconv>
#include <climits>
#include <cmath>

#include "ml/quant.h"
#include "model/layers.h"

namespace ml::check {

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) fail("comparing ", a.size(), " values with ", b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!std::isfinite(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

float max_abs(std::span<const float> a) {
  float worst = 0.0f;
  for (float v : a) {
    if (!std::isfinite(v)) return INFINITY;
    worst = std::max(worst, std::fabs(v));
  }
  return worst;
}

bool all_finite(std::span<const float> a) {
  for (float v : a)
    if (!std::isfinite(v)) return false;
  return true;
}

std::vector<int32_t> parse_ids(std::string_view text, std::string_view flag) {
  std::vector<int32_t> ids;
  size_t begin = 0;
  while (true) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string_view item = text.substr(begin, end - begin);
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
      fail(flag, ": '", item, "' is not a token id");
    if (v < 0) fail(flag, ": token id ", v, " is negative");
    if (v > INT32_MAX) fail(flag, ": token id ", v, " is past ", INT32_MAX);
    ids.push_back(int32_t(v));
    if (end == text.size()) break;
    begin = end + 1;
  }
  return ids;
}

std::vector<int32_t> spread_ids(int64_t n, int64_t n_vocab) {
  if (n < 1 || n_vocab < 1) fail("cannot pick ", n, " ids from a vocabulary of ", n_vocab);
  // A prime stride visits distant rows (different blocks and scales) in a few steps.
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(int32_t((1 + i * 7919) % n_vocab));
  return ids;
}

namespace {

const gguf::TensorInfo& table_info(const gguf::File& file, const gguf::Source& source,
                                   const std::string& tensor) {
  const gguf::TensorInfo* info = file.find_tensor(tensor);
  if (!info) fail("tensor ", tensor, " is missing from ", source.name());
  size_t dims = info->shape.size();
  while (dims > 2 && info->shape[dims - 1] == 1) --dims;
  if (dims != 2) fail("tensor ", tensor, " is not a 2-D table of rows");
  if (!quant::has_reference(info->type))
    fail("tensor ", tensor, " has type ", gguf::type_name(info->type),
         ", which has no dequantize reference");
  return *info;
}

// The report's rows, checked against the table, and their reference values (dequantized
// from the file's bytes of just those rows, times scale) → [rows][n_embd].
std::vector<float> reference_rows(gguf::Source& source, const gguf::TensorInfo& info,
                                  EmbedReport& r) {
  const uint64_t rb = gguf::row_bytes(info.type, uint64_t(r.n_embd));
  std::vector<std::byte> bytes(rb);
  std::vector<float> ref(r.rows.size() * size_t(r.n_embd));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    gguf::read_tensor(source, info, bytes, uint64_t(r.rows[i]) * rb);
    float* row = ref.data() + i * size_t(r.n_embd);
    quant::dequantize(info.type, bytes, std::span<float>(row, size_t(r.n_embd)));
    for (int64_t j = 0; j < r.n_embd; ++j) row[j] *= r.scale;
  }
  return ref;
}

EmbedReport start_report(const gguf::TensorInfo& info, std::span<const int32_t> rows) {
  EmbedReport r;
  r.tensor = info.name;
  r.type = info.type;
  r.n_embd = int64_t(info.shape[0]);
  r.n_rows = int64_t(info.shape[1]);
  if (rows.empty()) fail("no rows asked of ", info.name);
  for (int32_t id : rows)
    if (id < 0 || id >= r.n_rows)
      fail("token id ", id, " is outside ", info.name, "'s ", r.n_rows, " rows [0, ", r.n_rows,
           ")");
  r.rows.assign(rows.begin(), rows.end());
  return r;
}

void finish_report(EmbedReport& r, std::span<const float> got, std::span<const float> ref) {
  if (got.size() != ref.size())
    fail(r.tensor, ": backend returned ", got.size(), " values, expected ", ref.size());
  const auto K = size_t(r.n_embd);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    r.max_diff.push_back(max_abs_diff(got.subspan(i * K, K), ref.subspan(i * K, K)));
    r.max_ref.push_back(max_abs(ref.subspan(i * K, K)));
  }
}

}  // namespace

EmbedReport embed_model(Backend& be, gguf::Source& source, const gguf::File& file,
                        std::span<const int32_t> tokens) {
  Config cfg = load_config(file.metadata);
  const gguf::TensorInfo& info = table_info(file, source, "token_embd.weight");
  EmbedReport r = start_report(info, tokens);
  if (r.n_embd != cfg.n_embd)
    fail("token_embd.weight rows have ", r.n_embd, " values, the model's n_embd is ", cfg.n_embd);
  cfg.n_vocab = r.n_rows;
  r.scale = cfg.embed_scale;
  const std::vector<float> ref = reference_rows(source, info, r);

  WeightLoader loader(be, source, file);
  Weights w;
  w.token_embd =
      loader.need("token_embd.weight", {cfg.n_embd, cfg.n_vocab}, WeightLoader::Kind::matrix);
  loader.finish();
  const KvCache kv;
  be.reset_transient();
  const Forward f{be, cfg, w, kv, upload_i32(be, tokens), {}, {}, 0, int64_t(tokens.size()), 0};
  const std::vector<float> got = read_f32(be, layers::embed(f));
  be.free(w.token_embd);
  finish_report(r, got, ref);
  return r;
}

EmbedReport embed_table(Backend& be, gguf::Source& source, const gguf::File& file,
                        const std::string& tensor, std::span<const int32_t> rows) {
  const gguf::TensorInfo& info = table_info(file, source, tensor);
  EmbedReport r = start_report(info, rows);
  const std::vector<float> ref = reference_rows(source, info, r);
  WeightLoader loader(be, source, file);
  const Tensor table = loader.need(tensor, {r.n_embd, r.n_rows}, WeightLoader::Kind::matrix);
  loader.finish();
  be.reset_transient();
  const std::vector<float> got = read_f32(be, be.get_rows(table, upload_i32(be, rows)));
  be.free(table);
  finish_report(r, got, ref);
  return r;
}

}  // namespace ml::check
