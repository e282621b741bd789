// Gates H and I: one transformer block run alone on a backend (LayerRunner), its named
// intermediates compared between backends, and attention over a growing cache (see
// ml/check.h).
#include <numeric>
#include <utility>

#include "ml/check.h"
#include "model/layers.h"

namespace ml::check {

std::vector<float> embeddings(Backend& be, const Model& model, std::span<const int32_t> tokens) {
  const Config& c = model.config;
  if (tokens.empty()) fail("no tokens to embed");
  for (int32_t t : tokens)
    if (t < 0 || t >= c.n_vocab)
      fail("token id ", t, " is outside the vocabulary [0, ", c.n_vocab, ")");
  const KvCache kv;
  be.reset_transient();
  const Forward f{be, c, model.weights,          kv, upload_i32(be, tokens), {},
                  {}, 0, int64_t(tokens.size()), 0};
  return read_f32(be, layers::embed(f));
}

LayerRunner::LayerRunner(Backend& be, const Model& model, int il, int64_t n_ctx, gguf::Type kv_type,
                         bool moe_fallback)
    : be_(be), model_(model), il_(il), n_ctx_(n_ctx), moe_fallback_(moe_fallback) {
  const Config& c = model.config;
  if (il < 0 || il >= c.n_layer)
    fail("layer ", il, " is outside the model's ", c.n_layer, " layers [0, ", c.n_layer, ")");
  if (n_ctx < 1 || n_ctx > c.n_ctx_train)
    fail("sequence of ", n_ctx, " tokens is outside [1, ", c.n_ctx_train,
         "] (the model's context length)");
  if (kv_type != gguf::Type::F16 && kv_type != gguf::Type::F32)
    fail("KV cache type must be f16 or f32");
  const bool swa = c.swa_layers[size_t(il)];
  kv_.type = kv_type;
  kv_.k.resize(size_t(c.n_layer));
  kv_.v.resize(size_t(c.n_layer));
  kv_.n_cells.assign(size_t(c.n_layer), 0);
  kv_.n_cells[size_t(il)] = swa ? std::min<int64_t>(c.n_swa, n_ctx) : n_ctx;
  const std::array<int64_t, 4> ne{c.n_embd_kv(), kv_.n_cells[size_t(il)], 1, 1};
  kv_.k[size_t(il)] = be.alloc(kv_type, ne, "cache_k_l" + std::to_string(il));
  kv_.v[size_t(il)] = be.alloc(kv_type, ne, "cache_v_l" + std::to_string(il));
}

LayerRunner::~LayerRunner() {
  be_.free(kv_.k[size_t(il_)]);
  be_.free(kv_.v[size_t(il_)]);
}

std::vector<Named> LayerRunner::step(std::span<const float> x) {
  const Config& c = model_.config;
  if (x.empty() || x.size() % size_t(c.n_embd) != 0)
    fail("hidden states of ", x.size(), " values are not whole rows of n_embd ", c.n_embd);
  const auto T = int64_t(x.size() / size_t(c.n_embd));
  if (n_past_ + T > n_ctx_) fail("layer cache full: ", n_past_, " + ", T, " > ", n_ctx_);

  be_.reset_transient();
  Tensor hidden = be_.scratch(gguf::Type::F32, {c.n_embd, T, 1, 1});
  be_.upload(hidden, std::as_bytes(x));
  std::vector<int32_t> pos(static_cast<size_t>(T));
  std::iota(pos.begin(), pos.end(), int32_t(n_past_));
  const Forward f{
      be_, c,         model_.weights, kv_, {}, upload_i32(be_, pos), {}, int32_t(n_past_),
      T,   c.n_layer, moe_fallback_};

  // Handles only while the block records; read back after it, so the GPU runs it as one
  // command buffer the way a forward pass does.
  std::vector<std::pair<std::string, Tensor>> seen;
  be_.set_observer([&](std::string_view name, int il, const Tensor& t) {
    if (il == il_) seen.emplace_back(std::string(name), t);
  });
  try {
    model_.arch->layer(f, hidden, il_);
  } catch (...) {
    be_.set_observer(nullptr);
    throw;
  }
  be_.set_observer(nullptr);
  n_past_ += T;

  std::vector<Named> out;
  for (const auto& [name, t] : seen) {
    Named n{name, t.ne, {}};
    if (t.type == gguf::Type::I32) {
      for (int32_t v : read_i32(be_, t)) n.values.push_back(float(v));
    } else {
      n.values = read_f32(be_, t);
    }
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<Diff> compare(const std::vector<Named>& ref, const std::vector<Named>& test) {
  if (ref.size() != test.size())
    fail("the runs name ", ref.size(), " and ", test.size(), " intermediates");
  std::vector<Diff> out;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (ref[i].name != test[i].name || ref[i].ne != test[i].ne)
      fail("intermediate ", i, " is ", ref[i].name, " in one run and ", test[i].name,
           " in the other (or their shapes differ)");
    out.push_back(
        {ref[i].name, max_abs_diff(test[i].values, ref[i].values), max_abs(ref[i].values)});
  }
  return out;
}

const Named& find(const std::vector<Named>& run, const std::string& name) {
  std::string names;
  for (const Named& n : run) {
    if (n.name == name) return n;
    names += (names.empty() ? "" : ", ") + n.name;
  }
  fail("no intermediate named ", name, " (", names, ")");
}

AttentionReport attention(Backend& ref, const Model& ref_model, Backend& test,
                          const Model& test_model, std::span<const float> x, int64_t n_prefill,
                          int il, gguf::Type kv_type) {
  const Config& c = ref_model.config;
  const auto E = size_t(c.n_embd);
  if (x.empty() || x.size() % E != 0)
    fail("hidden states of ", x.size(), " values are not whole rows of n_embd ", c.n_embd);
  const auto N = int64_t(x.size() / E);
  if (n_prefill < 1 || n_prefill > N)
    fail("prefill of ", n_prefill, " tokens is outside [1, ", N, "]");

  AttentionReport r;
  r.il = il;
  // The batch reference: all N positions in one pass, keys from the batch alone.
  LayerRunner whole(ref, ref_model, il, N, kv_type);
  const std::vector<float> batch = find(whole.step(x), "kqv_out").values;
  const size_t width = batch.size() / size_t(N);  // n_embd_q

  LayerRunner a(ref, ref_model, il, N, kv_type), b(test, test_model, il, N, kv_type);
  r.n_swa = c.swa_layers[size_t(il)] ? c.n_swa : 0;
  r.n_cells = a.n_cells();
  r.sinks = bool(ref_model.weights.layers[size_t(il)].attn_sinks);
  for (int64_t p = 0; p < N;) {
    const int64_t T = p == 0 ? n_prefill : 1;
    const auto rows = x.subspan(size_t(p) * E, size_t(T) * E);
    const std::vector<float> ya = find(a.step(rows), "kqv_out").values;
    const std::vector<float> yb = find(b.step(rows), "kqv_out").values;
    const auto want = std::span(batch).subspan(size_t(p) * width, size_t(T) * width);
    r.steps.push_back({p, T, max_abs_diff(yb, ya), max_abs_diff(ya, want), max_abs(ya),
                       all_finite(ya) && all_finite(yb)});
    p += T;
  }
  return r;
}

}  // namespace ml::check
