// The GGUF writer: header, metadata and tensor infos, then each tensor's data at an aligned
// offset. Tensors with a filler are produced chunk by chunk while writing, so a synthetic
// multi-GB model never sits in memory whole.
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <cerrno>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

class Bytes {
 public:
  // resize + memcpy rather than insert: GCC 12 at -O3 warns falsely on byte inserts.
  void raw(const void* p, size_t n) {
    size_t at = out.size();
    out.resize(at + n);
    if (n) std::memcpy(out.data() + at, p, n);
  }
  template <typename T>
  void scalar(T v) {
    raw(&v, sizeof(T));
  }
  void string(const std::string& s) {
    scalar<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  void value(const Value& v) {
    std::visit(
        [this](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            string(x);
          } else if constexpr (std::is_same_v<T, Array>) {
            scalar<uint32_t>(uint32_t(x.type));
            scalar<uint64_t>(x.items.size());
            for (const Value& item : x.items) {
              if (item.type() != x.type) {
                fail("array element of type ", value_type_name(item.type()),
                     " in an array of ", value_type_name(x.type));
              }
              value(item);
            }
          } else if constexpr (std::is_same_v<T, bool>) {
            scalar<uint8_t>(x ? 1 : 0);
          } else {
            scalar<T>(x);
          }
        },
        v.data);
  }
  std::vector<std::byte> out;
};

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

Writer::Writer(uint32_t version, uint64_t alignment) : version_(version), alignment_(alignment) {
  if (version != 2 && version != 3) fail("GGUF writer: version ", version, " (only 2 and 3)");
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail("GGUF writer: alignment ", alignment, " is not a power of two");
  }
  if (alignment != 32) metadata_.set("general.alignment", uint32_t(alignment));
}

TensorInfo Writer::info(std::string name, Type type, std::vector<uint64_t> shape) const {
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.shape = std::move(shape);
  for (const Pending& p : tensors_) {
    if (p.info.name == t.name) fail("GGUF writer: tensor ", t.name, " added twice");
  }
  uint64_t ne0 = t.shape.empty() ? 1 : t.shape[0];
  t.size = row_bytes(type, ne0) * t.n_rows();
  t.offset = data_size_;
  return t;
}

void Writer::add_tensor(std::string name, Type type, std::vector<uint64_t> shape,
                        std::vector<std::byte> data) {
  TensorInfo t = info(std::move(name), type, std::move(shape));
  if (data.size() != t.size) {
    fail("GGUF writer: tensor ", t.name, " needs ", t.size, " bytes, got ", data.size());
  }
  data_size_ = align_up(t.offset + t.size, alignment_);
  tensors_.push_back({std::move(t), std::move(data), {}});
}

void Writer::add_tensor(std::string name, Type type, std::vector<uint64_t> shape, Filler filler) {
  TensorInfo t = info(std::move(name), type, std::move(shape));
  data_size_ = align_up(t.offset + t.size, alignment_);
  tensors_.push_back({std::move(t), {}, std::move(filler)});
}

std::vector<std::byte> Writer::header() const {
  Bytes b;
  b.scalar<uint32_t>(0x46554747);
  b.scalar<uint32_t>(version_);
  b.scalar<uint64_t>(tensors_.size());
  b.scalar<uint64_t>(metadata_.size());
  for (const Metadata::Entry& e : metadata_.entries()) {
    b.string(e.key);
    b.scalar<uint32_t>(uint32_t(e.value.type()));
    b.value(e.value);
  }
  for (const Pending& t : tensors_) {
    b.string(t.info.name);
    b.scalar<uint32_t>(uint32_t(t.info.shape.size()));
    for (uint64_t ne : t.info.shape) b.scalar<uint64_t>(ne);
    b.scalar<uint32_t>(uint32_t(t.info.type));
    b.scalar<uint64_t>(t.info.offset);
  }
  b.out.resize(align_up(b.out.size(), alignment_));
  return std::move(b.out);
}

void Writer::emit(const std::function<void(std::span<const std::byte>)>& sink) const {
  sink(header());
  constexpr uint64_t kChunk = 8 << 20;
  std::vector<std::byte> chunk;
  for (const Pending& t : tensors_) {
    if (t.filler) {
      // The filler sees the whole tensor in one span only when it is small; large tensors
      // are generated a whole number of rows at a time.
      uint64_t row = t.info.row_size() ? t.info.row_size() : t.info.size;
      uint64_t rows_per_chunk = std::max<uint64_t>(1, kChunk / std::max<uint64_t>(row, 1));
      for (uint64_t off = 0; off < t.info.size; off += rows_per_chunk * row) {
        uint64_t len = std::min(rows_per_chunk * row, t.info.size - off);
        chunk.assign(len, std::byte{0});
        t.filler(off, chunk);
        sink(chunk);
      }
    } else {
      sink(t.data);
    }
    uint64_t written = t.info.offset + t.info.size;
    uint64_t padded = align_up(written, alignment_);
    if (padded > written) {
      chunk.assign(padded - written, std::byte{0});
      sink(chunk);
    }
  }
}

std::vector<std::byte> Writer::bytes() const {
  std::vector<std::byte> out;
  emit([&](std::span<const std::byte> s) {
    size_t at = out.size();
    out.resize(at + s.size());
    if (!s.empty()) std::memcpy(out.data() + at, s.data(), s.size());
  });
  return out;
}

void Writer::write(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail(path, ": cannot create: ", std::strerror(errno));
  try {
    emit([&](std::span<const std::byte> s) {
      if (!s.empty() && std::fwrite(s.data(), 1, s.size(), f) != s.size()) {
        fail(path, ": write failed: ", std::strerror(errno));
      }
    });
  } catch (...) {
    std::fclose(f);
    throw;
  }
  if (std::fclose(f) != 0) fail(path, ": write failed: ", std::strerror(errno));
}

}  // namespace ml::gguf
