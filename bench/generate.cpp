// Whole-model generation speed, as llama-bench measures it: "pp512" is one forward pass over
// a 512-token prompt from an empty cache, "tg128" is 128 one-token forward passes from an
// empty cache, each reading back only the argmax. JSON lines; never asserts a time.
// "tg128" decodes greedily as generation does (GreedyPipeline: each pass takes the argmax of
// the one before on the device and is sent before that token is read; the first fed token is
// random); "tg128 sync" feeds random ids from the host and waits for each token, and splits a
// token's wall time into host recording (forward + argmax recorded) and submit-to-result (GPU
// and wait); "host" is the host's time per token in queue submits, fence waits and descriptor
// set writes. Speed does not depend on the ids. --profile adds the GPU time per op label, per
// token, from timestamp queries (of the sync loop).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Split {
  double record_ms = 0, wait_ms = 0;
};

// n one-token steps from an empty cache, each reading back its argmax.
Split decode(ml::Session& session, ml::Backend& be, std::span<const int32_t> tokens) {
  session.reset();
  Split s;
  for (int32_t token : tokens) {
    auto t0 = Clock::now();
    const ml::Tensor logits = session.forward(std::span(&token, 1), false);
    const ml::Tensor next = be.argmax(logits);
    s.record_ms += ms_since(t0);
    t0 = Clock::now();
    ml::read_i32(be, next);
    s.wait_ms += ms_since(t0);
  }
  return s;
}

// n tokens of greedy decoding from an empty cache: n one-token passes, the first fed `first`.
Split decode_pipelined(ml::Session& session, ml::Backend& be, int32_t first, int n) {
  session.reset();
  ml::GreedyPipeline pipe(be, session);
  pipe.start(session.forward(std::span(&first, 1), false));
  for (int i = 0; i < n; ++i) pipe.next(i + 1 < n);
  return {pipe.times().record_ms, pipe.times().wait_ms};
}

void prompt(ml::Session& session, ml::Backend& be, std::span<const int32_t> tokens) {
  session.reset();
  ml::read_i32(be, be.argmax(session.forward(tokens, false)));
}

void print_profile(ml::Backend& be, const nlohmann::json& base, const char* test, int per) {
  auto times = be.take_op_times();
  std::sort(times.begin(), times.end(), [](auto& a, auto& b) { return a.ms > b.ms; });
  double total = 0;
  for (const auto& t : times) total += t.ms;
  for (const auto& t : times) {
    nlohmann::json j = base;
    j["test"] = std::string(test) + " profile";
    j["op"] = t.label;
    j["ms"] = t.ms / per;
    j["count"] = double(t.count) / per;
    j["share"] = total > 0 ? t.ms / total : 0.0;
    std::cout << j.dump() << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_generate: prompt (pp) and decode (tg) tokens/s of a whole model"};
  std::string gguf_path, backend = "vulkan";
  int n_prompt = 512, n_decode = 128, reps = 3;
  bool profile = false;
  app.add_option("--gguf", gguf_path, "model file")->required();
  app.add_option("--backend", backend, "backend")->check(CLI::IsMember({"cpu", "vulkan"}));
  app.add_option("--prompt", n_prompt, "prompt tokens (0: skip pp)")->check(CLI::Range(0, 8192));
  app.add_option("--decode", n_decode, "decoded tokens (0: skip tg)")->check(CLI::Range(0, 8192));
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::Range(1, 1000));
  app.add_flag("--profile", profile, "GPU time per op label (timestamp queries)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    auto source = ml::gguf::open_source(gguf_path);
    const ml::gguf::File file = ml::gguf::parse(*source);
    auto be = ml::make_backend(backend);
    auto t0 = Clock::now();
    const ml::Model model = ml::load_model(*be, *source, file);
    const double load_ms = ms_since(t0);
    ml::SessionOptions options;
    options.n_batch = std::max(n_prompt, 1);
    options.n_ctx = std::max(n_prompt, n_decode) + 1;
    ml::Session session(*be, model, options);

    std::mt19937 rng(1);
    std::uniform_int_distribution<int32_t> id(0, int32_t(model.config.n_vocab - 1));
    std::vector<int32_t> pp(static_cast<size_t>(n_prompt)), tg(static_cast<size_t>(n_decode));
    for (auto& t : pp) t = id(rng);
    for (auto& t : tg) t = id(rng);

    const nlohmann::json base = {{"model", std::filesystem::path(gguf_path).filename().string()},
                                 {"backend", be->name()},
                                 {"load_ms", load_ms}};
    // Warm-up: pipelines are compiled (or read from the disk cache) on first use.
    if (n_prompt > 0) prompt(session, *be, pp);
    if (n_decode > 0) decode(session, *be, std::span(tg).first(std::min(n_decode, 4)));
    if (n_decode > 0) decode_pipelined(session, *be, tg[0], std::min(n_decode, 4));

    // The line of one test: `tokens` per repetition, `ms` a repetition's mean.
    auto rate = [&](const std::string& test, int tokens, double ms) {
      nlohmann::json j = base;
      j["test"] = test;
      j["tokens"] = tokens;
      j["ms"] = ms;
      j["tokens/s"] = tokens / (ms * 1e-3);
      return j;
    };
    if (n_prompt > 0) {
      t0 = Clock::now();
      for (int r = 0; r < reps; ++r) prompt(session, *be, pp);
      std::cout << rate("pp" + std::to_string(n_prompt), n_prompt, ms_since(t0) / reps).dump()
                << std::endl;
    }
    if (n_decode > 0) {
      // The two loops take turns, so a drift of the machine (clocks after the prefill runs)
      // falls on both.
      const std::string tg_name = "tg" + std::to_string(n_decode);
      Split total, pipelined;
      double pipelined_ms = 0, sync_ms = 0;
      // The host's time in the backend's blocking or costly calls, per token, by loop.
      nlohmann::json host_times = nlohmann::json::object(), host_sync = nlohmann::json::object();
      auto add_host = [&](nlohmann::json& to) {
        for (const auto& t : be->take_op_times())
          if (t.label.starts_with("host: ")) {
            auto& e = to[t.label.substr(6)];
            if (e.is_null()) e = {{"ms", 0.0}, {"count", 0.0}};
            e["ms"] = e["ms"].get<double>() + t.ms / (reps * n_decode);
            e["count"] = e["count"].get<double>() + double(t.count) / (reps * n_decode);
          }
      };
      be->take_op_times();
      for (int r = 0; r < reps; ++r) {
        t0 = Clock::now();
        const Split p = decode_pipelined(session, *be, tg[0], n_decode);
        pipelined_ms += ms_since(t0);
        pipelined.record_ms += p.record_ms, pipelined.wait_ms += p.wait_ms;
        add_host(host_times);
        t0 = Clock::now();
        const Split s = decode(session, *be, tg);
        sync_ms += ms_since(t0);
        add_host(host_sync);
        total.record_ms += s.record_ms, total.wait_ms += s.wait_ms;
      }
      nlohmann::json jp = rate(tg_name, n_decode, pipelined_ms / reps);
      jp["host"] = host_times;
      jp["record_ms_per_token"] = pipelined.record_ms / (reps * n_decode);
      jp["wait_ms_per_token"] = pipelined.wait_ms / (reps * n_decode);
      std::cout << jp.dump() << std::endl;
      nlohmann::json j = rate(tg_name + " sync", n_decode, sync_ms / reps);
      j["host"] = host_sync;
      j["record_ms_per_token"] = total.record_ms / (reps * n_decode);
      j["wait_ms_per_token"] = total.wait_ms / (reps * n_decode);
      std::cout << j.dump() << std::endl;
    }
    if (profile) {
      be->set_profiling(true);
      be->take_op_times();
      if (n_prompt > 0) {
        prompt(session, *be, pp);
        print_profile(*be, base, ("pp" + std::to_string(n_prompt)).c_str(), 1);
      }
      if (n_decode > 0) {
        decode(session, *be, tg);
        print_profile(*be, base, ("tg" + std::to_string(n_decode)).c_str(), n_decode);
      }
      be->set_profiling(false);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
