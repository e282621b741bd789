// The session: KV cache allocation (with a fit check against device memory), batched
// prefill and greedy decoding over a backend.
#include <algorithm>
#include <chrono>
#include <numeric>

#include "ml/run.h"

namespace ml {

Session::Session(Backend& be, const Model& model, SessionOptions options)
    : be_(be), model_(model), options_(options) {
  const Config& c = model.config;
  if (options.kv_type != gguf::Type::F16 && options.kv_type != gguf::Type::F32)
    fail("KV cache type must be f16 or f32");
  if (options.n_batch < 1) fail("batch size ", options.n_batch, " is below 1");
  if (options.n_layer < 0 || options.n_layer > c.n_layer)
    fail("--layers ", options.n_layer, " is outside [0, ", c.n_layer, "]");
  if (options.n_ctx < 0) fail("context length ", options.n_ctx, " is negative");
  n_ctx_ = options.n_ctx > 0 ? std::min(options.n_ctx, c.n_ctx_train) : c.n_ctx_train;
  kv_.type = options.kv_type;
  const uint64_t elt = options.kv_type == gguf::Type::F16 ? 2 : 4;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const bool swa = c.swa_layers[size_t(il)];
    kv_.n_cells.push_back(swa ? std::min<int64_t>(c.n_swa, n_ctx_) : n_ctx_);
    kv_bytes_ += 2 * uint64_t(kv_.n_cells.back()) * uint64_t(c.n_embd_kv()) * elt;
  }
  const uint64_t capacity = be.memory_capacity();
  const uint64_t weights = model.weights.bytes;
  if (weights > capacity || kv_bytes_ > capacity - weights)
    fail("KV cache of ", kv_bytes_ >> 20, " MiB (n_ctx ", n_ctx_, ", ",
         gguf::type_name(options.kv_type), ") does not fit: ", be.name(), " has ", capacity >> 20,
         " MiB and the weights take ", weights >> 20, " MiB; lower --ctx");
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::array<int64_t, 4> ne{c.n_embd_kv(), kv_.n_cells[size_t(il)], 1, 1};
    kv_.k.push_back(be.alloc(options.kv_type, ne, "cache_k_l" + std::to_string(il)));
    kv_.v.push_back(be.alloc(options.kv_type, ne, "cache_v_l" + std::to_string(il)));
  }
}

Session::~Session() {
  for (const Tensor& t : kv_.k) be_.free(t);
  for (const Tensor& t : kv_.v) be_.free(t);
}

Tensor Session::forward(std::span<const int32_t> tokens, bool all_logits) {
  const Config& c = model_.config;
  const auto T = int64_t(tokens.size());
  check_room(T);
  for (int32_t t : tokens)
    if (t < 0 || t >= c.n_vocab)
      fail("token id ", t, " is outside the vocabulary [0, ", c.n_vocab, ")");
  be_.reset_transient();
  return pass(upload_i32(be_, tokens), T, all_logits);
}

Tensor Session::forward(const Tensor& ids) {
  const int64_t T = ids.ne[0];
  if (ids.type != gguf::Type::I32 || ids.n_elements() != T)
    fail("forward: token ids must be [T] I32, got ", shape_string(ids));
  check_room(T);
  be_.reset_transient();
  return pass(ids, T, false);
}

// A batch of T tokens fits the batch size and the context left.
void Session::check_room(int64_t T) const {
  if (T < 1 || T > options_.n_batch) fail("batch of ", T, " tokens (1..", options_.n_batch, ")");
  if (n_past_ + T > n_ctx_)
    fail("context full: ", n_past_, " + ", T, " tokens exceed n_ctx ", n_ctx_);
}

void Session::unwind(int64_t n) {
  if (n < 0 || n > n_past_) fail("unwind of ", n, " positions with ", n_past_, " in the cache");
  n_past_ -= n;
}

// One forward pass at the next positions; the cache takes the tokens.
Tensor Session::pass(const Tensor& ids, int64_t T, bool all_logits) {
  const Config& c = model_.config;
  std::vector<int32_t> pos(static_cast<size_t>(T));
  std::iota(pos.begin(), pos.end(), int32_t(n_past_));
  // The last row alone, unless it is every row (a one-token step) or all are wanted.
  const int32_t last = int32_t(T - 1);
  const Tensor rows = all_logits || T == 1 ? Tensor{} : upload_i32(be_, std::span(&last, 1));
  const Forward f{be_,
                  c,
                  model_.weights,
                  kv_,
                  ids,
                  upload_i32(be_, pos),
                  rows,
                  int32_t(n_past_),
                  T,
                  options_.n_layer > 0 ? options_.n_layer : c.n_layer,
                  options_.moe_fallback};
  Tensor logits = model_.arch->forward(f);
  n_past_ += T;
  return logits;
}

std::vector<float> Session::prefill(std::span<const int32_t> tokens, bool all_logits) {
  std::vector<float> out;
  for (size_t begin = 0; begin < tokens.size(); begin += size_t(options_.n_batch)) {
    const size_t n = std::min(tokens.size() - begin, size_t(options_.n_batch));
    const bool last = begin + n == tokens.size();
    Tensor logits = forward(tokens.subspan(begin, n), all_logits);
    if (all_logits || last) {
      std::vector<float> rows = read_f32(be_, logits);
      out.insert(out.end(), rows.begin(), rows.end());
    }
  }
  return out;
}

std::vector<int32_t> Session::greedy(std::span<const int32_t> prompt, int n) {
  std::vector<int32_t> out;
  if (n <= 0) return out;
  if (prompt.empty()) fail("greedy decoding needs a prompt of at least one token");
  Tensor logits;
  for (size_t begin = 0; begin < prompt.size(); begin += size_t(options_.n_batch)) {
    const size_t len = std::min(prompt.size() - begin, size_t(options_.n_batch));
    logits = forward(prompt.subspan(begin, len), false);
  }
  GreedyPipeline pipeline(be_, *this);
  pipeline.start(logits);
  // Each token but the last is fed back, its pass sent before it is read.
  for (int i = 0; i < n; ++i) out.push_back(pipeline.next(i + 1 < n));
  return out;
}

GreedyPipeline::GreedyPipeline(Backend& be, Session& session)
    : be_(be), session_(session), feed_(be.alloc(gguf::Type::I32, {1, 1, 1, 1}, "greedy_feed")) {}

GreedyPipeline::~GreedyPipeline() {
  try {
    stop();
    be_.free(feed_);
  } catch (const std::exception&) {  // a destructor does not throw; the backend reports later
  }
}

void GreedyPipeline::launch(const Tensor& logits, bool pass) {
  const Tensor id = be_.argmax(logits);
  be_.copy(id, feed_);
  pending_.push_back({be_.read_start(id), pass});
}

void GreedyPipeline::start(const Tensor& logits) {
  if (!pending_.empty()) fail("GreedyPipeline::start: already started");
  launch(logits, false);
}

int32_t GreedyPipeline::next(bool ahead) {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  if (pending_.empty()) fail("GreedyPipeline::next: not started, or stopped");
  const auto t0 = Clock::now();
  if (ahead) launch(session_.forward(feed_), true);
  const auto t1 = Clock::now();
  int32_t id = 0;
  be_.read_finish(pending_.front().read, std::as_writable_bytes(std::span(&id, 1)));
  pending_.erase(pending_.begin());
  times_.record_ms += ms(t0, t1);
  times_.wait_ms += ms(t1, Clock::now());
  return id;
}

// The device may still run a dropped pass: later work is ordered after it, and its cache row
// is written again by whatever comes next at that position.
void GreedyPipeline::stop() {
  for (const Pending& p : pending_)
    if (p.pass) session_.unwind(1);
  pending_.clear();
}

}  // namespace ml
