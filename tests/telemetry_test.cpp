// Telemetry (libml/src/telemetry/): the JSON lines of a full load-and-generate run validate
// against tests/data/telemetry.schema.json (python jsonschema, tests/tools/check_telemetry.py)
// and name every loaded tensor with its byte count; the HUD's plain mode has no escape codes,
// its panel shows progress, rates and probabilities; distribution() is the softmax's.
#include "ml/telemetry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/run.h"
#include "ml/tok.h"
#include "test_util.h"

namespace ml {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
}

// 0 when check_telemetry.py accepts the file.
int validate(const fs::path& events) {
  const std::string cmd = "python3 " +
                          (test::source_dir() / "tests/tools/check_telemetry.py").string() + " " +
                          (test::source_dir() / "tests/data/telemetry.schema.json").string() + " " +
                          events.string() + " >/dev/null";
  return std::system(cmd.c_str());
}

std::vector<json> read_lines(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

TEST(Telemetry, LoadAndGenerateRunMatchesTheSchema) {
  ASSERT_EQ(std::system("python3 -c 'import jsonschema' 2>/dev/null"), 0)
      << "python3 jsonschema is needed (pip install jsonschema)";
  const fs::path events = temp("ml-telemetry.jsonl");
  const std::string model_path = test::shared("models/llama-tiny-q4_k_m.gguf").string();
  char* hud_text = nullptr;
  size_t hud_size = 0;
  std::FILE* hud_out = open_memstream(&hud_text, &hud_size);
  ASSERT_NE(hud_out, nullptr);
  uint64_t weight_bytes = 0;
  telemetry::Generated g;
  gguf::File file;
  bool tk_eog = false;
  {
    telemetry::Telemetry t;
    t.add(std::make_unique<telemetry::JsonLines>(events.string()));
    t.add(std::make_unique<telemetry::Hud>(hud_out, telemetry::HudOptions{false, true, 100, 80}));
    auto source = gguf::open_source(model_path);
    file = load_header(*source, &t);
    auto be = make_cpu_backend(2);
    LoadOptions lo;
    lo.telemetry = &t;
    const Model m = load_model(*be, *source, file, lo);
    weight_bytes = m.weights.bytes;
    t.emit(telemetry::Layers{std::vector<std::string>(size_t(m.config.n_layer), "cpu"), {}, ""});
    Session s(*be, m, SessionOptions{gguf::Type::F32, 64, 512, 0});
    Sampler sampler(SamplerParams{0.0f, 40, 0.95f, 0.05f, 1.0f, 64, 1});
    const tok::Tokenizer tk = tok::Tokenizer::from_metadata(file.metadata);
    const std::vector<int32_t> prompt = tk.encode("Once upon a time");
    g = telemetry::generate(s, sampler, tk, prompt, 6, &t);
    tk_eog = !g.ids.empty() && tk.is_eog(g.ids.back());
    t.emit(telemetry::Summary{weight_bytes, 1.0, int64_t(prompt.size()), int64_t(g.ids.size()),
                              g.prefill_ms, g.decode_ms, 0});
  }
  std::fclose(hud_out);
  const std::string hud(hud_text, hud_size);
  std::free(hud_text);

  EXPECT_EQ(validate(events), 0);
  const auto lines = read_lines(events);
  std::map<std::string, uint64_t> completed;
  int tokens = 0, summaries = 0;
  for (const json& e : lines) {
    if (e["event"] == "load_stage" && e.contains("tensor") && e["status"] == "completed") {
      EXPECT_EQ(completed.count(e["tensor"]), 0u) << e["tensor"];
      completed[e["tensor"]] = e["bytes"];
    }
    if (e["event"] == "token") {
      ++tokens;
      EXPECT_EQ(e["top_k"].size(), 5u);
      EXPECT_EQ(e["id"], g.ids[size_t(tokens - 1)]);
      EXPECT_EQ(e["id"], e["top_k"][0]["id"]);  // greedy: the most probable one
    }
    summaries += e["event"] == "summary";
  }
  uint64_t sum = 0;
  for (const gguf::TensorInfo& info : file.tensors) {
    ASSERT_EQ(completed.count(info.name), 1u) << info.name;
    EXPECT_EQ(completed[info.name], info.size) << info.name;
    sum += info.size;
  }
  EXPECT_EQ(completed.size(), file.tensors.size());
  EXPECT_EQ(sum, weight_bytes);
  EXPECT_EQ(tokens, int(g.ids.size()));
  ASSERT_FALSE(g.ids.empty());
  EXPECT_TRUE(g.ids.size() == 6u || tk_eog) << g.ids.size() << " tokens, no end token";
  EXPECT_EQ(summaries, 1);
  EXPECT_EQ(lines.front()["stage"], "header");

  // The HUD on a pipe: plain lines, one per tensor, no escape codes.
  EXPECT_EQ(hud.find('\x1b'), std::string::npos);
  EXPECT_HAS(hud, "tensor token_embd.weight Q4_K 576 KiB");
  EXPECT_HAS(hud, "stage tensors completed");
  EXPECT_HAS(hud, "summary: loaded");
  fs::remove(events);
}

TEST(Telemetry, SchemaRejectsBadEvents) {
  const fs::path p = temp("ml-telemetry-bad.jsonl");
  const std::string good =
      telemetry::to_json(telemetry::GpuAlloc{"blk.0.attn_q.weight", 64, 128}, 1.5);
  for (
      const std::string& bad :
      {std::string(R"({"event":"gpu_alloc","t_ms":1,"name":"x","bytes":-1,"total":0})"),
       std::string(
           R"({"event":"load_stage","t_ms":1,"stage":"tensors","status":"failed","bytes":1,"done_bytes":0,"total_bytes":1,"duration_ms":0})"),
       std::string(R"({"event":"tokens","t_ms":1})")}) {
    std::ofstream(p) << good << "\n" << bad << "\n";
    EXPECT_NE(validate(p), 0) << bad;
  }
  std::ofstream(p) << good << "\n";
  EXPECT_EQ(validate(p), 0) << good;
  fs::remove(p);
}

TEST(Telemetry, HudPanelShowsProgressRatesAndProbabilities) {
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  telemetry::Hud hud(out, telemetry::HudOptions{true, true, 90, 0});
  using telemetry::LoadStage;
  hud.on(telemetry::Limits{"llvmpipe", "Mesa", 1 << 27, 1ull << 32, 8ull << 30, 8, true, false}, 1);
  hud.on(LoadStage{"tensors", "", "", "started", 3 << 20, 0, 3 << 20, 0, {}}, 2);
  hud.on(
      LoadStage{
          "tensors", "blk.0.ffn_up.weight", "Q4_K", "completed", 1 << 20, 1 << 20, 3 << 20, 5, {}},
      1002);
  hud.on(telemetry::GpuAlloc{"blk.0.ffn_up.weight", 1 << 20, 2 << 20}, 1003);
  hud.on(telemetry::Layers{{"gpu", "cpu"}, {1}, "no MXFP4 kernel"}, 1004);
  hud.on(
      telemetry::Token{
          "decode", 42, "fox", {{42, "fox", 0.75f}, {7, "dog", 0.25f}}, 0.56, 20, 1, 10, 64},
      1005);
  const std::string panel = hud.panel();
  EXPECT_HAS(panel, "[tensors …]");
  EXPECT_HAS(panel, "1 MiB / 3 MiB");
  EXPECT_HAS(panel, "ETA 2.0 s");  // 1 MiB/s with 2 MiB left
  EXPECT_HAS(panel, "blk.0.ffn_up.weight  Q4_K  1 MiB  5.0 ms");
  EXPECT_HAS(panel, "2 MiB / 8 GiB");
  EXPECT_HAS(panel, "llvmpipe (Mesa)");
  EXPECT_HAS(panel, "layers GC 1 on CPU: no MXFP4 kernel");
  EXPECT_HAS(panel, "KV ");
  EXPECT_HAS(panel, "10/64");
  EXPECT_HAS(panel, "decode 50.0 tok/s");
  EXPECT_HAS(panel, "75.0% fox");
  EXPECT_HAS(panel, "> fox");
  EXPECT_EQ(panel.find('\x1b'), std::string::npos);  // panel() is the text without colour
  hud.close();
  std::fclose(out);
  const std::string drawn(text, size);
  std::free(text);
  EXPECT_HAS(drawn, "\x1b[J");      // redrawn in place
  EXPECT_HAS(drawn, "\x1b[33;1m");  // the fallback in the warning colour
}

TEST(Telemetry, DistributionIsTheSoftmax) {
  const float uniform[4] = {2, 2, 2, 2};
  auto d = telemetry::distribution(uniform, 4, 2);
  EXPECT_NEAR(d.entropy, std::log(4.0), 1e-9);
  ASSERT_EQ(d.top.size(), 2u);
  EXPECT_FLOAT_EQ(d.top[0].p, 0.25f);
  const float peaked[3] = {0, std::log(3.0f), 0};  // p = 0.2, 0.6, 0.2
  d = telemetry::distribution(peaked, 3, 5);
  ASSERT_EQ(d.top.size(), 3u);
  EXPECT_EQ(d.top[0].id, 1);
  EXPECT_NEAR(d.top[0].p, 0.6, 1e-6);
  EXPECT_NEAR(d.entropy, -(0.6 * std::log(0.6) + 0.4 * std::log(0.2)), 1e-6);
}

}  // namespace
}  // namespace ml
