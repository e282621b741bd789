// bench_quant: CPU reference speed per weight type. For each type, random blocks of a
// rows × k matrix, then the best of --reps runs of dequantize (whole matrix) and matvec.
// One JSON line per type on stdout: {"type", "rows", "k", "threads", "dequantize_gbps"
// (bytes of blocks read per second), "matvec_ms", "matvec_gbps"}.
#include "ml/quant.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

namespace {

template <typename F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU reference dequantize and matvec speed per ggml type"};
  uint64_t rows = 1024, k = 4096;
  unsigned threads = 0;
  int reps = 3;
  std::vector<std::string> types;
  app.add_option("--rows", rows, "matrix rows")->check(CLI::Range(1, 1 << 20));
  app.add_option("--k", k, "row length (a multiple of 256)")->check(CLI::Range(256, 1 << 20));
  app.add_option("--threads", threads, "matvec threads (0: automatic)");
  app.add_option("--reps", reps, "runs per measurement; the best is reported")
      ->check(CLI::Range(1, 100));
  app.add_option("--types", types,
                 "ggml type names, comma-separated (default: all with a reference)")
      ->delimiter(',');
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is not an error; a bad flag is a usage error
  }

  try {
    std::vector<ml::gguf::Type> list;
    for (const std::string& name : types) {
      const auto t = ml::gguf::type_from_name(name);
      if (!t || !ml::quant::has_reference(*t)) ml::fail("no CPU reference for type '", name, "'");
      list.push_back(*t);
    }
    if (list.empty()) list = ml::quant::reference_types();
    if (k % 256 != 0) ml::fail("--k ", k, " is not a multiple of 256");

    std::vector<float> x(k), y(rows), deq(rows * k);
    for (uint64_t i = 0; i < k; ++i) x[i] = float(i % 17) / 17.0f - 0.5f;
    for (ml::gguf::Type type : list) {
      const std::vector<std::byte> w = ml::quant::random_blocks(type, rows * k, 1);
      const double t_deq = best_seconds(reps, [&] { ml::quant::dequantize(type, w, deq); });
      const double t_mv =
          best_seconds(reps, [&] { ml::quant::matvec(type, w, rows, k, x, y, threads); });
      std::cout << nlohmann::json{{"type", ml::gguf::type_name(type)},
                                  {"rows", rows},
                                  {"k", k},
                                  {"threads", threads},
                                  {"dequantize_gbps", double(w.size()) / t_deq / 1e9},
                                  {"matvec_ms", t_mv * 1e3},
                                  {"matvec_gbps", double(w.size()) / t_mv / 1e9}}
                       .dump()
                << "\n";
    }
  } catch (const ml::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
