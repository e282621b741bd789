// gguf_serve's HTTP side on cpp-httplib: routing, file responses streamed from disk with
// pread (64-bit offsets, bounded buffer), CORS, request log, thread pool, shutdown.
#include <fcntl.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "ml/error.h"
#include "ml/net.h"

namespace ml::net {
namespace {

constexpr size_t kChunk = 256 << 10;  // bytes per pread/send step: bounded memory per client

// One response's open file and its buffer; httplib calls the content provider sequentially
// for a response, so the buffer needs no lock.
class OpenFile {
 public:
  explicit OpenFile(int fd) : fd_(fd) {}
  ~OpenFile() { ::close(fd_); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  // Sends bytes [start, start + len) of the file; false when the file shrank or the client
  // went away (httplib then drops the connection, so the client sees a short body).
  bool send(uint64_t start, uint64_t len, httplib::DataSink& sink) {
    buf_.resize(kChunk);
    while (len > 0) {
      size_t want = size_t(std::min<uint64_t>(len, kChunk));
      ssize_t n = ::pread(fd_, buf_.data(), want, off_t(start));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      if (!sink.write(buf_.data(), size_t(n))) return false;
      start += uint64_t(n);
      len -= uint64_t(n);
    }
    return true;
  }

 private:
  int fd_;
  std::vector<char> buf_;
};

// A validator that changes when the file is rewritten: size and modification time in ns.
std::string make_etag(const struct stat& st) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", (unsigned long long)st.st_size,
                (unsigned long long)(int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec));
  return buf;
}

void text(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body + "\n", "text/plain; charset=utf-8");
}

void serve_file(const httplib::Request& req, httplib::Response& res, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text(res, 404, "no such file");
  auto file = std::make_shared<OpenFile>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return text(res, 404, "no such file");
  const uint64_t size = uint64_t(st.st_size);
  const std::string etag = make_etag(st), last_modified = http_date(st.st_mtim.tv_sec);
  res.set_header("Accept-Ranges", "bytes");
  res.set_header("ETag", etag);
  res.set_header("Last-Modified", last_modified);

  ByteRange range;
  if (req.has_header("Range")) {
    range = parse_range(req.get_header_value("Range"), size);
    // If-Range (RFC 9110 §13.1.5): a range only of the representation the client has.
    if (req.has_header("If-Range")) {
      std::string v = req.get_header_value("If-Range");
      if (v != etag && v != last_modified) range = {};
    }
  }
  uint64_t first = 0, len = size;
  switch (range.kind) {
    case ByteRange::Kind::unsatisfiable:
      res.status = 416;
      res.set_header("Content-Range", cat("bytes */", size));
      return;
    case ByteRange::Kind::partial:
      res.status = 206;
      first = range.first;
      len = range.last - range.first + 1;
      res.set_header("Content-Range", cat("bytes ", range.first, "-", range.last, "/", size));
      break;
    case ByteRange::Kind::full:
      res.status = 200;
      break;
  }
  if (len == 0) return res.set_content("", "application/octet-stream");
  res.set_content_provider(size_t(len), "application/octet-stream",
                           [file, first](size_t offset, size_t length, httplib::DataSink& sink) {
                             return file->send(first + offset, length, sink);
                           });
}

}  // namespace

struct Server::Impl {
  ServeOptions options;
  Catalog catalog;
  httplib::Server http;
  int port = 0;
  std::thread thread;
  std::mutex log_mutex;
  int listen_fd = -1;  // the listening socket, seen in httplib's socket-options hook

  void handle_get(const httplib::Request& req, httplib::Response& res) {
    // httplib slices any response by the Range it parsed (even a 404 body, even past the end
    // without a 416); this server answers ranges itself, so it takes them away from httplib.
    // The Request is httplib's own non-const object, handed to handlers as const.
    const_cast<httplib::Request&>(req).ranges.clear();
    Resolved r = resolve(catalog, req.target);
    switch (r.kind) {
      case Resolved::Kind::bad_request:
        return text(res, 400, "bad request: " + r.why);
      case Resolved::Kind::not_found:
        return text(res, 404, "not found");
      case Resolved::Kind::listing:
        res.status = 200;
        return res.set_content(listing_html(list_files(catalog)), "text/html; charset=utf-8");
      case Resolved::Kind::file:
        return serve_file(req, res, r.path);
    }
  }

  // httplib refuses a Range it cannot parse with 416 before any handler runs; add the
  // Content-Range that RFC 9110 §15.5.17 asks of a 416 when the target is a file.
  httplib::Server::HandlerResponse on_error(const httplib::Request& req, httplib::Response& res) {
    if (res.status == 416 && !res.has_header("Content-Range")) {
      Resolved r = resolve(catalog, req.target);
      struct stat st {};
      if (r.kind == Resolved::Kind::file && ::stat(r.path.c_str(), &st) == 0) {
        res.set_header("Content-Range", cat("bytes */", uint64_t(st.st_size)));
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void log(const httplib::Request& req, const httplib::Response& res) {
    if (!options.log) return;
    std::string range = req.has_header("Range") ? " range=" + req.get_header_value("Range") : "";
    std::string length = res.get_header_value("Content-Length");
    std::lock_guard<std::mutex> lock(log_mutex);
    std::fprintf(stderr, "%s:%d %s %s %d %s%s\n", req.remote_addr.c_str(), req.remote_port,
                 req.method.c_str(), req.target.c_str(), res.status,
                 length.empty() ? "-" : length.c_str(), range.c_str());
  }
};

Server::Server(ServeOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = std::move(options);
  m.catalog = make_catalog(m.options.paths);
  if (m.options.threads == 0 || m.options.threads > 4096) {
    fail("threads: ", m.options.threads, " is outside 1..4096");
  }
  size_t threads = m.options.threads;
  // httplib takes ownership of the queue it gets from this factory (its API is a raw pointer).
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // httplib's default socket options add SO_REUSEPORT, which lets a second server bind the
  // same port and silently share its clients; keep only SO_REUSEADDR (restart after a close).
  m.http.set_socket_options([&m](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    m.listen_fd = sock;
  });
  // Headers and body go out in separate sends; with Nagle on, each small response waits
  // for the client's delayed ACK (~40 ms).
  m.http.set_tcp_nodelay(true);
  m.http.set_keep_alive_max_count(1000);
  m.http.set_keep_alive_timeout(5);
  m.http.set_read_timeout(30);
  m.http.set_write_timeout(30);
  m.http.set_default_headers({
      {"Access-Control-Allow-Origin", "*"},
      {"Access-Control-Expose-Headers",
       "Content-Range, Content-Length, Accept-Ranges, ETag, Last-Modified"},
  });
  m.http.Get(".*",
             [&m](const httplib::Request& req, httplib::Response& res) { m.handle_get(req, res); });
  // CORS preflight (Fetch standard §3.2.2): a browser asks before a GET with a Range header.
  m.http.Options(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Range, If-Range, If-Match, If-None-Match");
    res.set_header("Access-Control-Max-Age", "86400");
  });
  m.http.set_error_handler(httplib::Server::HandlerWithResponse(
      [&m](const httplib::Request& req, httplib::Response& res) { return m.on_error(req, res); }));
  m.http.set_logger(
      [&m](const httplib::Request& req, const httplib::Response& res) { m.log(req, res); });

  if (m.options.port == 0) {
    m.port = m.http.bind_to_any_port(m.options.host);
    if (m.port < 0) fail("cannot listen on ", m.options.host, ": ", std::strerror(errno));
  } else {
    if (m.options.port < 0 || m.options.port > 65535)
      fail("port ", m.options.port, " is not 0..65535");
    if (!m.http.bind_to_port(m.options.host, m.options.port)) {
      fail("cannot listen on ", m.options.host, ":", m.options.port, ": ", std::strerror(errno));
    }
    m.port = m.options.port;
  }
  // httplib 0.11 listens with a backlog of 5: a burst of clients overflows it and their SYNs
  // are retried a second later. listen() again on the bound socket raises the backlog (Linux).
  if (m.listen_fd >= 0) ::listen(m.listen_fd, SOMAXCONN);
}

Server::~Server() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const {
  return impl_->port;
}

std::string Server::url() const {
  const std::string& h = impl_->options.host;
  bool v6 = h.find(':') != std::string::npos;
  return cat("http://", v6 ? "[" : "", h, v6 ? "]" : "", ":", impl_->port);
}

void Server::run() {
  impl_->http.listen_after_bind();
}

void Server::start() {
  if (impl_->thread.joinable()) fail("server on port ", impl_->port, " is already running");
  impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
  // stop() only reaches a server that is already listening; wait for that here.
  for (int i = 0; i < 5000 && !impl_->http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!impl_->http.is_running()) fail("server on port ", impl_->port, " did not start");
}

void Server::stop() {
  impl_->http.stop();
}

void run_until_signal(Server& server) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  server.start();
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "gguf_serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace ml::net
