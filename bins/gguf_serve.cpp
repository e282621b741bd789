// gguf_serve: GGUF files over HTTP/1.1 for local use (ranges, HEAD, CORS, listing at /).
#include <cstdio>

#include "common.h"
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
  return ml::cli::run(app, argc, argv, [&] {
    options.log = !quiet;
    ml::net::Server server(options);
    std::fprintf(stderr, "gguf_serve: listening on %s\n", server.url().c_str());
    std::printf("%s\n", server.url().c_str());
    std::fflush(stdout);
    ml::net::run_until_signal(server);
    return 0;
  });
}
