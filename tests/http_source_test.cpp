// HttpSource (libml/src/gguf/source_http.cpp) against fake servers that misbehave in one way
// each: ignore Range, confirm the wrong range, send short or long bodies, change the file,
// redirect, fail transiently. Each test asserts the exact error or the exact bytes.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "http_fake.h"
#include "ml/gguf.h"

namespace {

using ml::gguf::HttpOptions;
using ml::gguf::HttpSource;
using ml::test::FakeRequest;
using ml::test::FakeServer;
using ml::test::range_reply;

const std::string kFile = ml::test::pattern(4096, 3);

HttpOptions fast() {
  HttpOptions o;
  o.retries = 2;
  o.retry_delay_ms = 1;
  o.connect_timeout_s = 2;
  o.low_speed_timeout_s = 5;
  return o;
}

bool is_head(const FakeRequest& r) {
  return r.method == "HEAD";
}

// A server that behaves, except where `tweak` changes the reply to a GET.
FakeServer::Respond honest(std::function<void(const FakeRequest&, ml::test::Reply&)> tweak = {}) {
  return [tweak](const FakeRequest& req) {
    ml::test::Reply r = range_reply(req, kFile);
    r.extra += "ETag: \"v1\"\r\nLast-Modified: Mon, 02 Jan 2023 00:00:00 GMT\r\n";
    if (tweak && !is_head(req)) tweak(req, r);
    return r.render(is_head(req));
  };
}

std::string read_error(HttpSource& src, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  try {
    src.read(offset, std::as_writable_bytes(std::span(out)));
  } catch (const ml::Error& e) {
    return e.what();
  }
  return "no error";
}

std::string open_error(const std::string& url) {
  try {
    HttpSource src(url, fast());
  } catch (const ml::Error& e) {
    return e.what();
  }
  return "no error";
}

std::string read(HttpSource& src, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  src.read(offset, std::as_writable_bytes(std::span(out)));
  return out;
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST(HttpSource, HonestServer) {
  FakeServer server(honest());
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_EQ(src.size(), kFile.size());
  EXPECT_EQ(src.etag(), "\"v1\"");
  EXPECT_EQ(src.last_modified(), "Mon, 02 Jan 2023 00:00:00 GMT");
  EXPECT_EQ(read(src, 100, 200), kFile.substr(100, 200));
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "HEAD");
  EXPECT_EQ(seen[1].headers["range"], "bytes=100-299");
  EXPECT_EQ(seen[1].headers.count("accept-encoding"), 0u);  // bytes must arrive as stored
}

TEST(HttpSource, IgnoresRangeOnRead) {
  const std::string big(size_t(64) << 20, 'x');  // aborted at the headers, not downloaded
  FakeServer server([&](const FakeRequest& req) {
    ml::test::Reply r = range_reply(req, kFile);                   // HEAD claims ranges work...
    if (!is_head(req)) r = ml::test::Reply{200, "", big, "", -2};  // ...GET ignores them
    return r.render(is_head(req));
  });
  HttpSource src(server.url("/m.gguf"), fast());
  auto start = std::chrono::steady_clock::now();
  EXPECT_HAS(read_error(src, 0, 100),
             "ignores Range requests (it answered 200 with the whole "
             "file to Range: bytes=0-99)");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(server.requests(), 2);  // never retried
  // The client hung up after the headers: what went out is what the socket buffers held.
  EXPECT_LT(server.last_sent(), big.size() / 4) << server.last_sent();
}

TEST(HttpSource, IgnoresRangeAtOpen) {
  FakeServer server([](const FakeRequest& req) {
    return ml::test::Reply{200, "", kFile, "", -2}.render(is_head(req));  // no Accept-Ranges
  });
  EXPECT_HAS(open_error(server.url("/m.gguf")),
             "ignores Range requests (it answered 200 with the whole file to Range: bytes=0-0)");
}

TEST(HttpSource, HeadRefusedFallsBackToProbe) {
  FakeServer server([](const FakeRequest& req) {
    if (is_head(req)) return ml::test::Reply{405, "", "", "", -2}.render(true);
    return range_reply(req, kFile).render(false);
  });
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_EQ(src.size(), kFile.size());
  EXPECT_EQ(read(src, 4000, 96), kFile.substr(4000, 96));
  EXPECT_EQ(server.seen()[1].headers["range"], "bytes=0-0");
}

TEST(HttpSource, ContentRangeMismatch) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) {
    r.content_range = "bytes 11-20/4096";  // asked 10-19
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 10, 10),
             "Content-Range 'bytes 11-20/4096' does not match Range: bytes=10-19");
}

TEST(HttpSource, SizeChanged) {
  FakeServer server(
      honest([](const FakeRequest&, ml::test::Reply& r) { r.content_range = "bytes 10-19/5000"; }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 10, 10), "the file changed: its size is now 5000 bytes, was 4096");
}

TEST(HttpSource, ContentLengthLies) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) { r.content_length = 20; }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 10, 10), "Content-Length 20 does not match Range: bytes=10-19");
}

TEST(HttpSource, LongerBodyThanConfirmed) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) {
    r.content_length = -1;  // close-delimited, so only the byte count can tell
    r.body += "0123456789";
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 10, 10), "sent more than the 10 bytes of the range it confirmed");
}

TEST(HttpSource, ShortBodyIsRetriedThenFails) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) {
    r.content_length = long(r.body.size());  // promised, then the connection closes
    r.body.clear();
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  std::string e = read_error(src, 0, 100);
  EXPECT_HAS(e, "gave up after 3 attempts");
  EXPECT_EQ(server.requests(), 1 + 3);
}

TEST(HttpSource, DroppedConnectionResumes) {
  FakeServer server(honest([](const FakeRequest& req, ml::test::Reply& r) {
    if (req.index != 1) return;
    r.content_length = long(r.body.size());  // first GET: half the promised bytes, then close
    r.body.resize(r.body.size() / 2);
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_EQ(read(src, 1000, 100), kFile.substr(1000, 100));
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].headers["range"], "bytes=1000-1099");
  EXPECT_EQ(seen[2].headers["range"], "bytes=1050-1099");  // only the missing half
}

TEST(HttpSource, EtagChanged) {
  FakeServer server([](const FakeRequest& req) {
    ml::test::Reply r = range_reply(req, kFile);
    r.extra += is_head(req) ? "ETag: \"v1\"\r\n" : "ETag: \"v2\"\r\n";
    return r.render(is_head(req));
  });
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 0, 10),
             "the file changed: ETag is now \"v2\", was \"v1\" when opened");
}

TEST(HttpSource, LastModifiedChanged) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) {
    r.extra = "Last-Modified: Tue, 03 Jan 2023 00:00:00 GMT\r\n";
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 0, 10), "Last-Modified is now Tue, 03 Jan 2023 00:00:00 GMT");
}

TEST(HttpSource, FollowsRedirects) {
  FakeServer server([](const FakeRequest& req) {
    if (req.target == "/old") {
      return ml::test::Reply{302, "", "", "Location: /new\r\n", -2}.render(is_head(req));
    }
    if (req.target == "/loop") {
      return ml::test::Reply{302, "", "", "Location: /loop\r\n", -2}.render(is_head(req));
    }
    return range_reply(req, kFile).render(is_head(req));
  });
  HttpSource src(server.url("/old"), fast());
  EXPECT_EQ(src.size(), kFile.size());
  EXPECT_EQ(read(src, 7, 9), kFile.substr(7, 9));
  EXPECT_HAS(open_error(server.url("/loop")), "redirects");
}

TEST(HttpSource, RetriesTransientFailures) {
  int gets = 0;
  FakeServer server([&](const FakeRequest& req) {
    if (!is_head(req) && gets++ < 2) return ml::test::Reply{503, "", "busy", "", -2}.render(false);
    return range_reply(req, kFile).render(is_head(req));
  });
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_EQ(read(src, 300, 30), kFile.substr(300, 30));
  EXPECT_EQ(server.requests(), 1 + 3);
}

TEST(HttpSource, GivesUpOnPersistent5xx) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) {
    r = ml::test::Reply{503, "", "busy", "", -2};
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 0, 10), "answered 503 to Range: bytes=0-9 (gave up after 3 attempts)");
}

TEST(HttpSource, NeverRetries4xx) {
  FakeServer server(honest([](const FakeRequest&, ml::test::Reply& r) {
    r = ml::test::Reply{403, "", "no", "", -2};
  }));
  HttpSource src(server.url("/m.gguf"), fast());
  EXPECT_HAS(read_error(src, 0, 10), "answered 403 to Range: bytes=0-9");
  EXPECT_EQ(server.requests(), 2);
}

TEST(HttpSource, NotFoundAndRefused) {
  FakeServer server([](const FakeRequest& req) {
    return ml::test::Reply{404, "", "", "", -2}.render(is_head(req));
  });
  EXPECT_HAS(open_error(server.url("/m.gguf")), "not found (HTTP 404)");
  int port = 0;
  {
    FakeServer gone(honest());
    port = std::stoi(gone.url("").substr(17));
  }
  EXPECT_HAS(open_error("http://127.0.0.1:" + std::to_string(port) + "/m.gguf"),
             "gave up after 3 attempts");
  EXPECT_HAS(open_error("ftp://127.0.0.1/m.gguf"), "not an http:// or https:// URL");
}

}  // namespace
