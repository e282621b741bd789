#pragma once
// Checks behind gates F, H and I: one piece of the forward pass run on two backends (or on a
// backend and the quant reference) over the same input, compared value by value. The code
// under test is always the architecture's own (layers::embed, Architecture::layer), never a
// copy, so a pass here says the model's forward pass is right at that piece.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ml/backend.h"
#include "ml/gguf.h"
#include "ml/model.h"

namespace ml::check {

// max |a[i] - b[i]| over equally long arrays (ml::Error otherwise); a NaN or infinity on
// either side makes it +infinity, so a broken value never passes a tolerance.
float max_abs_diff(std::span<const float> a, std::span<const float> b);
// max |a[i]|; +infinity when a value is not finite.
float max_abs(std::span<const float> a);
bool all_finite(std::span<const float> a);

// Comma-separated token ids ("1,2,3"); a negative, non-numeric or empty item is an
// ml::Error naming it and the flag.
std::vector<int32_t> parse_ids(std::string_view text, std::string_view flag);
// n token ids spread over [0, n_vocab) by a fixed stride (inputs when no prompt is given).
std::vector<int32_t> spread_ids(int64_t n, int64_t n_vocab);

// --- gate F: embedding rows ---

struct EmbedReport {
  std::string tensor;  // "token_embd.weight"
  gguf::Type type = gguf::Type::F32;
  int64_t n_embd = 0, n_rows = 0;  // row length, rows in the table
  float scale = 1.0f;           // the architecture's factor (Gemma: √n_embd); 1 for a raw table
  std::vector<int32_t> rows;    // the rows asked for
  std::vector<float> max_diff;  // [rows] max |backend - reference| of each row
  std::vector<float> max_ref;   // [rows] max |reference| of each row
};

// The model's token embeddings of `tokens` through its architecture's embedding
// (layers::embed: get_rows of token_embd on `be`, times the model's scale) against the quant
// reference of those rows read from the file, times the same scale. Uploads only
// token_embd. A token outside the table is an ml::Error naming it.
EmbedReport embed_model(Backend& be, gguf::Source& source, const gguf::File& file,
                        std::span<const int32_t> tokens);
// The same for any 2-D table of the file (no architecture, scale 1): get_rows on `be`
// against the quant reference. quant-golden.gguf's `T.q` tables cover every weight type.
EmbedReport embed_table(Backend& be, gguf::Source& source, const gguf::File& file,
                        const std::string& tensor, std::span<const int32_t> rows);

// --- gates H and I: one transformer block ---

// One intermediate the forward pass named (Forward::cb), read back to the host; I32 tensors
// (the router's expert ids) as floats.
struct Named {
  std::string name;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  std::vector<float> values;
};

// Token embeddings [T][n_embd] of `tokens` on `be` (the architecture's embedding).
std::vector<float> embeddings(Backend& be, const Model& model, std::span<const int32_t> tokens);

// Runs block `il` of a model alone, as a session runs that layer: owns the layer's KV cache
// (n_ctx cells, or a ring of the window for a sliding-window layer) and feeds batches of
// hidden states at positions 0, 1, 2, ...
class LayerRunner {
 public:
  LayerRunner(Backend& be, const Model& model, int il, int64_t n_ctx, gguf::Type kv_type,
              bool moe_fallback = false);
  ~LayerRunner();
  LayerRunner(const LayerRunner&) = delete;
  LayerRunner& operator=(const LayerRunner&) = delete;

  // Hidden states x [T][n_embd] at the next T positions → every intermediate the block names
  // for layer il, in the order it names them (l_out, the block's output, last).
  std::vector<Named> step(std::span<const float> x);

  int64_t n_past() const { return n_past_; }
  int64_t n_cells() const { return kv_.n_cells[size_t(il_)]; }

 private:
  Backend& be_;
  const Model& model_;
  int il_;
  int64_t n_ctx_;
  bool moe_fallback_;
  KvCache kv_;  // only layer il_'s tensors are allocated
  int64_t n_past_ = 0;
};

struct Diff {
  std::string name;
  float max_diff = 0.0f;  // max |test - ref|
  float max_ref = 0.0f;   // max |ref|
  // The error a tolerance is held against: absolute up to magnitude 1, relative above.
  float scaled() const { return max_diff / std::max(1.0f, max_ref); }
};
// Pairs two runs' intermediates in order; ml::Error when they do not name the same tensors
// with the same shapes.
std::vector<Diff> compare(const std::vector<Named>& ref, const std::vector<Named>& test);
// The intermediate called `name` (ml::Error listing the names when there is none).
const Named& find(const std::vector<Named>& run, const std::string& name);

// --- gate I: attention over a growing cache ---

struct AttentionStep {
  int64_t pos0 = 0, n_tokens = 0;  // positions pos0 .. pos0 + n_tokens - 1
  float test_diff = 0.0f;          // max |test - ref| of kqv_out at this step
  float batch_diff = 0.0f;  // max |ref at this step - ref of one full-sequence prefill| there
  float max_ref = 0.0f;     // max |ref kqv_out|
  bool finite = true;       // both backends' kqv_out finite
};
struct AttentionReport {
  int il = 0;
  int32_t n_swa = 0;    // the layer's window; 0 = full causal
  int64_t n_cells = 0;  // its KV cache rows (the ring's length for a window)
  bool sinks = false;
  std::vector<AttentionStep> steps;  // the prefill, then one per decoded token
};
// Layer il's attention output (kqv_out) over hidden states x [n_tokens][n_embd]: a prefill
// of n_prefill tokens, then one token per step, on `ref` and `test` with kv_type caches of
// n_tokens cells; each step compared between the backends and with one prefill of the whole
// sequence on `ref` (so the cache and ring path agrees with the batch path).
AttentionReport attention(Backend& ref, const Model& ref_model, Backend& test,
                          const Model& test_model, std::span<const float> x, int64_t n_prefill,
                          int il, gguf::Type kv_type);

}  // namespace ml::check
