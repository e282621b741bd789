// HttpSource: byte ranges of a GGUF over HTTP(S) through libcurl (RFC 9110 §14).
//
// Every response is checked before its body is accepted: status 206, a Content-Range equal to
// the bytes asked for and to the size learnt at open, a Content-Length (when sent) equal to
// the range, no content coding, and ETag / Last-Modified unchanged. A failed check aborts the
// transfer in the header callback, so a server that ignores ranges costs a few header bytes,
// not the whole file. The body goes straight into the caller's span and may not overrun it.
// Transient failures (connection errors, timeouts, 5xx, 408, 429, short bodies) are retried
// with doubling delays, resuming after the bytes already received; 4xx is never retried.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

// What the final response (after redirects) said; filled by the header callback.
struct Reply {
  long status = 0;
  std::string content_range, content_length, content_encoding, etag, last_modified;
  std::string accept_ranges, location, retry_after;
};

enum class Verdict { ok, transient, fatal };

struct Outcome {
  Verdict verdict = Verdict::ok;
  std::string why;
};

// One request's state, shared with libcurl's callbacks.
struct Exchange {
  bool head = false;
  uint64_t first = 0, len = 0;                 // the range asked for (GET only)
  std::span<std::byte> out;                    // where its body goes: exactly `len` bytes
  std::function<Outcome(const Reply&)> check;  // judges the headers before any body byte
  Reply reply;
  bool final_headers = false;
  uint64_t got = 0;
  Outcome outcome;  // set by a callback that aborted the transfer
  char errbuf[CURL_ERROR_SIZE] = {};
};

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower((unsigned char)x) == std::tolower((unsigned char)y);
         });
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + uint64_t(c - '0');
  }
  return v;
}

// `bytes first-last/total` (RFC 9110 §14.4); total may be `*` (returned as nullopt).
struct ContentRange {
  uint64_t first = 0, last = 0;
  std::optional<uint64_t> total;
};
std::optional<ContentRange> parse_content_range(std::string_view v) {
  if (v.size() < 6 || !iequals(v.substr(0, 6), "bytes ")) return std::nullopt;
  v.remove_prefix(6);
  size_t dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) {
    return std::nullopt;
  }
  auto first = parse_u64(v.substr(0, dash)), last = parse_u64(v.substr(dash + 1, slash - dash - 1));
  std::string_view t = v.substr(slash + 1);
  if (!first || !last || *last < *first) return std::nullopt;
  ContentRange cr{*first, *last, std::nullopt};
  if (t != "*") {
    cr.total = parse_u64(t);
    if (!cr.total) return std::nullopt;
  }
  return cr;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& x = *static_cast<Exchange*>(user);
  size_t bytes = size * n;
  std::string_view line(data, bytes);
  if (line.starts_with("HTTP/")) {  // a new response: a redirect hop or the final one
    x.reply = Reply{};
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos)
      x.reply.status = std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    return bytes;
  }
  if (trim(line).empty()) {  // end of this response's headers
    long s = x.reply.status;
    if (s < 200 || (s >= 300 && s < 400 && !x.reply.location.empty())) return bytes;  // followed
    x.final_headers = true;
    x.outcome = x.check(x.reply);
    return x.outcome.verdict == Verdict::ok ? bytes : 0;  // 0 aborts the transfer here
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  std::string_view name = line.substr(0, colon);
  std::string value = trim(line.substr(colon + 1));
  Reply& r = x.reply;
  if (iequals(name, "content-range"))
    r.content_range = value;
  else if (iequals(name, "content-length"))
    r.content_length = value;
  else if (iequals(name, "content-encoding"))
    r.content_encoding = value;
  else if (iequals(name, "etag"))
    r.etag = value;
  else if (iequals(name, "last-modified"))
    r.last_modified = value;
  else if (iequals(name, "accept-ranges"))
    r.accept_ranges = value;
  else if (iequals(name, "location"))
    r.location = value;
  else if (iequals(name, "retry-after"))
    r.retry_after = value;
  return bytes;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& x = *static_cast<Exchange*>(user);
  size_t bytes = size * n;
  if (!x.final_headers) return 0;
  if (bytes > x.out.size() - x.got) {
    x.outcome = {Verdict::fatal,
                 cat("the server sent more than the ", x.len, " bytes of the range it confirmed (",
                     x.first, "-", x.first + x.len - 1, ")")};
    return 0;
  }
  std::memcpy(x.out.data() + x.got, data, bytes);
  x.got += bytes;
  return bytes;
}

// Curl errors worth another attempt: the network, not the request, failed.
bool transient(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// Statuses worth another attempt (RFC 9110 §15.5.9, §15.6; RFC 6585 §4).
bool transient_status(long s) {
  return s == 408 || s == 429 || s >= 500;
}

}  // namespace

struct HttpSource::Impl {
  std::mutex mutex;
  std::vector<CURL*> idle;  // easy handles kept for their open connections

  Impl() {
    static std::once_flag once;  // libcurl's process-wide init must run once, before handles
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  ~Impl() {
    for (CURL* h : idle) curl_easy_cleanup(h);
  }

  CURL* acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (!h) fail("libcurl: curl_easy_init failed");
    return h;
  }
  void release(CURL* h) {
    std::lock_guard<std::mutex> lock(mutex);
    if (idle.size() < 16)
      idle.push_back(h);
    else
      curl_easy_cleanup(h);
  }

  // One request; the outcome says whether it worked, may be retried, or failed for good.
  Outcome perform(const std::string& url, const HttpOptions& o, Exchange& x) {
    CURL* h = acquire();
    curl_easy_reset(h);  // keeps the handle's connection cache
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // thread-safe timeouts
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o.low_speed_timeout_s);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o.verify_tls ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ml-gguf/1");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x.errbuf);
    std::string range = cat(x.first, "-", x.first + x.len - 1);
    if (x.head)
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
      curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    CURLcode rc = curl_easy_perform(h);
    release(h);

    if (x.outcome.verdict != Verdict::ok) return x.outcome;
    if (rc != CURLE_OK) {
      std::string msg = cat(curl_easy_strerror(rc), x.errbuf[0] ? ": " : "", x.errbuf);
      if (rc == CURLE_TOO_MANY_REDIRECTS) return {Verdict::fatal, msg};
      return {transient(rc) ? Verdict::transient : Verdict::fatal, msg};
    }
    if (!x.final_headers) return {Verdict::transient, "no response"};
    if (!x.head && x.got < x.len) {
      return {Verdict::transient, cat("short body: ", x.got, " of ", x.len, " bytes")};
    }
    return {};
  }

  // Runs `attempt` until it succeeds, fails for good, or the retries are spent. An attempt
  // that made progress (resumed bytes) does not count against the retries.
  void with_retries(
      const std::string& url, const HttpOptions& o,
      const std::function<Outcome(bool& progressed, std::string& retry_after)>& attempt) {
    int failures = 0;
    for (;;) {
      bool progressed = false;
      std::string retry_after;
      Outcome out = attempt(progressed, retry_after);
      if (out.verdict == Verdict::ok) return;
      if (progressed) failures = 0;
      if (out.verdict == Verdict::fatal) fail(url, ": ", out.why);
      if (failures >= o.retries) {
        throw SourceDropped(
            cat(url, ": ", out.why, " (gave up after ", failures + 1, " attempts)"));
      }
      int64_t delay = int64_t(o.retry_delay_ms) << std::min(failures, 16);
      if (auto s = parse_u64(retry_after))
        delay = std::max<int64_t>(delay, int64_t(std::min<uint64_t>(*s, 30)) * 1000);
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(delay, 30000)));
      ++failures;
    }
  }
};

HttpSource::HttpSource(std::string url, HttpOptions options)
    : impl_(std::make_unique<Impl>()), url_(std::move(url)), options_(options) {
  if (!is_url(url_)) fail(url_, ": not an http:// or https:// URL");
  if (options_.retries < 0 || options_.retries > 100) fail(url_, ": retries must be 0..100");

  // HEAD first: size, Accept-Ranges, validators. Some servers refuse HEAD (405/501) or sign
  // URLs for GET only (403), so anything but a clean 200 falls through to a GET probe.
  Reply head;
  bool head_ok = false;
  impl_->with_retries(url_, options_, [&](bool&, std::string& retry_after) {
    Exchange x;
    x.head = true;
    x.check = [](const Reply& r) -> Outcome {
      if (transient_status(r.status)) return {Verdict::transient, cat("HEAD answered ", r.status)};
      return {};
    };
    Outcome out = impl_->perform(url_, options_, x);
    retry_after = x.reply.retry_after;
    if (out.verdict != Verdict::ok) return out;
    head = x.reply;
    if (head.status == 404 || head.status == 410) {
      return Outcome{Verdict::fatal, cat("not found (HTTP ", head.status, ")")};
    }
    head_ok = head.status == 200;
    return Outcome{};
  });
  auto head_size = parse_u64(head.content_length);
  if (head_ok && head_size && iequals(head.accept_ranges, "bytes")) {
    size_ = *head_size;
    etag_ = head.etag;
    last_modified_ = head.last_modified;
    return;
  }

  // The probe: the first byte by range. A 206 proves ranges work and gives the total size.
  std::byte one[1];
  impl_->with_retries(url_, options_, [&](bool&, std::string& retry_after) {
    Exchange x;
    x.first = 0;
    x.len = 1;
    x.out = one;
    x.check = [&](const Reply& r) -> Outcome {
      if (r.status == 200) {
        return {Verdict::fatal,
                "the server ignores Range requests (it answered 200 with the "
                "whole file to Range: bytes=0-0); byte ranges are required"};
      }
      if (r.status == 416) {  // only an empty file has no byte 0
        auto cr = r.content_range.starts_with("bytes */") ? parse_u64(r.content_range.substr(8))
                                                          : std::nullopt;
        if (cr && *cr == 0) return {Verdict::fatal, "the file is empty"};
      }
      if (transient_status(r.status)) return {Verdict::transient, cat("answered ", r.status)};
      if (r.status != 206)
        return {Verdict::fatal, cat("answered ", r.status, " to Range: bytes=0-0")};
      auto cr = parse_content_range(r.content_range);
      if (!cr || cr->first != 0 || cr->last != 0 || !cr->total) {
        return {Verdict::fatal,
                cat("206 with a bad Content-Range '", r.content_range, "' for bytes=0-0")};
      }
      if (!r.content_encoding.empty() && !iequals(r.content_encoding, "identity")) {
        return {Verdict::fatal, cat("the server encodes the body (", r.content_encoding, ")")};
      }
      return {};
    };
    Outcome out = impl_->perform(url_, options_, x);
    retry_after = x.reply.retry_after;
    if (out.verdict == Verdict::ok) {
      size_ = *parse_content_range(x.reply.content_range)->total;
      etag_ = x.reply.etag;
      last_modified_ = x.reply.last_modified;
    }
    return out;
  });
}

HttpSource::~HttpSource() = default;

void HttpSource::read(uint64_t offset, std::span<std::byte> out) {
  if (offset > size_ || out.size() > size_ - offset) {
    fail(url_, ": read of bytes ", offset, "..", offset + out.size(), " is past the end (", size_,
         " bytes)");
  }
  if (out.empty()) return;
  uint64_t done = 0;  // bytes already in `out`: a retry asks only for the rest
  impl_->with_retries(url_, options_, [&](bool& progressed, std::string& retry_after) {
    Exchange x;
    x.first = offset + done;
    x.len = out.size() - done;
    x.out = out.subspan(size_t(done));
    x.check = [&](const Reply& r) -> Outcome {
      std::string asked = cat("Range: bytes=", x.first, "-", x.first + x.len - 1);
      if (r.status == 200) {
        return {Verdict::fatal, cat("the server ignores Range requests (it answered 200 with "
                                    "the whole file to ",
                                    asked, ")")};
      }
      if (transient_status(r.status))
        return {Verdict::transient, cat("answered ", r.status, " to ", asked)};
      if (r.status != 206) return {Verdict::fatal, cat("answered ", r.status, " to ", asked)};
      auto cr = parse_content_range(r.content_range);
      if (!cr || cr->first != x.first || cr->last != x.first + x.len - 1) {
        return {Verdict::fatal,
                cat("Content-Range '", r.content_range, "' does not match ", asked)};
      }
      if (cr->total && *cr->total != size_) {
        return {Verdict::fatal, cat("the file changed: its size is now ", *cr->total,
                                    " bytes, was ", size_, " when opened")};
      }
      if (!r.content_length.empty() && parse_u64(r.content_length) != x.len) {
        return {Verdict::fatal, cat("Content-Length ", r.content_length, " does not match ", asked,
                                    " (", x.len, " bytes)")};
      }
      if (!r.content_encoding.empty() && !iequals(r.content_encoding, "identity")) {
        return {Verdict::fatal, cat("the server encodes the body (", r.content_encoding, ")")};
      }
      if (!etag_.empty() && !r.etag.empty() && r.etag != etag_) {
        return {Verdict::fatal,
                cat("the file changed: ETag is now ", r.etag, ", was ", etag_, " when opened")};
      }
      if (!last_modified_.empty() && !r.last_modified.empty() &&
          r.last_modified != last_modified_) {
        return {Verdict::fatal, cat("the file changed: Last-Modified is now ", r.last_modified,
                                    ", was ", last_modified_, " when opened")};
      }
      return {};
    };
    Outcome result = impl_->perform(url_, options_, x);
    retry_after = x.reply.retry_after;
    done += x.got;
    progressed = x.got > 0;
    return result;
  });
}

}  // namespace ml::gguf
