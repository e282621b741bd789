// Sources that hold the whole file in memory: a read-only mmap of a path, and a byte vector.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

void check_range(const Source& s, uint64_t offset, uint64_t len) {
  if (offset > s.size() || len > s.size() - offset) {
    fail(s.name(), ": read of bytes ", offset, "..", offset + len, " is past the end (",
         s.size(), " bytes)");
  }
}

}  // namespace

FileSource::FileSource(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  size_ = uint64_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(path, ": cannot map ", size_, " bytes: ", std::strerror(err));
    }
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps the file
}

FileSource::~FileSource() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

void FileSource::read(uint64_t offset, std::span<std::byte> out) {
  check_range(*this, offset, out.size());
  if (!out.empty()) std::memcpy(out.data(), data_ + offset, out.size());
}

std::span<const std::byte> FileSource::view(uint64_t offset, uint64_t len) {
  check_range(*this, offset, len);
  return {data_ + offset, len};
}

MemorySource::MemorySource(std::vector<std::byte> bytes, std::string name)
    : bytes_(std::move(bytes)), name_(std::move(name)) {}

void MemorySource::read(uint64_t offset, std::span<std::byte> out) {
  check_range(*this, offset, out.size());
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
}

std::span<const std::byte> MemorySource::view(uint64_t offset, uint64_t len) {
  check_range(*this, offset, len);
  return {bytes_.data() + offset, len};
}

}  // namespace ml::gguf

namespace ml::gguf {

bool is_url(std::string_view p) { return p.starts_with("http://") || p.starts_with("https://"); }

std::unique_ptr<Source> open_source(const std::string& path_or_url, const std::string& cache_dir) {
  if (!is_url(path_or_url)) return std::make_unique<FileSource>(path_or_url);
  auto http = std::make_unique<HttpSource>(path_or_url);
  if (cache_dir.empty()) return http;
  return std::make_unique<CachedSource>(std::move(http), cache_dir);
}

}  // namespace ml::gguf
