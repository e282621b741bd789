// Gate C: a real tensor's dequant+matmul on the GPU. Uploads the tensor (or its first N
// rows), multiplies it by K random vectors, checks against the CPU reference, prints the
// device limits, the time per multiply and the GB/s of weight bytes read.
#include <cstdio>

#include "common.h"
#include "ml/matmul_check.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_gate_c: one tensor's matmul on the GPU against the CPU reference"};
  std::string input, tensor;
  uint64_t k = 1, n = 0, reps = 10;
  ml::vk::DeviceOptions options;
  ml::cli::add_source_arg(app, input);
  app.add_option("--tensor", tensor, "tensor name, e.g. output.weight")->required();
  app.add_option("--k", k, "random vectors to multiply by")->check(CLI::Range(1, 4096));
  app.add_option("--n", n, "use only the first N rows (default: all)");
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::Range(1, 100000));
  ml::cli::add_device_flag(app, options);
  return ml::cli::run(app, argc, argv, [&] {
    auto source = ml::gguf::open_source(input);
    const ml::gguf::File file = ml::gguf::parse(*source);
    ml::vk::Device device(options);
    std::printf("%s", ml::vk::describe(device.limits()).c_str());
    const auto c = ml::ops::check_tensor(device, *source, file, tensor, k, n, reps);
    std::printf("tensor %s: %s, %llu rows x %llu, %llu bytes, %llu slice(s)\n", c.tensor.c_str(),
                ml::gguf::type_name(c.type), (unsigned long long)c.rows, (unsigned long long)c.k,
                (unsigned long long)c.weight_bytes, (unsigned long long)c.n_slices);
    std::printf("vectors %llu: max relative error %.3g (tolerance %.g)\n",
                (unsigned long long)c.n_vectors, c.max_rel_err, ml::ops::kGoldenYTolerance);
    std::printf("time per multiply %.4f ms, %.2f GB/s of weights\n", c.ms_per_matmul, c.gb_per_s);
    std::printf("%s\n", c.passed ? "PASS" : "FAIL");
    return c.passed ? 0 : 1;
  });
}
