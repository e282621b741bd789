// The Vulkan backend: tensors, transfers and submission. Weights keep their GGUF bytes (the
// matmul kernels decode them), activations are F32, the KV cache F16 or F32. Ops only record
// into rec_, which submits chunks of a pass as it goes (Recorder::flush); the host waits only
// when it must see or change memory (read, sync, a large upload, reset_transient, free). A
// decode step thus creates no Vulkan objects, uploads its inputs inside the command buffer
// and reads back its token in the same submit.
#include "backend/vulkan.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ml {
namespace {

// Tensor ids: persistent tensors index persistent_; a transient id is VulkanBackend::kTransientBit,
// the forward pass's generation (so a handle kept past reset_transient() is caught, not aliased)
// and its index in transient_.
constexpr uint32_t kIndexBits = 20;
constexpr uint32_t kIndexMask = (1u << kIndexBits) - 1;
constexpr uint32_t kGenerationMask = (VulkanBackend::kTransientBit >> kIndexBits) - 1;

// Host-visible memory that small reads (an argmax, one row of logits) are copied into by
// the forward pass's own command buffer.
constexpr uint64_t kReadbackBytes = 4ull << 20;
// read_start's slots: a read of up to kAsyncSlotBytes (a token, a few logits) per submit still
// running; more than kAsyncSlots started reads wait for the oldest.
constexpr uint64_t kAsyncSlots = 4, kAsyncSlotBytes = 64 << 10;

// Commands per submitted chunk of a forward pass (Recorder::flush): the GPU runs the first
// chunks while the host records the rest; each chunk costs one vkQueueSubmit.
constexpr uint32_t kFlushEvery = 64;

// tensor_bytes(t); activations (F32, I32) without the type table lookup, on every op.
uint64_t size_of(const Tensor& t) {
  const bool word = t.type == gguf::Type::F32 || t.type == gguf::Type::I32;
  return word ? uint64_t(t.n_elements()) * 4 : tensor_bytes(t);
}

}  // namespace

VulkanBackend::VulkanBackend(const vk::DeviceOptions& options)
    : device_(std::make_unique<vk::Device>(options)),
      ring_(std::make_unique<vk::StagingRing>(*device_, 16ull << 20)),
      rec_(std::make_unique<vk::Recorder>(*device_)) {
  // Tuning override (bench_generate): ML_FLUSH_EVERY = commands per chunk, 0 for none.
  uint32_t every = kFlushEvery;
  if (const char* e = std::getenv("ML_FLUSH_EVERY")) every = uint32_t(std::strtoul(e, nullptr, 10));
  rec_->set_flush_every(every);
}

VulkanBackend::~VulkanBackend() {
  // Buffers and the recorder go before the device that owns their memory.
  rec_.reset();
  transient_.clear();
  previous_.clear();
  spare_.clear();
  persistent_.clear();
  readback_.reset();
  async_readback_.reset();
  ring_.reset();
  // ~Device throws on validation messages, but this destructor is noexcept (Backend's):
  // sync() already turned every message up to the last submit into an ml::Error; any from
  // teardown are printed rather than ending the process.
  for (const std::string& m : device_->take_messages())
    std::fprintf(stderr, "vulkan validation at teardown: %s\n", m.c_str());
}

uint64_t VulkanBackend::memory_capacity() const {
  uint64_t total = 0;
  for (const auto& heap : device_->limits().heaps)
    if (heap.device_local) total += heap.size;
  return total;
}

Tensor VulkanBackend::make(gguf::Type type, std::array<int64_t, 4> ne, bool transient,
                           std::string name) {
  for (int64_t n : ne)
    if (n < 1 || n > (int64_t(1) << 40))
      fail("vulkan backend: tensor ", name, " has a bad dimension ", n);
  Tensor t;
  t.type = type;
  t.ne = ne;
  // Kernels read whole 4-byte words (and the matmul kernels 16-byte rows): pad to 16.
  const uint64_t bytes = (size_of(t) + 15) / 16 * 16;
  if (!transient) {
    if (persistent_.size() >= kTransientBit) fail("vulkan backend: too many tensors");
    t.id = uint32_t(persistent_.size());
    persistent_.push_back(
        std::make_unique<vk::Buffer>(*device_, bytes, vk::Memory::device, std::move(name)));
    return t;
  }
  // A forward pass asks for the same sizes in the same order as the one before it (every
  // decode step does): hand out the earlier pass's buffer of that size instead of creating
  // one, so a decode step makes no vkCreateBuffer or vkAllocateMemory call, and binds the
  // same buffers as the step before (the recorder's cached descriptor sets).
  const size_t i = transient_.size();
  if (i > kIndexMask)
    fail("vulkan backend: more than ", kIndexMask + 1, " transient tensors in one pass");
  t.id = kTransientBit | (generation_ & kGenerationMask) << kIndexBits | uint32_t(i);
  if (!spared_ && i < previous_.size() && previous_[i]->size() == bytes) {
    transient_.push_back(std::move(previous_[i]));
    return t;
  }
  if (!spared_) {
    for (size_t j = i; j < previous_.size(); ++j) {
      const uint64_t size = previous_[j]->size();
      spare_.emplace(size, std::move(previous_[j]));
    }
    spared_ = true;
  }
  if (auto it = spare_.find(bytes); it != spare_.end()) {
    transient_.push_back(std::move(it->second));
    spare_.erase(it);
  } else {
    transient_.push_back(
        std::make_unique<vk::Buffer>(*device_, bytes, vk::Memory::device, std::move(name)));
  }
  return t;
}

Tensor VulkanBackend::alloc(gguf::Type type, std::array<int64_t, 4> ne, std::string_view name) {
  return make(type, ne, false, std::string(name));
}

Tensor VulkanBackend::scratch(gguf::Type type, std::array<int64_t, 4> ne) {
  return make(type, ne, true, "transient");
}

void VulkanBackend::free(Tensor t) {
  if (!t || (t.id & kTransientBit) || t.id >= persistent_.size()) return;
  sync();  // recorded commands may still use it
  persistent_[t.id].reset();
}

// A pass whose work was sent by read_start may still run: its buffers become the next
// pass's, and the recorder orders the next pass's commands after it (Recorder::submit_async).
// Only buffers about to be destroyed wait for it.
void VulkanBackend::reset_transient() {
  sync_recorded();
  // Buffers the last pass did not take are not needed by passes of its shape; this pass's
  // become the next one's.
  if (!spare_.empty()) {
    rec_->wait_all();
    ++reset_waits_;
  }
  spare_.clear();
  std::swap(previous_, transient_);
  transient_.clear();  // keeps its capacity: a pass's push_backs do not reallocate
  spared_ = false;
  ++generation_;
}

const vk::Buffer& VulkanBackend::buffer(const Tensor& t) const {
  if (!t) fail("vulkan backend: use of an empty tensor handle");
  const vk::Buffer* b = nullptr;
  if (t.id & kTransientBit) {
    const uint32_t index = t.id & kIndexMask;
    if (((t.id & ~kTransientBit) >> kIndexBits) != (generation_ & kGenerationMask))
      fail("vulkan backend: transient tensor ", t.id, " is from an earlier forward pass");
    if (index < transient_.size()) b = transient_[index].get();
  } else if (t.id < persistent_.size()) {
    b = persistent_[t.id].get();
  }
  if (!b) fail("vulkan backend: unknown tensor id ", t.id);
  if (b->size() < size_of(t))
    fail("vulkan backend: tensor ", t.id, " ", shape_string(t), " is larger than its buffer");
  return *b;
}

const vk::Buffer& VulkanBackend::f32(const Tensor& t, const char* op) const {
  if (t.type != gguf::Type::F32)
    fail("vulkan backend: ", op, ": expected F32, got ", gguf::type_name(t.type));
  return buffer(t);
}

const vk::Buffer& VulkanBackend::i32(const Tensor& t, const char* op) const {
  if (t.type != gguf::Type::I32)
    fail("vulkan backend: ", op, ": expected I32, got ", gguf::type_name(t.type));
  return buffer(t);
}

void VulkanBackend::sync() {
  sync_recorded();
  rec_->wait_all();
}

// Submits what is recorded and waits for it (and so for all sent before it).
void VulkanBackend::sync_recorded() {
  if (rec_->n_dispatches() == 0) return;
  rec_->submit();
  for (const auto& t : rec_->timings()) {
    auto it = std::find_if(op_times_.begin(), op_times_.end(),
                           [&](const OpTime& o) { return o.label == t.label; });
    if (it == op_times_.end()) it = op_times_.insert(op_times_.end(), {t.label, 0, 0});
    it->ms += t.ms;
    ++it->count;
  }
  rec_->restart(profiling_);
  device_->check();
}

void VulkanBackend::set_profiling(bool on) {
  if (on == profiling_) return;
  sync();
  profiling_ = on;
  rec_->restart(profiling_);
}

// GPU times per label (while profiling), then the host's time in the recorder's blocking
// or costly calls (always), labelled "host: ...".
std::vector<Backend::OpTime> VulkanBackend::take_op_times() {
  std::vector<OpTime> out = std::exchange(op_times_, {});
  const vk::Recorder::HostTimes h = rec_->take_host_times();
  auto host = [&](const char* label, double ms, uint64_t n) {
    if (n > 0) out.push_back({label, ms, int64_t(n)});
  };
  host("host: vkQueueSubmit", h.submit_ms, h.submits);
  host("host: fence waits", h.wait_ms, h.waits);
  host("host: descriptor set writes", h.sets_ms, h.set_writes);
  host("host: reset_transient waits", 0, std::exchange(reset_waits_, 0));
  return out;
}

void VulkanBackend::upload(const Tensor& t, std::span<const std::byte> bytes, uint64_t offset) {
  const vk::Buffer& b = buffer(t);
  const uint64_t size = tensor_bytes(t);
  if (offset > size || bytes.size() > size - offset)
    fail("vulkan backend: upload of ", bytes.size(), " bytes at offset ", offset,
         " does not fit tensor ", b.name(), " of ", size);
  if (bytes.empty()) return;
  // Small uploads (a forward pass's token ids, positions, rows) go into the command buffer
  // in order with the ops; large ones stream through the staging ring after what is recorded.
  if (bytes.size() <= vk::Recorder::kMaxUpdateBytes && bytes.size() % 4 == 0 && offset % 4 == 0) {
    rec_->update(b, offset, bytes);
    return;
  }
  sync();
  ring_->upload(b, offset, bytes);
}

void VulkanBackend::read(const Tensor& t, std::span<std::byte> out) {
  const vk::Buffer& b = buffer(t);
  if (out.size() != tensor_bytes(t))
    fail("vulkan backend: read of ", out.size(), " bytes from a tensor of ", tensor_bytes(t));
  if (out.empty()) return sync();
  if (out.size() > kReadbackBytes) {
    sync();
    ring_->download(b, 0, out);
    return;
  }
  // The copy rides in the same submit as the work that produces t: one submit per token.
  if (!readback_)
    readback_ =
        std::make_unique<vk::Buffer>(*device_, kReadbackBytes, vk::Memory::readback, "readback");
  rec_->copy(b, 0, *readback_, 0, out.size());
  sync();
  std::memcpy(out.data(), readback_->mapped(), out.size());
}

void VulkanBackend::read(std::span<const Tensor> ts, std::span<const std::span<std::byte>> outs) {
  if (ts.size() != outs.size()) fail("read: ", ts.size(), " tensors but ", outs.size(), " outputs");
  // Each copy at a 16-byte aligned offset of the readback buffer; what does not fit goes
  // through the single-tensor path.
  std::vector<uint64_t> at(ts.size(), UINT64_MAX);
  uint64_t used = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const uint64_t size = tensor_bytes(ts[i]);
    if (outs[i].size() != size)
      fail("vulkan backend: read of ", outs[i].size(), " bytes from a tensor of ", size);
    if (size == 0 || size > kReadbackBytes - used) continue;
    if (!readback_)
      readback_ =
          std::make_unique<vk::Buffer>(*device_, kReadbackBytes, vk::Memory::readback, "readback");
    rec_->copy(buffer(ts[i]), 0, *readback_, used, size);
    at[i] = used;
    used = std::min(kReadbackBytes, (used + size + 15) / 16 * 16);
  }
  sync();
  for (size_t i = 0; i < ts.size(); ++i)
    if (at[i] != UINT64_MAX)
      std::memcpy(outs[i].data(), readback_->mapped() + at[i], outs[i].size());
  // After the copies above: the single-tensor path reuses the readback buffer.
  for (size_t i = 0; i < ts.size(); ++i)
    if (at[i] == UINT64_MAX && !outs[i].empty()) read(ts[i], outs[i]);
}

Backend::PendingRead VulkanBackend::read_start(const Tensor& t) {
  const vk::Buffer& b = buffer(t);
  const uint64_t size = tensor_bytes(t);
  // Timestamps are read per recording, and a large read has no slot: read now.
  if (profiling_ || size > kAsyncSlotBytes || size == 0) return Backend::read_start(t);
  if (!async_readback_)
    async_readback_ = std::make_unique<vk::Buffer>(*device_, kAsyncSlots * kAsyncSlotBytes,
                                                   vk::Memory::readback, "async readback");
  // The ticket this submit gets is the recorder's next; its slot's last read must be done.
  PendingRead p;
  p.bytes = size;
  p.offset = rec_->next_ticket() % kAsyncSlots * kAsyncSlotBytes;
  if (rec_->next_ticket() > kAsyncSlots) rec_->wait(rec_->next_ticket() - kAsyncSlots);
  rec_->copy(b, 0, *async_readback_, p.offset, size);
  p.ticket = rec_->submit_async();
  return p;
}

void VulkanBackend::read_finish(PendingRead& p, std::span<std::byte> out) {
  if (p.ticket == 0) return Backend::read_finish(p, out);
  if (out.size() != p.bytes)
    fail("read_finish: ", out.size(), " bytes asked, the read has ", p.bytes);
  if (p.ticket + kAsyncSlots < rec_->next_ticket())
    fail("read_finish: the read's slot was taken by a later read (more than ", kAsyncSlots,
         " started)");
  rec_->wait(p.ticket);
  std::memcpy(out.data(), async_readback_->mapped() + p.offset, out.size());
}

void VulkanBackend::copy(const Tensor& src, const Tensor& dst) {
  const uint64_t size = tensor_bytes(src);
  if (size != tensor_bytes(dst))
    fail("copy of ", shape_string(src), " into ", shape_string(dst), ": sizes differ");
  rec_->copy(buffer(src), 0, buffer(dst), 0, size);
}

std::unique_ptr<Backend> make_vulkan_backend(const vk::DeviceOptions& options) {
  return std::make_unique<VulkanBackend>(options);
}

}  // namespace ml
