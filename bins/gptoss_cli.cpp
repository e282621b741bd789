// Gate K: chat or completion with any supported model, streamed. Renders the family's prompt
// format (Harmony for gpt-oss, with the reasoning level; Gemma, Llama 3, ChatML), generates
// with ml::Generator and prints text as it comes: for Harmony the `final` channel is the
// answer and the `analysis` channel is shown (dimmed on a TTY, prefixed on a pipe) only with
// --show-analysis. The answer goes to stdout; load, warnings and tokens/s to stderr.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "ml/backend.h"
#include "ml/chat.h"
#include "ml/model.h"
#include "ml/run.h"
#include "ml/tok.h"

namespace {

struct Flags {
  std::string gguf, prompt, system, developer, backend = "vulkan", kv = "f16";
  std::string reasoning = "low", date;
  bool raw = false, chat = false, show_analysis = false, moe_fallback = false;
  bool show_tokens = false;
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
class HarmonyPrinter {
 public:
  HarmonyPrinter(bool show_analysis, bool tty) : show_(show_analysis), tty_(tty) {}

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
      if (final_printed_ && index != message_) std::fputs("\n", stdout);
      final_printed_ = true;
    } else {
      if (!show_) return;
      if (index != message_) {
        end_aside();
        if (final_printed_) std::fputs("\n", stdout);
        std::fputs(tty_ ? "\x1b[2m" : "", stdout);
        if (!tty_) {
          std::printf("[%s%s%s] ", m.channel.c_str(),
                      m.recipient.empty() ? "" : " to=", m.recipient.c_str());
        }
        aside_ = true;
      }
    }
    message_ = index;
    std::fwrite(content.data(), 1, content.size(), stdout);
    std::fflush(stdout);
  }

  // After the run: what the output held.
  void finish() {
    end_aside();
    if (final_printed_) std::fputs("\n", stdout);
    std::fflush(stdout);
    if (!final_printed_)
      std::fprintf(stderr, "note: the output held no `final` channel message%s\n",
                   show_ ? "" : " (--show-analysis shows the others, --raw the text as is)");
  }

 private:
  void end_aside() {
    if (!aside_) return;
    std::fputs(tty_ ? "\x1b[0m\n" : "\n", stdout);
    aside_ = false;
  }

  ml::chat::HarmonyStream stream_;
  bool show_, tty_;
  bool aside_ = false, final_printed_ = false;
  size_t message_ = 0;  // 1-based index of the message printed last
};

int run(const Flags& f) {
  auto source = ml::gguf::open_source(f.gguf);
  const ml::gguf::File file = ml::gguf::parse(*source);
  const auto tokenizer = ml::tok::Tokenizer::from_metadata(file.metadata);
  auto be = ml::make_backend(f.backend);
  const auto t0 = std::chrono::steady_clock::now();
  const ml::Model model = ml::load_model(*be, *source, file);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ml::Config& c = model.config;
  std::fprintf(stderr, "model: %s, %lld layers, %lld vocab, %.0f MiB on %s, loaded in %.1f s\n",
               c.arch.c_str(), (long long)c.n_layer, (long long)c.n_vocab,
               double(model.weights.bytes) / (1 << 20), be->name().c_str(), load_s);
  if (f.layers > 0)
    std::fprintf(stderr,
                 "warning: BRING-UP --layers %lld: only the first %lld of %lld layers run;"
                 " the output is not the model's\n",
                 (long long)f.layers, (long long)f.layers, (long long)c.n_layer);
  if (f.moe_fallback)
    std::fprintf(stderr,
                 "warning: BRING-UP --moe-fallback: every MoE layer uses expert 0 alone;"
                 " the output is not the model's\n");

  const bool harmony =
      !f.raw && ml::chat::format_for_architecture(c.arch) == ml::chat::Format::Harmony;
  const std::vector<int32_t> prompt = tokenizer.encode(render_prompt(f, c.arch), true, true);
  if (f.show_tokens) std::fprintf(stderr, "prompt tokens: %s\n", join(prompt).c_str());

  ml::SessionOptions so;
  so.kv_type = f.kv == "f32" ? ml::gguf::Type::F32 : ml::gguf::Type::F16;
  so.n_ctx = f.ctx;
  so.n_layer = f.layers;
  so.moe_fallback = f.moe_fallback;
  ml::Session session(*be, model, so);
  ml::GenerateOptions go;
  go.max_tokens = f.max_tokens;
  go.sampling = f.sampling;
  go.n_batch = so.n_batch;
  if (f.seed < 0) {
    go.sampling.seed = std::random_device{}();
    if (go.sampling.temperature > 0.0f)
      std::fprintf(stderr, "seed: %llu\n", (unsigned long long)go.sampling.seed);
  } else {
    go.sampling.seed = uint64_t(f.seed);
  }
  ml::Generator generator(*be, session, tokenizer, go);

  HarmonyPrinter printer(f.show_analysis, isatty(fileno(stdout)) != 0);
  ml::GenerateCallbacks cb;
  cb.on_token = [&](const ml::TokenEvent& ev) {
    if (harmony) {
      printer.token(ev, tokenizer);
    } else {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  const ml::GenerateStats st = generator.run(prompt, cb);
  if (harmony) {
    printer.finish();
  } else {
    std::fputs("\n", stdout);
    std::fflush(stdout);
  }
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
  app.add_option("--gguf", f.gguf, "model file or URL")->required();
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    return run(f);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
