// CachedSource: a URL's bytes kept on disk, block by block, checked by SHA-256 (see gguf.h).
//
// Writes are ordered so that a crash leaves no block that looks cached but is not: a block's
// bytes go into `data` first, its sum into `sums` after; a sum of zeros means absent. So a
// partial entry (an interrupted load) keeps every block that finished and fetches the rest.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

constexpr size_t kSum = 32;  // bytes of a SHA-256

std::array<std::byte, kSum> sha256(std::span<const std::byte> bytes) {
  const std::string hex = sha256_hex(bytes);
  std::array<std::byte, kSum> out{};
  for (size_t i = 0; i < kSum; ++i)
    out[i] = std::byte(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

// A file descriptor that closes itself.
class Fd {
 public:
  Fd(const std::string& path, int flags) : path_(path), fd_(::open(path.c_str(), flags, 0644)) {
    if (fd_ < 0) fail(path, ": cannot open: ", std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  void pread_all(uint64_t offset, std::span<std::byte> out) const {
    for (size_t done = 0; done < out.size();) {
      ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, off_t(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(path_, ": cannot read ", out.size(), " bytes at ", offset);
      done += size_t(n);
    }
  }
  void pwrite_all(uint64_t offset, std::span<const std::byte> in) const {
    for (size_t done = 0; done < in.size();) {
      ssize_t n = ::pwrite(fd_, in.data() + done, in.size() - done, off_t(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        fail(path_, ": cannot write ", in.size(), " bytes at ", offset, ": ", std::strerror(errno));
      done += size_t(n);
    }
  }
  void truncate(uint64_t size) const {
    if (::ftruncate(fd_, off_t(size)) != 0)
      fail(path_, ": cannot resize to ", size, " bytes: ", std::strerror(errno));
  }
  uint64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(path_, ": cannot stat");
    return uint64_t(st.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

enum class State { unknown, fetching, good };  // unknown: absent or not yet checked

}  // namespace

struct CachedSource::Impl {
  std::unique_ptr<HttpSource> http;
  std::string dir;
  uint64_t block = 0, n_blocks = 0;
  std::unique_ptr<Fd> data, sums;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<State> state;  // [n_blocks]
  Stats stats;

  uint64_t block_size(uint64_t b) const { return std::min(block, http->size() - b * block); }

  // Makes block b good (checked or fetched) and returns its bytes in `buf`.
  void load_block(uint64_t b, std::vector<std::byte>& buf) {
    buf.resize(size_t(block_size(b)));
    std::array<std::byte, kSum> want{};
    sums->pread_all(b * kSum, want);
    const bool present =
        std::any_of(want.begin(), want.end(), [](std::byte x) { return x != std::byte(0); });
    if (present) {
      data->pread_all(b * block, buf);
      if (sha256(buf) == want) {
        std::lock_guard<std::mutex> lock(mutex);
        stats.hit_bytes += buf.size();
        return;
      }
      std::lock_guard<std::mutex> lock(mutex);
      ++stats.refetched_blocks;
    }
    http->read(b * block, buf);
    data->pwrite_all(b * block, buf);
    sums->pwrite_all(b * kSum, sha256(buf));  // after the data: see the file comment
    std::lock_guard<std::mutex> lock(mutex);
    stats.fetched_bytes += buf.size();
  }
};

CachedSource::CachedSource(std::unique_ptr<HttpSource> http, const std::string& root,
                           uint64_t block_bytes)
    : impl_(std::make_unique<Impl>()) {
  Impl& c = *impl_;
  if (block_bytes < 4096 || block_bytes > (uint64_t(1) << 30))
    fail("cache: block size must be 4 KiB..1 GiB");
  c.http = std::move(http);
  c.block = block_bytes;
  c.n_blocks = (c.http->size() + c.block - 1) / c.block;
  const std::string url = c.http->name();
  c.dir = (std::filesystem::path(root) /
           sha256_hex(std::as_bytes(std::span(url.data(), url.size()))).substr(0, 32))
              .string();
  std::error_code ec;
  std::filesystem::create_directories(c.dir, ec);
  if (ec) fail(c.dir, ": cannot create the cache folder: ", ec.message());

  // The entry is reused only when it describes the file the server has now.
  const nlohmann::json meta = {{"url", url},
                               {"size", c.http->size()},
                               {"etag", c.http->etag()},
                               {"last_modified", c.http->last_modified()},
                               {"block", c.block}};
  const std::string meta_path = c.dir + "/meta.json";
  bool same = false;
  {
    std::ifstream in(meta_path);
    if (in) {
      const nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
      same = !old.is_discarded() && old == meta;
    }
  }
  c.data = std::make_unique<Fd>(c.dir + "/data", O_RDWR | O_CREAT | O_CLOEXEC);
  c.sums = std::make_unique<Fd>(c.dir + "/sums", O_RDWR | O_CREAT | O_CLOEXEC);
  // Validators without a strong one (no ETag, no Last-Modified) cannot prove the file is the
  // same, so such an entry is never reused.
  const bool validated = !c.http->etag().empty() || !c.http->last_modified().empty();
  if (!same || !validated || c.sums->size() != c.n_blocks * kSum ||
      c.data->size() != c.http->size()) {
    c.sums->truncate(0);  // forget every block before the data is resized
    c.sums->truncate(c.n_blocks * kSum);
    c.data->truncate(c.http->size());
    std::ofstream out(meta_path, std::ios::trunc);
    out << meta.dump() << "\n";
    if (!out) fail(meta_path, ": cannot write");
  }
  c.state.assign(size_t(c.n_blocks), State::unknown);
}

CachedSource::~CachedSource() = default;

uint64_t CachedSource::size() const {
  return impl_->http->size();
}
std::string CachedSource::name() const {
  return impl_->http->name();
}
const std::string& CachedSource::entry_dir() const {
  return impl_->dir;
}

CachedSource::Stats CachedSource::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

void CachedSource::read(uint64_t offset, std::span<std::byte> out) {
  Impl& c = *impl_;
  if (offset > size() || out.size() > size() - offset)
    fail(name(), ": read of bytes ", offset, "..", offset + out.size(), " is past the end (",
         size(), " bytes)");
  std::vector<std::byte> buf;
  for (uint64_t done = 0; done < out.size();) {
    const uint64_t at = offset + done, b = at / c.block, in_block = at - b * c.block;
    const uint64_t n = std::min<uint64_t>(out.size() - done, c.block_size(b) - in_block);
    bool mine = false;
    {
      // One thread checks or fetches a block; others wanting it wait for that.
      std::unique_lock<std::mutex> lock(c.mutex);
      c.changed.wait(lock, [&] { return c.state[b] != State::fetching; });
      if (c.state[b] == State::unknown) {
        c.state[b] = State::fetching;
        mine = true;
      }
    }
    if (mine) {
      try {
        c.load_block(b, buf);
      } catch (...) {
        std::lock_guard<std::mutex> lock(c.mutex);
        c.state[b] = State::unknown;
        c.changed.notify_all();
        throw;
      }
      std::memcpy(out.data() + done, buf.data() + in_block, size_t(n));
      std::lock_guard<std::mutex> lock(c.mutex);
      c.state[b] = State::good;
      c.changed.notify_all();
    } else {
      c.data->pread_all(at, out.subspan(size_t(done), size_t(n)));
    }
    done += n;
  }
}

}  // namespace ml::gguf
