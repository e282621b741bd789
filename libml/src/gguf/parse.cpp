// The GGUF parser. Every count and length read from the file is checked against the bytes
// that remain before anything is allocated for it, so a hostile header can cost at most
// memory in proportion to the file's real size.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = 1ull << 30;
constexpr uint64_t kMaxTensorName = 64;  // GGML_MAX_NAME, terminator included
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS

// Sequential reads from a Source. A memory-backed source is read in place; any other source
// (HTTP) is fetched in chunks that double from 64 KiB, so a header of a few MB costs a
// handful of range requests and the tensor data is never touched.
class Reader {
 public:
  explicit Reader(Source& source) : source_(source), size_(source.size()) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  // Points at n bytes at the cursor and advances past them.
  const std::byte* take(uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail(source_.name(), ": truncated at byte ", pos_, " reading ", what, " (", n,
           " bytes needed, ", remaining(), " left)");
    }
    const std::byte* p = nullptr;
    if (auto v = source_.view(pos_, n); v.size() == n) {
      p = v.data();
    } else {
      p = buffered(n);
    }
    pos_ += n;
    return p;
  }

  template <typename T>
  T scalar(std::string_view what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }

  std::string string(uint64_t max_len, std::string_view what) {
    uint64_t at = pos_;
    uint64_t len = scalar<uint64_t>(what);
    if (len > max_len || len > remaining()) {
      fail(source_.name(), ": ", what, " at byte ", at, " claims ", len, " bytes, but ",
           remaining(), " bytes are left in the file (limit ", max_len, ")");
    }
    if (len == 0) return {};
    const std::byte* p = take(len, what);
    return std::string(reinterpret_cast<const char*>(p), len);
  }

 private:
  const std::byte* buffered(uint64_t n) {
    if (pos_ < buf_start_ || pos_ + n > buf_start_ + buf_.size()) {
      chunk_ = std::max<uint64_t>(chunk_ * 2, 64 << 10);
      chunk_ = std::min<uint64_t>(chunk_, 16 << 20);
      uint64_t len = std::min(std::max(chunk_, n), remaining());
      buf_.resize(len);
      source_.read(pos_, buf_);
      buf_start_ = pos_;
    }
    return buf_.data() + (pos_ - buf_start_);
  }

  Source& source_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::vector<std::byte> buf_;
  uint64_t buf_start_ = 0;
  uint64_t chunk_ = 32 << 10;
};

// Smallest encoding of one value of each type: a bound on how many can fit in what is left.
uint64_t min_value_bytes(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;  // the length
    case ValueType::ARRAY: return 12;  // element type + count
  }
  return 1;
}

class Parser {
 public:
  Parser(Source& source, const ParseLimits& limits) : in_(source), src_(source), lim_(limits) {}

  File run() {
    File f;
    f.file_size = src_.size();
    uint32_t magic = in_.scalar<uint32_t>("the magic");
    if (magic != kMagic) {
      fail(src_.name(), ": not a GGUF file (magic ", hex(magic), ", expected \"GGUF\")");
    }
    f.version = in_.scalar<uint32_t>("the version");
    if (f.version == 1) fail(src_.name(), ": GGUF version 1 is not supported (only 2 and 3)");
    if ((f.version & 0xffff) == 0 && f.version != 0) {
      fail(src_.name(), ": big-endian GGUF (version field ", hex(f.version),
           ") is not supported");
    }
    if (f.version != 2 && f.version != 3) {
      fail(src_.name(), ": unsupported GGUF version ", f.version, " (only 2 and 3)");
    }
    uint64_t n_tensors = in_.scalar<uint64_t>("the tensor count");
    uint64_t n_kv = in_.scalar<uint64_t>("the metadata count");
    // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 4 + 8.
    check_count(n_kv, 13, "metadata entries", 16);
    check_count(n_tensors, 24, "tensors", 16);

    for (uint64_t i = 0; i < n_kv; ++i) read_kv(f, i);
    f.alignment = alignment(f.metadata);
    read_tensor_infos(f, n_tensors);
    f.header_bytes = in_.pos();
    f.data_offset = align_up(in_.pos(), f.alignment);
    check_tensors(f);
    return f;
  }

 private:
  static std::string hex(uint32_t v) {
    static const char* digits = "0123456789abcdef";
    std::string s = "0x";
    for (int shift = 28; shift >= 0; shift -= 4) s += digits[(v >> shift) & 15];
    return s;
  }

  uint64_t align_up(uint64_t v, uint64_t a) {
    if (v > std::numeric_limits<uint64_t>::max() - a) fail(src_.name(), ": offset overflow");
    return (v + a - 1) / a * a;
  }

  void check_count(uint64_t count, uint64_t min_bytes, std::string_view what, uint64_t at) {
    if (count > in_.remaining() / min_bytes) {
      fail(src_.name(), ": the header at byte ", at, " claims ", count, " ", what,
           ", more than the ", in_.remaining(), " remaining bytes can hold");
    }
  }

  void read_kv(File& f, uint64_t index) {
    uint64_t at = in_.pos();
    std::string key = in_.string(lim_.max_string, cat("the key of metadata entry ", index));
    if (key.empty()) fail(src_.name(), ": metadata entry ", index, " at byte ", at, " has an empty key");
    if (f.metadata.has(key)) fail(src_.name(), ": metadata key ", key, " appears twice (byte ", at, ")");
    uint32_t raw = in_.scalar<uint32_t>(cat("the type of metadata key ", key));
    f.metadata.set(key, value(raw, key, 0));
  }

  ValueType value_type(uint32_t raw, std::string_view key) {
    if (raw > uint32_t(ValueType::FLOAT64)) {
      fail(src_.name(), ": metadata key ", key, " has unknown value type ", raw, " at byte ",
           in_.pos() - 4);
    }
    return ValueType(raw);
  }

  Value value(uint32_t raw, const std::string& key, uint32_t depth) {
    ValueType t = value_type(raw, key);
    switch (t) {
      case ValueType::UINT8: return in_.scalar<uint8_t>(key);
      case ValueType::INT8: return in_.scalar<int8_t>(key);
      case ValueType::UINT16: return in_.scalar<uint16_t>(key);
      case ValueType::INT16: return in_.scalar<int16_t>(key);
      case ValueType::UINT32: return in_.scalar<uint32_t>(key);
      case ValueType::INT32: return in_.scalar<int32_t>(key);
      case ValueType::FLOAT32: return in_.scalar<float>(key);
      case ValueType::BOOL: return in_.scalar<uint8_t>(key) != 0;
      case ValueType::STRING: return in_.string(lim_.max_string, cat("metadata key ", key));
      case ValueType::UINT64: return in_.scalar<uint64_t>(key);
      case ValueType::INT64: return in_.scalar<int64_t>(key);
      case ValueType::FLOAT64: return in_.scalar<double>(key);
      case ValueType::ARRAY: return array(key, depth);
    }
    fail("unreachable");
  }

  Value array(const std::string& key, uint32_t depth) {
    if (depth >= lim_.max_depth) {
      fail(src_.name(), ": metadata key ", key, " nests arrays deeper than ", lim_.max_depth,
           " levels");
    }
    uint64_t at = in_.pos();
    Array a;
    a.type = value_type(in_.scalar<uint32_t>(key), key);
    uint64_t count = in_.scalar<uint64_t>(key);
    if (count > lim_.max_array || count > in_.remaining() / min_value_bytes(a.type)) {
      fail(src_.name(), ": metadata key ", key, " at byte ", at, " claims an array of ", count,
           " ", value_type_name(a.type), " values, more than the ", in_.remaining(),
           " remaining bytes can hold");
    }
    a.items.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      if (a.type == ValueType::ARRAY) {
        // A nested array carries its own element type: the outer one says only "ARRAY".
        a.items.push_back(array(key, depth + 1));
      } else {
        a.items.push_back(value(uint32_t(a.type), key, depth + 1));
      }
    }
    return Value(std::move(a));
  }

  uint64_t alignment(const Metadata& m) {
    const Value* v = m.find("general.alignment");
    if (!v) return kDefaultAlignment;
    if (!v->is_integer()) {
      fail(src_.name(), ": general.alignment is ", value_type_name(v->type()), ", not an integer");
    }
    int64_t a = v->to_int("general.alignment");
    if (a <= 0 || uint64_t(a) > kMaxAlignment || (a & (a - 1)) != 0) {
      fail(src_.name(), ": general.alignment = ", a, " is not a power of two up to ", kMaxAlignment);
    }
    return uint64_t(a);
  }

  void read_tensor_infos(File& f, uint64_t n) {
    f.tensors.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t at = in_.pos();
      TensorInfo t;
      t.name = in_.string(kMaxTensorName - 1, cat("the name of tensor ", i));
      if (t.name.empty()) fail(src_.name(), ": tensor ", i, " at byte ", at, " has an empty name");
      std::string what = cat("tensor ", t.name);
      uint32_t n_dims = in_.scalar<uint32_t>(what);
      if (n_dims > std::min(kMaxDims, lim_.max_dims)) {
        fail(src_.name(), ": ", what, " at byte ", at, " has ", n_dims, " dimensions (at most ",
             kMaxDims, ")");
      }
      uint64_t n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne = in_.scalar<uint64_t>(what);
        if (ne > uint64_t(std::numeric_limits<int64_t>::max()) ||
            (ne != 0 && n_elements > uint64_t(std::numeric_limits<int64_t>::max()) / ne)) {
          fail(src_.name(), ": ", what, " has a shape whose element count overflows (dimension ",
               d, " = ", ne, ")");
        }
        n_elements *= ne;
        t.shape.push_back(ne);
      }
      uint32_t raw_type = in_.scalar<uint32_t>(what);
      const TypeTraits* traits = find_type(raw_type);
      if (!traits) fail(src_.name(), ": ", what, " has unknown ggml type ", raw_type);
      t.type = traits->type;
      uint64_t ne0 = t.shape.empty() ? 1 : t.shape[0];
      if (ne0 % traits->block_size != 0) {
        fail(src_.name(), ": ", what, " has rows of ", ne0, " values, not a multiple of the ",
             traits->name, " block size ", traits->block_size);
      }
      // Bytes = blocks × block bytes; n_elements < 2^63 and block bytes ≤ 292 keep this in range
      // only when checked.
      uint64_t blocks = n_elements / traits->block_size;
      if (blocks > std::numeric_limits<uint64_t>::max() / traits->type_size) {
        fail(src_.name(), ": ", what, " byte size overflows");
      }
      t.size = blocks * traits->type_size;
      t.offset = in_.scalar<uint64_t>(what);  // relative to the data section for now
      if (t.offset % f.alignment != 0) {
        fail(src_.name(), ": ", what, " has data offset ", t.offset,
             ", not a multiple of the alignment ", f.alignment);
      }
      for (const TensorInfo& other : f.tensors) {
        if (other.name == t.name) fail(src_.name(), ": tensor name ", t.name, " appears twice");
      }
      f.tensors.push_back(std::move(t));
    }
  }

  // Every tensor lies inside the file and no two overlap.
  void check_tensors(File& f) {
    for (TensorInfo& t : f.tensors) {
      uint64_t relative = t.offset;
      if (relative > f.file_size || f.data_offset > f.file_size - relative ||
          t.size > f.file_size - relative - f.data_offset) {
        fail(src_.name(), ": tensor ", t.name, ": offset ", f.data_offset, " + ", relative,
             " + size ", t.size, " is past the end of the file (", f.file_size, " bytes)");
      }
      t.offset = f.data_offset + relative;
    }
    std::vector<const TensorInfo*> order;
    order.reserve(f.tensors.size());
    for (const TensorInfo& t : f.tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const TensorInfo& prev = *order[i - 1];
      if (prev.offset + prev.size > order[i]->offset) {
        fail(src_.name(), ": tensors ", prev.name, " (bytes ", prev.offset, "..",
             prev.offset + prev.size, ") and ", order[i]->name, " (from byte ", order[i]->offset,
             ") overlap");
      }
    }
  }

  Reader in_;
  Source& src_;
  ParseLimits lim_;
};

}  // namespace

File parse(Source& source, const ParseLimits& limits) { return Parser(source, limits).run(); }

File parse_file(const std::string& path_or_url) {
  std::unique_ptr<Source> source = open_source(path_or_url);
  return parse(*source);
}

void read_tensor(Source& source, const TensorInfo& tensor, std::span<std::byte> out,
                 uint64_t begin) {
  if (begin > tensor.size || out.size() > tensor.size - begin) {
    fail("tensor ", tensor.name, ": bytes ", begin, "..", begin + out.size(),
         " are outside its ", tensor.size, " bytes");
  }
  source.read(tensor.offset + begin, out);
}

std::vector<std::byte> read_tensor(Source& source, const TensorInfo& tensor) {
  std::vector<std::byte> out(tensor.size);
  read_tensor(source, tensor, out);
  return out;
}

}  // namespace ml::gguf
