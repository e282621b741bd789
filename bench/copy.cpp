// The bandwidth ceiling: device-local buffer copies with vkCmdCopyBuffer and with the uvec4
// copy kernel (shaders/copy.comp). JSON lines; "GB/s" counts bytes read plus bytes written.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ml/vk.h"

namespace {

double time_ms(ml::vk::Recorder& rec, int reps) {
  rec.submit();  // warm-up
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
  std::vector<uint64_t> mib = {64, 256, 1024};
  int reps = 10, device_index = -1;
  app.add_option("--mib", mib, "buffer sizes in MiB");
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
    for (uint64_t size_mib : mib) {
      const uint64_t bytes = size_mib << 20;
      ml::vk::Buffer src(device, bytes, ml::vk::Memory::device, "src");
      ml::vk::Buffer dst(device, bytes, ml::vk::Memory::device, "dst");
      for (const char* test : {"vkCmdCopyBuffer", "copy_kernel"}) {
        ml::vk::Recorder rec(device, true);
        rec.fill(src, 0, bytes, 0x3f800000u);
        rec.barrier();
        ml::vk::Recorder timed(device, true);
        if (std::string(test) == "vkCmdCopyBuffer")
          timed.copy(src, 0, dst, 0, bytes);
        else
          ml::vk::copy_kernel(timed, src, dst, bytes);
        rec.submit();
        const double ms = time_ms(timed, reps);
        nlohmann::json j = {{"device", device.limits().device_name},
                            {"test", test},
                            {"bytes", bytes},
                            {"ms", ms},
                            {"GB/s", 2.0 * double(bytes) / (ms * 1e-3) / 1e9},
                            {"read GB/s", double(bytes) / (ms * 1e-3) / 1e9}};
        std::cout << j.dump() << std::endl;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
