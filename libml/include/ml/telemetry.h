#pragma once
// Telemetry: one stream of events from the loader, the Vulkan device and the generation loop,
// fanned out to sinks: JSON lines (--telemetry FILE, `-` for stderr) and the terminal HUD
// (a redrawn panel on a TTY, plain log lines on a pipe). Every JSON line is an object with
// "event" (its kind), "t_ms" (milliseconds since the stream started) and the kind's fields;
// tests/data/telemetry.schema.json is the contract.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "ml/backend.h"

namespace ml::vk {
struct DeviceOptions;
struct Limits;
}  // namespace ml::vk

namespace ml {
class Session;
class Sampler;
namespace tok {
class Tokenizer;
}
}  // namespace ml

namespace ml::telemetry {

// A stage of getting to tokens: "header", "tensors", "pipelines", "kv", "prefill", "decode".
// With a tensor name it is one tensor of the "tensors" stage.
struct LoadStage {
  std::string stage;
  std::string tensor;        // empty for the stage itself
  std::string tensor_type;   // ggml type name of the tensor
  std::string status;        // "started", "completed", "failed"
  uint64_t bytes = 0;        // the tensor's (or stage's) bytes
  uint64_t done_bytes = 0;   // bytes of the stage finished so far (progress)
  uint64_t total_bytes = 0;  // bytes the whole stage moves
  double duration_ms = 0;    // for completed/failed
  std::string error;         // for failed
};

// A persistent device-local buffer (weights, KV cache); the budget is Limits::memory.
struct GpuAlloc {
  std::string name;
  uint64_t bytes = 0;
  uint64_t total = 0;  // device bytes in use after it
};

struct Limits {
  std::string device, driver;
  uint64_t max_storage_buffer_range = 0, max_buffer_size = 0, memory = 0;
  uint32_t subgroup_size = 0;
  bool shader_float16 = false, cooperative_matrix = false;
};

struct Pipeline {
  std::string kernel;   // shader source, "matmul_vec.comp"
  std::string variant;  // its defines, "TYPE=Q4_K WG=256"
  bool cache_hit = false;
  double ms = 0;
};

// Which backend runs each layer; a fallback is a layer that had to leave the GPU.
struct Layers {
  std::vector<std::string> modes;  // [n_layer] "gpu" or "cpu"
  std::vector<int> fallbacks;      // layer indices
  std::string reason;              // why, for fallbacks
};

// The MoE router's choice for one token of a forward pass: per layer, the experts it picked
// and their softmax weights (gpt-oss; emitted only when a sink asks for router choices).
struct RouterLayer {
  int layer = 0;
  std::vector<int32_t> experts;
  std::vector<float> weights;
};
struct Router {
  int64_t pos = 0;    // the token's position in the sequence
  int32_t token = 0;  // the token fed at that position
  std::vector<RouterLayer> layers;
};
struct TopEntry {
  int32_t id = 0;
  std::string text;
  float p = 0;
};

struct Token {
  std::string phase;  // "prefill" (prompt tokens, one event for the batch) or "decode"
  int32_t id = 0;
  std::string text;
  std::vector<TopEntry> top_k;    // highest first
  double entropy = 0;             // nats, over the whole distribution
  double ms = 0;                  // the forward pass (and sampling) that produced it
  int64_t n_tokens = 1;           // tokens the pass consumed (the prompt length for prefill)
  int64_t n_past = 0, n_ctx = 0;  // KV cache fill after it
};

struct Summary {
  uint64_t load_bytes = 0;
  double load_ms = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_ms = 0, decode_ms = 0;
  uint64_t gpu_bytes = 0;
};

using Event = std::variant<LoadStage, GpuAlloc, Limits, Pipeline, Layers, Router, Token, Summary>;
const char* event_name(const Event& e);  // "load_stage", "gpu_alloc", ...
// One JSON object, no newline.
std::string to_json(const Event& e, double t_ms);

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void on(const Event& e, double t_ms) = 0;
  virtual void close() {}  // the stream ended: final redraw, flush
};

// JSON lines into a file, or stderr for "-". Flushed per line so a crash loses nothing.
class JsonLines final : public Sink {
 public:
  explicit JsonLines(const std::string& path);
  ~JsonLines() override;
  JsonLines(const JsonLines&) = delete;
  JsonLines& operator=(const JsonLines&) = delete;
  void on(const Event& e, double t_ms) override;

 private:
  std::FILE* out_ = nullptr;
  bool owned_ = false;
};

struct HudOptions {
  bool tty = false;         // redraw a panel with escape codes; else plain lines
  bool show_probs = false;  // top-5 bars per generated token
  int width = 80;
  int redraw_ms = 80;  // at most one redraw per this long (stage changes draw at once)
  // Lines the panel keeps in the warning colour (bring-up flags: the output is not the
  // model's). Drawn on a TTY only: on a pipe the caller has logged them already.
  std::vector<std::string> warnings;
};

// The live terminal panel (or plain lines) drawn from the event stream; writes to `out`.
class Hud final : public Sink {
 public:
  Hud(std::FILE* out, HudOptions options);
  ~Hud() override;
  Hud(const Hud&) = delete;
  Hud& operator=(const Hud&) = delete;
  void on(const Event& e, double t_ms) override;
  void close() override;
  // The panel as it would be drawn now, without escape codes (tests, screenshots).
  std::string panel() const;

 private:
  struct State;
  std::string render(bool color) const;
  void draw(bool force, double t_ms);
  std::FILE* out_;
  HudOptions options_;
  std::unique_ptr<State> state_;
};

// The stream: thread-safe emit, sinks in order. An empty stream costs one branch per event.
class Telemetry {
 public:
  Telemetry();
  ~Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;
  void add(std::unique_ptr<Sink> sink);
  bool empty() const { return sinks_.empty(); }
  void emit(const Event& e);
  void close();  // tells every sink once; later events are dropped
  double now_ms() const;

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::chrono::steady_clock::time_point start_;
  bool closed_ = false;
};

// Sets the device's hooks so that it reports its limits, pipelines and persistent allocations
// (not the per-pass transients) into `t`, which must outlive the device.
void hook(vk::DeviceOptions& options, Telemetry& t);
Limits limits_event(const vk::Limits& limits);  // memory: the device-local heaps

// Entropy (nats) and the k most probable tokens of softmax(logits); ids only (text empty).
struct Distribution {
  double entropy = 0;
  std::vector<TopEntry> top;
};
Distribution distribution(const float* logits, size_t n, int k);

// Prefill and decode with events: stages "prefill" and "decode" (load_stage), one Token for
// the prompt's pass and one per generated token (top `n_probs` with their text, entropy, KV
// fill). Stops after n_predict tokens, at an end-of-generation token, or at a full context.
// on_text gets each piece of text as it becomes whole UTF-8.
struct Generated {
  std::vector<int32_t> ids;
  std::string text;
  double prefill_ms = 0, decode_ms = 0;
};
Generated generate(Session& session, Sampler& sampler, const tok::Tokenizer& tokenizer,
                   std::span<const int32_t> prompt, int n_predict, Telemetry* t, int n_probs = 5,
                   const std::function<void(const std::string&)>& on_text = {});

// The MoE router's choices of each forward pass, caught by the backend's observer while the
// pass is recorded (the tensors `ffn_moe_topk` and `ffn_moe_weights` of layers [0, n_layer))
// and read in one submit once the pass has run: take() turns them into one Router event per
// token. Installs its observer on construction; the backend must outlive it.
class RouterTap {
 public:
  RouterTap(Backend& be, int n_layer);
  // The events of the pass over tokens at positions [pos0, pos0 + tokens.size()); forgets
  // the pass's tensors (they die with its transients).
  std::vector<Router> take(int64_t pos0, std::span<const int32_t> tokens);

 private:
  Backend& be_;
  std::vector<std::pair<Tensor, Tensor>> routes_;  // per layer: ids [k, n], weights [k, n]
};

}  // namespace ml::telemetry
