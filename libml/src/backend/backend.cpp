// Backend-independent helpers: handle reshapes, host transfers, the backend registry.
#include "ml/backend.h"

#include <cstring>

namespace ml {

uint64_t tensor_bytes(const Tensor& t) {
  return gguf::row_bytes(t.type, uint64_t(t.ne[0])) * uint64_t(t.n_rows());
}

Tensor reshape(Tensor t, std::array<int64_t, 4> ne) {
  const int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
  if (n != t.n_elements() || ne[0] % int64_t(gguf::traits(t.type).block_size) != 0)
    fail("reshape ", shape_string(t), " to [", ne[0], ", ", ne[1], ", ", ne[2], ", ", ne[3],
         "]: element counts or blocks differ");
  t.ne = ne;
  return t;
}

std::string shape_string(const Tensor& t) {
  int dims = 4;
  while (dims > 1 && t.ne[size_t(dims - 1)] == 1) --dims;
  std::string s = "[";
  for (int i = 0; i < dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[size_t(i)]);
  return s + "]";
}

Tensor upload_i32(Backend& be, std::span<const int32_t> values) {
  Tensor t = be.scratch(gguf::Type::I32, {int64_t(values.size()), 1, 1, 1});
  be.upload(t, std::as_bytes(values));
  return t;
}

void Backend::read(std::span<const Tensor> ts, std::span<const std::span<std::byte>> outs) {
  if (ts.size() != outs.size()) fail("read: ", ts.size(), " tensors but ", outs.size(), " outputs");
  for (size_t i = 0; i < ts.size(); ++i) read(ts[i], outs[i]);
}

Backend::PendingRead Backend::read_start(const Tensor& t) {
  PendingRead p;
  p.bytes = tensor_bytes(t);
  p.host.resize(p.bytes);
  read(t, p.host);
  return p;
}

void Backend::read_finish(PendingRead& pending, std::span<std::byte> out) {
  if (out.size() != pending.bytes)
    fail("read_finish: ", out.size(), " bytes asked, the read has ", pending.bytes);
  if (pending.ticket != 0 || pending.host.size() != pending.bytes)
    fail("read_finish: a read this backend did not start");
  std::memcpy(out.data(), pending.host.data(), out.size());
}

void Backend::copy(const Tensor& src, const Tensor& dst) {
  if (tensor_bytes(src) != tensor_bytes(dst))
    fail("copy of ", shape_string(src), " into ", shape_string(dst), ": sizes differ");
  std::vector<std::byte> bytes(tensor_bytes(src));
  read(src, bytes);
  upload(dst, bytes);
}

std::vector<float> read_f32(Backend& be, const Tensor& t) {
  if (t.type != gguf::Type::F32) fail("read_f32: tensor is ", gguf::type_name(t.type));
  std::vector<float> out(size_t(t.n_elements()));
  be.read(t, std::as_writable_bytes(std::span(out)));
  return out;
}

std::vector<int32_t> read_i32(Backend& be, const Tensor& t) {
  if (t.type != gguf::Type::I32) fail("read_i32: tensor is ", gguf::type_name(t.type));
  std::vector<int32_t> out(size_t(t.n_elements()));
  be.read(t, std::as_writable_bytes(std::span(out)));
  return out;
}

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "vulkan") return make_vulkan_backend();
  fail("unknown backend '", name, "' (this build has: cpu, vulkan)");
}

}  // namespace ml
