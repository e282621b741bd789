// The bandwidth ceiling: device-local buffer copies with vkCmdCopyBuffer and with the uvec4
// copy kernel (shaders/copy.comp), and a kernel that only reads (copy.comp's READ_ONLY, the
// matvec's pattern). JSON lines; "GB/s" counts bytes read plus bytes written.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ml/vk.h"

namespace {

// Mean ms per submit of `rec`; first ~60 ms of submits, so the GPU runs at its load clock
// (as bench_matmul's timings do).
double time_ms(ml::vk::Recorder& rec, int reps) {
  using clock = std::chrono::steady_clock;
  for (const auto start = clock::now(); clock::now() - start < std::chrono::milliseconds(60);)
    rec.submit();
  double total = 0;
  for (int i = 0; i < reps; ++i) {
    rec.submit();
    for (const auto& t : rec.timings()) total += t.ms;
  }
  return total / reps;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_copy: device copy bandwidth (JSON lines)"};
  std::vector<double> mib = {64, 256, 1024};
  std::vector<uint32_t> reads = {1, 4};
  int reps = 10, device_index = -1;
  app.add_option("--mib", mib, "buffer sizes in MiB (fractions too: 31.5 is Q4_K 14336x4096)")
      ->check(CLI::Range(0.001, 4096.0));
  app.add_option("--reads", reads, "uvec4s per invocation of the read kernel (a line each)")
      ->check(CLI::Range(1, 64));
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::Range(1, 10000));
  app.add_option("--device", device_index, "Vulkan device index");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    ml::vk::DeviceOptions options;
    if (device_index >= 0) options.index = uint32_t(device_index);
    ml::vk::Device device(options);
    std::cerr << ml::vk::describe(device.limits());
    if (!device.limits().timestamps) ml::fail("the device has no compute-queue timestamps");
    for (double size_mib : mib) {
      const uint64_t bytes = uint64_t(size_mib * 1048576.0) / 16 * 16;
      ml::vk::Buffer src(device, bytes, ml::vk::Memory::device, "src");
      ml::vk::Buffer dst(device, bytes, ml::vk::Memory::device, "dst");
      std::vector<std::pair<std::string, uint32_t>> tests = {{"vkCmdCopyBuffer", 0},
                                                             {"copy_kernel", 0}};
      for (uint32_t r : reads) tests.push_back({"read_kernel", r});
      for (const auto& [test, r] : tests) {
        ml::vk::Recorder rec(device, true);
        rec.fill(src, 0, bytes, 0x3f800000u);
        rec.barrier();
        ml::vk::Recorder timed(device, true);
        if (test == "vkCmdCopyBuffer")
          timed.copy(src, 0, dst, 0, bytes);
        else if (test == "copy_kernel")
          ml::vk::copy_kernel(timed, src, dst, bytes);
        else
          ml::vk::read_kernel(timed, src, dst, bytes, r);
        rec.submit();
        const double ms = time_ms(timed, reps);
        // The read kernel moves each byte once, the copies twice.
        const double moved = test == "read_kernel" ? 1.0 : 2.0;
        nlohmann::json j = {{"device", device.limits().device_name},
                            {"test", test},
                            {"bytes", bytes},
                            {"ms", ms},
                            {"GB/s", moved * double(bytes) / (ms * 1e-3) / 1e9},
                            {"read GB/s", double(bytes) / (ms * 1e-3) / 1e9}};
        if (r) j["reads"] = r;
        std::cout << j.dump() << std::endl;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
