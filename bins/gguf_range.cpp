// Gate B: byte ranges of a GGUF file or URL are exact and repeatable. Prints the byte
// count, throughput and SHA-256 of each read; with --repeat fails if any read differs.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_range: read a byte range (or a tensor) of a GGUF file or URL and hash it"};
  std::string input, tensor;
  uint64_t offset = 0, len = 0, chunk_mib = 16;
  int repeat = 1;
  bool json = false;
  ml::cli::add_source_arg(app, input);
  auto* t = app.add_option("--tensor", tensor, "the bytes of this tensor (from the tensor table)");
  auto* o = app.add_option("--offset", offset, "first byte of the range (default 0)");
  auto* l = app.add_option("--len", len, "bytes in the range (default: to the end)");
  t->excludes(o)->excludes(l);
  app.add_option("--repeat", repeat, "read the range K times; fail if any read differs")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--chunk", chunk_mib, "MiB per read request (default 16)")
      ->check(CLI::Range(uint64_t(1), uint64_t(4096)));
  app.add_flag("--json", json, "one JSON document on stdout");
  return ml::cli::run(app, argc, argv, [&] {
    auto source = ml::gguf::open_source(input);
    if (!tensor.empty()) {
      ml::gguf::File file = ml::gguf::parse(*source);
      const ml::gguf::TensorInfo& info = file.tensor(tensor);
      offset = info.offset;
      len = info.size;
    } else if (l->count() == 0) {
      if (offset > source->size()) {
        ml::fail(input, ": offset ", offset, " is past the end (", source->size(), " bytes)");
      }
      len = source->size() - offset;
    }
    nlohmann::json doc = {{"source", input},
                          {"size", source->size()},
                          {"offset", offset},
                          {"bytes", len},
                          {"reads", nlohmann::json::array()}};
    if (!tensor.empty()) doc["tensor"] = tensor;
    if (!json) {
      std::printf("source  %s (%llu bytes)\n", input.c_str(), (unsigned long long)source->size());
      std::printf("range   offset %llu, %llu bytes%s%s\n", (unsigned long long)offset,
                  (unsigned long long)len, tensor.empty() ? "" : ", tensor ", tensor.c_str());
    }
    std::string first_digest;
    int differing = 0;
    for (int i = 0; i < repeat; ++i) {
      ml::gguf::RangeDigest d = ml::gguf::digest_range(*source, offset, len, chunk_mib << 20);
      double mb_s = d.seconds > 0 ? double(d.bytes) / 1e6 / d.seconds : 0.0;
      if (i == 0) first_digest = d.sha256;
      if (d.sha256 != first_digest) ++differing;
      doc["reads"].push_back({{"seconds", d.seconds}, {"mb_per_s", mb_s}, {"sha256", d.sha256}});
      if (!json) {
        std::printf("read %d  %llu bytes in %.6f s, %.1f MB/s, sha256 %s\n", i + 1,
                    (unsigned long long)d.bytes, d.seconds, mb_s, d.sha256.c_str());
      }
    }
    doc["sha256"] = first_digest;
    doc["identical"] = differing == 0;
    if (json) {
      std::cout << doc.dump(2) << "\n";
    } else {
      std::printf("sha256  %s\n", first_digest.c_str());
    }
    std::cout.flush();
    std::fflush(stdout);
    if (differing) {
      std::fprintf(stderr, "error: %d of %d reads of %s differ from the first\n", differing, repeat,
                   input.c_str());
      return 1;
    }
    return 0;
  });
}
