// gguf_serve's HTTP behaviour (libml/src/net), checked with raw requests and with HttpSource:
// HEAD, GET, single ranges, 416, CORS and preflight, 404, path traversal, a sparse file past
// 4 GiB, 32 concurrent clients, and a real GGUF parsed over HTTP.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http_fake.h"
#include "ml/gguf.h"
#include "ml/net.h"
#include "test_util.h"

namespace fs = std::filesystem;
using ml::test::pattern;
using ml::test::raw_request;

namespace {

constexpr uint64_t kBig = (uint64_t(4) << 30) + 8192;  // past 4 GiB: 64-bit offsets needed
constexpr uint64_t kMarkAt = (uint64_t(4) << 30) + 100;
const std::string kMark = "bytes past four GiB";

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary).write(data.data(), std::streamsize(data.size()));
}

class Served : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/ml_http_test_XXXXXX";
    base_ = new_dir(tmpl);
    root_ = base_ / "root";
    fs::create_directories(root_ / "sub");
    a_ = pattern(1000, 1);
    write_file(root_ / "a.bin", a_);
    write_file(root_ / "sub" / "b.bin", pattern(5000, 2));
    write_file(base_ / "secret.txt", "outside the served folder");
    fs::create_symlink(base_ / "secret.txt", root_ / "link_out");
    fs::create_symlink(root_ / "a.bin", root_ / "link_in");
    // A sparse file a little over 4 GiB with a marker beyond 4 GiB.
    int fd = ::open((root_ / "big.bin").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t(kBig)), 0);
    ASSERT_EQ(::pwrite(fd, kMark.data(), kMark.size(), off_t(kMarkAt)), ssize_t(kMark.size()));
    ::close(fd);
    ml::net::ServeOptions o;
    o.port = 0;
    o.log = false;
    o.paths = {root_.string(), ml::test::shared("models").string()};
    server_ = std::make_unique<ml::net::Server>(o);
    server_->start();
  }
  static void TearDownTestSuite() {
    server_.reset();
    fs::remove_all(base_);
  }
  static fs::path new_dir(char* tmpl) { return fs::path(::mkdtemp(tmpl)); }
  static int port() { return server_->port(); }
  static std::string url(const std::string& path) { return server_->url() + path; }

  static inline fs::path base_, root_;
  static inline std::string a_;
  static inline std::unique_ptr<ml::net::Server> server_;
};

TEST(Range, Parse) {
  using K = ml::net::ByteRange::Kind;
  struct Case {
    const char* header;
    uint64_t size;
    K kind;
    uint64_t first, last;
  };
  const Case cases[] = {
      {"", 10, K::full, 0, 0},
      {"bytes=2-5", 10, K::partial, 2, 5},
      {"bytes=2-", 10, K::partial, 2, 9},
      {"bytes=-3", 10, K::partial, 7, 9},
      {"bytes=-30", 10, K::partial, 0, 9},
      {"bytes=8-100", 10, K::partial, 8, 9},
      {"BYTES=0-0", 10, K::partial, 0, 0},
      {"bytes=10-", 10, K::unsatisfiable, 0, 0},
      {"bytes=5-2", 10, K::unsatisfiable, 0, 0},
      {"bytes=-0", 10, K::unsatisfiable, 0, 0},
      {"bytes=0-", 0, K::unsatisfiable, 0, 0},
      {"bytes=99999999999999999999999-", 10, K::unsatisfiable, 0, 0},
      {"bytes=4294967396-4294967400", kBig, K::partial, 4294967396, 4294967400},
      {"bytes=0-1,4-5", 10, K::full, 0, 0},
      {"items=0-1", 10, K::unsatisfiable, 0, 0},
      {"bytes=a-b", 10, K::unsatisfiable, 0, 0},
      {"bytes=", 10, K::unsatisfiable, 0, 0},
  };
  for (const Case& c : cases) {
    ml::net::ByteRange r = ml::net::parse_range(c.header, c.size);
    EXPECT_EQ(r.kind, c.kind) << c.header;
    if (c.kind == K::partial) {
      EXPECT_EQ(r.first, c.first) << c.header;
      EXPECT_EQ(r.last, c.last) << c.header;
    }
  }
}

TEST(Range, HttpDate) {
  EXPECT_EQ(ml::net::http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's
}

TEST_F(Served, Head) {
  auto r = raw_request(port(), "HEAD", "/a.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), "1000");
  EXPECT_EQ(r.header("Accept-Ranges"), "bytes");
  EXPECT_FALSE(r.header("ETag").empty());
  EXPECT_FALSE(r.header("Last-Modified").empty());
  EXPECT_TRUE(r.body.empty());
}

TEST_F(Served, FullGet) {
  auto r = raw_request(port(), "GET", "/a.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_);
  EXPECT_EQ(raw_request(port(), "GET", "/sub/b.bin").body, pattern(5000, 2));
}

TEST_F(Served, Ranges) {
  struct Case {
    const char* range;
    uint64_t first, last;
  };
  for (Case c :
       {Case{"bytes=10-19", 10, 19}, Case{"bytes=990-", 990, 999}, Case{"bytes=-7", 993, 999},
        Case{"bytes=0-0", 0, 0}, Case{"bytes=995-5000", 995, 999}}) {
    auto r = raw_request(port(), "GET", "/a.bin", std::string("Range: ") + c.range + "\r\n");
    EXPECT_EQ(r.status, 206) << c.range;
    EXPECT_EQ(r.header("Content-Range"), ml::cat("bytes ", c.first, "-", c.last, "/1000"))
        << c.range;
    EXPECT_EQ(r.header("Content-Length"), std::to_string(c.last - c.first + 1)) << c.range;
    EXPECT_EQ(r.body, a_.substr(c.first, c.last - c.first + 1)) << c.range;
  }
}

TEST_F(Served, Unsatisfiable) {
  for (const char* range : {"bytes=1000-", "bytes=5000-6000", "bytes=5-2", "bytes=-0"}) {
    auto r = raw_request(port(), "GET", "/a.bin", std::string("Range: ") + range + "\r\n");
    EXPECT_EQ(r.status, 416) << range;
    EXPECT_EQ(r.header("Content-Range"), "bytes */1000") << range;
    EXPECT_TRUE(r.body.empty()) << range;
  }
}

TEST_F(Served, MultiRangeGetsWholeFile) {
  auto r = raw_request(port(), "GET", "/a.bin", "Range: bytes=0-1,5-9\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_);
}

TEST_F(Served, IfRangeMismatchGetsWholeFile) {
  auto r = raw_request(port(), "GET", "/a.bin", "Range: bytes=0-9\r\nIf-Range: \"other\"\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_);
}

TEST_F(Served, Cors) {
  auto r =
      raw_request(port(), "GET", "/a.bin", "Origin: http://example.org\r\nRange: bytes=0-3\r\n");
  EXPECT_EQ(r.header("Access-Control-Allow-Origin"), "*");
  std::string exposed = r.header("Access-Control-Expose-Headers");
  for (const char* h : {"Content-Range", "Content-Length", "Accept-Ranges"}) {
    EXPECT_NE(exposed.find(h), std::string::npos) << h;
  }
  auto p = raw_request(port(), "OPTIONS", "/a.bin",
                       "Origin: http://example.org\r\nAccess-Control-Request-Method: GET\r\n"
                       "Access-Control-Request-Headers: range\r\n");
  EXPECT_EQ(p.status, 204);
  EXPECT_EQ(p.header("Access-Control-Allow-Origin"), "*");
  EXPECT_NE(p.header("Access-Control-Allow-Methods").find("GET"), std::string::npos);
  EXPECT_NE(p.header("Access-Control-Allow-Headers").find("Range"), std::string::npos);
}

TEST_F(Served, NotFoundAndTraversal) {
  EXPECT_EQ(raw_request(port(), "GET", "/nope.gguf").status, 404);
  EXPECT_EQ(raw_request(port(), "GET", "/sub").status, 404);  // folders are not files
  for (const char* t :
       {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt", "/a.bin%00", "/..%5csecret.txt", "/%zz"}) {
    auto r = raw_request(port(), "GET", t);
    EXPECT_EQ(r.status, 400) << t;
    EXPECT_EQ(r.body.find("outside"), std::string::npos) << t;
  }
  EXPECT_EQ(raw_request(port(), "GET", "/link_out").status, 404);  // symlink out of the folder
  auto in = raw_request(port(), "GET", "/link_in");                // symlink inside: served
  EXPECT_EQ(in.status, 200);
  EXPECT_EQ(in.body, a_);
  EXPECT_EQ(raw_request(port(), "GET", "/a.bin?x=1").body, a_);  // a query is not the path
}

TEST_F(Served, Listing) {
  auto r = raw_request(port(), "GET", "/");
  EXPECT_EQ(r.status, 200);
  for (const char* s : {"href=\"/a.bin\"", ">1000<", "href=\"/sub/b.bin\"", ">5000<",
                        "href=\"/llama-tiny-q4_k_m.gguf\""}) {
    EXPECT_NE(r.body.find(s), std::string::npos) << s;
  }
  EXPECT_EQ(r.body.find("link_out"), std::string::npos);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
}

TEST_F(Served, SparseFilePastFourGiB) {
  auto r = raw_request(port(), "GET", "/big.bin",
                       ml::cat("Range: bytes=", kMarkAt, "-", kMarkAt + kMark.size() - 1, "\r\n"));
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("Content-Range"),
            ml::cat("bytes ", kMarkAt, "-", kMarkAt + kMark.size() - 1, "/", kBig));
  EXPECT_EQ(r.body, kMark);
  EXPECT_EQ(raw_request(port(), "HEAD", "/big.bin").header("Content-Length"), std::to_string(kBig));

  ml::gguf::HttpSource src(url("/big.bin"));
  EXPECT_EQ(src.size(), kBig);
  std::string got(kMark.size() + 20, 'x');
  src.read(kMarkAt - 10, std::as_writable_bytes(std::span(got)));
  EXPECT_EQ(got, std::string(10, '\0') + kMark + std::string(10, '\0'));
}

TEST_F(Served, HttpSourceReadsExactBytes) {
  ml::gguf::HttpSource src(url("/a.bin"));
  EXPECT_EQ(src.size(), 1000u);
  EXPECT_FALSE(src.etag().empty());
  EXPECT_FALSE(src.last_modified().empty());
  for (auto [off, len] : {std::pair<uint64_t, size_t>{0, 1000}, {1, 1}, {999, 1}, {123, 456}}) {
    std::string got(len, '\0');
    src.read(off, std::as_writable_bytes(std::span(got)));
    EXPECT_EQ(got, a_.substr(off, len)) << off;
  }
  std::string two(2, '\0');
  EXPECT_THROW(src.read(999, std::as_writable_bytes(std::span(two))), ml::Error);
  EXPECT_THROW(ml::gguf::HttpSource(url("/nope.gguf")), ml::Error);
}

TEST_F(Served, ThirtyTwoConcurrentClients) {
  const std::string b = pattern(5000, 2);
  ml::gguf::HttpSource shared(url("/sub/b.bin"));  // one source read from many threads
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      bool good = true;
      for (int i = 0; i < 4; ++i) {
        uint64_t off = uint64_t(t * 131 + i * 17) % 4000, len = 1 + (t * 37 + i) % 900;
        std::string got(len, '\0');
        shared.read(off, std::as_writable_bytes(std::span(got)));
        good = good && got == b.substr(off, len);
      }
      auto r = raw_request(port(), "GET", "/sub/b.bin",
                           ml::cat("Range: bytes=", t, "-", t + 99, "\r\n"));
      good = good && r.status == 206 && r.body == b.substr(size_t(t), 100);
      if (good) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 32);
}

TEST_F(Served, GgufParsesOverHttp) {
  for (const char* name : {"llama-tiny-q4_k_m.gguf", "gptoss-tiny-mxfp4.gguf"}) {
    fs::path path = ml::test::shared("models") / name;
    ml::gguf::FileSource file(path.string());
    ml::gguf::HttpSource http(url(std::string("/") + name));
    ASSERT_EQ(http.size(), file.size());
    ml::gguf::File a = ml::gguf::parse(file), b = ml::gguf::parse(http);
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    EXPECT_EQ(a.metadata.size(), b.metadata.size());
    const ml::gguf::TensorInfo& t = b.tensors.back();
    EXPECT_EQ(ml::gguf::sha256_hex(ml::gguf::read_tensor(http, t)),
              ml::gguf::sha256_hex(ml::gguf::read_tensor(file, t)))
        << t.name;
  }
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(ml::gguf::sha256_hex({}),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string abc = "abc";
  EXPECT_EQ(ml::gguf::sha256_hex(std::as_bytes(std::span(abc))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string a = pattern(100000, 7);  // chunked digest equals one-shot digest
  ml::gguf::MemorySource mem(
      std::vector<std::byte>(reinterpret_cast<const std::byte*>(a.data()),
                             reinterpret_cast<const std::byte*>(a.data()) + a.size()));
  auto d = ml::gguf::digest_range(mem, 10, 99000, 4096);
  EXPECT_EQ(d.bytes, 99000u);
  EXPECT_EQ(d.sha256, ml::gguf::sha256_hex(std::as_bytes(std::span(a).subspan(10, 99000))));
  EXPECT_THROW(ml::gguf::digest_range(mem, 1, 100000), ml::Error);
}

}  // namespace
