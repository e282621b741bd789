// gguf_synth: writes a random-weight model with the tensor names, shapes and weight types of
// a real release, for benchmarks where the real weights are not at hand.
#include <chrono>
#include <cstdio>

#include "common.h"
#include "ml/synth.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_synth: write a synthetic GGUF model in the shape of a real release"};
  std::string preset, out;
  uint64_t seed = 1;
  bool list = false;
  app.add_option("--preset", preset, "preset name (--list shows them)");
  app.add_option("--out", out, "output GGUF path");
  app.add_option("--seed", seed, "random seed");
  app.add_flag("--list", list, "list the presets");
  return ml::cli::run(app, argc, argv, [&] {
    if (!list && (preset.empty() || out.empty()))
      throw CLI::ValidationError("--preset and --out are required");
    if (list) {
      for (const auto& p : ml::synth::presets()) {
        std::printf("%-14s %-8s %s\n", p.name.c_str(), p.arch.c_str(), p.about.c_str());
      }
      return 0;
    }
    auto start = std::chrono::steady_clock::now();
    ml::gguf::Writer writer = ml::synth::build(preset, seed);
    writer.write(out);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ml::gguf::FileSource written(out);
    std::printf("%s: %s, %llu bytes in %.1f s (%.0f MB/s)\n", out.c_str(), preset.c_str(),
                (unsigned long long)written.size(), s, written.size() / s / 1e6);
    return 0;
  });
}
