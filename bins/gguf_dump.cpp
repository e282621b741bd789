// Gate A: the GGUF parses — header, metadata, tensor table, types — from a path or a URL.
#include <cstdio>
#include <iostream>

#include "common.h"
#include "ml/gguf.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_dump: print a GGUF file's header, metadata and tensor table"};
  std::string input;
  bool json = false, tensors = false, metadata = false;
  int64_t limit = -2;  // -2: not given
  ml::cli::add_source_arg(app, input);
  app.add_flag("--json", json, "the complete document as JSON");
  app.add_option("--limit", limit, "array elements to show (text default 8; JSON default all)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  app.add_flag("--tensors", tensors, "show the tensor table (with --metadata: both)");
  app.add_flag("--metadata", metadata, "show the metadata (with --tensors: both)");
  return ml::cli::run(app, argc, argv, [&] {
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
    return 0;
  });
}
