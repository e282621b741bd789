// The HUD: a sink that keeps what the events say (stage, bytes, recent tensors, GPU memory,
// limits, pipelines, tokens) and draws it. On a TTY it redraws a panel in place (cursor up,
// clear to end) at most every redraw_ms; on a pipe it writes one plain line per milestone,
// never an escape code, so logs stay greppable.
#include <algorithm>
#include <cmath>
#include <deque>

#include "ml/error.h"
#include "ml/telemetry.h"

namespace ml::telemetry {
namespace {

constexpr const char* kStages[] = {"header", "tensors", "pipelines", "kv", "prefill", "decode"};
constexpr const char* kWarn = "\x1b[33;1m";
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kReset = "\x1b[0m";

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return cat(u == 0 ? std::round(b) : std::round(b * 10) / 10, " ", units[u]);
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string bar(double fraction, int width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int full = int(std::lround(fraction * width));
  std::string out;
  for (int i = 0; i < width; ++i) out += i < full ? "█" : "░";
  return out;
}

// A token's text made printable on one line.
std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n')
      out += "⏎";
    else if (c == '\t' || c == '\r')
      out += ' ';
    else if ((unsigned char)c < 0x20)
      out += '?';
    else
      out += c;
  }
  return out;
}

// Cuts a line to `width` columns: counts UTF-8 lead bytes, skips escape sequences.
std::string fit(const std::string& s, int width) {
  std::string out;
  int cols = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b') {
      size_t m = s.find('m', i);
      if (m == std::string::npos) break;
      out += s.substr(i, m - i + 1);
      i = m;
      continue;
    }
    const bool lead = ((unsigned char)s[i] & 0xC0) != 0x80;
    if (lead && ++cols > width) break;
    out += s[i];
  }
  return out;
}

std::string strip(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b') {
      size_t m = s.find('m', i);
      if (m == std::string::npos) break;
      i = m;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Recent {
  std::string name, type;
  uint64_t bytes = 0;
  double ms = 0;
};

}  // namespace

struct Hud::State {
  std::string stage;  // the current one
  std::vector<std::string> done_stages, failed_stages;
  uint64_t done_bytes = 0, total_bytes = 0;
  double tensors_start_ms = -1, tensors_ms = 0;
  uint64_t n_tensors = 0;
  std::deque<Recent> recent;  // newest last
  uint64_t gpu = 0, budget = 0;
  std::string limits;
  int compiled = 0, cache_hits = 0;
  double pipeline_ms = 0;
  std::vector<std::string> modes;
  std::vector<int> fallbacks;
  std::string fallback_reason;
  std::string text;  // generated so far
  int64_t prompt_tokens = 0, generated = 0, n_past = 0, n_ctx = 0;
  double prefill_ms = 0, decode_ms = 0, entropy = 0;
  std::vector<TopEntry> top;
  std::string error;
  double last_draw_ms = -1e9;
  int drawn_lines = 0;
};

Hud::Hud(std::FILE* out, HudOptions options)
    : out_(out), options_(options), state_(std::make_unique<State>()) {
  options_.width = std::clamp(options_.width, 40, 400);
}

Hud::~Hud() = default;

std::string Hud::panel() const {
  return render(false);
}

std::string Hud::render(bool color) const {
  const State& s = *state_;
  const int w = options_.width;
  std::vector<std::string> lines;
  // cat() rather than `" " + string`: GCC 12 warns falsely (-Wrestrict) on the latter.
  auto warn = [&](const std::string& t) { return cat(" ", kWarn, t, kReset); };

  std::string head = " ml │";
  for (const char* st : kStages) {
    const bool done = std::count(s.done_stages.begin(), s.done_stages.end(), st) > 0;
    const bool failed = std::count(s.failed_stages.begin(), s.failed_stages.end(), st) > 0;
    if (failed)
      head += warn(cat(st, " ✗"));
    else if (s.stage == st && !done)
      head += cat(" [", st, " …]");
    else if (done)
      head += cat(" ", st, " ✓");
    else
      head += cat(" ", kDim, st, kReset);
  }
  lines.push_back(head);

  if (s.total_bytes > 0) {
    const double elapsed = s.tensors_start_ms < 0 ? 0 : s.tensors_ms;
    const double rate = elapsed > 0 ? double(s.done_bytes) / (elapsed / 1000) : 0;
    const double eta = rate > 0 ? double(s.total_bytes - s.done_bytes) / rate : 0;
    lines.push_back(cat(" ", bar(double(s.done_bytes) / double(s.total_bytes), 24), " ",
                        human_bytes(double(s.done_bytes)), " / ",
                        human_bytes(double(s.total_bytes)), "  ", fixed(rate / 1e9, 2), " GB/s  ",
                        s.done_bytes < s.total_bytes ? cat("ETA ", fixed(eta, 1), " s")
                                                     : cat("in ", fixed(elapsed / 1000, 2), " s"),
                        "  ", s.n_tensors, " tensors"));
    for (const Recent& r : s.recent)
      lines.push_back(cat("   ", r.name, "  ", r.type, "  ", human_bytes(double(r.bytes)), "  ",
                          fixed(r.ms, 1), " ms"));
  }
  if (s.budget > 0)
    lines.push_back(cat(" GPU ", bar(double(s.gpu) / double(s.budget), 16), " ",
                        human_bytes(double(s.gpu)), " / ", human_bytes(double(s.budget))));
  if (!s.limits.empty()) lines.push_back(cat(" ", s.limits));
  if (s.compiled + s.cache_hits > 0)
    lines.push_back(cat(" pipelines: ", s.compiled, " compiled, ", s.cache_hits, " from cache, ",
                        fixed(s.pipeline_ms, 0), " ms"));
  if (!s.modes.empty()) {
    std::string l = " layers ";
    for (size_t i = 0; i < s.modes.size(); ++i) {
      const bool fb = std::count(s.fallbacks.begin(), s.fallbacks.end(), int(i)) > 0;
      const std::string m = s.modes[i] == "gpu" ? "G" : "C";
      l += fb ? cat(kWarn, m, kReset) : m;
    }
    if (!s.fallbacks.empty()) l += warn(cat(s.fallbacks.size(), " on CPU: ", s.fallback_reason));
    lines.push_back(l);
  }
  if (s.n_ctx > 0 || s.prompt_tokens > 0) {
    std::string l = cat(" KV ", bar(s.n_ctx ? double(s.n_past) / double(s.n_ctx) : 0, 12), " ",
                        s.n_past, "/", s.n_ctx);
    if (s.prefill_ms > 0)
      l += cat("  prefill ", fixed(double(s.prompt_tokens) / (s.prefill_ms / 1000), 1), " tok/s");
    if (s.decode_ms > 0)
      l += cat("  decode ", fixed(double(s.generated) / (s.decode_ms / 1000), 1), " tok/s");
    if (s.generated > 0) l += cat("  H ", fixed(s.entropy, 2));
    lines.push_back(l);
  }
  if (!s.text.empty()) {
    // The tail of the text, wrapped to at most three lines.
    const std::string t = printable(s.text);
    std::vector<std::string> cps;  // code points
    for (size_t i = 0; i < t.size();) {
      size_t n = 1;
      while (i + n < t.size() && ((unsigned char)t[i + n] & 0xC0) == 0x80) ++n;
      cps.push_back(t.substr(i, n));
      i += n;
    }
    const size_t per = size_t(w - 3), keep = std::min(cps.size(), 3 * per);
    const size_t from = cps.size() - keep;
    for (size_t i = from; i < cps.size(); i += per) {
      std::string l = " > ";
      for (size_t j = i; j < std::min(cps.size(), i + per); ++j) l += cps[j];
      lines.push_back(l);
    }
  }
  if (options_.show_probs) {
    for (const TopEntry& e : s.top)
      lines.push_back(cat("   ", bar(e.p, 20), " ", fixed(e.p * 100, 1), "% ",
                          printable(e.text.empty() ? cat("#", e.id) : e.text)));
  }
  for (const std::string& warning : options_.warnings) lines.push_back(warn(warning));
  if (!s.error.empty()) lines.push_back(warn(cat("error: ", s.error)));

  std::string out;
  for (const std::string& l : lines) out += fit(color ? l : strip(l), w) + "\n";
  return out;
}

void Hud::draw(bool force, double t_ms) {
  State& s = *state_;
  if (!force && t_ms - s.last_draw_ms < options_.redraw_ms) return;
  s.last_draw_ms = t_ms;
  const std::string p = render(true);
  std::string out;
  if (s.drawn_lines > 0) out += cat("\x1b[", s.drawn_lines, "F");  // back to the panel's top
  out += cat("\x1b[J", p);
  s.drawn_lines = int(std::count(p.begin(), p.end(), '\n'));
  std::fwrite(out.data(), 1, out.size(), out_);
  std::fflush(out_);
}

void Hud::on(const Event& e, double t) {
  State& s = *state_;
  std::string line;  // the plain log line, if this event gets one
  bool force = false;
  if (const auto* l = std::get_if<LoadStage>(&e)) {
    if (l->tensor.empty()) {
      force = true;
      if (l->status == "started") {
        s.stage = l->stage;
        if (l->stage == "tensors") s.tensors_start_ms = t, s.total_bytes = l->total_bytes;
        line = cat("stage ", l->stage, " started",
                   l->total_bytes ? cat(" (", human_bytes(double(l->total_bytes)), ")") : "");
      } else if (l->status == "completed") {
        s.done_stages.push_back(l->stage);
        line = cat("stage ", l->stage, " completed in ", fixed(l->duration_ms, 1), " ms");
      } else {
        s.failed_stages.push_back(l->stage);
        s.error = l->error;
        line = cat("stage ", l->stage, " failed: ", l->error);
      }
    } else if (l->status != "started") {
      s.done_bytes = l->done_bytes;
      s.total_bytes = std::max(s.total_bytes, l->total_bytes);
      if (l->status == "completed") ++s.n_tensors;
      s.recent.push_back({l->tensor, l->tensor_type, l->bytes, l->duration_ms});
      if (s.recent.size() > 5) s.recent.pop_front();
      line = cat("tensor ", l->tensor, " ", l->tensor_type, " ", human_bytes(double(l->bytes)), " ",
                 fixed(l->duration_ms, 1), " ms ", l->status, " [",
                 s.total_bytes ? s.done_bytes * 100 / s.total_bytes : 0, "%]");
      if (!l->error.empty()) line += cat(": ", l->error);
    }
    if (s.tensors_start_ms >= 0 && (s.stage == "tensors" || l->stage == "tensors"))
      s.tensors_ms = t - s.tensors_start_ms;
  } else if (const auto* a = std::get_if<GpuAlloc>(&e)) {
    s.gpu = a->total;
  } else if (const auto* lim = std::get_if<Limits>(&e)) {
    s.limits = cat(lim->device, " (", lim->driver, "), ", human_bytes(double(lim->memory)),
                   ", storage range ", human_bytes(double(lim->max_storage_buffer_range)),
                   ", subgroup ", lim->subgroup_size, lim->shader_float16 ? ", fp16" : "",
                   lim->cooperative_matrix ? ", coopmat" : "");
    if (lim->memory) s.budget = lim->memory;
    line = cat("device ", s.limits);
    force = true;
  } else if (const auto* p = std::get_if<Pipeline>(&e)) {
    ++(p->cache_hit ? s.cache_hits : s.compiled);
    s.pipeline_ms += p->ms;
    line = cat("pipeline ", p->kernel, " ", p->variant, " ", p->cache_hit ? "cache_hit" : "compile",
               " ", fixed(p->ms, 1), " ms");
  } else if (const auto* ly = std::get_if<Layers>(&e)) {
    s.modes = ly->modes;
    s.fallbacks = ly->fallbacks;
    s.fallback_reason = ly->reason;
    int gpu = int(std::count(ly->modes.begin(), ly->modes.end(), "gpu"));
    line = cat("layers: ", gpu, " gpu, ", int(ly->modes.size()) - gpu, " cpu");
    if (!ly->fallbacks.empty()) line += cat(", ", ly->fallbacks.size(), " fallbacks: ", ly->reason);
    force = true;
  } else if (const auto* tk = std::get_if<Token>(&e)) {
    s.n_past = tk->n_past;
    s.n_ctx = tk->n_ctx;
    s.top = tk->top_k;
    s.entropy = tk->entropy;
    if (tk->phase == "prefill") {
      s.prompt_tokens += tk->n_tokens;
      s.prefill_ms += tk->ms;
    } else {
      ++s.generated;
      s.decode_ms += tk->ms;
    }
    s.text += tk->text;
    if (options_.show_probs) {
      line = cat("token ", tk->id, " '", printable(tk->text), "' ", fixed(tk->ms, 1), " ms H ",
                 fixed(tk->entropy, 2), " top:");
      for (const TopEntry& x : tk->top_k) line += cat(" ", x.id, "=", fixed(x.p, 3));
    }
  } else if (const auto* sm = std::get_if<Summary>(&e)) {
    force = true;
    line = cat("summary: loaded ", human_bytes(double(sm->load_bytes)), " in ",
               fixed(sm->load_ms / 1000, 2), " s; prompt ", sm->prompt_tokens, " tokens in ",
               fixed(sm->prefill_ms, 1), " ms; ", sm->generated_tokens, " tokens in ",
               fixed(sm->decode_ms, 1), " ms");
  }
  if (options_.tty) {
    draw(force, t);
  } else if (!line.empty()) {
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
  }
}

void Hud::close() {
  if (options_.tty) draw(true, 0);
}

}  // namespace ml::telemetry
