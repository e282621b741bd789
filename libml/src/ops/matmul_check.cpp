// Gates C and D as library functions: GPU matmul/dequantize against ml::quant and golden data.
#include "ml/matmul_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "ml/ops.h"
#include "ml/quant.h"

namespace ml::ops {
namespace {

std::vector<float> read_f32(gguf::Source& source, const gguf::TensorInfo& t) {
  if (t.type != gguf::Type::F32)
    fail("tensor ", t.name, " is ", gguf::type_name(t.type), ", not F32");
  const auto raw = gguf::read_tensor(source, t);
  std::vector<float> out(raw.size() / 4);
  std::memcpy(out.data(), raw.data(), out.size() * 4);
  return out;
}

double norm(std::span<const float> v) {
  double s = 0;
  for (float f : v) s += double(f) * f;
  return std::sqrt(s);
}

// max over rows of |y - ref| / (||row|| ||x||) for y, ref: [n][rows], rows: [rows][k].
double matmul_error(std::span<const float> y, std::span<const float> ref,
                    std::span<const double> row_norms, std::span<const double> x_norms) {
  double worst = 0;
  const uint64_t rows = row_norms.size();
  for (uint64_t i = 0; i < y.size(); ++i) {
    const double scale = row_norms[i % rows] * x_norms[i / rows];
    const double e = std::fabs(double(y[i]) - ref[i]) / (scale > 0 ? scale : 1.0);
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  return worst;
}

double max_abs(std::span<const float> v) {
  double m = 0;
  for (float f : v) m = std::max(m, double(std::fabs(f)));
  return m;
}

double deq_error(std::span<const float> got, std::span<const float> ref) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - ref[i]);
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  const double scale = max_abs(ref);
  return worst / (scale > 0 ? scale : 1.0);
}

std::unique_ptr<vk::Buffer> device_floats(vk::Device& device, vk::StagingRing& ring,
                                          std::span<const float> v, const std::string& name) {
  return vk::upload_buffer(device, ring, v, name);
}

}  // namespace

std::vector<GoldenResult> check_quant_golden(vk::Device& device, const std::string& path) {
  gguf::FileSource source(path);
  const gguf::File file = gguf::parse(source);
  const std::vector<float> x = read_f32(source, file.tensor("x"));
  const double x_norm = norm(x);
  vk::StagingRing ring(device, 4 << 20);
  auto x_buf = device_floats(device, ring, x, "x");
  std::vector<GoldenResult> results;
  for (const gguf::TensorInfo& t : file.tensors) {
    if (!t.name.ends_with(".q")) continue;
    GoldenResult r;
    r.type = t.name.substr(0, t.name.size() - 2);
    try {
      r.k = t.shape.at(0);
      r.rows = t.n_rows();
      if (r.k != x.size()) fail(t.name, ": rows of ", r.k, " values, x has ", x.size());
      const auto q = gguf::read_tensor(source, t);
      const auto deq_ref = read_f32(source, file.tensor(r.type + ".deq"));
      const auto y_ref = read_f32(source, file.tensor(r.type + ".y"));
      if (deq_ref.size() != r.rows * r.k || y_ref.size() != r.rows)
        fail(r.type, ": .deq/.y sizes do not match ", r.rows, " rows of ", r.k);
      std::vector<double> row_norms(r.rows);
      for (uint64_t i = 0; i < r.rows; ++i)
        row_norms[i] = norm(std::span(deq_ref).subspan(i * r.k, r.k));
      const double xn[] = {x_norm};

      const auto cpu_deq = quant::dequantize(t.type, q, r.rows * r.k);
      std::vector<float> cpu_y(r.rows);
      matmul(t.type, q, r.rows, r.k, x, 1, cpu_y);
      r.cpu_deq = deq_error(cpu_deq, deq_ref);
      r.cpu_y = matmul_error(cpu_y, y_ref, row_norms, xn);

      auto w = upload_weight(device, ring, q, t.name);
      const GpuWeight gw{w.get(), 0, t.type, r.k, r.rows};
      vk::Buffer deq(device, r.rows * r.k * 4, vk::Memory::device, r.type + ".deq");
      vk::Buffer y_vec(device, r.rows * 4, vk::Memory::device, r.type + ".y");
      vk::Buffer y_tiled(device, r.rows * 4, vk::Memory::device, r.type + ".y tiled");
      vk::Recorder rec(device);
      dequantize(rec, gw, deq);
      matmul(rec, gw, *x_buf, 1, y_vec, MatmulKernel::vec);
      matmul(rec, gw, *x_buf, 1, y_tiled, MatmulKernel::tiled);
      rec.submit();
      r.gpu_deq = deq_error(vk::download<float>(ring, deq, r.rows * r.k), deq_ref);
      r.gpu_y = matmul_error(vk::download<float>(ring, y_vec, r.rows), y_ref, row_norms, xn);
      r.gpu_y_tiled =
          matmul_error(vk::download<float>(ring, y_tiled, r.rows), y_ref, row_norms, xn);
      device.check();
      r.passed = r.cpu_deq <= kGoldenDeqTolerance && r.gpu_deq <= kGoldenDeqTolerance &&
                 r.cpu_y <= kGoldenYTolerance && r.gpu_y <= kGoldenYTolerance &&
                 r.gpu_y_tiled <= kGoldenYTolerance;
      if (!r.passed) r.error = "error above tolerance";
    } catch (const Error& e) {
      r.passed = false;
      r.error = e.what();
    }
    results.push_back(r);
  }
  return results;
}

TensorCheck check_tensor(vk::Device& device, gguf::Source& source, const gguf::File& file,
                         const std::string& tensor, uint64_t n_vectors, uint64_t rows,
                         uint64_t reps, uint64_t seed) {
  const gguf::TensorInfo& t = file.tensor(tensor);
  TensorCheck c;
  c.tensor = t.name;
  c.type = t.type;
  c.k = t.shape.at(0);
  c.rows = rows ? std::min(rows, t.n_rows()) : t.n_rows();
  c.n_vectors = n_vectors;
  if (n_vectors == 0 || reps == 0) fail("check_tensor: --k and --reps must be at least 1");
  if (!gpu_supports(t.type))
    fail("tensor ", t.name, ": no GPU kernel for ", gguf::type_name(t.type));
  const uint64_t rb = gguf::row_bytes(t.type, c.k);
  c.weight_bytes = c.rows * rb;

  // A memory-mapped file is read in place; other sources (HTTP) are read once into memory.
  std::span<const std::byte> bytes = source.view(t.offset, c.weight_bytes);
  std::vector<std::byte> held;
  if (bytes.size() != c.weight_bytes) {
    held.resize(c.weight_bytes);
    gguf::read_tensor(source, t, held, 0);
    bytes = held;
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(n_vectors * c.k);
  for (float& v : x) v = uniform(rng);

  std::vector<float> y_cpu(n_vectors * c.rows);
  matmul(t.type, bytes, c.rows, c.k, x, n_vectors, y_cpu);
  std::vector<double> row_norms(c.rows), x_norms(n_vectors);
  for (uint64_t r = 0; r < c.rows; ++r)
    row_norms[r] = norm(quant::dequantize(t.type, bytes.subspan(r * rb, rb), c.k));
  for (uint64_t v = 0; v < n_vectors; ++v) x_norms[v] = norm(std::span(x).subspan(v * c.k, c.k));

  vk::StagingRing ring(device);
  auto w = upload_weight(device, ring, bytes, t.name);
  auto x_buf = vk::upload_buffer(device, ring, std::span<const float>(x), "x");
  vk::Buffer y(device, n_vectors * c.rows * 4, vk::Memory::device, "y");
  vk::Recorder rec(device, true);
  matmul(rec, {w.get(), 0, t.type, c.k, c.rows}, *x_buf, n_vectors, y);
  c.n_slices = rec.n_dispatches();
  double total_ms = 0;
  for (uint64_t i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    rec.submit();
    const double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    double gpu = 0;
    for (const auto& tm : rec.timings()) gpu += tm.ms;
    total_ms += rec.timings().empty() ? wall : gpu;
  }
  c.ms_per_matmul = total_ms / double(reps);
  c.gb_per_s = double(c.weight_bytes) / (c.ms_per_matmul * 1e-3) / 1e9;
  c.max_rel_err =
      matmul_error(vk::download<float>(ring, y, y_cpu.size()), y_cpu, row_norms, x_norms);
  device.check();
  c.passed = c.max_rel_err <= kGoldenYTolerance;
  return c;
}

}  // namespace ml::ops
