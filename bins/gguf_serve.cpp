// gguf_serve: GGUF files over HTTP/1.1 for local use (ranges, HEAD, CORS, listing at /).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ml/net.h"

int main(int argc, char** argv) {
  CLI::App app{"gguf_serve: serve GGUF files over HTTP with byte ranges"};
  ml::net::ServeOptions options;
  bool quiet = false;
  app.add_option("--host", options.host, "address to bind (default 127.0.0.1)");
  app.add_option("--port", options.port, "port; 0 picks a free one (default 8080)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--threads", options.threads, "worker threads (default 64)")
      ->check(CLI::Range(1, 4096));
  app.add_flag("--quiet", quiet, "no request log");
  app.add_option("paths", options.paths, "files (served by name) and folders")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    options.log = !quiet;
    ml::net::Server server(options);
    std::fprintf(stderr, "gguf_serve: listening on %s\n", server.url().c_str());
    std::printf("%s\n", server.url().c_str());
    std::fflush(stdout);
    ml::net::run_until_signal(server);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
