#pragma once
// Running a model: the session (KV cache, prefill, decode) and the sampler.
#include <array>
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ml/backend.h"
#include "ml/model.h"

namespace ml {

struct SessionOptions {
  gguf::Type kv_type = gguf::Type::F16;  // F16 or F32 (--kv f32, golden tests)
  int64_t n_ctx = 0;                     // 0 = the model's context_length; otherwise capped by it
  int64_t n_batch = 512;                 // prefill tokens per forward pass
  int64_t n_layer = 0;                   // 0 = all; fewer runs only the first layers (debugging)
  bool moe_fallback = false;             // gpt-oss bring-up: expert 0 only (Forward::moe_fallback)
};

// One sequence on one backend: owns the KV cache (full-attention layers hold n_ctx rows,
// sliding-window layers a ring of n_swa rows) and feeds tokens at positions 0, 1, 2, ...
class Session {
 public:
  Session(Backend& be, const Model& model, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // One forward pass over tokens (≤ n_batch) at the next positions → logits on the device,
  // [n_vocab, T] when all_logits, else [n_vocab, 1] for the last token. Valid until the
  // next call.
  Tensor forward(std::span<const int32_t> tokens, bool all_logits);
  // Feeds tokens in n_batch chunks; returns host logits, n_vocab per row: every position
  // when all_logits, else the last one.
  std::vector<float> prefill(std::span<const int32_t> tokens, bool all_logits);
  // Argmax decoding with the KV cache: after prefill(prompt), n tokens, each fed back.
  std::vector<int32_t> greedy(std::span<const int32_t> prompt, int n);

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  const KvCache& kv() const { return kv_; }
  uint64_t kv_bytes() const { return kv_bytes_; }
  void reset() { n_past_ = 0; }

 private:
  Backend& be_;
  const Model& model_;
  SessionOptions options_;
  KvCache kv_;
  int64_t n_ctx_ = 0;
  int64_t n_past_ = 0;
  uint64_t kv_bytes_ = 0;
};

struct SamplerParams {
  float temperature = 0.8f;     // ≤ 0: greedy
  int top_k = 40;               // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repeat_penalty = 1.0f;  // 1: off; logits of recent tokens: >0 divided, <0 multiplied
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

// llama.cpp's default chain: penalties → top-k → top-p → min-p → temperature → draw.
// Deterministic for a seed (its own uniform draw, no implementation-defined distribution).
class Sampler {
 public:
  explicit Sampler(SamplerParams params);
  int32_t sample(std::span<const float> logits);
  void accept(int32_t token);  // remembers it for the repetition penalty

  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  // The candidates left after the filters, with their probabilities (sum 1), highest first.
  std::vector<Candidate> candidates(std::span<const float> logits) const;

 private:
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
};

// A record of ../shared/golden: what llama.cpp computed for a model and prompt (README there).
struct GoldenRecord {
  std::string model, prompt, logits_file;
  int64_t n_vocab = 0;
  std::vector<int32_t> tokens;
  std::vector<std::vector<int32_t>> prompt_top5;  // [position][5]
  std::vector<int32_t> greedy;
  std::vector<std::array<float, 4>> greedy_top2;  // id1, logit1, id2, logit2 per step
  std::vector<int64_t> logits_positions;
  std::vector<float> logits;  // [logits_positions][n_vocab]
};
// Reads MODEL.PROMPT.json and the .logits.f32 beside it, checking their sizes agree.
GoldenRecord load_golden(const std::string& json_path);

// How a session's logits and greedy continuation compare with a golden record.
struct GoldenReport {
  float max_diff = 0.0f;  // max |logit - golden| over the listed positions
  int64_t max_diff_position = 0;
  int top5_mismatches = 0;       // positions whose top-5 differs beyond near-ties (≤ tol)
  float greedy_max_diff = 0.0f;  // max |logit1 - golden logit1| over the decode steps
  std::vector<int32_t> greedy;   // our continuation, up to the first divergence
  int greedy_compared = 0;       // steps compared before a near-tie (gap ≤ 0.1) may diverge
  bool greedy_ok = true;
  bool ok(float tol) const {
    return max_diff <= tol && top5_mismatches == 0 && greedy_ok && greedy_max_diff <= tol;
  }
};
// Feeds the golden tokens through a fresh session, then decodes greedily. Tolerances: the
// README's 1e-2 with an F32 KV cache, 5e-2 with F16 (greedy compared while gaps exceed 0.1).
// max_greedy < 0 compares the whole continuation, else at most that many steps.
GoldenReport compare_golden(Backend& be, const Model& model, const GoldenRecord& g,
                            SessionOptions options, float tol, int max_greedy = -1);

}  // namespace ml
