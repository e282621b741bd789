// Gate D: for every weight type in a quant-golden GGUF, GPU dequantize equals T.deq and GPU
// matmul (matvec and tiled) equals T.y, the CPU reference too. A line per type, then a total.
#include <cstdio>
#include <cstdlib>

#include "common.h"
#include "ml/matmul_check.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_gate_d: GPU and CPU dequantize/matmul against golden vectors"};
  const char* shared = std::getenv("ML_SHARED_DIR");
  std::string golden =
      std::string(shared && *shared ? shared : "../shared") + "/quant/quant-golden.gguf";
  std::string backend = "vulkan";
  ml::vk::DeviceOptions options;
  app.add_option("--golden", golden, "quant-golden GGUF (x, T.q, T.deq, T.y)");
  app.add_option("--backend", backend, "backend to check")->check(CLI::IsMember({"vulkan"}));
  ml::cli::add_device_flag(app, options);
  return ml::cli::run(app, argc, argv, [&] {
    ml::vk::Device device(options);
    std::fprintf(stderr, "%s", ml::vk::describe(device.limits()).c_str());
    int passed = 0, failed = 0;
    std::printf("%-8s %5s %5s  %-10s %-10s %-10s %-10s %-10s\n", "type", "rows", "k", "cpu_deq",
                "cpu_y", "gpu_deq", "gpu_y", "gpu_tiled");
    for (const auto& r : ml::ops::check_quant_golden(device, golden)) {
      std::printf("%-8s %5llu %5llu  %-10.3g %-10.3g %-10.3g %-10.3g %-10.3g %s%s\n",
                  r.type.c_str(), (unsigned long long)r.rows, (unsigned long long)r.k, r.cpu_deq,
                  r.cpu_y, r.gpu_deq, r.gpu_y, r.gpu_y_tiled, r.passed ? "PASS" : "FAIL ",
                  r.passed ? "" : r.error.c_str());
      (r.passed ? passed : failed)++;
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
  });
}
