#pragma once
// Test tooling for the HTTP tests: a raw HTTP/1.1 client (one request per connection, so a
// test sees exactly the bytes a server sent) and a scripted fake server whose handler returns
// the raw response bytes — including lies (wrong Content-Range, short or long bodies) that a
// well-behaved HTTP library would refuse to produce. Loopback only, every wait bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ml::test {

// Deterministic bytes that differ at every offset pattern a test may pick.
inline std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (char& c : s) {
    seed = seed * 1664525u + 1013904223u;
    c = char(seed >> 24);
  }
  return s;
}

inline std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower((unsigned char)c));
  return s;
}

struct RawReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? "" : it->second;
  }
};

// A socket that closes itself.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

inline void set_timeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Returns the bytes sent: fewer than asked when the peer went away (a client that aborted on
// purpose).
inline size_t send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;
    done += size_t(n);
  }
  return done;
}

// Sends `METHOD target` with `extra` header lines (each ending in \r\n) to 127.0.0.1:port and
// reads the whole reply (the request says Connection: close).
inline RawReply raw_request(int port, const std::string& method, const std::string& target,
                            const std::string& extra = "") {
  Socket s(::socket(AF_INET, SOCK_STREAM, 0));
  set_timeouts(s.fd(), 10);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect failed");
  }
  send_all(s.fd(), method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                       extra + "\r\n");
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(s.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, size_t(n));
  }
  RawReply r;
  size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) throw std::runtime_error("no complete reply: " + data);
  std::string head = data.substr(0, end);
  r.body = data.substr(end + 4);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  r.status = std::stoi(status_line.substr(status_line.find(' ') + 1, 3));
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(pos, next - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[lower(line.substr(0, colon))] = value;
    }
    pos = next + 2;
  }
  return r;
}

struct FakeRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // names lower-cased
  int index = 0;                               // 0 for the first request this server got
};

// Accepts connections on 127.0.0.1:<any port>, one at a time; for each request it writes
// whatever `respond` returns and closes the connection.
class FakeServer {
 public:
  using Respond = std::function<std::string(const FakeRequest&)>;

  explicit FakeServer(Respond respond) : respond_(std::move(respond)), listener_(make_listener()) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listener_.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return count_; }
  size_t last_sent() const { return last_sent_; }  // bytes of the last reply that went out
  std::vector<FakeRequest> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  static int make_listener() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
      throw std::runtime_error("fake server: cannot listen");
    }
    return fd;
  }

  void loop() {
    while (!stop_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      Socket c(::accept(listener_.fd(), nullptr, nullptr));
      if (c.fd() < 0) continue;
      set_timeouts(c.fd(), 5);
      std::string data;
      char buf[4096];
      while (data.find("\r\n\r\n") == std::string::npos && data.size() < 65536) {
        ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
        if (n <= 0) break;
        data.append(buf, size_t(n));
      }
      if (data.find("\r\n\r\n") == std::string::npos) continue;
      FakeRequest req;
      size_t sp1 = data.find(' '), sp2 = data.find(' ', sp1 + 1);
      req.method = data.substr(0, sp1);
      req.target = data.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t pos = data.find("\r\n") + 2, end = data.find("\r\n\r\n");
      while (pos < end) {
        size_t next = data.find("\r\n", pos);
        std::string line = data.substr(pos, next - pos);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string v = line.substr(colon + 1);
          while (!v.empty() && v.front() == ' ') v.erase(0, 1);
          req.headers[lower(line.substr(0, colon))] = v;
        }
        pos = next + 2;
      }
      req.index = count_++;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen_.push_back(req);
      }
      last_sent_ = send_all(c.fd(), respond_(req));
      ::shutdown(c.fd(), SHUT_WR);
    }
  }

  Respond respond_;
  Socket listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> count_{0};
  std::atomic<size_t> last_sent_{0};
  std::mutex mutex_;
  std::vector<FakeRequest> seen_;
  std::thread thread_;
};

// A correct reply to `req` for a file `body` (206 for a `bytes=a-b` range, else 200), with
// `extra` header lines; tests start from it and then break one thing.
struct Reply {
  int status = 200;
  std::string content_range;  // empty: none
  std::string body;
  std::string extra;         // more header lines, each ending in \r\n
  long content_length = -2;  // -2: the body's length; -1: no Content-Length header
  std::string render(bool head) const {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\nConnection: close\r\n";
    if (!content_range.empty()) out += "Content-Range: " + content_range + "\r\n";
    if (content_length != -1) {
      out += "Content-Length: " +
             std::to_string(content_length == -2 ? long(body.size()) : content_length) + "\r\n";
    }
    return out + extra + "\r\n" + (head ? "" : body);
  }
};

inline Reply range_reply(const FakeRequest& req, const std::string& file) {
  Reply r;
  r.extra = "Accept-Ranges: bytes\r\n";
  auto it = req.headers.find("range");
  if (it == req.headers.end()) {
    r.body = file;
    return r;
  }
  std::string spec = it->second.substr(6);  // "bytes="
  size_t dash = spec.find('-');
  uint64_t first = std::stoull(spec.substr(0, dash));
  uint64_t last = std::stoull(spec.substr(dash + 1));
  r.status = 206;
  r.content_range = "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                    std::to_string(file.size());
  r.body = file.substr(first, last - first + 1);
  return r;
}

}  // namespace ml::test
