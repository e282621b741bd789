#pragma once
// Checks one type of a quant-golden GGUF (../shared/quant/quant-golden.gguf, or one made by
// tests/tools/make_quant_golden.py): tensor `x` (F32, k values) and per type T the tensors
// `T.q` (rows × k in type T), `T.deq` (the same dequantized by the reference, F32) and `T.y`
// (T.deq · x accumulated in float64, stored F32).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ml/gguf.h"
#include "ml/quant.h"

namespace ml::test {

struct QuantGolden {
  gguf::FileSource source;
  gguf::File file;
  std::vector<float> x;

  explicit QuantGolden(const std::string& path) : source(path), file(gguf::parse(source)) {
    x = f32("x");
  }

  std::vector<std::byte> bytes(const std::string& name) {
    return gguf::read_tensor(source, file.tensor(name));
  }

  std::vector<float> f32(const std::string& name) {
    const gguf::TensorInfo& t = file.tensor(name);
    if (t.type != gguf::Type::F32) fail("tensor ", name, " is not F32");
    const std::vector<std::byte> raw = bytes(name);
    std::vector<float> out(raw.size() / 4);
    std::memcpy(out.data(), raw.data(), out.size() * 4);
    return out;
  }

  // Types with a `T.q` tensor, in file order.
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const gguf::TensorInfo& t : file.tensors) {
      if (t.name.size() > 2 && t.name.ends_with(".q"))
        out.push_back(t.name.substr(0, t.name.size() - 2));
    }
    return out;
  }
};

// dequantize(T.q) must equal T.deq bit for bit: the reference and ours do the same f32
// operations in the same order (ggml's dequantize_row_*; gguf-py mirrors them), and every
// product there is exact or rounded once, so 0 ulp is the right tolerance.
// dot and matvec must match T.y within 1e-4 × ||deq_row|| × ||x|| (Cauchy-Schwarz bound of
// the row's terms; it leaves room only for the f32 rounding of the stored y).
inline void check_golden_type(QuantGolden& g, const std::string& name) {
  SCOPED_TRACE(name);
  const auto type = gguf::type_from_name(name);
  ASSERT_TRUE(type.has_value()) << "unknown type " << name;
  ASSERT_TRUE(quant::has_reference(*type));
  const gguf::TensorInfo& qt = g.file.tensor(name + ".q");
  ASSERT_EQ(qt.type, *type);
  const uint64_t k = qt.shape.at(0), rows = qt.n_rows();
  ASSERT_EQ(k, g.x.size());

  const std::vector<std::byte> q = g.bytes(name + ".q");
  const std::vector<float> deq_ref = g.f32(name + ".deq");
  const std::vector<float> y_ref = g.f32(name + ".y");
  ASSERT_EQ(deq_ref.size(), rows * k);
  ASSERT_EQ(y_ref.size(), rows);

  const std::vector<float> deq = quant::dequantize(*type, q, rows * k);
  uint64_t mismatches = 0;
  for (uint64_t i = 0; i < deq.size(); ++i) {
    if (std::memcmp(&deq[i], &deq_ref[i], 4) != 0 && mismatches++ < 5) {
      ADD_FAILURE() << "value " << i << " (row " << i / k << "): " << deq[i] << " != reference "
                    << deq_ref[i];
    }
  }
  EXPECT_EQ(mismatches, 0u);

  double x_norm = 0;
  for (float v : g.x) x_norm += double(v) * v;
  x_norm = std::sqrt(x_norm);

  const uint64_t row_size = gguf::row_bytes(*type, k);
  std::vector<float> y1(rows), y4(rows);
  quant::matvec(*type, q, rows, k, g.x, y1, 1);
  quant::matvec(*type, q, rows, k, g.x, y4, 4);
  for (uint64_t r = 0; r < rows; ++r) {
    double row_norm = 0;
    for (uint64_t i = 0; i < k; ++i) row_norm += double(deq_ref[r * k + i]) * deq_ref[r * k + i];
    const double tol = 1e-4 * std::sqrt(row_norm) * x_norm;
    ASSERT_GT(tol, 0) << "row " << r << " is all zeros: the vector cannot test the dot";
    const std::span<const std::byte> row(q.data() + r * row_size, row_size);
    const double y = quant::dot(*type, row, g.x);
    EXPECT_NEAR(y, y_ref[r], tol) << "dot, row " << r;
    EXPECT_NEAR(y1[r], y_ref[r], tol) << "matvec, row " << r;
    EXPECT_EQ(y1[r], float(y)) << "matvec (1 thread) is the dot of row " << r;
    EXPECT_EQ(y4[r], y1[r]) << "matvec with 4 threads, row " << r;
  }
}

}  // namespace ml::test
