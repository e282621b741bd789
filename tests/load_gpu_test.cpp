// Streaming load into the Vulkan backend (lavapipe in CI): a shared model served by
// gguf_serve's server and loaded by URL gives exactly the logits of the same model loaded from
// its path (the weights reach the device through the staging ring piece by piece); the
// device's telemetry hooks report its limits, every weight allocation and the pipelines, and
// the whole run's JSON lines validate against tests/data/telemetry.schema.json.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/net.h"
#include "ml/run.h"
#include "ml/telemetry.h"
#include "ml/tok.h"
#include "ml/vk.h"
#include "test_util.h"

namespace ml {
namespace {

namespace fs = std::filesystem;
const std::string kModel = "qwen3-tiny-q6_k.gguf";
const int32_t kPrompt[] = {1, 450, 439, 860};

std::vector<float> logits(Backend& be, gguf::Source& source, const gguf::File& file,
                          const LoadOptions& options) {
  const Model m = load_model(be, source, file, options);
  Session s(be, m, SessionOptions{gguf::Type::F32, 32, 512, 0});
  return s.prefill(kPrompt, false);
}

TEST(StreamLoadGpu, UrlEqualsPathWithTelemetry) {
  const std::string path = test::shared("models/" + kModel).string();
  net::ServeOptions so;
  so.port = 0;
  so.paths = {path};
  so.log = false;
  net::Server server(so);
  server.start();

  gguf::FileSource local(path);
  const gguf::File file = gguf::parse(local);
  auto be_path = make_vulkan_backend();
  const std::vector<float> want = logits(*be_path, local, file, {});

  const fs::path events =
      fs::temp_directory_path() / ("ml-gpu-telemetry-" + std::to_string(::getpid()) + ".jsonl");
  {
    telemetry::Telemetry t;
    t.add(std::make_unique<telemetry::JsonLines>(events.string()));
    vk::DeviceOptions dev;
    dev.disk_cache = false;  // every pipeline compiles: "compile" events, not cache hits
    telemetry::hook(dev, t);
    auto be = make_vulkan_backend(dev);
    auto url = gguf::open_source(server.url() + "/" + kModel);
    const gguf::File url_file = load_header(*url, &t);
    LoadOptions o;
    o.telemetry = &t;
    o.fetch.piece_bytes = 128 << 10;  // several pieces per large tensor
    o.fetch.n_parallel = 4;
    EXPECT_EQ(logits(*be, *url, url_file, o), want);
  }

  const std::string cmd =
      "python3 " + (test::source_dir() / "tests/tools/check_telemetry.py").string() + " " +
      (test::source_dir() / "tests/data/telemetry.schema.json").string() + " " + events.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::map<std::string, int> kinds;
  std::map<std::string, uint64_t> allocated, loaded;
  std::ifstream in(events);
  for (std::string line; std::getline(in, line);) {
    const auto e = nlohmann::json::parse(line);
    ++kinds[e["event"]];
    if (e["event"] == "gpu_alloc") allocated[e["name"]] = e["bytes"];
    if (e["event"] == "load_stage" && e.contains("tensor") && e["status"] == "completed")
      loaded[e["tensor"]] = e["bytes"];
  }
  EXPECT_EQ(kinds["limits"], 1);
  EXPECT_GT(kinds["pipeline"], 0);
  for (const gguf::TensorInfo& info : file.tensors) {
    EXPECT_EQ(loaded[info.name], info.size) << info.name;
    EXPECT_GE(allocated[info.name], info.size) << info.name;  // buffers pad to 16 bytes
  }
  fs::remove(events);
}

}  // namespace
}  // namespace ml
