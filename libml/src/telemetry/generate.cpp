// The generation loop with telemetry: the plain loop (prefill, then sample → feed back) with
// an event per pass. Probabilities come from the full softmax of the logits the sampler saw.
#include <chrono>

#include "ml/run.h"
#include "ml/telemetry.h"
#include "ml/tok.h"

namespace ml::telemetry {
namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Generated generate(Session& session, Sampler& sampler, const tok::Tokenizer& tokenizer,
                   std::span<const int32_t> prompt, int n_predict, Telemetry* t, int n_probs,
                   const std::function<void(const std::string&)>& on_text) {
  if (prompt.empty()) fail("generate: the prompt has no tokens");
  if (int64_t(prompt.size()) + session.n_past() > session.n_ctx())
    fail("generate: the prompt of ", prompt.size(), " tokens does not fit the context of ",
         session.n_ctx());
  Generated g;
  tok::StreamDecoder stream(tokenizer);
  auto emit = [&](const Event& e) {
    if (t) t->emit(e);
  };
  // A token was chosen from `logits`: it joins the text and the stream of events.
  auto chosen = [&](const char* phase, std::span<const float> logits, int32_t id, double ms,
                    int64_t n_tokens) {
    sampler.accept(id);
    g.ids.push_back(id);
    const std::string text = stream.push(id);
    g.text += text;
    if (on_text && !text.empty()) on_text(text);
    if (!t) return;
    Distribution d = distribution(logits.data(), logits.size(), n_probs);
    for (TopEntry& e : d.top) e.text = tokenizer.piece(e.id);
    t->emit(Token{phase, id, text, std::move(d.top), d.entropy, ms, n_tokens, session.n_past(),
                  session.n_ctx()});
  };
  if (n_predict <= 0) return g;

  emit(LoadStage{"prefill", "", "", "started", 0, 0, 0, 0, {}});
  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits = session.prefill(prompt, false);
  int32_t id = sampler.sample(logits);
  g.prefill_ms = ms_since(start);
  emit(LoadStage{"prefill", "", "", "completed", 0, 0, 0, g.prefill_ms, {}});
  chosen("prefill", logits, id, g.prefill_ms, int64_t(prompt.size()));

  emit(LoadStage{"decode", "", "", "started", 0, 0, 0, 0, {}});
  const auto decode_start = std::chrono::steady_clock::now();
  for (int i = 1; i < n_predict; ++i) {
    if (tokenizer.is_eog(id) || session.n_past() >= session.n_ctx()) break;
    start = std::chrono::steady_clock::now();
    const int32_t feed[1] = {id};
    logits = session.prefill(feed, false);
    id = sampler.sample(logits);
    chosen("decode", logits, id, ms_since(start), 1);
  }
  g.decode_ms = ms_since(decode_start);
  const std::string rest = stream.flush();
  g.text += rest;
  if (on_text && !rest.empty()) on_text(rest);
  emit(LoadStage{"decode", "", "", "completed", 0, 0, 0, g.decode_ms, {}});
  return g;
}

}  // namespace ml::telemetry
