// Generation: the prompt in n_batch chunks, then one forward pass per token. Each choice runs
// its heavy part on the device: argmax for greedy, else top-k over the logits, whose ids and
// logits (seen as a [1, n_vocab] table, gathered with get_rows) are all that come back, with
// the logits of the tokens the repetition penalty touches. The host Sampler finishes the chain
// on those few candidates, which gives the token the full chain would (Sampler::shortlist).
#include <algorithm>
#include <chrono>
#include <cmath>

#include "ml/run.h"

namespace ml {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Softmax at temperature 1 over what was read back (greedy's reported candidates).
void normalize(std::vector<Sampler::Candidate>& c) {
  if (c.empty()) return;
  double sum = 0.0;
  for (auto& x : c) sum += (x.p = std::exp(x.logit - c.front().logit));
  for (auto& x : c) x.p = float(x.p / sum);
}

}  // namespace

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Eog:
      return "end of generation";
    case StopReason::MaxTokens:
      return "max tokens";
    case StopReason::ContextFull:
      return "context full";
    case StopReason::Callback:
      return "stopped";
  }
  return "?";
}

Generator::Generator(Backend& be, Session& session, const tok::Tokenizer& tokenizer,
                     GenerateOptions options)
    : be_(be),
      session_(session),
      tokenizer_(tokenizer),
      options_(options),
      sampler_(options.sampling) {
  if (options.max_tokens < 0) fail("max tokens ", options.max_tokens, " is negative");
  if (options.n_batch < 1) fail("batch size ", options.n_batch, " is below 1");
  if (options.n_probs < 0 || options.n_probs > 1000)
    fail("n_probs ", options.n_probs, " is outside [0, 1000]");
  const SamplerParams& p = options.sampling;
  if (p.repeat_penalty != 1.0f && p.repeat_last_n > 0) {
    if (p.repeat_last_n > 1 << 16) fail("repeat-last-n ", p.repeat_last_n, " exceeds 65536");
    penalized_ = be.alloc(gguf::Type::I32, {p.repeat_last_n, 1, 1, 1}, "penalized_ids");
  }
}

Generator::~Generator() {
  if (penalized_) be_.free(penalized_);
}

// Before the forward pass: an upload after it would submit the pass on its own.
void Generator::upload_penalized() {
  penalized_ids_ = sampler_.penalized();
  if (!penalized_ || penalized_ids_.empty()) return;
  std::vector<int32_t> padded(size_t(penalized_.ne[0]), penalized_ids_.front());
  std::copy(penalized_ids_.begin(), penalized_ids_.end(), padded.begin());
  be_.upload(penalized_, std::as_bytes(std::span(padded)));
}

int32_t Generator::choose(const Tensor& logits, std::vector<Sampler::Candidate>& top) {
  const int64_t V = logits.ne[0];
  const SamplerParams& p = sampler_.params();
  const bool greedy = p.temperature <= 0.0f && penalized_ids_.empty();
  top.clear();
  if (greedy && options_.n_probs == 0) return read_i32(be_, be_.argmax(logits))[0];

  const int64_t k = greedy ? std::min<int64_t>(options_.n_probs, V) : sampler_.shortlist(V);
  std::vector<Sampler::Candidate> c;
  if (k >= V) {  // top-k off: the chain needs every logit
    const std::vector<float> all = read_f32(be_, logits);
    c.resize(all.size());
    for (size_t i = 0; i < all.size(); ++i) c[i] = {int32_t(i), all[i], 0.0f};
  } else {
    const Tensor table = reshape(logits, {1, V, 1, 1});
    const Tensor ids = be_.top_k(logits, int(k));
    const Tensor values = be_.get_rows(table, ids);
    Tensor pen_values;
    if (!penalized_ids_.empty()) pen_values = be_.get_rows(table, penalized_);
    const std::vector<int32_t> id = read_i32(be_, ids);  // the one submit of this step
    const std::vector<float> v = read_f32(be_, values);
    for (size_t i = 0; i < id.size(); ++i) c.push_back({id[i], v[i], 0.0f});
    if (pen_values) {
      const std::vector<float> pv = read_f32(be_, pen_values);
      for (size_t i = 0; i < penalized_ids_.size(); ++i)
        c.push_back({penalized_ids_[i], pv[i], 0.0f});
    }
  }
  if (greedy) {  // the highest of the n_probs, reported with p over them
    std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
      return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    });
    normalize(c);
    top = std::move(c);
    return top.front().id;
  }
  c = sampler_.candidates(std::move(c));
  const int32_t id = sampler_.draw(c);
  c.resize(std::min(c.size(), size_t(options_.n_probs)));
  top = std::move(c);
  return id;
}

GenerateStats Generator::run(std::span<const int32_t> prompt, const GenerateCallbacks& cb) {
  if (prompt.empty()) fail("generation needs a prompt of at least one token");
  GenerateStats st;
  st.n_prompt = int64_t(prompt.size());
  if (session_.n_past() + st.n_prompt > session_.n_ctx())
    fail("the prompt of ", prompt.size(), " tokens does not fit the context (", session_.n_past(),
         " of ", session_.n_ctx(), " used); raise --ctx");
  tok::StreamDecoder decoder(tokenizer_, false);  // control tokens add no text
  std::vector<Sampler::Candidate> top;

  // Emits token `id`; returns false when generation ends with it. `fed`: a pass already
  // took it (GreedyPipeline), so the context holds it.
  auto emit = [&](int32_t id, double ms, bool fed) {
    TokenEvent ev;
    ev.id = id;
    ev.index = int64_t(st.tokens.size());
    ev.eog = tokenizer_.is_eog(id);
    ev.special =
        (tokenizer_.vocab().attrs[size_t(id)] & (tok::kAttrControl | tok::kAttrUserDefined)) != 0;
    st.tokens.push_back(id);
    sampler_.accept(id);
    bool last = true;
    if (ev.eog) {
      st.stop = StopReason::Eog;
    } else if (int64_t(st.tokens.size()) >= options_.max_tokens) {
      st.stop = StopReason::MaxTokens;
    } else if (session_.n_past() - (fed ? 1 : 0) >= session_.n_ctx()) {
      st.stop = StopReason::ContextFull;
    } else {
      last = false;
    }
    std::string text = decoder.push(id);
    if (last) text += decoder.flush();  // an unfinished character as U+FFFD
    ev.text = text;
    ev.ms = ms;
    ev.top = top;
    st.text += text;
    if (cb.on_token && !cb.on_token(ev) && !last) {
      st.stop = StopReason::Callback;
      return false;
    }
    return !last;
  };
  auto check_id = [&](int32_t id) {
    if (id < 0 || size_t(id) >= tokenizer_.size())
      fail("the model chose token ", id, ", outside the tokenizer's ", tokenizer_.size(),
           " tokens");
    return id;
  };

  const auto t0 = Clock::now();
  upload_penalized();
  Tensor logits;
  const auto batch = size_t(options_.n_batch);
  for (size_t begin = 0; begin < prompt.size(); begin += batch) {
    const size_t n = std::min(prompt.size() - begin, batch);
    logits = session_.forward(prompt.subspan(begin, n), false);
    if (cb.on_forward) cb.on_forward(session_.n_past() - int64_t(n), prompt.subspan(begin, n));
  }
  if (options_.max_tokens == 0) {
    be_.sync();
    st.prefill_ms = ms_since(t0);
    if (cb.on_stage) cb.on_stage({"prefill", st.n_prompt, st.prefill_ms});
    return st;
  }
  // Greedy without candidates to report or passes to observe: the device runs each pass
  // while the host records the next (GreedyPipeline), one pass wasted at the end.
  const bool pipelined = sampler_.params().temperature <= 0.0f && !penalized_ &&
                         options_.n_probs == 0 && !cb.on_forward;
  if (pipelined) {
    GreedyPipeline pipe(be_, session_);
    pipe.start(logits);
    // Whether the token read next is fed to the model: it is not the last by count, and the
    // context has room.
    auto ahead = [&] {
      return int64_t(st.tokens.size()) + 1 < options_.max_tokens &&
             session_.n_past() < session_.n_ctx();
    };
    bool fed = ahead();
    int32_t id = check_id(pipe.next(fed));
    st.prefill_ms = ms_since(t0);
    if (cb.on_stage) cb.on_stage({"prefill", st.n_prompt, st.prefill_ms});
    bool more = emit(id, st.prefill_ms, fed);
    auto t1 = Clock::now();
    while (more) {
      fed = ahead();
      id = check_id(pipe.next(fed));
      const double ms = ms_since(t1);
      t1 = Clock::now();
      st.decode_ms += ms;
      ++st.n_decode;
      more = emit(id, ms, fed);
    }
    pipe.stop();
    if (cb.on_stage) cb.on_stage({"decode", st.n_decode, st.decode_ms});
    return st;
  }
  int32_t id = check_id(choose(logits, top));
  st.prefill_ms = ms_since(t0);
  if (cb.on_stage) cb.on_stage({"prefill", st.n_prompt, st.prefill_ms});
  bool more = emit(id, st.prefill_ms, false);
  while (more) {
    const auto t1 = Clock::now();
    upload_penalized();
    logits = session_.forward(std::span(&id, 1), false);
    if (cb.on_forward) cb.on_forward(session_.n_past() - 1, std::span(&id, 1));
    id = check_id(choose(logits, top));
    const double ms = ms_since(t1);
    st.decode_ms += ms;
    ++st.n_decode;
    more = emit(id, ms, false);
  }
  if (cb.on_stage) cb.on_stage({"decode", st.n_decode, st.decode_ms});
  return st;
}

}  // namespace ml
