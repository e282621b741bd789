// The event stream and its JSON-lines sink. Field names are the schema's
// (tests/data/telemetry.schema.json); text is dumped with invalid UTF-8 replaced, since a
// token may be half a character.
#include "ml/telemetry.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ml/error.h"

namespace ml::telemetry {
namespace {

using nlohmann::json;

template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;

json top_json(const std::vector<TopEntry>& top) {
  json out = json::array();
  for (const TopEntry& t : top) out.push_back({{"id", t.id}, {"text", t.text}, {"p", t.p}});
  return out;
}

json fields(const Event& e) {
  return std::visit(
      Overload{
          [](const LoadStage& s) {
            json j = {{"stage", s.stage},
                      {"status", s.status},
                      {"bytes", s.bytes},
                      {"done_bytes", s.done_bytes},
                      {"total_bytes", s.total_bytes},
                      {"duration_ms", s.duration_ms}};
            if (!s.tensor.empty()) j["tensor"] = s.tensor;
            if (!s.tensor_type.empty()) j["tensor_type"] = s.tensor_type;
            if (!s.error.empty()) j["error"] = s.error;
            return j;
          },
          [](const GpuAlloc& a) {
            return json{{"name", a.name}, {"bytes", a.bytes}, {"total", a.total}};
          },
          [](const Limits& l) {
            return json{{"device", l.device},
                        {"driver", l.driver},
                        {"max_storage_buffer_range", l.max_storage_buffer_range},
                        {"max_buffer_size", l.max_buffer_size},
                        {"memory", l.memory},
                        {"subgroup_size", l.subgroup_size},
                        {"shader_float16", l.shader_float16},
                        {"cooperative_matrix", l.cooperative_matrix}};
          },
          [](const Pipeline& p) {
            return json{{"kernel", p.kernel},
                        {"variant", p.variant},
                        {"status", p.cache_hit ? "cache_hit" : "compile"},
                        {"ms", p.ms}};
          },
          [](const Layers& l) {
            return json{{"modes", l.modes}, {"fallbacks", l.fallbacks}, {"reason", l.reason}};
          },
          [](const Router& r) {
            json layers = json::array();
            for (const RouterLayer& l : r.layers)
              layers.push_back(
                  json{{"layer", l.layer}, {"experts", l.experts}, {"weights", l.weights}});
            return json{{"pos", r.pos}, {"token", r.token}, {"layers", layers}};
          },
          [](const Token& t) {
            return json{{"phase", t.phase},           {"id", t.id},           {"text", t.text},
                        {"top_k", top_json(t.top_k)}, {"entropy", t.entropy}, {"ms", t.ms},
                        {"n_tokens", t.n_tokens},     {"n_past", t.n_past},   {"n_ctx", t.n_ctx}};
          },
          [](const Summary& s) {
            return json{
                {"load_bytes", s.load_bytes},       {"load_ms", s.load_ms},
                {"prompt_tokens", s.prompt_tokens}, {"generated_tokens", s.generated_tokens},
                {"prefill_ms", s.prefill_ms},       {"decode_ms", s.decode_ms},
                {"gpu_bytes", s.gpu_bytes}};
          },
      },
      e);
}

}  // namespace

const char* event_name(const Event& e) {
  static constexpr const char* names[] = {"load_stage", "gpu_alloc", "limits", "pipeline",
                                          "layers",     "router",    "token",  "summary"};
  static_assert(std::variant_size_v<Event> == std::size(names));
  return names[e.index()];
}

std::string to_json(const Event& e, double t_ms) {
  json j = fields(e);
  j["event"] = event_name(e);
  j["t_ms"] = std::round(t_ms * 1000) / 1000;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

JsonLines::JsonLines(const std::string& path) {
  if (path == "-") {
    out_ = stderr;
    return;
  }
  out_ = std::fopen(path.c_str(), "w");
  if (!out_) fail(path, ": cannot open for telemetry: ", std::strerror(errno));
  owned_ = true;
}

JsonLines::~JsonLines() {
  if (owned_) std::fclose(out_);
}

void JsonLines::on(const Event& e, double t_ms) {
  const std::string line = to_json(e, t_ms) + "\n";
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

Telemetry::Telemetry() : start_(std::chrono::steady_clock::now()) {}

Telemetry::~Telemetry() {
  close();
}

void Telemetry::add(std::unique_ptr<Sink> sink) {
  std::lock_guard<std::mutex> lock(mutex_);
  sinks_.push_back(std::move(sink));
}

double Telemetry::now_ms() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
      .count();
}

void Telemetry::emit(const Event& e) {
  if (sinks_.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  const double t = now_ms();
  for (auto& s : sinks_) s->on(e, t);
}

void Telemetry::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  closed_ = true;
  for (auto& s : sinks_) s->close();
}

Distribution distribution(const float* logits, size_t n, int k) {
  Distribution d;
  if (n == 0) return d;
  const float max = *std::max_element(logits, logits + n);
  double z = 0, zx = 0;  // Σ e^(x-max), Σ (x-max)·e^(x-max)
  for (size_t i = 0; i < n; ++i) {
    const double x = double(logits[i]) - max, ex = std::exp(x);
    z += ex;
    zx += x * ex;
  }
  // H = -Σ p log p with p = e^x / z: log z - Σ x e^x / z.
  d.entropy = std::max(0.0, std::log(z) - zx / z);
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = int32_t(i);
  const size_t kk = std::min<size_t>(size_t(std::max(k, 0)), n);
  std::partial_sort(ids.begin(), ids.begin() + long(kk), ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  for (size_t i = 0; i < kk; ++i)
    d.top.push_back({ids[i], "", float(std::exp(double(logits[ids[i]]) - max) / z)});
  return d;
}

}  // namespace ml::telemetry
