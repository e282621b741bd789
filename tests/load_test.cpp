// Streaming load (libml/src/model/weights.cpp, gguf/source_fetch.cpp, gguf/source_cache.cpp)
// on the CPU backend: fetch() order and retries; a shared model loaded by URL from gguf_serve's
// server gives the logits of the local path, bit for bit; a server that drops the connection
// mid-tensor is resumed, one that ignores Range or changes the file mid-load fails naming the
// tensor; the cache skips the network when the file is unchanged and refetches corrupt or
// missing blocks.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "http_fake.h"
#include "ml/backend.h"
#include "ml/model.h"
#include "ml/net.h"
#include "ml/run.h"
#include "test_util.h"

namespace ml {
namespace {

namespace fs = std::filesystem;
using test::FakeRequest;
using test::FakeServer;

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

const std::string kModel = "llama-tiny-q4_k_m.gguf";
const int32_t kPrompt[] = {1, 450, 439, 860, 3347, 113};

std::string model_path() {
  return test::shared("models/" + kModel).string();
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Prompt logits of a model loaded from `source` on a fresh CPU backend.
std::vector<float> logits_from(gguf::Source& source, LoadOptions options = {}) {
  const gguf::File file = gguf::parse(source);
  auto be = make_cpu_backend(2);
  const Model m = load_model(*be, source, file, options);
  Session s(*be, m, SessionOptions{gguf::Type::F32, 64, 512, 0});
  return s.prefill(kPrompt, false);
}

const std::vector<float>& local_logits() {
  static const std::vector<float> logits = [] {
    gguf::FileSource src(model_path());
    return logits_from(src);
  }();
  return logits;
}

LoadOptions small_pieces() {
  LoadOptions o;
  o.fetch.n_parallel = 3;
  o.fetch.piece_bytes = 64 << 10;  // most tensors span several pieces
  o.fetch.retry_delay_ms = 1;
  return o;
}

gguf::HttpOptions fast(int retries = 2) {
  gguf::HttpOptions o;
  o.retries = retries;
  o.retry_delay_ms = 1;
  o.connect_timeout_s = 2;
  o.low_speed_timeout_s = 5;
  return o;
}

// Bytes in memory without a zero-copy view, so fetch() takes its threaded path; `hook` runs
// before each read (to throw).
class PlainSource final : public gguf::Source {
 public:
  PlainSource(std::string bytes, std::function<void(uint64_t)> hook = {})
      : bytes_(std::move(bytes)), hook_(std::move(hook)) {}
  uint64_t size() const override { return bytes_.size(); }
  void read(uint64_t offset, std::span<std::byte> out) override {
    if (hook_) hook_(offset);
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
  }
  std::string name() const override { return "plain"; }

 private:
  std::string bytes_;
  std::function<void(uint64_t)> hook_;
};

TEST(Fetch, DeliversRangesInOrder) {
  const std::string data = test::pattern(1 << 20, 7);
  const std::vector<gguf::FetchRange> ranges = {
      {1000, 300000}, {5, 10}, {400000, 0}, {500000, 70000}};
  for (int parallel : {1, 4}) {
    PlainSource src(data);
    std::string got[4];
    size_t last = 0;
    gguf::FetchOptions o;
    o.n_parallel = parallel;
    o.piece_bytes = 4096 * 3;
    const auto stats = gguf::fetch(src, ranges, o, [&](size_t i, uint64_t begin, auto bytes) {
      EXPECT_GE(i, last);
      last = i;
      EXPECT_EQ(begin, got[i].size());
      got[i].append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    });
    for (size_t i = 0; i < ranges.size(); ++i)
      EXPECT_EQ(got[i], data.substr(ranges[i].offset, ranges[i].size)) << "range " << i;
    EXPECT_EQ(stats.bytes, 370010u);
    EXPECT_EQ(stats.pieces, 25u + 1u + 6u);
  }
}

TEST(Fetch, RetriesDroppedPiecesAndStopsOnOtherErrors) {
  const std::string data = test::pattern(200000, 9);
  std::atomic<int> drops{2};
  PlainSource flaky(data, [&](uint64_t offset) {
    if (offset == 100000 && drops-- > 0) throw gguf::SourceDropped("plain: connection dropped");
  });
  gguf::FetchOptions o;
  o.piece_bytes = 50000;
  o.retry_delay_ms = 1;
  std::string got;
  auto append = [&](size_t, uint64_t, auto bytes) {
    got.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  };
  const gguf::FetchRange all[] = {{0, 200000}};
  const auto stats = gguf::fetch(flaky, all, o, append);
  EXPECT_EQ(got, data);
  EXPECT_EQ(stats.retried, 2);

  PlainSource broken(data, [](uint64_t offset) {
    if (offset == 150000) throw Error("plain: the file changed");
  });
  got.clear();
  try {
    gguf::fetch(broken, all, o, append);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "the file changed");
  }
  EXPECT_EQ(got, data.substr(0, 150000));  // everything before the failure was delivered

  o.retries = 1;
  drops = 5;
  try {
    gguf::fetch(flaky, all, o, append);
    FAIL() << "no error";
  } catch (const gguf::SourceDropped& e) {
    EXPECT_HAS(e.what(), "connection dropped");
  }
}

TEST(StreamLoad, UrlFromGgufServeEqualsLocalPath) {
  net::ServeOptions so;
  so.port = 0;
  so.paths = {model_path()};
  so.log = false;
  net::Server server(so);
  server.start();
  gguf::HttpSource src(server.url() + "/" + kModel, fast());
  EXPECT_EQ(logits_from(src, small_pieces()), local_logits());
}

// A fake server for the model whose GET replies `tweak` may break; it records each request.
struct ModelServer {
  std::string bytes = file_bytes(model_path());
  gguf::File file = [] {
    gguf::FileSource s(model_path());
    return gguf::parse(s);
  }();
  std::function<void(const FakeRequest&, test::Reply&, std::string& raw)> tweak;
  FakeServer server{[this](const FakeRequest& req) {
    test::Reply r = test::range_reply(req, bytes);
    r.extra += "ETag: \"v1\"\r\n";
    std::string raw = r.render(req.method == "HEAD");
    if (tweak && req.method != "HEAD") tweak(req, r, raw);
    return raw;
  }};
  uint64_t range_start(const FakeRequest& req) const {
    auto it = req.headers.find("range");
    return it == req.headers.end() ? 0 : std::stoull(it->second.substr(6));
  }
};

std::string load_error(gguf::Source& src) {
  try {
    logits_from(src, small_pieces());
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(StreamLoad, DroppedConnectionMidTensorResumes) {
  for (int http_retries : {2, 0}) {  // resumed inside HttpSource, or by fetch() re-asking
    ModelServer ms;
    const gguf::TensorInfo& t = ms.file.tensor("output.weight");
    std::atomic<bool> dropped{false};
    ms.tweak = [&](const FakeRequest& req, test::Reply& r, std::string& raw) {
      // The headers promise the whole piece; half of it arrives, then the connection closes.
      if (ms.range_start(req) == t.offset && !dropped.exchange(true))
        raw.resize(raw.size() - r.body.size() / 2);
    };
    gguf::HttpSource src(ms.server.url("/m.gguf"), fast(http_retries));
    EXPECT_EQ(logits_from(src, small_pieces()), local_logits()) << "retries " << http_retries;
    EXPECT_TRUE(dropped);
    int asked_at_start = 0;
    for (const FakeRequest& req : ms.server.seen())
      if (ms.range_start(req) == t.offset) ++asked_at_start;
    if (http_retries > 0) {
      // HttpSource asked again for the rest of the piece, from inside the tensor.
      bool resumed_inside = false;
      for (const FakeRequest& req : ms.server.seen()) {
        const uint64_t at = ms.range_start(req);
        resumed_inside |= at > t.offset && at < t.offset + (64 << 10) && at % (64 << 10) != 0;
      }
      EXPECT_TRUE(resumed_inside);
      EXPECT_EQ(asked_at_start, 1);
    } else {
      EXPECT_EQ(asked_at_start, 2);  // fetch() asked for the piece again
    }
  }
}

TEST(StreamLoad, ServerIgnoringRangeFailsNamingTheTensor) {
  ModelServer ms;
  const uint64_t data_offset = ms.file.data_offset;
  ms.tweak = [&](const FakeRequest& req, test::Reply&, std::string& raw) {
    if (ms.range_start(req) >= data_offset) {
      test::Reply whole;
      whole.body = ms.bytes;
      raw = whole.render(false);
    }
  };
  gguf::HttpSource src(ms.server.url("/m.gguf"), fast());
  const std::string e = load_error(src);
  EXPECT_HAS(e, "tensor output.weight");
  EXPECT_HAS(e, "ignores Range");
}

TEST(StreamLoad, FileChangedMidLoadFails) {
  ModelServer ms;
  const uint64_t at = ms.file.tensor("blk.1.attn_q.weight").offset;
  ms.tweak = [&](const FakeRequest& req, test::Reply& r, std::string& raw) {
    if (ms.range_start(req) >= at) {
      r.extra = "Accept-Ranges: bytes\r\nETag: \"v2\"\r\n";
      raw = r.render(false);
    }
  };
  gguf::HttpSource src(ms.server.url("/m.gguf"), fast());
  const std::string e = load_error(src);
  EXPECT_HAS(e, "the file changed: ETag is now \"v2\"");
  EXPECT_HAS(e, "tensor ");
}

TEST(StreamLoad, ServerLyingAboutLengthFails) {
  ModelServer ms;
  const uint64_t at = ms.file.tensor("token_embd.weight").offset;
  ms.tweak = [&](const FakeRequest& req, test::Reply& r, std::string& raw) {
    if (ms.range_start(req) == at) {
      r.content_length = long(r.body.size()) + 10;
      raw = r.render(false);
    }
  };
  gguf::HttpSource src(ms.server.url("/m.gguf"), fast());
  const std::string e = load_error(src);
  EXPECT_HAS(e, "tensor token_embd.weight");
  EXPECT_HAS(e, "Content-Length");
}

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ml-cache-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<gguf::CachedSource> open(const std::string& url) {
    return std::make_unique<gguf::CachedSource>(std::make_unique<gguf::HttpSource>(url, fast()),
                                                dir_.string(), 256 << 10);
  }
  fs::path dir_;
};

TEST_F(CacheTest, SkipsTheNetworkWhenUnchangedAndRefetchesBadBlocks) {
  ModelServer ms;
  const std::string url = ms.server.url("/m.gguf");
  const uint64_t size = ms.bytes.size();
  {
    auto src = open(url);
    EXPECT_EQ(logits_from(*src, small_pieces()), local_logits());
    EXPECT_EQ(src->stats().hit_bytes, 0u);
    EXPECT_EQ(src->stats().fetched_bytes, size);  // every block holds header or tensor bytes
  }
  const int before = ms.server.requests();
  std::string entry;
  {
    auto src = open(url);
    entry = src->entry_dir();
    EXPECT_EQ(logits_from(*src, small_pieces()), local_logits());
    EXPECT_EQ(src->stats().fetched_bytes, 0u);
    EXPECT_EQ(src->stats().hit_bytes, size);
  }
  EXPECT_EQ(ms.server.requests() - before, 1);  // the HEAD that checks the validators

  // A flipped byte in block 5 and a block whose sum was never written (a torn write).
  {
    std::fstream data(entry + "/data", std::ios::in | std::ios::out | std::ios::binary);
    data.seekp(5 * (256 << 10) + 77);
    data.put(char(ms.bytes[5 * (256 << 10) + 77] ^ 0x5a));
    std::fstream sums(entry + "/sums", std::ios::in | std::ios::out | std::ios::binary);
    sums.seekp(2 * 32);
    sums.write(std::string(32, '\0').data(), 32);
  }
  {
    auto src = open(url);
    EXPECT_EQ(logits_from(*src, small_pieces()), local_logits());
    EXPECT_EQ(src->stats().refetched_blocks, 1);
    EXPECT_EQ(src->stats().fetched_bytes, 2u * (256 << 10));
  }
  EXPECT_EQ(file_bytes(entry + "/data"), ms.bytes);
}

TEST_F(CacheTest, ChangedFileEmptiesTheEntry) {
  const std::string bytes = file_bytes(model_path());
  std::atomic<int> version{1};
  FakeServer server([&](const FakeRequest& req) {
    test::Reply r = test::range_reply(req, bytes);
    r.extra += "ETag: \"v" + std::to_string(version.load()) + "\"\r\n";
    return r.render(req.method == "HEAD");
  });
  const std::string url = server.url("/m.gguf");
  // v1 fetched; v2 differs: the entry is emptied and fetched again; v2 again: all cached.
  const std::pair<int, uint64_t> steps[] = {{1, bytes.size()}, {2, bytes.size()}, {2, 0}};
  for (auto [v, fetched] : steps) {
    version = v;
    auto src = open(url);
    EXPECT_EQ(logits_from(*src), local_logits());
    EXPECT_EQ(src->stats().fetched_bytes, fetched) << "version " << v;
    EXPECT_EQ(src->stats().hit_bytes, bytes.size() - fetched) << "version " << v;
  }
  // A torn entry (sums shorter than the file needs) is emptied too.
  fs::resize_file(open(url)->entry_dir() + "/sums", 32);
  auto src = open(url);
  logits_from(*src);
  EXPECT_EQ(src->stats().fetched_bytes, bytes.size());
}

}  // namespace
}  // namespace ml
