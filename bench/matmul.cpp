// Matmul per weight type at real shapes: one token through matmul_vec (GB/s of weight bytes
// read) and many tokens through matmul_tiled (TFLOP/s). JSON lines; never asserts time.
// The weight is a random block pattern of 64 rows repeated, streamed through the staging
// ring, so a 600 MB tensor never sits in host memory.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ml/ops.h"
#include "ml/quant.h"

namespace {

using ml::gguf::Type;

struct Shape {
  const char* model;
  uint64_t m, k;  // rows, row length
};
constexpr Shape kShapes[] = {
    {"llama-8b attn_q", 4096, 4096},
    {"llama-8b ffn_up", 14336, 4096},
    {"gpt-oss attn_o", 2880, 2880},
    {"gpt-oss output", 201088, 2880},
};

double gpu_ms(ml::vk::Recorder& rec, int reps) {
  rec.submit();  // warm-up (and pipeline creation is already done)
  double total = 0;
  for (int i = 0; i < reps; ++i) {
    rec.submit();
    for (const auto& t : rec.timings()) total += t.ms;
  }
  return total / reps;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_matmul: GPU matmul per weight type at real shapes (JSON lines)"};
  std::vector<std::string> types;
  uint64_t tokens = 512;
  int reps = 10, device_index = -1;
  bool skip_tiled = false;
  app.add_option("--type", types, "weight types (default: every GPU type)");
  app.add_option("--tokens", tokens, "tokens for the tiled test")->check(CLI::Range(2, 65536));
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::Range(1, 10000));
  app.add_flag("--no-tiled", skip_tiled, "only the one-token matvec");
  app.add_option("--device", device_index, "Vulkan device index");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    std::vector<Type> list;
    for (const auto& name : types) {
      auto t = ml::gguf::type_from_name(name);
      if (!t || !ml::ops::gpu_supports(*t)) ml::fail("no GPU kernel for type ", name);
      list.push_back(*t);
    }
    if (list.empty()) list = ml::ops::gpu_types();
    ml::vk::DeviceOptions options;
    if (device_index >= 0) options.index = uint32_t(device_index);
    ml::vk::Device device(options);
    std::cerr << ml::vk::describe(device.limits());
    if (!device.limits().timestamps) ml::fail("the device has no compute-queue timestamps");
    ml::vk::StagingRing ring(device);
    for (Type type : list)
      for (const Shape& s : kShapes) {
        if (s.k % ml::gguf::traits(type).block_size) continue;  // K-quants need k % 256 == 0
        nlohmann::json base = {
            {"model", s.model}, {"type", ml::gguf::type_name(type)}, {"m", s.m}, {"k", s.k}};
        try {
          const uint64_t rb = ml::gguf::row_bytes(type, s.k);
          const uint64_t pattern_rows = 64;
          const auto pattern = ml::quant::random_blocks(type, pattern_rows * s.k, 1);
          ml::vk::Buffer w(device, (s.m * rb + 15) / 16 * 16, ml::vk::Memory::device, "w");
          ring.upload(w, 0, w.size(), [&](uint64_t off, std::span<std::byte> out) {
            for (size_t i = 0; i < out.size(); ++i) out[i] = pattern[(off + i) % pattern.size()];
          });
          const ml::ops::GpuWeight gw{&w, 0, type, s.k, s.m};
          for (uint64_t n : {uint64_t(1), tokens}) {
            if (n > 1 && skip_tiled) continue;
            nlohmann::json j = base;
            j["test"] = n == 1 ? "matvec" : "matmul_tiled";
            j["n"] = n;
            try {
              ml::vk::Buffer x(device, n * s.k * 4, ml::vk::Memory::device, "x");
              ml::vk::Buffer y(device, n * s.m * 4, ml::vk::Memory::device, "y");
              ml::vk::Recorder init(device);
              init.fill(x, 0, x.size(), 0x3c000000u);  // 2^-7
              init.submit();
              ml::vk::Recorder rec(device, true);
              ml::ops::matmul(rec, gw, x, n, y);
              const double ms = gpu_ms(rec, reps);
              j["ms"] = ms;
              j["GB/s"] = double(s.m * rb) / (ms * 1e-3) / 1e9;
              j["TFLOP/s"] = 2.0 * double(s.m) * double(s.k) * double(n) / (ms * 1e-3) / 1e12;
            } catch (const ml::Error& e) {
              j["error"] = e.what();
            }
            std::cout << j.dump() << std::endl;
          }
        } catch (const ml::Error& e) {
          base["error"] = e.what();
          std::cout << base.dump() << std::endl;
        }
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
