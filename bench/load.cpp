// Weight loading into the Vulkan backend: a GGUF by path (mmap) and by URL from an in-process
// gguf_serve server on loopback, for each --parallel (ranges in flight). JSON lines with the
// tensor bytes, seconds of load_model (header parse and device creation excluded) and GB/s.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ml/backend.h"
#include "ml/model.h"
#include "ml/net.h"

namespace {

struct Result {
  uint64_t bytes = 0;
  double seconds = 0;
};

Result load_once(const std::string& where, const ml::LoadOptions& options) {
  auto source = ml::gguf::open_source(where);
  const ml::gguf::File file = ml::gguf::parse(*source);
  auto be = ml::make_vulkan_backend();
  const auto start = std::chrono::steady_clock::now();
  const ml::Model m = ml::load_model(*be, *source, file, options);
  be->sync();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {m.weights.bytes, s};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_load: GGUF → Vulkan backend by path and by loopback URL (JSON lines)"};
  std::string gguf;
  std::vector<int> parallel = {1, 4, 8};
  uint64_t piece_mib = 8;
  bool no_path = false, no_url = false;
  app.add_option("--gguf", gguf, "model file")->required();
  app.add_option("--parallel", parallel, "ranges in flight for the URL loads")
      ->check(CLI::Range(1, 64));
  app.add_option("--piece-mib", piece_mib, "bytes per range request, MiB")
      ->check(CLI::Range(1, 1024));
  app.add_flag("--no-path", no_path, "skip the load by path");
  app.add_flag("--no-url", no_url, "skip the loads by URL");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    ml::net::ServeOptions so;
    so.port = 0;
    so.paths = {gguf};
    so.log = false;
    ml::net::Server server(so);
    server.start();
    const std::string url = server.url() + "/" + std::filesystem::path(gguf).filename().string();
    auto report = [&](const char* source, int n_parallel, const Result& r) {
      nlohmann::json j = {
          {"test", "load"},         {"model", std::filesystem::path(gguf).filename().string()},
          {"source", source},       {"parallel", n_parallel},
          {"piece_mib", piece_mib}, {"bytes", r.bytes},
          {"seconds", r.seconds},   {"GB/s", double(r.bytes) / r.seconds / 1e9}};
      std::cout << j.dump() << std::endl;
    };
    ml::LoadOptions o;
    o.fetch.piece_bytes = piece_mib << 20;
    if (!no_path) report("path", 1, load_once(gguf, o));
    if (!no_url) {
      for (int p : parallel) {
        o.fetch.n_parallel = p;
        report("url", p, load_once(url, o));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
