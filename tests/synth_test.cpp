// gguf_synth presets: the tensor tables of the real releases they mirror.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "ml/quant.h"
#include "ml/synth.h"
#include "test_util.h"

using namespace ml;
using gguf::Type;

namespace {

// Serves a writer's header and claims the whole file's size: enough for the parser, which
// reads only the header, to check a 60 GB preset without writing it.
class HeaderSource final : public gguf::Source {
 public:
  explicit HeaderSource(const gguf::Writer& w) : header_(w.header()), size_(w.file_size()) {}
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, std::span<std::byte> out) override {
    if (offset + out.size() > header_.size()) fail("read past the header");
    std::memcpy(out.data(), header_.data() + offset, out.size());
  }
  std::string name() const override { return "synth"; }
  std::span<const std::byte> view(uint64_t offset, uint64_t len) override {
    if (offset + len > header_.size()) return {};
    return {header_.data() + offset, len};
  }

 private:
  std::vector<std::byte> header_;
  uint64_t size_;
};

gguf::File parse_preset(const std::string& name) {
  gguf::Writer w = synth::build(name);
  HeaderSource src(w);
  return gguf::parse(src);
}

std::map<std::string, int> count_types(const gguf::File& f) {
  std::map<std::string, int> n;
  for (const auto& t : f.tensors) ++n[gguf::type_name(t.type)];
  return n;
}

uint64_t data_bytes(const gguf::File& f) {
  uint64_t n = 0;
  for (const auto& t : f.tensors) n += t.size;
  return n;
}

}  // namespace

// The numbers on the right are read from the real gemma-3-270m-q4_k_m.gguf (make model).
TEST(Synth, Gemma3_270mMatchesTheRelease) {
  gguf::File f = parse_preset("gemma3-270m");
  EXPECT_EQ(f.tensors.size(), 236u);
  EXPECT_EQ(data_bytes(f), 246587904u);
  EXPECT_EQ(count_types(f), (std::map<std::string, int>{
                                {"F32", 109}, {"Q4_K", 27}, {"Q5_0", 81}, {"Q6_K", 9}, {"Q8_0", 10}}));
  EXPECT_EQ(f.tensor("token_embd.weight").type, Type::Q8_0);
  EXPECT_EQ(f.tensor("blk.4.attn_v.weight").type, Type::Q8_0);   // a use_more_bits layer
  EXPECT_EQ(f.tensor("blk.5.attn_v.weight").type, Type::Q5_0);
  EXPECT_EQ(f.tensor("blk.17.ffn_down.weight").type, Type::Q6_K);
  EXPECT_EQ(f.metadata.uint("gemma3.block_count"), 18u);
  EXPECT_EQ(f.metadata.strings("tokenizer.ggml.tokens").size(), 262144u);
}

TEST(Synth, EveryPresetParsesWithTheRealShapes) {
  struct Want {
    const char* name;
    size_t tensors;
    uint64_t n_vocab;
  };
  for (Want w : {Want{"llama3.2-1b", 147, 128256}, Want{"llama3-8b", 292, 128256},
                 Want{"qwen3-0.6b", 310, 151936}, Want{"gemma3-1b", 340, 262144},
                 Want{"gpt-oss-20b", 459, 201088}, Want{"gpt-oss-120b", 687, 201088}}) {
    SCOPED_TRACE(w.name);
    gguf::File f = parse_preset(w.name);
    EXPECT_EQ(f.tensors.size(), w.tensors);
    EXPECT_EQ(f.tensor("token_embd.weight").shape[1], w.n_vocab);
    EXPECT_EQ(f.metadata.strings("tokenizer.ggml.tokens").size(), w.n_vocab);
  }
  gguf::File oss = parse_preset("gpt-oss-20b");
  EXPECT_EQ(oss.tensor("blk.0.ffn_gate_exps.weight").type, Type::MXFP4);
  EXPECT_EQ(oss.tensor("blk.0.ffn_gate_exps.weight").shape, (std::vector<uint64_t>{2880, 2880, 32}));
  EXPECT_EQ(oss.tensor("blk.23.ffn_down_exps.weight").shape, (std::vector<uint64_t>{2880, 2880, 32}));
  EXPECT_EQ(oss.metadata.string("gpt-oss.rope.scaling.type"), "yarn");
  auto tokens = oss.metadata.strings("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens[200006], "<|start|>");
  EXPECT_EQ(tokens[200002], "<|return|>");
  // llama.cpp's load log for Llama 3.1 8B Instruct Q4_K_M: f32 66, q4_K 193, q6_K 33.
  EXPECT_EQ(count_types(parse_preset("llama3-8b")),
            (std::map<std::string, int>{{"F32", 66}, {"Q4_K", 193}, {"Q6_K", 33}}));
  EXPECT_THROW(synth::build("llama-9000"), Error);
}

TEST(Synth, WrittenFileHoldsValidBlocks) {
  gguf::Writer w = synth::build("gemma3-270m", 7);
  std::string path = (std::filesystem::temp_directory_path() / "ml_synth_test.gguf").string();
  w.write(path);
  gguf::FileSource src(path);
  gguf::File f = gguf::parse(src);
  EXPECT_EQ(f.file_size, w.file_size());
  // Rows of the quantized tensors dequantize to finite values; norms are 1.
  for (const char* name : {"token_embd.weight", "blk.3.attn_q.weight", "blk.4.attn_v.weight",
                           "blk.0.ffn_down.weight", "blk.1.attn_output.weight"}) {
    const gguf::TensorInfo& t = f.tensor(name);
    auto row = src.view(t.offset + t.row_size() * 5, t.row_size());
    std::vector<float> v = quant::dequantize(t.type, row, t.shape[0]);
    for (float x : v) ASSERT_TRUE(std::isfinite(x)) << name;
  }
  auto norm = src.view(f.tensor("output_norm.weight").offset, 8);
  float one;
  std::memcpy(&one, norm.data() + 4, 4);
  EXPECT_EQ(one, 1.0f);
  std::filesystem::remove(path);
}
