// Sampling from logits on the host, in llama.cpp's default order: repetition penalty,
// top-k, softmax, top-p, min-p, temperature, then one uniform draw from a seeded
// mt19937_64 (converted to [0, 1) by hand so every platform draws the same token). The chain
// runs over the whole vocabulary or over a shortlist the device picked (Generator): the
// penalty only moves recent tokens, so the top_k highest logits plus the recent tokens hold
// every token the chain can keep.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ml/ops.h"
#include "ml/run.h"

namespace ml {
namespace {

// Softmax of the candidates' logits / temperature into their p.
void normalize(std::vector<Sampler::Candidate>& c, float temperature) {
  const float max = c.front().logit;  // sorted, highest first
  double sum = 0.0;
  for (auto& x : c) sum += (x.p = std::exp((x.logit - max) / temperature));
  for (auto& x : c) x.p = float(x.p / sum);
}

}  // namespace

Sampler::Sampler(SamplerParams params) : params_(params), rng_(params.seed) {
  if (params.top_k < 0) fail("top-k ", params.top_k, " is negative");
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f))
    fail("top-p ", params.top_p, " is outside (0, 1]");
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f))
    fail("min-p ", params.min_p, " is outside [0, 1]");
  if (!(params.repeat_penalty > 0.0f))
    fail("repetition penalty ", params.repeat_penalty, " is not positive");
  if (params.repeat_last_n < 0) fail("repeat-last-n ", params.repeat_last_n, " is negative");
}

void Sampler::accept(int32_t token) {
  recent_.push_back(token);
  while (int(recent_.size()) > params_.repeat_last_n) recent_.pop_front();
}

std::vector<int32_t> Sampler::penalized() const {
  if (params_.repeat_penalty == 1.0f) return {};
  std::vector<int32_t> seen(recent_.begin(), recent_.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return seen;
}

int64_t Sampler::shortlist(int64_t n_vocab) const {
  // The best unpenalized tokens are among the highest (k + n_penalized) logits.
  const auto n_penalized = int64_t(penalized().size());
  if (params_.temperature <= 0.0f) return std::min(1 + n_penalized, n_vocab);
  if (params_.top_k <= 0) return n_vocab;
  return std::min(int64_t(params_.top_k) + n_penalized, n_vocab);
}

std::vector<Sampler::Candidate> Sampler::candidates(std::span<const float> logits) const {
  if (logits.empty()) fail("sampler: no logits");
  std::vector<Candidate> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {int32_t(i), logits[i], 0.0f};
  return candidates(std::move(c));
}

std::vector<Sampler::Candidate> Sampler::candidates(std::vector<Candidate> c) const {
  if (c.empty()) fail("sampler: no candidates");
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
  c.erase(std::unique(c.begin(), c.end(),
                      [](const Candidate& a, const Candidate& b) { return a.id == b.id; }),
          c.end());
  // Penalties first: both lists are sorted by id.
  const std::vector<int32_t> seen = penalized();
  auto s = seen.begin();
  for (Candidate& x : c) {
    while (s != seen.end() && *s < x.id) ++s;
    if (s == seen.end()) break;
    if (*s == x.id)
      x.logit =
          x.logit > 0.0f ? x.logit / params_.repeat_penalty : x.logit * params_.repeat_penalty;
  }
  auto higher = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  std::sort(c.begin(), c.end(), higher);
  if (params_.temperature <= 0.0f) {  // greedy: the argmax alone
    c.resize(1);
    c[0].p = 1.0f;
    return c;
  }
  if (params_.top_k > 0 && size_t(params_.top_k) < c.size()) c.resize(size_t(params_.top_k));
  normalize(c, 1.0f);
  if (params_.top_p < 1.0f) {  // the smallest prefix whose mass reaches top_p
    double mass = 0.0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      mass += c[i].p;
      if (mass >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
  }
  if (params_.min_p > 0.0f) {  // drop what is below min_p times the best probability
    const float floor = c.front().p * params_.min_p;
    size_t keep = 1;
    while (keep < c.size() && c[keep].p >= floor) ++keep;
    c.resize(keep);
  }
  normalize(c, params_.temperature);
  return c;
}

int32_t Sampler::draw(std::span<const Candidate> c) {
  if (c.empty()) fail("sampler: nothing to draw from");
  const double u = double(rng_() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  double mass = 0.0;
  for (const Candidate& x : c) {
    mass += x.p;
    if (u < mass) return x.id;
  }
  return c.back().id;
}

int32_t Sampler::sample(std::span<const float> logits) {
  return draw(candidates(logits));
}

}  // namespace ml
