// The recorder: dispatches and copies in one command buffer, barriers only on hazards, one
// submit and a fence wait; timestamp queries around each command where the queue has them.
#include <algorithm>
#include <chrono>
#include <utility>

#include "ml/vk.h"
#include "vk/util.h"

namespace ml::vk {
namespace {

constexpr uint32_t kSetsPerPool = 256;
// Cached descriptor sets kept past a recording: a decode step of a large model binds about
// a thousand distinct sets; beyond this many (prefill shapes, freed buffers) all are dropped.
constexpr size_t kMaxCachedSets = 16384;
constexpr uint32_t kMaxQueries = 4096;  // timing covers the first 2048 commands

constexpr VkPipelineStageFlags kStages =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

bool contains(const std::vector<VkBuffer>& v, VkBuffer b) {
  return std::find(v.begin(), v.end(), b) != v.end();
}

}  // namespace

Recorder::Recorder(Device& device, bool timing) : device_(device) {
  VkDevice dev = device.handle();
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check_vk(vkCreateFence(dev, &fci, nullptr, &fence_), "vkCreateFence");
  try {
    next_command_buffer();
  } catch (...) {
    vkDestroyFence(dev, fence_, nullptr);
    throw;
  }
  begin(timing);
}

// cmd_ = the command buffer after the current one: a spare one (submit_async's, once run)
// or a new one.
void Recorder::next_command_buffer() {
  if (!cmds_.empty()) ++current_;
  if (current_ == cmds_.size()) {
    VkCommandBuffer cmd;
    if (!free_cmds_.empty()) {
      cmd = free_cmds_.back();
      free_cmds_.pop_back();
    } else {
      VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
      cai.commandPool = device_.command_pool();
      cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
      cai.commandBufferCount = 1;
      check_vk(vkAllocateCommandBuffers(device_.handle(), &cai, &cmd), "vkAllocateCommandBuffers");
    }
    cmds_.push_back(cmd);
  }
  cmd_ = cmds_[current_];
  bound_ = VK_NULL_HANDLE;
}

void Recorder::begin(bool timing) {
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check_vk(vkBeginCommandBuffer(cmd_, &bi), "vkBeginCommandBuffer");
  recording_ = true;
  if (timing && device_.limits().timestamps && !queries_) {
    VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qci.queryCount = kMaxQueries;
    if (vkCreateQueryPool(device_.handle(), &qci, nullptr, &queries_) != VK_SUCCESS)
      queries_ = VK_NULL_HANDLE;
  }
  timing_ = timing && queries_;
  if (timing_) vkCmdResetQueryPool(cmd_, queries_, 0, kMaxQueries);
}

// A decode step records the same few hundred commands every token: reusing the command
// buffers, fence and descriptor pools keeps vkAllocate*/vkCreate* out of the per-token path.
void Recorder::restart(bool timing) {
  if (recording_ && n_commands_ == 0 && timing == timing_) return;
  if (in_flight_) {  // flushed work of an abandoned recording
    vkQueueWaitIdle(device_.queue());
    in_flight_ = false;
  }
  if (recording_) vkEndCommandBuffer(cmd_);
  for (size_t i = 0; i <= current_; ++i)
    check_vk(vkResetCommandBuffer(cmds_[i], 0), "vkResetCommandBuffer");
  current_ = 0;
  cmd_ = cmds_[0];
  bound_ = VK_NULL_HANDLE;
  n_sent_ = 0;
  since_flush_ = deferred_ = 0;
  // Once nothing recorded is pending, the cached sets may go.
  if (sets_.size() > kMaxCachedSets && sent_.empty()) drop_sets();
  n_sets_ = 0;
  read_.clear();
  written_.clear();
  n_commands_ = n_barriers_ = 0;
  n_queries_ = 0;
  labels_.clear();
  timings_.clear();
  begin(timing);
}

// The GPU starts on what is recorded so far while the host records the rest: recording a
// decode step takes milliseconds, as long as running it on a small model. Barrier tracking
// carries over, and a barrier orders against everything earlier in submission order.
void Recorder::flush() {
  if (!recording_ || since_flush_ == 0) return;
  check_vk(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd_;
  const auto t0 = Clock::now();
  check_vk(vkQueueSubmit(device_.queue(), 1, &si, VK_NULL_HANDLE), "vkQueueSubmit");
  host_.submit_ms += ms_since(t0);
  ++host_.submits;
  in_flight_ = true;
  ++n_sent_;
  since_flush_ = deferred_ = 0;
  next_command_buffer();
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check_vk(vkBeginCommandBuffer(cmd_, &bi), "vkBeginCommandBuffer");
}

void Recorder::drop_sets() {
  for (auto pool : pools_)
    check_vk(vkResetDescriptorPool(device_.handle(), pool, 0), "vkResetDescriptorPool");
  next_pool_ = 0;
  sets_left_ = 0;
  sets_.clear();
  sequence_.clear();
}

void Recorder::recorded() {
  ++n_commands_;
  ++since_flush_;
  if (!flush_every_) return;
  // The first chunk is small so the GPU starts early; later ones amortize the submit.
  const uint32_t due = (n_sent_ == 0 ? std::min(16u, flush_every_) : flush_every_) + deferred_;
  if (since_flush_ < due) return;
  // While a submit_async() recording still runs, the device is busy: a chunk sent now only
  // queues behind it. On the H200, chunks sent that way made the host record a decode step
  // up to twice as slowly (llama3.2-1b tg128 pipelined: 0.64 -> 1.60 ms per token, 714 -> 418
  // tokens/s; sending none kept 0.64); so look again after the next flush_every_ commands.
  if (!sent_.empty() && vkGetFenceStatus(device_.handle(), sent_.back().fence) == VK_NOT_READY) {
    deferred_ += flush_every_;
    return;
  }
  flush();
}

Recorder::~Recorder() {
  VkDevice dev = device_.handle();
  // submit() waits before it returns; a throw between a submit and the wait leaves work
  // pending, so wait for the queue (an unsubmitted fence would never signal).
  if (in_flight_ || !sent_.empty()) vkQueueWaitIdle(device_.queue());
  vkDestroyFence(dev, fence_, nullptr);
  for (Sent& s : sent_) {
    free_fences_.push_back(s.fence);
    free_cmds_.insert(free_cmds_.end(), s.cmds.begin(), s.cmds.end());
  }
  for (VkFence f : free_fences_) vkDestroyFence(dev, f, nullptr);
  free_cmds_.insert(free_cmds_.end(), cmds_.begin(), cmds_.end());
  if (!free_cmds_.empty())
    vkFreeCommandBuffers(dev, device_.command_pool(), uint32_t(free_cmds_.size()),
                         free_cmds_.data());
  for (auto pool : pools_) vkDestroyDescriptorPool(dev, pool, nullptr);
  if (queries_) vkDestroyQueryPool(dev, queries_, nullptr);
}

void Recorder::barrier() {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  vkCmdPipelineBarrier(cmd_, kStages, kStages, 0, 1, &mb, 0, nullptr, 0, nullptr);
  read_.clear();
  written_.clear();
  ++n_barriers_;
}

// Read after write, write after write and write after read need a barrier; reads after
// reads and commands on disjoint buffers run without one.
void Recorder::track(std::span<const Access> accesses) {
  if (!recording_) fail("recorder: command recorded after submit()");
  bool hazard = false;
  for (const auto& a : accesses)
    hazard |= contains(written_, a.buffer) || (a.write && contains(read_, a.buffer));
  if (hazard) barrier();
  for (const auto& a : accesses) (a.write ? written_ : read_).push_back(a.buffer);
}

void Recorder::stamp() {
  if (timing_ && n_queries_ < kMaxQueries)
    vkCmdWriteTimestamp(
        cmd_,
        n_queries_ % 2 ? VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT : VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT,
        queries_, n_queries_),
        ++n_queries_;
}

bool Recorder::SetKey::operator==(const SetKey& o) const {
  return layout == o.layout && n == o.n &&
         std::equal(ranges.begin(), ranges.begin() + n, o.ranges.begin());
}

size_t Recorder::SetKeyHash::operator()(const SetKey& k) const {
  uint64_t h = uint64_t(reinterpret_cast<uintptr_t>(k.layout)) * 0x9e3779b97f4a7c15ull + k.n;
  for (uint32_t i = 0; i < k.n; ++i)
    for (uint64_t v : k.ranges[i]) h = (h ^ v) * 0x100000001b3ull, h ^= h >> 29;
  return size_t(h);
}

// The set holding `infos`: written once, then found in sets_ by every later dispatch that
// binds the same ranges. A cached set is never updated, so one a pending command buffer uses
// stays as it was recorded.
VkDescriptorSet Recorder::descriptor_set(const SetKey& key,
                                         std::span<const VkDescriptorBufferInfo> infos) {
  const size_t i = n_sets_++;
  if (i < sequence_.size() && sequence_[i].first == key) return sequence_[i].second;
  const VkDescriptorSet set = cached_set(key, infos);
  if (i < sequence_.size())
    sequence_[i] = {key, set};
  else
    sequence_.emplace_back(key, set);
  return set;
}

VkDescriptorSet Recorder::cached_set(const SetKey& key,
                                     std::span<const VkDescriptorBufferInfo> infos) {
  if (auto it = sets_.find(key); it != sets_.end()) return it->second;
  const auto t0 = Clock::now();
  VkDevice dev = device_.handle();
  if (sets_left_ == 0) {
    if (next_pool_ == pools_.size()) {
      VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kMaxBindings};
      VkDescriptorPoolCreateInfo pci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
      pci.maxSets = kSetsPerPool;
      pci.poolSizeCount = 1;
      pci.pPoolSizes = &size;
      VkDescriptorPool pool;
      check_vk(vkCreateDescriptorPool(dev, &pci, nullptr, &pool), "vkCreateDescriptorPool");
      pools_.push_back(pool);
    }
    ++next_pool_;
    sets_left_ = kSetsPerPool;
  }
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorPool = pools_[next_pool_ - 1];
  ai.descriptorSetCount = 1;
  ai.pSetLayouts = &key.layout;
  VkDescriptorSet set;
  check_vk(vkAllocateDescriptorSets(dev, &ai, &set), "vkAllocateDescriptorSets");
  --sets_left_;
  std::array<VkWriteDescriptorSet, kMaxBindings> writes;
  for (size_t i = 0; i < infos.size(); ++i) {
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstSet = set;
    writes[i].dstBinding = uint32_t(i);
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  vkUpdateDescriptorSets(dev, uint32_t(infos.size()), writes.data(), 0, nullptr);
  sets_.emplace(key, set);
  host_.sets_ms += ms_since(t0);
  ++host_.set_writes;
  return set;
}

void Recorder::dispatch(const Kernel& kernel, std::span<const Binding> bindings,
                        std::span<const std::byte> push, std::array<uint32_t, 3> groups,
                        std::string_view label) {
  const KernelSpec& spec = kernel.spec();
  const Limits& l = device_.limits();
  if (bindings.size() != spec.n_buffers || spec.n_buffers > kMaxBindings)
    fail(spec.source, ": ", bindings.size(), " buffers bound, the kernel has ", spec.n_buffers);
  if (push.size() != spec.push_bytes)
    fail(spec.source, ": ", push.size(), " bytes of push constants, the kernel takes ",
         spec.push_bytes);
  for (int i = 0; i < 3; ++i)
    if (groups[i] > l.max_workgroup_count[i])
      fail(spec.source, ": ", groups[i], " workgroups exceed maxComputeWorkGroupCount[", i,
           "] = ", l.max_workgroup_count[i]);
  // Fixed arrays: a dispatch allocates nothing on the host.
  std::array<VkDescriptorBufferInfo, kMaxBindings> infos;
  std::array<Access, kMaxBindings> accesses;
  SetKey key;
  key.layout = kernel.set_layout();
  key.n = uint32_t(bindings.size());
  for (size_t i = 0; i < bindings.size(); ++i) {
    const Binding& b = bindings[i];
    if (!b.buffer) fail(spec.source, ": binding ", i, " has no buffer");
    const uint64_t size =
        b.size == VK_WHOLE_SIZE ? b.buffer->size() - std::min(b.offset, b.buffer->size()) : b.size;
    if (b.offset > b.buffer->size() || size > b.buffer->size() - b.offset || size == 0)
      fail(spec.source, ": binding ", i, " range [", b.offset, ", +", size, ") is outside buffer ",
           b.buffer->name(), " (", b.buffer->size(), " bytes)");
    if (size > l.max_storage_buffer_range)
      fail(spec.source, ": binding ", i, " of buffer ", b.buffer->name(), " spans ", size,
           " bytes, more than maxStorageBufferRange = ", l.max_storage_buffer_range);
    if (b.offset % l.min_storage_buffer_offset_alignment)
      fail(spec.source, ": binding ", i, " offset ", b.offset,
           " is not a multiple of minStorageBufferOffsetAlignment = ",
           l.min_storage_buffer_offset_alignment);
    infos[i] = {b.buffer->handle(), b.offset, size};
    accesses[i] = {b.buffer->handle(), b.write};
    key.ranges[i] = {b.buffer->serial(), b.offset, size};
  }
  track(std::span(accesses.data(), bindings.size()));

  if (groups[0] == 0 || groups[1] == 0 || groups[2] == 0) return;
  const VkDescriptorSet set = descriptor_set(key, std::span(infos.data(), bindings.size()));
  if (bound_ != kernel.pipeline()) {
    vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.pipeline());
    bound_ = kernel.pipeline();
  }
  vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.layout(), 0, 1, &set, 0,
                          nullptr);
  if (!push.empty())
    vkCmdPushConstants(cmd_, kernel.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, uint32_t(push.size()),
                       push.data());
  stamp();
  vkCmdDispatch(cmd_, groups[0], groups[1], groups[2]);
  stamp();
  if (timing_) labels_.emplace_back(label.empty() ? std::string_view(spec.source) : label);
  recorded();
}

void Recorder::copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset,
                    uint64_t size) {
  if (src_offset > src.size() || size > src.size() - src_offset || dst_offset > dst.size() ||
      size > dst.size() - dst_offset)
    fail("copy of ", size, " bytes from ", src.name(), "+", src_offset, " to ", dst.name(), "+",
         dst_offset, " is out of bounds");
  const Access a[] = {{src.handle(), false}, {dst.handle(), true}};
  track(a);
  VkBufferCopy region{src_offset, dst_offset, size};
  stamp();
  vkCmdCopyBuffer(cmd_, src.handle(), dst.handle(), 1, &region);
  stamp();
  if (timing_) labels_.push_back(cat("copy ", src.name(), " -> ", dst.name()));
  recorded();
}

void Recorder::fill(const Buffer& dst, uint64_t offset, uint64_t size, uint32_t value) {
  if (offset > dst.size() || size > dst.size() - offset || offset % 4 || size % 4)
    fail("fill of ", size, " bytes at ", dst.name(), "+", offset, " is out of bounds or unaligned");
  const Access a[] = {{dst.handle(), true}};
  track(a);
  stamp();
  vkCmdFillBuffer(cmd_, dst.handle(), offset, size, value);
  stamp();
  if (timing_) labels_.push_back(cat("fill ", dst.name()));
  recorded();
}

void Recorder::update(const Buffer& dst, uint64_t offset, std::span<const std::byte> bytes) {
  if (offset > dst.size() || bytes.size() > dst.size() - offset || offset % 4 || bytes.size() % 4 ||
      bytes.empty() || bytes.size() > kMaxUpdateBytes)
    fail("update of ", bytes.size(), " bytes at ", dst.name(), "+", offset,
         " is out of bounds, unaligned or over ", kMaxUpdateBytes, " bytes");
  const Access a[] = {{dst.handle(), true}};
  track(a);
  stamp();
  vkCmdUpdateBuffer(cmd_, dst.handle(), offset, bytes.size(), bytes.data());
  stamp();
  if (timing_) labels_.push_back(cat("update ", dst.name()));
  recorded();
}

void Recorder::end() {
  if (!recording_) return;
  // Results become visible to the host (readback buffers) once the fence signals.
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd_, kStages, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0,
                       nullptr);
  check_vk(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
  recording_ = false;
}

uint64_t Recorder::submit_async() {
  if (timing_) fail("recorder: submit_async() while timing");
  if (!recording_) fail("recorder: submit_async() after submit() without restart()");
  VkDevice dev = device_.handle();
  end();
  device_.check();
  VkFence fence;
  if (!free_fences_.empty()) {
    fence = free_fences_.back();
    free_fences_.pop_back();
    check_vk(vkResetFences(dev, 1, &fence), "vkResetFences");
  } else {
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check_vk(vkCreateFence(dev, &fci, nullptr, &fence), "vkCreateFence");
  }
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = uint32_t(current_ + 1 - n_sent_);
  si.pCommandBuffers = cmds_.data() + n_sent_;
  const auto t0 = Clock::now();
  const VkResult r = vkQueueSubmit(device_.queue(), 1, &si, fence);
  host_.submit_ms += ms_since(t0);
  ++host_.submits;
  if (r != VK_SUCCESS) {
    free_fences_.push_back(fence);
    check_vk(r, "vkQueueSubmit");
  }
  // The fence covers the chunks flush() sent before (submission order).
  in_flight_ = false;
  const auto used = cmds_.begin() + ptrdiff_t(current_ + 1);
  sent_.push_back({next_ticket_, fence, std::vector<VkCommandBuffer>(cmds_.begin(), used)});
  cmds_.erase(cmds_.begin(), used);

  // Sets grow only while shapes change; past the cap they go once the device has run
  // everything that binds them (restart() drops them only with nothing pending).
  if (sets_.size() > kMaxCachedSets) {
    wait_all();
    drop_sets();
  }
  // A new recording in the spare command buffers, ordered after everything sent.
  current_ = 0;
  if (cmds_.empty()) {
    next_command_buffer();
  } else {
    cmd_ = cmds_[0];
    bound_ = VK_NULL_HANDLE;
  }
  n_sent_ = 0;
  since_flush_ = deferred_ = 0;
  n_sets_ = 0;
  n_commands_ = n_barriers_ = 0;
  begin(false);
  barrier();
  n_barriers_ = 0;
  return next_ticket_++;
}

void Recorder::retire(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    Sent& s = sent_[i];
    for (VkCommandBuffer c : s.cmds) {
      check_vk(vkResetCommandBuffer(c, 0), "vkResetCommandBuffer");
      free_cmds_.push_back(c);
    }
    free_fences_.push_back(s.fence);
    done_ticket_ = std::max(done_ticket_, s.ticket);
  }
  sent_.erase(sent_.begin(), sent_.begin() + ptrdiff_t(n));
}

// A fence of a queue submit also covers every command submitted before it, so waiting for
// one ticket finishes all earlier ones.
void Recorder::wait(uint64_t ticket) {
  if (ticket <= done_ticket_) return;
  if (ticket >= next_ticket_) fail("recorder: wait for ticket ", ticket, ", not sent yet");
  size_t i = 0;
  while (i < sent_.size() && sent_[i].ticket < ticket) ++i;
  const auto t0 = Clock::now();
  check_vk(vkWaitForFences(device_.handle(), 1, &sent_[i].fence, VK_TRUE, UINT64_MAX),
           "vkWaitForFences");
  host_.wait_ms += ms_since(t0);
  ++host_.waits;
  retire(i + 1);
  device_.check();
}

void Recorder::wait_all() {
  if (!sent_.empty()) wait(sent_.back().ticket);
}

void Recorder::submit() {
  VkDevice dev = device_.handle();
  end();
  device_.check();
  check_vk(vkResetFences(dev, 1, &fence_), "vkResetFences");
  // The chunks flush() has not sent; all of them again when submit() repeats a recording.
  const size_t first = n_sent_ > current_ ? 0 : n_sent_;
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = uint32_t(current_ + 1 - first);
  si.pCommandBuffers = cmds_.data() + first;
  auto t0 = Clock::now();
  check_vk(vkQueueSubmit(device_.queue(), 1, &si, fence_), "vkQueueSubmit");
  host_.submit_ms += ms_since(t0);
  ++host_.submits;
  in_flight_ = true;
  t0 = Clock::now();
  check_vk(vkWaitForFences(dev, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  host_.wait_ms += ms_since(t0);
  ++host_.waits;
  in_flight_ = false;
  n_sent_ = current_ + 1;
  retire(sent_.size());
  device_.check();

  timings_.clear();
  if (timing_ && n_queries_ > 0) {
    std::vector<uint64_t> stamps(n_queries_);
    check_vk(vkGetQueryPoolResults(dev, queries_, 0, n_queries_, stamps.size() * 8, stamps.data(),
                                   8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
             "vkGetQueryPoolResults");
    const double ns = device_.limits().timestamp_period_ns;
    for (uint32_t i = 0; i + 1 < n_queries_; i += 2)
      timings_.push_back({labels_[i / 2], double(stamps[i + 1] - stamps[i]) * ns * 1e-6});
  }
}

}  // namespace ml::vk
