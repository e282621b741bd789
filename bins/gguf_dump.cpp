// Gate A: the GGUF parses — header, metadata, tensor table, types — from a path or a URL.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "ml/gguf.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_dump: print a GGUF file's header, metadata and tensor table"};
  std::string input;
  bool json = false, tensors = false, metadata = false;
  int64_t limit = -2;  // -2: not given
  app.add_option("file", input, "GGUF path or http(s) URL")->required();
  app.add_flag("--json", json, "the complete document as JSON");
  app.add_option("--limit", limit, "array elements to show (text default 8; JSON default all)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  app.add_flag("--tensors", tensors, "show the tensor table (with --metadata: both)");
  app.add_flag("--metadata", metadata, "show the metadata (with --tensors: both)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    ml::gguf::File file = ml::gguf::parse_file(input);
    if (json) {
      std::cout << ml::gguf::to_json(file, limit == -2 ? -1 : limit, true) << "\n";
    } else {
      ml::gguf::DescribeOptions o;
      if (tensors || metadata) {
        o.tensors = tensors;
        o.metadata = metadata;
      }
      if (limit != -2) o.array_limit = limit;
      std::cout << ml::gguf::describe(file, o);
    }
    std::cout.flush();
    if (!std::cout) {
      std::fprintf(stderr, "error: writing to stdout failed\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
