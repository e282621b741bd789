#pragma once
// What the gate binaries share: the main() frame with its exit codes, the CLI11 flags several
// of them take (--gguf/--backend/--kv, --tol, --device, FILE_OR_URL) and the CPU-against-
// backend setup of the block checks. Wiring only; the checks themselves are in libml.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "ml/backend.h"
#include "ml/check.h"
#include "ml/gguf.h"
#include "ml/model.h"
#include "ml/tok.h"
#include "ml/vk.h"

namespace ml::cli {

// Parses argv and runs body() → its exit code. --help exits 0; a usage error exits 2, also
// a CLI::ParseError that body throws for a rule CLI11 cannot state; any other exception
// prints `error: <message>` on stderr and exits 1.
template <class Body>
int run(CLI::App& app, int argc, char** argv, Body body) {
  try {
    app.parse(argc, argv);
    return body();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);  // what was generated before the error stays ahead of it
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

// --gguf, --backend, --kv: a model and where it runs. The defaults are the tool's own.
struct ModelFlags {
  std::string gguf;
  std::string backend = "vulkan";
  std::string kv = "f32";
  gguf::Type kv_type() const { return kv == "f32" ? gguf::Type::F32 : gguf::Type::F16; }
};

inline void add_model_flags(CLI::App& app, ModelFlags& m, const std::string& backend_help) {
  app.add_option("--gguf", m.gguf, "model file")->required();
  app.add_option("--backend", m.backend, backend_help)->check(CLI::IsMember({"cpu", "vulkan"}));
  app.add_option("--kv", m.kv, "KV cache type")->check(CLI::IsMember({"f16", "f32"}));
}

// --tol for the CPU-against-backend checks; negative until given.
inline void add_tol_flag(CLI::App& app, float& tol) {
  app.add_option("--tol", tol,
                 "tolerance on max|d| / max(1, max|ref|) (default 1e-3, 1e-2 with --kv f16)")
      ->check(CLI::Range(0.0f, 1.0f));
}

// The tolerance given, else by the cache type: an f16 cache rounds k and v to 11 bits.
inline float tolerance(float tol, const ModelFlags& m) {
  return tol >= 0.0f ? tol : m.kv == "f32" ? 1e-3f : 1e-2f;
}

// One model file loaded twice: on the CPU reference and on the backend under test.
struct ModelPair {
  std::unique_ptr<gguf::Source> source;
  gguf::File file;
  std::unique_ptr<Backend> cpu, be;
  Model cpu_model, model;

  explicit ModelPair(const ModelFlags& m)
      : source(gguf::open_source(m.gguf)),
        file(gguf::parse(*source)),
        cpu(make_cpu_backend()),
        be(make_backend(m.backend)),
        cpu_model(load_model(*cpu, *source, file)),
        model(load_model(*be, *source, file)) {}
};

// The input ids of a check: the prompt as a chat front end tokenizes it (BOS as the metadata
// says, special tokens parsed), or n ids spread over the vocabulary when there is none.
inline std::vector<int32_t> input_tokens(const gguf::File& file, const std::string& prompt,
                                         int64_t n, int64_t n_vocab) {
  if (prompt.empty()) return check::spread_ids(n, n_vocab);
  return tok::Tokenizer::from_metadata(file.metadata).encode(prompt, true, true);
}

// FILE_OR_URL, the gguf tools' positional argument.
inline void add_source_arg(CLI::App& app, std::string& input) {
  app.add_option("file", input, "GGUF path or http(s) URL")->required();
}

// --device N: the Vulkan device index; unset leaves the choice to $ML_DEVICE or the best.
inline void add_device_flag(CLI::App& app, vk::DeviceOptions& options) {
  app.add_option_function<uint32_t>(
      "--device", [&options](uint32_t index) { options.index = index; },
      "Vulkan device index (default: $ML_DEVICE or best)");
}

}  // namespace ml::cli
