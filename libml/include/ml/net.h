#pragma once
// The HTTP server behind gguf_serve: GGUF files (or any files) served over HTTP/1.1 for local
// use, with single byte ranges (RFC 9110 §14), HEAD, CORS and a listing at `/`.
//
// Choices where HTTP leaves room:
//  - One range per request. A multi-range request (`bytes=0-1,5-9`) is answered 200 with the
//    whole file: RFC 9110 §14.2 lets a server ignore Range, and no client of ours needs
//    multipart/byteranges.
//  - A Range header that is not `bytes=` followed by valid specs gets 416 (cpp-httplib rejects
//    those before any handler runs; our own parser agrees so the answer is the same either way).
//  - Paths: percent-decoded once; `.`/`..` segments, NUL, backslashes and bad escapes are 400;
//    anything that resolves (symlinks included) outside the served folder is 404.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ml::net {

// ---------------------------------------------------------------------------------------
// Range and path logic, separate from the sockets so the tests can check them directly
// ---------------------------------------------------------------------------------------

struct ByteRange {
  enum class Kind { full, partial, unsatisfiable };
  Kind kind = Kind::full;
  uint64_t first = 0, last = 0;  // inclusive, valid for `partial`
};

// The answer to a `Range` header value (empty: no header) for a file of `size` bytes:
// `a-b` (b clamped to size-1), `a-`, `-n` (the last n bytes); more than one range → full.
ByteRange parse_range(std::string_view header, uint64_t size);

// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7 IMF-fixdate) for seconds since the epoch.
std::string http_date(int64_t unix_seconds);

// What is served: files by their base name, folders by the path relative to the folder.
struct Catalog {
  struct Root {
    std::string name;  // base name for a file; empty for a folder
    std::string path;  // canonical absolute path
    bool is_dir = false;
  };
  std::vector<Root> roots;
};

// Builds the catalog from command-line paths; throws ml::Error for a path that does not
// exist, is neither a file nor a folder, or two files with one base name.
Catalog make_catalog(const std::vector<std::string>& paths);

struct Resolved {
  enum class Kind { listing, file, bad_request, not_found };
  Kind kind = Kind::not_found;
  std::string path;  // canonical path of the file for `file`
  std::string why;   // for bad_request / not_found, for the log and the body
};

// Maps a request target (`/sub/model.gguf?x`, still percent-encoded) to a file of the
// catalog. Never returns a path outside the catalog's roots.
Resolved resolve(const Catalog& catalog, std::string_view target);

struct Listed {
  std::string name;  // URL path without the leading '/', unencoded
  uint64_t size = 0;
};
// Every servable regular file, at most `limit` of them, sorted by name.
std::vector<Listed> list_files(const Catalog& catalog, size_t limit = 10000);
std::string listing_html(const std::vector<Listed>& files);

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (see Server::port())
  std::vector<std::string> paths;  // files and folders to serve
  size_t threads = 64;             // worker threads; each keep-alive connection holds one
  bool log = true;                 // one line per request on stderr
};

// Owns the listening socket and the worker threads. Binds in the constructor (throws
// ml::Error when the address is taken or a path is bad); serves after start() or run().
class Server {
 public:
  explicit Server(ServeOptions options);
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  std::string url() const;  // http://host:port
  void run();               // serves on the calling thread until stop()
  void start();             // serves on a background thread; returns once it accepts
  void stop();              // from any thread; idempotent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Serves until SIGINT or SIGTERM, then shuts down cleanly. Blocks those signals in the
// calling thread first so that every server thread inherits the mask and sigwait gets them.
void run_until_signal(Server& server);

}  // namespace ml::net
