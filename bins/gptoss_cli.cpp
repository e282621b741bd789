// Gate K: chat or completion with any supported model, streamed. Renders the family's prompt
// format (Harmony for gpt-oss, with the reasoning level; Gemma, Llama 3, ChatML), generates
// with ml::Generator and prints text as it comes: for Harmony the `final` channel is the
// answer and the `analysis` channel is shown (dimmed on a TTY, prefixed on a pipe) only with
// --show-analysis. The answer goes to stdout; load, warnings and tokens/s to stderr.
// --gguf takes a URL too (streamed in by range requests, --cache DIR keeps its bytes). One
// telemetry stream feeds the HUD on stderr (a live panel on a TTY, plain log lines on a pipe,
// none with --quiet) and --telemetry's JSON lines. While the panel holds the terminal the
// answer waits in memory and is printed once the panel is final.
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <span>

#include "common.h"
#include "ml/backend.h"
#include "ml/chat.h"
#include "ml/model.h"
#include "ml/run.h"
#include "ml/telemetry.h"
#include "ml/tok.h"
#include "ml/vk.h"

namespace {

struct Flags {
  std::string gguf, prompt, system, developer, backend = "vulkan", kv = "f16";
  std::string reasoning = "low", date, cache, telemetry;
  bool raw = false, chat = false, show_analysis = false, moe_fallback = false;
  bool show_tokens = false, quiet = false, show_probs = false;
  int max_tokens = 512;
  int64_t ctx = 4096, layers = 0;
  ml::SamplerParams sampling;
  int64_t seed = -1;
};

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

// The prompt as the model was trained to read it (or as given, with --raw).
std::string render_prompt(const Flags& f, const std::string& arch) {
  if (f.raw) return f.prompt;
  const ml::chat::Format format = ml::chat::format_for_architecture(arch);
  std::vector<ml::chat::Message> messages;
  ml::chat::HarmonyOptions harmony;
  if (format == ml::chat::Format::Harmony) {
    harmony.reasoning = f.reasoning;
    harmony.developer = f.developer;
    harmony.date = f.date.empty() ? today() : f.date;
  } else if (!f.developer.empty()) {
    messages.push_back({"system", f.developer, ""});  // the other formats have no developer
  }
  if (!f.system.empty()) messages.push_back({"system", f.system, ""});
  messages.push_back({"user", f.prompt, ""});
  return ml::chat::render(format, messages, harmony);
}

// Prints Harmony output as it streams: final content plain, other channels (analysis,
// commentary) only when asked, dimmed on a terminal and prefixed with their channel on a pipe.
// Writes to `out`: stdout, or the answer's buffer while a HUD holds the terminal.
class HarmonyPrinter {
 public:
  HarmonyPrinter(std::FILE* out, bool show_analysis, bool tty)
      : out_(out), show_(show_analysis), tty_(tty) {}

  void token(const ml::TokenEvent& ev, const ml::tok::Tokenizer& tokenizer) {
    if (ev.special && stream_.control(tokenizer.text(ev.id))) {
      if (!stream_.in_content()) end_aside();
      return;
    }
    const std::string_view content = stream_.text(ev.text);
    if (content.empty()) return;
    const ml::chat::HarmonyMessage& m = stream_.output().messages.back();
    const size_t index = stream_.output().messages.size();
    if (m.channel == "final") {
      end_aside();
      if (final_printed_ && index != message_) std::fputs("\n", out_);
      final_printed_ = true;
    } else {
      if (!show_) return;
      if (index != message_) {
        end_aside();
        if (final_printed_) std::fputs("\n", out_);
        std::fputs(tty_ ? "\x1b[2m" : "", out_);
        if (!tty_) {
          std::fprintf(out_, "[%s%s%s] ", m.channel.c_str(),
                       m.recipient.empty() ? "" : " to=", m.recipient.c_str());
        }
        aside_ = true;
      }
    }
    message_ = index;
    std::fwrite(content.data(), 1, content.size(), out_);
    std::fflush(out_);
  }

  // After the run: what the output held.
  void finish() {
    end_aside();
    if (final_printed_) std::fputs("\n", out_);
    std::fflush(out_);
    if (!final_printed_)
      std::fprintf(stderr, "note: the output held no `final` channel message%s\n",
                   show_ ? "" : " (--show-analysis shows the others, --raw the text as is)");
  }

 private:
  void end_aside() {
    if (!aside_) return;
    std::fputs(tty_ ? "\x1b[0m\n" : "\n", out_);
    aside_ = false;
  }

  std::FILE* out_;
  ml::chat::HarmonyStream stream_;
  bool show_, tty_;
  bool aside_ = false, final_printed_ = false;
  size_t message_ = 0;  // 1-based index of the message printed last
};

// Where the answer goes while the HUD redraws its panel on the same terminal: into memory,
// printed once the panel is final; else straight to stdout.
struct AnswerOut {
  explicit AnswerOut(bool defer) {
    if (defer) {
      file_ = open_memstream(&buf_, &len_);
      if (!file_) ml::fail("open_memstream failed");
    }
  }
  ~AnswerOut() {
    if (file_) std::fclose(file_);
    std::free(buf_);
  }
  AnswerOut(const AnswerOut&) = delete;
  AnswerOut& operator=(const AnswerOut&) = delete;
  std::FILE* get() const { return file_ ? file_ : stdout; }
  void flush_to_stdout() {
    if (!file_) return;
    std::fflush(file_);
    std::fwrite(buf_, 1, len_, stdout);
    std::fflush(stdout);
  }

 private:
  std::FILE* file_ = nullptr;
  char* buf_ = nullptr;
  size_t len_ = 0;
};

// What the summary reports from the stream: the device bytes in use after the last persistent
// allocation, and the bytes the tensors stage moved.
struct Totals {
  uint64_t gpu = 0, loaded = 0;
};
class TotalsSink final : public ml::telemetry::Sink {
 public:
  explicit TotalsSink(Totals& totals) : totals_(totals) {}
  void on(const ml::telemetry::Event& e, double) override {
    if (const auto* a = std::get_if<ml::telemetry::GpuAlloc>(&e)) totals_.gpu = a->total;
    if (const auto* l = std::get_if<ml::telemetry::LoadStage>(&e))
      if (l->stage == "tensors" && l->tensor.empty()) totals_.loaded = l->done_bytes;
  }

 private:
  Totals& totals_;
};

int terminal_width(int fd) {
  winsize ws{};
  return ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? int(ws.ws_col) : 80;
}

// Entropy (nats) of the reported candidates, their p renormalized: the device reads back k
// values per step, not the whole distribution, so this is the entropy of the shortlist.
double entropy(std::span<const ml::Sampler::Candidate> top) {
  double sum = 0, h = 0;
  for (const auto& c : top) sum += c.p;
  if (sum <= 0) return 0;
  for (const auto& c : top)
    if (c.p > 0) h -= (c.p / sum) * std::log(c.p / sum);
  return std::max(h, 0.0);
}

int run(const Flags& f) {
  namespace tm = ml::telemetry;
  const bool hud = !f.quiet && f.telemetry != "-";  // `-`: stderr carries the JSON
  const bool hud_tty = hud && isatty(fileno(stderr)) != 0;
  tm::Telemetry t;
  Totals totals;
  if (!f.telemetry.empty()) t.add(std::make_unique<tm::JsonLines>(f.telemetry));
  std::vector<std::string> warnings;
  if (f.layers > 0)
    warnings.push_back(ml::cat("BRING-UP --layers ", f.layers, ": only the first ", f.layers,
                               " layers run; the output is not the model's"));
  if (f.moe_fallback)
    warnings.push_back(
        "BRING-UP --moe-fallback: every MoE layer uses expert 0 alone; the output is not the "
        "model's");
  if (hud) {
    tm::HudOptions ho;
    ho.tty = hud_tty;
    ho.show_probs = f.show_probs;
    ho.width = hud_tty ? terminal_width(fileno(stderr)) : 80;
    if (hud_tty) ho.warnings = warnings;
    t.add(std::make_unique<tm::Hud>(stderr, ho));
  }
  if (!t.empty()) t.add(std::make_unique<TotalsSink>(totals));
  tm::Telemetry* tp = t.empty() ? nullptr : &t;
  // Lines for stderr: at once on a pipe, after the final panel under a TTY HUD.
  std::vector<std::string> notes;
  auto note = [&](std::string line) {
    if (hud_tty)
      notes.push_back(std::move(line));
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  };

  auto source = ml::gguf::open_source(f.gguf, f.cache);
  const ml::gguf::File file = ml::load_header(*source, tp);
  const auto tokenizer = ml::tok::Tokenizer::from_metadata(file.metadata);
  std::unique_ptr<ml::Backend> be;
  if (f.backend == "vulkan" && tp) {
    ml::vk::DeviceOptions dev;
    tm::hook(dev, t);
    be = ml::make_vulkan_backend(dev);
  } else {
    be = ml::make_backend(f.backend);
  }
  const auto t0 = std::chrono::steady_clock::now();
  ml::LoadOptions lo;
  lo.telemetry = tp;
  const ml::Model model = ml::load_model(*be, *source, file, lo);
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const ml::Config& c = model.config;
  char line[512];
  std::snprintf(line, sizeof line,
                "model: %s, %lld layers, %lld vocab, %.0f MiB on %s, loaded in %.1f s",
                c.arch.c_str(), (long long)c.n_layer, (long long)c.n_vocab,
                double(model.weights.bytes) / (1 << 20), be->name().c_str(), load_ms / 1000);
  note(line);
  for (const std::string& w : warnings) note("warning: " + w);

  const bool harmony =
      !f.raw && ml::chat::format_for_architecture(c.arch) == ml::chat::Format::Harmony;
  const std::vector<int32_t> prompt = tokenizer.encode(render_prompt(f, c.arch), true, true);
  if (f.show_tokens) note("prompt tokens: " + join(prompt));

  ml::SessionOptions so;
  so.kv_type = f.kv == "f32" ? ml::gguf::Type::F32 : ml::gguf::Type::F16;
  so.n_ctx = f.ctx;
  so.n_layer = f.layers;
  so.moe_fallback = f.moe_fallback;
  const auto kv_start = std::chrono::steady_clock::now();
  if (tp) t.emit(tm::LoadStage{"kv", "", "", "started", 0, 0, 0, 0, {}});
  ml::Session session(*be, model, so);
  if (tp)
    t.emit(tm::LoadStage{
        "kv",
        "",
        "",
        "completed",
        session.kv_bytes(),
        session.kv_bytes(),
        session.kv_bytes(),
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - kv_start)
            .count(),
        {}});
  // Which backend runs each layer that runs: all on the one backend (no per-layer fallback).
  const int64_t n_run = f.layers > 0 ? std::min(f.layers, c.n_layer) : c.n_layer;
  if (tp)
    t.emit(tm::Layers{
        std::vector<std::string>(size_t(n_run), f.backend == "cpu" ? "cpu" : "gpu"), {}, ""});
  ml::GenerateOptions go;
  go.max_tokens = f.max_tokens;
  go.sampling = f.sampling;
  go.n_batch = so.n_batch;
  // Candidates with p cost a top-k read back per step: only when something shows them.
  go.n_probs = f.show_probs || !f.telemetry.empty() ? 5 : 0;
  if (f.seed < 0) {
    go.sampling.seed = std::random_device{}();
    if (go.sampling.temperature > 0.0f)
      note(ml::cat("seed: ", (unsigned long long)go.sampling.seed));
  } else {
    go.sampling.seed = uint64_t(f.seed);
  }
  ml::Generator generator(*be, session, tokenizer, go);

  AnswerOut answer(hud_tty && isatty(fileno(stdout)) != 0);
  HarmonyPrinter printer(answer.get(), f.show_analysis, isatty(fileno(stdout)) != 0);
  ml::GenerateCallbacks cb;
  // Router choices for --telemetry: one extra read per pass, only when asked for.
  std::optional<tm::RouterTap> router;
  if (!f.telemetry.empty() && c.n_expert > 0) {
    router.emplace(*be, n_run);
    cb.on_forward = [&](int64_t pos0, std::span<const int32_t> tokens) {
      for (tm::Router& e : router->take(pos0, tokens)) t.emit(std::move(e));
    };
  }
  cb.on_token = [&](const ml::TokenEvent& ev) {
    if (harmony) {
      printer.token(ev, tokenizer);
    } else {
      std::fwrite(ev.text.data(), 1, ev.text.size(), answer.get());
      std::fflush(answer.get());
    }
    if (tp) {
      std::vector<tm::TopEntry> top;
      for (const auto& cand : ev.top) top.push_back({cand.id, tokenizer.piece(cand.id), cand.p});
      t.emit(tm::Token{ev.index == 0 ? "prefill" : "decode", ev.id, std::string(ev.text),
                       std::move(top), entropy(ev.top), ev.ms,
                       ev.index == 0 ? int64_t(prompt.size()) : 1, session.n_past(),
                       session.n_ctx()});
    }
    return true;
  };
  cb.on_stage = [&](const ml::StageEvent& ev) {
    if (!tp) return;
    t.emit(tm::LoadStage{std::string(ev.stage), "", "", "completed", 0, 0, 0, ev.ms, {}});
    if (ev.stage == "prefill") t.emit(tm::LoadStage{"decode", "", "", "started", 0, 0, 0, 0, {}});
  };
  if (tp) t.emit(tm::LoadStage{"prefill", "", "", "started", 0, 0, 0, 0, {}});
  const ml::GenerateStats st = generator.run(prompt, cb);
  if (tp) {
    t.emit(tm::Summary{totals.loaded, load_ms, st.n_prompt, int64_t(st.tokens.size()),
                       st.prefill_ms, st.decode_ms, totals.gpu});
    t.close();
  }
  if (harmony) {
    printer.finish();
  } else {
    std::fputs("\n", answer.get());
    std::fflush(answer.get());
  }
  for (const std::string& line : notes) std::fprintf(stderr, "%s\n", line.c_str());
  answer.flush_to_stdout();
  if (f.show_tokens) std::fprintf(stderr, "output tokens: %s\n", join(st.tokens).c_str());
  std::fprintf(stderr,
               "prefill: %lld tokens in %.1f ms (%.1f tok/s); decode: %lld tokens in %.1f ms "
               "(%.1f tok/s); stop: %s\n",
               (long long)st.n_prompt, st.prefill_ms, st.prefill_tps(), (long long)st.n_decode,
               st.decode_ms, st.decode_tps(), ml::stop_reason_name(st.stop));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gptoss_cli: chat or completion with a GGUF model, streamed"};
  Flags f;
  app.add_option("--gguf", f.gguf, "model file or http(s) URL (streamed by range requests)")
      ->required();
  app.add_option("--cache", f.cache, "on-disk cache folder for a URL's bytes (default: none)");
  app.add_option("--telemetry", f.telemetry, "JSON lines of every event to FILE, `-`: stderr");
  app.add_flag("--quiet", f.quiet, "no HUD (TTY) and no progress lines (pipe) on stderr");
  app.add_flag("--show-probs", f.show_probs, "the top-5 candidates' probabilities per token");
  app.add_option("--prompt", f.prompt, "the user's message (the text itself with --raw)")
      ->required();
  app.add_option("--system", f.system, "system message");
  app.add_option("--developer", f.developer, "developer instructions (Harmony)");
  auto* chat = app.add_flag("--chat", f.chat, "the family's chat format (default)");
  app.add_flag("--raw", f.raw, "plain completion of the prompt text")->excludes(chat);
  app.add_option("--max-tokens", f.max_tokens, "tokens to generate at most")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--temp", f.sampling.temperature, "temperature; 0 = greedy")
      ->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--top-k", f.sampling.top_k, "top-k; 0 = off")->check(CLI::Range(0, 1 << 20));
  app.add_option("--top-p", f.sampling.top_p, "top-p; 1 = off")->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--min-p", f.sampling.min_p, "min-p; 0 = off")->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--repeat-penalty", f.sampling.repeat_penalty, "repetition penalty; 1 = off")
      ->check(CLI::Range(0.01f, 100.0f));
  app.add_option("--seed", f.seed, "sampling seed (default: random, printed)")
      ->check(CLI::Range(int64_t(0), INT64_MAX));
  app.add_option("--backend", f.backend, "vulkan or cpu")->check(CLI::IsMember({"vulkan", "cpu"}));
  app.add_option("--ctx", f.ctx, "context length (capped by the model's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  app.add_option("--kv", f.kv, "KV cache type")->check(CLI::IsMember({"f16", "f32"}));
  app.add_option("--reasoning", f.reasoning, "Harmony reasoning effort")
      ->check(CLI::IsMember({"low", "medium", "high"}));
  app.add_option("--date", f.date, "Harmony current date, YYYY-MM-DD (default: today, UTC)");
  app.add_flag("--show-analysis", f.show_analysis, "show Harmony's analysis channel");
  app.add_flag("--show-tokens", f.show_tokens, "print prompt and output token ids on stderr");
  app.add_option("--layers", f.layers, "bring-up: run only the first N layers")
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_flag("--moe-fallback", f.moe_fallback, "bring-up: expert 0 only in every MoE layer");
  return ml::cli::run(app, argc, argv, [&] { return run(f); });
}
