// Matmul per weight type at real shapes: one token through matmul_vec (GB/s of weight bytes
// read) and many tokens through matmul_tiled (TFLOP/s). JSON lines; never asserts time.
// The weight is a random block pattern of 64 rows repeated, streamed through the staging
// ring, so a 600 MB tensor never sits in host memory.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
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
    {"llama-8b attn_k", 1024, 4096},
    {"llama-8b attn_q", 4096, 4096},
    {"llama-8b ffn_up", 14336, 4096},
    {"llama-8b ffn_down", 4096, 14336},
    {"gpt-oss attn_o", 2880, 2880},
    {"gpt-oss output", 201088, 2880},
    // The small models' decode shapes, where a row has fewer units than the integer
    // kernel's workgroup has invocations (k = 1024-2880).
    {"llama-1b attn_q", 2048, 2048},
    {"llama-1b attn_k", 512, 2048},
    {"llama-1b ffn_up", 8192, 2048},
    {"llama-1b ffn_down", 2048, 8192},
    {"llama-1b output", 128256, 2048},
    {"qwen3-0.6b attn_q", 2048, 1024},
    {"qwen3-0.6b attn_k", 1024, 1024},
    {"qwen3-0.6b attn_o", 1024, 2048},
    {"qwen3-0.6b ffn_up", 3072, 1024},
    {"qwen3-0.6b ffn_down", 1024, 3072},
    {"gemma3-1b attn_q", 1024, 1152},
    {"gemma3-1b ffn_up", 6912, 1152},
    {"gpt-oss attn_q", 4096, 2880},
    {"gpt-oss attn_k", 512, 2880},
    {"gpt-oss attn_o 4096", 2880, 4096},
};

struct Ms {
  double all = 0;     // every dispatch
  double matvec = 0;  // without quantize_x's
};

// Mean ms per matmul of `rec` (its `per_submit` matmuls, each one dispatch per row slice
// plus quantize_x's where x is quantized first): the sum of the dispatches' times. The GPU
// first runs it for at least `warm_ms`: an idle H100 runs its cores at a fraction of the boost
// clock, which made decode-type kernels measure 4-5x slower than under a model's steady load.
Ms gpu_ms(ml::vk::Recorder& rec, int reps, int per_submit, int warm_ms) {
  using clock = std::chrono::steady_clock;
  for (const auto start = clock::now();
       clock::now() - start < std::chrono::milliseconds(warm_ms);)
    rec.submit();
  Ms total;
  for (int i = 0; i < reps; ++i) {
    rec.submit();
    for (const auto& t : rec.timings()) {
      total.all += t.ms;
      if (!t.label.starts_with("quantize_x")) total.matvec += t.ms;
    }
  }
  const double n = double(reps) * double(per_submit);
  return {total.all / n, total.matvec / n};
}

// Times W x for n tokens: a dispatch alone first (an estimate), then as many as make a
// submit ~4 ms so the GPU stays busy between timestamps. x_q: where the integer matvec
// quantizes x once per matmul (as the Vulkan backend passes it), or null.
Ms time_matmul(ml::vk::Device& device, const ml::ops::GpuWeight& w, const ml::vk::Buffer& x,
               uint64_t n, const ml::vk::Buffer& y, int reps, int warm_ms,
               const ml::vk::Buffer* x_q) {
  const auto kernel = ml::ops::MatmulKernel::automatic;
  // A fresh QuantizedX per matmul: every timing includes its quantize_x dispatch.
  ml::ops::QuantizedX q{x_q};
  ml::vk::Recorder one(device, true);
  ml::ops::matmul(one, w, x, n, y, kernel, x_q ? &q : nullptr);
  const double ms = gpu_ms(one, 1, 1, 0).all;
  const int per_submit = int(std::clamp(4.0 / ms, 1.0, 200.0));
  ml::vk::Recorder rec(device, true);
  for (int i = 0; i < per_submit; ++i) {
    q = {x_q};
    ml::ops::matmul(rec, w, x, n, y, kernel, x_q ? &q : nullptr);
  }
  return gpu_ms(rec, reps, per_submit, warm_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_matmul: GPU matmul per weight type at real shapes (JSON lines)"};
  std::vector<std::string> types;
  uint64_t tokens = 512;
  int reps = 10, device_index = -1, warm_ms = 60;
  bool skip_tiled = false;
  std::vector<std::string> shape_names;
  app.add_option("--type", types, "weight types (default: every GPU type)");
  app.add_option("--tokens", tokens, "tokens for the tiled test")->check(CLI::Range(2, 65536));
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::Range(1, 10000));
  app.add_flag("--no-tiled", skip_tiled, "only the one-token matvec");
  app.add_option("--warm-ms", warm_ms, "ms each measurement first runs untimed")
      ->check(CLI::Range(0, 60000));
  app.add_option("--shape", shape_names, "shapes by model name, e.g. \"llama-8b ffn_up\" (default: all)");
  std::vector<std::string> configs = {""};
  app.add_option(
      "--matvec-config", configs,
      "ML_MATVEC values to compare (kernel,workgroup,rows,groups[,form[,lanes[,shared]]]; kernel "
      "0 direct, 1 staged, 2 q8, 3 q8 plain-integer, 4 q8 single rounding, 5 q8 on x quantized "
      "once per matmul, 6 as 5 with a single rounding; lanes: invocations per group of rows)");
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
        if (!shape_names.empty() &&
            std::find(shape_names.begin(), shape_names.end(), s.model) == shape_names.end())
          continue;
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
          ml::vk::Buffer x(device, tokens * s.k * 4, ml::vk::Memory::device, "x");
          ml::vk::Buffer y(device, tokens * s.m * 4, ml::vk::Memory::device, "y");
          const uint64_t xq_bytes = ml::ops::quantized_x_bytes(type, s.k, 1);
          std::unique_ptr<ml::vk::Buffer> x_q;
          if (xq_bytes)
            x_q = std::make_unique<ml::vk::Buffer>(device, xq_bytes, ml::vk::Memory::device, "x_q");
          ml::vk::Recorder init(device);
          init.fill(x, 0, x.size(), 0x3c000000u);  // 2^-7
          init.submit();
          for (const std::string& config : configs) {
            if (config.empty())
              unsetenv("ML_MATVEC");
            else
              setenv("ML_MATVEC", config.c_str(), 1);
            nlohmann::json j = base;
            j["test"] = "matvec";
            j["n"] = 1;
            if (!config.empty()) j["config"] = config;
            try {
              // GB/s counts quantize_x's time; "matvec GB/s" the matvec's dispatches alone
              // (a decode shares quantize_x between the matmuls of one x).
              const Ms ms = time_matmul(device, gw, x, 1, y, reps, warm_ms, x_q.get());
              j["ms"] = ms.all;
              j["GB/s"] = double(s.m * rb) / (ms.all * 1e-3) / 1e9;
              j["matvec GB/s"] = double(s.m * rb) / (ms.matvec * 1e-3) / 1e9;
            } catch (const ml::Error& e) {
              j["error"] = e.what();
            }
            std::cout << j.dump() << std::endl;
          }
          if (!skip_tiled) {
            nlohmann::json j = base;
            j["test"] = "matmul_tiled";
            j["n"] = tokens;
            try {
              const double ms = time_matmul(device, gw, x, tokens, y, reps, warm_ms, nullptr).all;
              j["ms"] = ms;
              j["TFLOP/s"] = 2.0 * double(s.m) * double(s.k) * double(tokens) / (ms * 1e-3) / 1e12;
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
