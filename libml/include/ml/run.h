#pragma once
// Running a model: the session (KV cache, prefill, decode) and the sampler.
#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/tok.h"

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
  // The same with the token ids already on the device ([T] I32, each in [0, n_vocab): an
  // argmax of this model's logits), for the last token's logits.
  Tensor forward(const Tensor& ids);
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
  // Forgets the last n positions (a pass run ahead that was not wanted). Their cache rows
  // are written again by whatever comes next at those positions; a sliding-window ring lost
  // only rows no later query reads.
  void unwind(int64_t n);

 private:
  Backend& be_;
  const Model& model_;
  SessionOptions options_;
  KvCache kv_;
  int64_t n_ctx_ = 0;
  int64_t n_past_ = 0;
  uint64_t kv_bytes_ = 0;

  void check_room(int64_t T) const;
  Tensor pass(const Tensor& ids, int64_t T, bool all_logits);
};

// Greedy decoding with the device a pass ahead of the host: each pass reads its token from
// the argmax of the pass before, copied on the device into `feed`, so the host records pass
// k + 1 while the device runs pass k and reads token k back only then
// (Backend::read_start). A backend that reads at once (the CPU) runs the same steps in turn.
class GreedyPipeline {
 public:
  GreedyPipeline(Backend& be, Session& session);
  ~GreedyPipeline();
  GreedyPipeline(const GreedyPipeline&) = delete;
  GreedyPipeline& operator=(const GreedyPipeline&) = delete;

  // Takes the argmax of logits ([n_vocab, 1], the session's last pass) as the first token.
  void start(const Tensor& logits);
  // The next token. With `ahead`, first records and sends the pass that feeds that token to
  // the model (the session needs room for it), so the device is busy while the host waits.
  int32_t next(bool ahead);
  // Drops a pass sent ahead whose token is not wanted (unwinding the session); next() may
  // not be called after.
  void stop();
  // Host time in next(): recording and sending passes, and waiting for tokens.
  struct Times {
    double record_ms = 0, wait_ms = 0;
  };
  const Times& times() const { return times_; }

 private:
  // A token being read: of start()'s logits, or of a pass next() sent (`pass`).
  struct Pending {
    Backend::PendingRead read;
    bool pass;
  };
  void launch(const Tensor& logits, bool pass);

  Backend& be_;
  Session& session_;
  Tensor feed_;
  std::vector<Pending> pending_;  // oldest first: at most two
  Times times_;
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
  const SamplerParams& params() const { return params_; }
  int32_t sample(std::span<const float> logits);
  void accept(int32_t token);  // remembers it for the repetition penalty

  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  // The candidates left after the filters, with their probabilities (sum 1), highest first.
  std::vector<Candidate> candidates(std::span<const float> logits) const;
  // The same chain over part of the vocabulary (unpenalized logits, p ignored, duplicates
  // allowed). It equals the full chain when `subset` holds the shortlist() highest logits and
  // every penalized() token: what a device top-k reads back instead of n_vocab logits.
  std::vector<Candidate> candidates(std::vector<Candidate> subset) const;
  // One uniform draw over candidates' p (highest first, as candidates() returns them).
  int32_t draw(std::span<const Candidate> candidates);

  // The distinct recent tokens the repetition penalty applies to (empty when it is off).
  std::vector<int32_t> penalized() const;
  // How many of the highest logits the chain can keep out of n_vocab: top_k plus the
  // penalized count (a penalty can push a token out of the top_k); n_vocab when top-k is off.
  int64_t shortlist(int64_t n_vocab) const;

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

// --- generation: prompt → streamed tokens (libml/src/run/generate.cpp) ---

struct GenerateOptions {
  int max_tokens = 256;    // at most this many new tokens (the end-of-generation one included)
  SamplerParams sampling;  // temperature ≤ 0: greedy
  int n_probs = 0;         // candidates with probabilities reported per token (telemetry)
  int64_t n_batch = 512;   // prompt tokens per forward pass: the session's n_batch or less
};

// One generated token, as it comes.
struct TokenEvent {
  int32_t id = 0;
  int64_t index = 0;  // 0: chosen from the prompt's logits
  // The whole UTF-8 characters it completed. Control tokens add none, user-defined ones their
  // text (llama.cpp's token_to_piece without special).
  std::string_view text;
  bool special = false;  // a control or user-defined token (Harmony's <|channel|>, <|end|>...)
  bool eog = false;      // an end-of-generation token: the last event of the run
  double ms = 0.0;       // its forward pass (prefill for index 0) and its choice
  // Up to n_probs candidates, highest first: the sampler's after its filters; greedy without
  // a penalty: the n_probs highest logits, p normalized over them.
  std::span<const Sampler::Candidate> top;
};

// A stage of the run ended: "prefill" (prompt tokens) or "decode" (tokens fed back).
struct StageEvent {
  std::string_view stage;
  int64_t tokens = 0;
  double ms = 0.0;
};

struct GenerateCallbacks {
  std::function<bool(const TokenEvent&)> on_token;  // returns false to stop
  std::function<void(const StageEvent&)> on_stage;
  // After each forward pass over tokens at positions [pos0, pos0 + tokens.size()), before the
  // next one reuses its transient tensors: where telemetry reads what the backend's observer
  // caught during the pass (the MoE router's choices).
  std::function<void(int64_t pos0, std::span<const int32_t> tokens)> on_forward;
};

enum class StopReason { Eog, MaxTokens, ContextFull, Callback };
const char* stop_reason_name(StopReason reason);

struct GenerateStats {
  std::vector<int32_t> tokens;  // generated, the end-of-generation token included
  int64_t n_prompt = 0;
  int64_t n_decode = 0;  // forward passes after the prompt (one per token fed back)
  double prefill_ms = 0.0, decode_ms = 0.0;
  StopReason stop = StopReason::MaxTokens;
  std::string text;  // the generated text (control tokens left out)
  double prefill_tps() const { return prefill_ms > 0 ? 1e3 * double(n_prompt) / prefill_ms : 0; }
  double decode_tps() const { return decode_ms > 0 ? 1e3 * double(n_decode) / decode_ms : 0; }
};

// Prompt → tokens on a session: the prompt in n_batch chunks, then one token per forward pass.
// The device does the heavy part of each choice: argmax (greedy), or top-k whose ids and
// logits alone come back to the host for the Sampler (k = Sampler::shortlist, the penalized
// tokens' logits gathered beside them), so a step reads back k values, not n_vocab. Stops at
// the tokenizer's end-of-generation tokens, max_tokens, a full context, or a callback.
// Owns a small device tensor (the penalized token ids), hence a class.
class Generator {
 public:
  Generator(Backend& be, Session& session, const tok::Tokenizer& tokenizer,
            GenerateOptions options);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Continues the session (position n_past) with the prompt, then generates. A later call
  // continues the same conversation; the sampler keeps its state across calls.
  GenerateStats run(std::span<const int32_t> prompt, const GenerateCallbacks& callbacks = {});

 private:
  int32_t choose(const Tensor& logits, std::vector<Sampler::Candidate>& top);
  void upload_penalized();

  Backend& be_;
  Session& session_;
  const tok::Tokenizer& tokenizer_;
  GenerateOptions options_;
  Sampler sampler_;
  Tensor penalized_;                    // [repeat_last_n] I32, padded by repeating its first id
  std::vector<int32_t> penalized_ids_;  // what penalized_ holds, distinct
};

}  // namespace ml
