// The gguf module: writer/parser round trips, every shared file, and hostile input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "ml/gguf.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ml::gguf;

namespace {

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(std::byte(b));
  return out;
}

// A small file with every value type, a nested array and three tensors of different types.
Writer sample_writer() {
  Writer w;
  w.set("general.architecture", std::string("llama"));
  w.set("u8", uint8_t(200));
  w.set("i8", int8_t(-100));
  w.set("u16", uint16_t(60000));
  w.set("i16", int16_t(-30000));
  w.set("u32", uint32_t(4000000000u));
  w.set("i32", int32_t(-2000000000));
  w.set("f32", 1.5f);
  w.set("bool", true);
  w.set("str", std::string("héllo \xe2\x96\x81 world"));
  w.set("u64", uint64_t(1) << 60);
  w.set("i64", int64_t(-1) << 60);
  w.set("f64", 2.25);
  Array strings{ValueType::STRING, {std::string("a"), std::string(""), std::string("ccc")}};
  w.set("strings", strings);
  Array floats{ValueType::FLOAT32, {0.5f, -1.0f, 3.0f}};
  w.set("floats", floats);
  Array inner1{ValueType::INT32, {int32_t(1), int32_t(2)}};
  Array inner2{ValueType::INT32, {int32_t(3)}};
  w.set("nested", Array{ValueType::ARRAY, {inner1, inner2}});
  w.set("empty", Array{ValueType::UINT8, {}});
  std::vector<std::byte> f32(4 * 8);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = std::byte(i);
  w.add_tensor("a.weight", Type::F32, {8}, f32);
  w.add_tensor("b.weight", Type::Q8_0, {64, 2}, std::vector<std::byte>(34 * 4, std::byte{7}));
  w.add_tensor("c.weight", Type::Q4_K, {256, 1, 1}, std::vector<std::byte>(144, std::byte{9}));
  return w;
}

File parse_bytes(std::vector<std::byte> bytes) {
  MemorySource src(std::move(bytes), "test.gguf");
  return parse(src);
}

// Builds raw (possibly lying) GGUF bytes field by field.
struct Raw {
  std::vector<std::byte> b;
  template <typename T>
  Raw& put(T v) {
    size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Raw& str(const std::string& s) {
    put<uint64_t>(s.size());
    for (char c : s) b.push_back(std::byte(c));
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put<uint32_t>(0x46554747).put<uint32_t>(version).put(n_tensors).put(n_kv);
  }
  Raw& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t off) {
    str(name).put<uint32_t>(uint32_t(ne.size()));
    for (uint64_t d : ne) put(d);
    return put(type).put(off);
  }
  Raw& pad(size_t a = 32) {
    while (b.size() % a) b.push_back(std::byte{0});
    return *this;
  }
  Raw& data(size_t n) {
    b.resize(b.size() + n, std::byte{1});
    return *this;
  }
};

void expect_error(std::vector<std::byte> bytes, const std::string& needle) {
  try {
    parse_bytes(std::move(bytes));
    ADD_FAILURE() << "parsed without error; expected: " << needle;
  } catch (const ml::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
  }
}

}  // namespace

TEST(GgufTypes, TableMatchesGgml) {
  EXPECT_EQ(traits(Type::Q4_K).type_size, 144u);
  EXPECT_EQ(traits(Type::Q6_K).type_size, 210u);
  EXPECT_EQ(traits(Type::MXFP4).block_size, 32u);
  EXPECT_EQ(traits(Type::MXFP4).type_size, 17u);
  EXPECT_EQ(traits(Type::IQ4_XS).type_size, 136u);
  EXPECT_EQ(traits(Type::Q8_1).type_size, 36u);
  EXPECT_EQ(find_type(4), nullptr);   // Q4_2, removed
  EXPECT_EQ(find_type(31), nullptr);  // Q4_0_4_4, removed
  EXPECT_EQ(find_type(1000), nullptr);
  EXPECT_EQ(type_from_name("BF16"), Type::BF16);
  EXPECT_EQ(row_bytes(Type::Q4_K, 2816), 11u * 144);
  EXPECT_EQ(row_bytes(Type::MXFP4, 2880), 90u * 17);
  EXPECT_THROW(row_bytes(Type::Q4_K, 2880), ml::Error);
}

TEST(GgufRoundTrip, EveryValueType) {
  File f = parse_bytes(sample_writer().bytes());
  const Metadata& m = f.metadata;
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(m.string("general.architecture"), "llama");
  EXPECT_EQ(std::get<uint8_t>(m.at("u8").data), 200);
  EXPECT_EQ(std::get<int8_t>(m.at("i8").data), -100);
  EXPECT_EQ(std::get<uint16_t>(m.at("u16").data), 60000);
  EXPECT_EQ(std::get<int16_t>(m.at("i16").data), -30000);
  EXPECT_EQ(m.uint("u32"), 4000000000u);
  EXPECT_EQ(m.integer("i32"), -2000000000);
  EXPECT_EQ(m.number("f32"), 1.5);
  EXPECT_TRUE(m.boolean("bool"));
  EXPECT_EQ(m.string("str"), "héllo \xe2\x96\x81 world");
  EXPECT_EQ(m.uint("u64"), uint64_t(1) << 60);
  EXPECT_EQ(m.integer("i64"), int64_t(-1) << 60);
  EXPECT_EQ(m.number("f64"), 2.25);
  EXPECT_EQ(m.strings("strings"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(m.floats("floats"), (std::vector<float>{0.5f, -1.0f, 3.0f}));
  const Array& nested = m.array("nested");
  ASSERT_EQ(nested.type, ValueType::ARRAY);
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(std::get<Array>(nested.items[0].data).items.size(), 2u);
  EXPECT_EQ(std::get<int32_t>(std::get<Array>(nested.items[1].data).items[0].data), 3);
  EXPECT_TRUE(m.array("empty").items.empty());
  // Entries keep file order.
  EXPECT_EQ(m.entries().front().key, "general.architecture");
  EXPECT_EQ(m.entries().back().key, "empty");

  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[1].name, "b.weight");
  EXPECT_EQ(f.tensors[1].type, Type::Q8_0);
  EXPECT_EQ(f.tensors[1].shape, (std::vector<uint64_t>{64, 2}));
  EXPECT_EQ(f.tensors[1].size, 4u * 34);
  EXPECT_EQ(f.tensors[2].n_rows(), 1u);
  for (const TensorInfo& t : f.tensors) EXPECT_EQ(t.offset % 32, 0u);
}

TEST(GgufRoundTrip, TensorBytesAndV2AndAlignment) {
  Writer w(2, 64);
  std::vector<std::byte> data(4 * 5);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(i * 3);
  w.add_tensor("x", Type::F32, {5}, data);
  w.add_tensor("y", Type::F16, {3}, [](uint64_t off, std::span<std::byte> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::byte(off + i + 100);
  });
  MemorySource src(w.bytes());
  File f = parse(src);
  EXPECT_EQ(f.version, 2u);
  EXPECT_EQ(f.alignment, 64u);
  EXPECT_EQ(f.data_offset % 64, 0u);
  EXPECT_EQ(read_tensor(src, f.tensor("x")), data);
  EXPECT_EQ(read_tensor(src, f.tensor("y")), bytes_of({100, 101, 102, 103, 104, 105}));
  std::vector<std::byte> part(2);
  read_tensor(src, f.tensor("x"), part, 3);
  EXPECT_EQ(part, bytes_of({9, 12}));
  EXPECT_THROW(read_tensor(src, f.tensor("x"), part, 19), ml::Error);
  EXPECT_THROW(f.tensor("missing"), ml::Error);
}

TEST(GgufRoundTrip, WriterRejectsWrongSizes) {
  Writer w;
  EXPECT_THROW(w.add_tensor("x", Type::F32, {5}, std::vector<std::byte>(19)), ml::Error);
  EXPECT_THROW(w.add_tensor("q", Type::Q4_K, {100}, std::vector<std::byte>(144)), ml::Error);
  w.add_tensor("x", Type::F32, {5}, std::vector<std::byte>(20));
  EXPECT_THROW(w.add_tensor("x", Type::F32, {5}, std::vector<std::byte>(20)), ml::Error);
}

TEST(GgufMetadata, TypedAccessErrorsNameTheKey) {
  File f = parse_bytes(sample_writer().bytes());
  try {
    f.metadata.string("u32");
    FAIL();
  } catch (const ml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("u32"), std::string::npos);
  }
  EXPECT_THROW(f.metadata.uint("i32"), ml::Error);  // negative
  EXPECT_THROW(f.metadata.uint("missing.key"), ml::Error);
  EXPECT_EQ(f.metadata.uint_or("missing.key", 7), 7u);
  EXPECT_THROW(f.metadata.uint_or("str", 7), ml::Error);  // present, wrong type
  EXPECT_THROW(f.metadata.integers("floats"), ml::Error);  // floats are not integers
}

// Every GGUF in ../shared parses, and its tensors tile the data section: each starts at the
// aligned end of the one before, and the last ends within the file.
TEST(GgufShared, EveryFileParsesAndTensorsTileTheData) {
  std::vector<fs::path> files;
  for (const auto& dir : {"models", "quant"}) {
    for (const auto& e : fs::directory_iterator(ml::test::shared(dir))) {
      if (e.path().extension() == ".gguf") files.push_back(e.path());
    }
  }
  ASSERT_GE(files.size(), 5u);
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.string());
    File f = parse_file(path.string());
    ASSERT_FALSE(f.tensors.empty());
    std::vector<const TensorInfo*> order;
    for (const TensorInfo& t : f.tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](auto* a, auto* b) { return a->offset < b->offset; });
    uint64_t expected = f.data_offset;
    for (const TensorInfo* t : order) {
      EXPECT_EQ(t->offset, expected) << t->name;
      EXPECT_EQ(t->size, row_bytes(t->type, t->shape[0]) * t->n_rows()) << t->name;
      expected = (t->offset + t->size + f.alignment - 1) / f.alignment * f.alignment;
    }
    EXPECT_LE(order.back()->offset + order.back()->size, f.file_size);
    EXPECT_GE(f.file_size + f.alignment, expected);
  }
}

TEST(GgufShared, ModelMetadata) {
  File f = parse_file(ml::test::shared("models/gptoss-tiny-mxfp4.gguf").string());
  EXPECT_EQ(f.architecture(), "gpt-oss");
  EXPECT_EQ(f.metadata.uint("gpt-oss.block_count"), 4u);
  EXPECT_EQ(f.metadata.uint("gpt-oss.embedding_length"), 320u);
  EXPECT_EQ(f.tensor("blk.0.ffn_gate_exps.weight").type, Type::MXFP4);
  EXPECT_EQ(f.tensor("blk.0.ffn_gate_exps.weight").shape, (std::vector<uint64_t>{320, 192, 8}));
  EXPECT_EQ(f.metadata.strings("tokenizer.ggml.tokens").size(), 4105u);
}

// --- hostile input ---

TEST(GgufMalformed, TruncationAtEveryByte) {
  std::vector<std::byte> full = sample_writer().bytes();
  File f = parse_bytes(full);
  // Every cut before the end of the last tensor must fail; the tensor data counts too.
  uint64_t end = 0;
  for (const TensorInfo& t : f.tensors) end = std::max(end, t.offset + t.size);
  for (uint64_t n = 0; n < end; ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + n);
    EXPECT_THROW(parse_bytes(cut), ml::Error) << "cut at " << n;
  }
}

TEST(GgufMalformed, TruncatedSharedModelHeader) {
  fs::path path = ml::test::shared("models/llama-tiny-q4_k_m.gguf");
  FileSource src(path.string());
  File f = parse(src);
  auto all = src.view(0, src.size());
  // Every 211th byte of the header (a prime stride lands in every kind of field) and a few
  // cuts inside the data section.
  std::vector<uint64_t> cuts;
  for (uint64_t n = 0; n < f.data_offset; n += 211) cuts.push_back(n);
  for (uint64_t n : {f.data_offset, f.data_offset + 1, f.file_size / 2, f.file_size - 1}) cuts.push_back(n);
  for (uint64_t n : cuts) {
    EXPECT_THROW(parse_bytes({all.begin(), all.begin() + n}), ml::Error) << "cut at " << n;
  }
}

TEST(GgufMalformed, RandomCorruptionNeverCrashes) {
  std::vector<std::byte> full = sample_writer().bytes();
  File f = parse_bytes(full);
  std::mt19937_64 rng(1234);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::byte> bad = full;
    int flips = 1 + int(rng() % 4);
    for (int j = 0; j < flips; ++j) {
      bad[rng() % f.header_bytes] = std::byte(rng());
    }
    try {
      parse_bytes(bad);
    } catch (const ml::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 1000);  // most corruptions are caught; none may crash or hang
}

TEST(GgufMalformed, SpecificLies) {
  auto ok = Raw().header(1, 1).str("general.architecture").put<uint32_t>(8).str("x")
                .tensor("t", {4}, 0, 0).pad().data(16);
  EXPECT_NO_THROW(parse_bytes(ok.b));

  expect_error(Raw().put<uint32_t>(0x46554746).b, "not a GGUF file");
  expect_error(Raw().header(0, 0, 1).b, "version 1");
  expect_error(Raw().header(0, 0, 7).b, "unsupported GGUF version 7");
  expect_error(Raw().put<uint32_t>(0x46554747).put<uint32_t>(0x03000000).put<uint64_t>(0).put<uint64_t>(0).b,
               "big-endian");
  expect_error(Raw().header(0, uint64_t(1) << 62).b, "claims 4611686018427387904 metadata entries");
  expect_error(Raw().header(uint64_t(1) << 40, 0).b, "tensors, more than");
  expect_error(Raw().header(0, 1).put<uint64_t>(uint64_t(1) << 50).data(64).b,
               "claims 1125899906842624 bytes");
  expect_error(Raw().header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0).b, "unknown value type 13");
  expect_error(Raw().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(uint64_t(1) << 40).b,
               "claims an array of 1099511627776 UINT32");
  expect_error(Raw().header(0, 2).str("k").put<uint32_t>(0).put<uint8_t>(1).str("k").put<uint32_t>(0).put<uint8_t>(1).b,
               "appears twice");
  expect_error(Raw().header(0, 1).str("").put<uint32_t>(0).put<uint8_t>(1).b, "empty key");
  // Arrays nested past the depth limit.
  Raw deep = Raw().header(0, 1).str("k").put<uint32_t>(9);
  for (int i = 0; i < 20; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);
  expect_error(deep.b, "nests arrays deeper");
  // Alignment.
  expect_error(Raw().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(0).b,
               "not a power of two");
  expect_error(Raw().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(48).b,
               "not a power of two");
  expect_error(Raw().header(0, 1).str("general.alignment").put<uint32_t>(8).str("x").b,
               "not an integer");
  // Tensors.
  expect_error(Raw().header(1, 0).tensor("t", {4}, 4, 0).pad().data(16).b, "unknown ggml type 4");
  expect_error(Raw().header(1, 0).tensor("t", {4}, 999, 0).pad().data(16).b, "unknown ggml type 999");
  expect_error(Raw().header(1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0).pad().data(16).b, "5 dimensions");
  expect_error(Raw().header(1, 0).tensor("t", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0).pad().data(16).b,
               "overflows");
  expect_error(Raw().header(1, 0).tensor("t", {uint64_t(1) << 63}, 0, 0).pad().data(16).b, "overflows");
  expect_error(Raw().header(1, 0).tensor("t", {100}, 12, 0).pad().data(144).b,
               "not a multiple of the Q4_K block size 256");
  expect_error(Raw().header(1, 0).tensor("t", {4}, 0, 64).pad().data(16).b, "past the end of the file");
  expect_error(Raw().header(1, 0).tensor("t", {4}, 0, uint64_t(-32)).pad().data(16).b, "past the end");
  expect_error(Raw().header(1, 0).tensor("t", {1 << 20}, 0, 0).pad().data(16).b, "past the end");
  expect_error(Raw().header(1, 0).tensor("t", {4}, 0, 8).pad().data(64).b, "not a multiple of the alignment 32");
  expect_error(Raw().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad().data(128).b,
               "overlap");
  expect_error(Raw().header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad().data(64).b,
               "appears twice");
  expect_error(Raw().header(1, 0).tensor(std::string(64, 'n'), {4}, 0, 0).pad().data(16).b, "limit 63");
  expect_error(Raw().header(1, 0).tensor("", {4}, 0, 0).pad().data(16).b, "empty name");
}

TEST(GgufSources, FileErrors) {
  EXPECT_THROW(FileSource("/nonexistent/x.gguf"), ml::Error);
  EXPECT_THROW(FileSource("/tmp"), ml::Error);
  FileSource src(ml::test::shared("models/llama-tiny-q4_k_m.gguf").string());
  std::vector<std::byte> buf(16);
  EXPECT_THROW(src.read(src.size() - 8, buf), ml::Error);
  EXPECT_NO_THROW(src.read(src.size() - 16, buf));
  EXPECT_THROW(parse_file("/nonexistent/model.gguf"), ml::Error);
}

TEST(GgufDescribe, JsonAndText) {
  File f = parse_bytes(sample_writer().bytes());
  std::string json = to_json(f);
  EXPECT_NE(json.find("\"type\":\"Q8_0\""), std::string::npos);
  EXPECT_NE(json.find("\"shape\":[64,2]"), std::string::npos);
  EXPECT_NE(json.find("\"nested\":[[1,2],[3]]"), std::string::npos);
  std::string text = describe(f, {.metadata = true, .tensors = true, .array_limit = 2});
  EXPECT_NE(text.find("architecture: llama"), std::string::npos);
  EXPECT_NE(text.find("(3 total)"), std::string::npos);
  EXPECT_NE(text.find("Q4_K: 1 tensors"), std::string::npos);
}
