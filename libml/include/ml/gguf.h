#pragma once
// The GGUF format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): ggml types,
// metadata values, tensor infos, the parser, byte sources and a writer.
//
// File layout (all little-endian):
//   magic "GGUF" | u32 version (2 or 3) | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 value_type | value }
//   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | data section
// A string is u64 length + bytes (no terminator); an array is u32 element type + u64 count +
// elements. Tensor offsets are relative to the data section and aligned.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "ml/error.h"

namespace ml::gguf {

// ---------------------------------------------------------------------------------------
// ggml types
// ---------------------------------------------------------------------------------------

// ggml's enum ggml_type; gaps are types ggml removed (4, 5, 31-33, 36-38).
enum class Type : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

struct TypeTraits {
  Type type;
  const char* name;     // as ggml spells it: "Q4_K", "MXFP4"
  uint32_t block_size;  // values per block
  uint32_t type_size;   // bytes per block
};

// nullptr for a number that is not a ggml type this build knows.
const TypeTraits* find_type(uint32_t raw);
const TypeTraits& traits(Type type);
const char* type_name(Type type);
std::optional<Type> type_from_name(std::string_view name);
const std::vector<TypeTraits>& all_types();

// Bytes of a row of n values; throws when n is not a multiple of the block size.
uint64_t row_bytes(Type type, uint64_t n);

// ---------------------------------------------------------------------------------------
// metadata values
// ---------------------------------------------------------------------------------------

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* value_type_name(ValueType type);

struct Value;
struct Array {
  ValueType type = ValueType::UINT8;  // element type; ARRAY for nested arrays
  std::vector<Value> items;
};

// One metadata value. The variant's alternatives are in ValueType order, so
// `ValueType(v.data.index())` is its GGUF type.
struct Value {
  std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
               Array, uint64_t, int64_t, double>
      data;

  Value() = default;
  template <typename T>
  requires(!std::is_same_v<std::decay_t<T>, Value>) Value(T v) : data(std::move(v)) {}

  ValueType type() const { return ValueType(data.index()); }
  bool is_integer() const;
  bool is_number() const;  // integer or float
  // Conversions that throw ml::Error (naming `what`) when the value does not fit.
  uint64_t to_uint(std::string_view what) const;
  int64_t to_int(std::string_view what) const;
  double to_double(std::string_view what) const;
};

// Key → value, in file order.
class Metadata {
 public:
  struct Entry {
    std::string key;
    Value value;
  };

  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  void set(std::string key, Value value);  // replaces an existing key

  // Typed access: throws ml::Error naming the key when it is missing or of another type.
  const Value& at(std::string_view key) const;
  std::string string(std::string_view key) const;
  uint64_t uint(std::string_view key) const;  // any non-negative integer type
  int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;  // any integer or float type
  bool boolean(std::string_view key) const;
  const Array& array(std::string_view key) const;
  std::vector<std::string> strings(std::string_view key) const;
  std::vector<float> floats(std::string_view key) const;
  std::vector<int64_t> integers(std::string_view key) const;

  // The same with a default for a missing key (a present key of the wrong type still throws).
  std::string string_or(std::string_view key, std::string fallback) const;
  uint64_t uint_or(std::string_view key, uint64_t fallback) const;
  double number_or(std::string_view key, double fallback) const;
  bool boolean_or(std::string_view key, bool fallback) const;

 private:
  std::vector<Entry> entries_;
};

// ---------------------------------------------------------------------------------------
// tensors and files
// ---------------------------------------------------------------------------------------

struct TensorInfo {
  std::string name;
  Type type = Type::F32;
  std::vector<uint64_t> shape;  // ggml order: ne[0] (innermost, the row length) first
  uint64_t offset = 0;          // absolute byte offset in the file
  uint64_t size = 0;            // bytes

  uint64_t n_elements() const;
  uint64_t n_rows() const;  // product of shape[1..]
  uint64_t row_size() const { return n_rows() ? size / n_rows() : 0; }
};

struct File {
  uint32_t version = 3;
  uint64_t alignment = 32;   // general.alignment, default 32
  uint64_t data_offset = 0;  // absolute offset of the data section
  uint64_t file_size = 0;
  uint64_t header_bytes = 0;  // bytes of header + metadata + tensor infos, before padding
  Metadata metadata;
  std::vector<TensorInfo> tensors;

  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws naming the tensor
  std::string architecture() const { return metadata.string_or("general.architecture", ""); }
};

// ---------------------------------------------------------------------------------------
// byte sources
// ---------------------------------------------------------------------------------------

// Where a GGUF's bytes come from. read() either fills all of `out` or throws ml::Error.
class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  virtual void read(uint64_t offset, std::span<std::byte> out) = 0;
  virtual std::string name() const = 0;  // path or URL, for messages
  // Zero-copy bytes when the source lives in memory (mmap, memory); empty otherwise.
  virtual std::span<const std::byte> view(uint64_t /*offset*/, uint64_t /*len*/) { return {}; }
};

// A read-only memory-mapped file.
class FileSource final : public Source {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  uint64_t size() const override { return size_; }
  void read(uint64_t offset, std::span<std::byte> out) override;
  std::string name() const override { return path_; }
  std::span<const std::byte> view(uint64_t offset, uint64_t len) override;

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

// Bytes held in memory (tests, the writer's output).
class MemorySource final : public Source {
 public:
  explicit MemorySource(std::vector<std::byte> bytes, std::string name = "<memory>");
  uint64_t size() const override { return bytes_.size(); }
  void read(uint64_t offset, std::span<std::byte> out) override;
  std::string name() const override { return name_; }
  std::span<const std::byte> view(uint64_t offset, uint64_t len) override;

 private:
  std::vector<std::byte> bytes_;
  std::string name_;
};

struct HttpOptions {
  int retries = 4;           // attempts after the first for transient failures
  int retry_delay_ms = 200;  // doubled after each attempt
  long connect_timeout_s = 10;
  long low_speed_timeout_s = 30;  // abort when under 1 byte/s for this long
  bool verify_tls = true;
};

// HTTP(S) ranges through libcurl. The constructor asks the server for the size, checks that
// it serves byte ranges (Accept-Ranges / a 206 probe) and records ETag and Last-Modified;
// every read checks status 206, Content-Range and the body length, retries transient
// failures, and fails when the file changed (validators or length) since it was opened.
class HttpSource final : public Source {
 public:
  explicit HttpSource(std::string url, HttpOptions options = {});
  ~HttpSource() override;
  HttpSource(const HttpSource&) = delete;
  HttpSource& operator=(const HttpSource&) = delete;

  uint64_t size() const override { return size_; }
  void read(uint64_t offset, std::span<std::byte> out) override;
  std::string name() const override { return url_; }
  const std::string& etag() const { return etag_; }
  const std::string& last_modified() const { return last_modified_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string url_;
  HttpOptions options_;
  uint64_t size_ = 0;
  std::string etag_, last_modified_;
};

// Raised by a source that gave up on transient failures (dropped connections, timeouts, 5xx)
// after its own retries: the same range may work later. Every other failure is a plain Error.
class SourceDropped : public Error {
 public:
  using Error::Error;
};

// A persistent on-disk cache of a URL's bytes (--cache DIR). An entry is a folder named by the
// SHA-256 of the URL holding `meta.json` (url, size, ETag, Last-Modified), `data` (the file,
// sparse until complete) and `sums` (a SHA-256 per block, all zeros for a block not yet
// cached). A block is fetched whole from the server the first time any byte of it is read;
// a cached block is hashed once per process before its bytes are used, and refetched when
// its sum does not match (a torn write, a corrupt disk). When the server's validators or size
// differ from the entry's, the entry is emptied: the file changed.
class CachedSource final : public Source {
 public:
  CachedSource(std::unique_ptr<HttpSource> http, const std::string& dir,
               uint64_t block_bytes = uint64_t(16) << 20);
  ~CachedSource() override;
  CachedSource(const CachedSource&) = delete;
  CachedSource& operator=(const CachedSource&) = delete;

  uint64_t size() const override;
  void read(uint64_t offset, std::span<std::byte> out) override;
  std::string name() const override;

  struct Stats {
    uint64_t hit_bytes = 0;      // block bytes read from the cache
    uint64_t fetched_bytes = 0;  // block bytes fetched from the server
    int refetched_blocks = 0;    // cached blocks whose sum did not match
  };
  Stats stats() const;
  const std::string& entry_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

bool is_url(std::string_view path_or_url);  // http:// or https://
// FileSource for a path, HttpSource for a URL; a URL goes through a CachedSource in
// `cache_dir` when that is not empty.
std::unique_ptr<Source> open_source(const std::string& path_or_url,
                                    const std::string& cache_dir = {});

// ---------------------------------------------------------------------------------------
// fetching many ranges (the weight loader)
// ---------------------------------------------------------------------------------------

struct FetchRange {
  uint64_t offset = 0, size = 0;  // absolute bytes of the source
};

struct FetchOptions {
  int n_parallel = 4;                       // range requests in flight
  uint64_t piece_bytes = uint64_t(8) << 20;  // bytes per request; longer ranges are split
  int retries = 3;           // re-requests of a piece after its source gave up (SourceDropped)
  int retry_delay_ms = 500;  // doubled after each
};

// Called on the fetching thread, in range order and byte order within a range, with the next
// `bytes` of range `index` starting `begin` bytes into it. The span is valid during the call.
using Deliver =
    std::function<void(size_t index, uint64_t begin, std::span<const std::byte> bytes)>;

struct FetchStats {
  uint64_t bytes = 0;
  uint64_t pieces = 0;
  int retried = 0;  // pieces requested again after SourceDropped
};

// Reads `ranges` with up to n_parallel pieces in flight (worker threads, each with its own
// connection for an HttpSource) and hands them over in order, so host memory holds at most
// 2 × n_parallel pieces. A piece whose source gave up is requested again (only that piece:
// everything delivered before it stays delivered). A source with zero-copy views (mmap) is
// delivered straight from its mapping. Throws the first failure that is not retried away.
FetchStats fetch(Source& source, std::span<const FetchRange> ranges, const FetchOptions& options,
                 const Deliver& deliver);

// ---------------------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------------------

struct ParseLimits {
  uint64_t max_string = 64ull << 20;  // one string's bytes
  uint64_t max_array = 1ull << 28;    // one array's elements
  uint32_t max_depth = 8;             // nested arrays
  uint32_t max_dims = 8;              // GGML_MAX_DIMS is 4; a little slack for the future
};

// Reads header, metadata and tensor infos from any source, fetching only the bytes they
// take (in growing chunks), and validates everything against the source's size: offsets,
// alignment, tensor bounds and overlaps, types, shapes. Throws ml::Error naming the byte
// offset, key or tensor at fault.
File parse(Source& source, const ParseLimits& limits = {});
File parse_file(const std::string& path_or_url);

// Reads a tensor's bytes (whole, or bytes [begin, begin + out.size()) of it).
void read_tensor(Source& source, const TensorInfo& tensor, std::span<std::byte> out,
                 uint64_t begin = 0);
std::vector<std::byte> read_tensor(Source& source, const TensorInfo& tensor);

// ---------------------------------------------------------------------------------------
// describing (gguf_dump)
// ---------------------------------------------------------------------------------------

struct DescribeOptions {
  bool metadata = true;
  bool tensors = true;
  int64_t array_limit = 8;  // array elements shown per value; < 0 for all
};

// A readable summary: version, alignment, architecture, counts, metadata (long arrays
// abbreviated), tensors with type, shape and size, and bytes per type.
std::string describe(const File& file, const DescribeOptions& options = {});
// The complete document: {"version", "alignment", "data_offset", "metadata": {key: value},
// "tensors": [{"name", "type", "shape", "offset", "size"}]}. Arrays are complete unless
// array_limit >= 0. Invalid UTF-8 in strings is replaced by U+FFFD.
std::string to_json(const File& file, int64_t array_limit = -1, bool pretty = false);

// ---------------------------------------------------------------------------------------
// writing
// ---------------------------------------------------------------------------------------

// Builds a GGUF file. Tensor data is either held (`add_tensor` with bytes) or produced on
// demand while writing (`add_tensor` with a filler), so a multi-GB file never sits in
// memory whole.
class Writer {
 public:
  // Fills bytes [offset, offset + out.size()) of one tensor; called with whole rows.
  using Filler = std::function<void(uint64_t offset, std::span<std::byte> out)>;

  explicit Writer(uint32_t version = 3, uint64_t alignment = 32);
  void set(std::string key, Value value) { metadata_.set(std::move(key), std::move(value)); }
  Metadata& metadata() { return metadata_; }
  void add_tensor(std::string name, Type type, std::vector<uint64_t> shape,
                  std::vector<std::byte> data);
  void add_tensor(std::string name, Type type, std::vector<uint64_t> shape, Filler filler);

  std::vector<std::byte> bytes() const;  // the whole file in memory
  void write(const std::string& path) const;
  std::vector<std::byte> header() const;  // header, metadata, tensor infos, padding
  uint64_t file_size() const { return header().size() + data_size_; }

 private:
  struct Pending {
    TensorInfo info;  // offset relative to the data section
    std::vector<std::byte> data;
    Filler filler;
  };
  TensorInfo info(std::string name, Type type, std::vector<uint64_t> shape) const;
  void emit(const std::function<void(std::span<const std::byte>)>& sink) const;

  uint32_t version_;
  uint64_t alignment_;
  Metadata metadata_;
  std::vector<Pending> tensors_;
  uint64_t data_size_ = 0;
};

// ---------------------------------------------------------------------------------------
// digests (gguf_range)
// ---------------------------------------------------------------------------------------

std::string sha256_hex(std::span<const std::byte> bytes);  // 64 lowercase hex digits

// SHA-256 of data that arrives in chunks (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::byte> bytes);
  std::string hex();  // finishes the digest; call once

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct RangeDigest {
  uint64_t bytes = 0;
  double seconds = 0;  // wall time of reading and hashing
  std::string sha256;
};

// Reads bytes [offset, offset + len) of a source `chunk` bytes at a time (memory stays at one
// chunk however long the range) and hashes them. Throws when the range is past the end.
RangeDigest digest_range(Source& source, uint64_t offset, uint64_t len,
                         uint64_t chunk = uint64_t(16) << 20);

}  // namespace ml::gguf
