// Buffers sub-allocated from large memory blocks, and the staging ring for uploads/readback.
#include <algorithm>
#include <cstring>

#include "ml/vk.h"
#include "vk/util.h"

namespace ml::vk {
namespace {

// Blocks are large so that a model's hundreds of tensors take a handful of allocations
// (drivers cap vkAllocateMemory calls, maxMemoryAllocationCount is 4096 on many).
constexpr uint64_t kBlockBytes = 256ull << 20;

const char* memory_name(Memory m) {
  switch (m) {
    case Memory::device:
      return "device-local";
    case Memory::upload:
      return "upload";
    case Memory::readback:
      return "readback";
  }
  return "?";
}

}  // namespace

uint32_t Device::memory_type(uint32_t type_bits, Memory memory) const {
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(physical_, &mem);
  const VkMemoryPropertyFlags host =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  std::vector<VkMemoryPropertyFlags> wanted;
  switch (memory) {
    case Memory::device:
      wanted = {VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0};
      break;
    case Memory::upload:
      wanted = {host};
      break;
    case Memory::readback:
      wanted = {host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, host};
      break;
  }
  for (auto flags : wanted)
    for (uint32_t i = 0; i < mem.memoryTypeCount; ++i)
      if ((type_bits & (1u << i)) && (mem.memoryTypes[i].propertyFlags & flags) == flags) return i;
  fail("no memory type for ", memory_name(memory), " buffers (type bits 0x", std::hex, type_bits,
       ")");
}

Device::Allocation Device::allocate(const VkMemoryRequirements& req, Memory memory,
                                    const std::string& what) {
  const uint32_t type = memory_type(req.memoryTypeBits, memory);
  const uint64_t align = std::max<uint64_t>(req.alignment, 1);
  if (req.size <= kBlockBytes / 2) {
    for (uint32_t b = 0; b < blocks_.size(); ++b) {
      Block& block = blocks_[b];
      if (block.dedicated || !block.memory || block.kind != memory) continue;
      for (auto [off, size] : block.free_ranges) {
        uint64_t start = align_up(off, align);
        if (start + req.size > off + size) continue;
        block.free_ranges.erase(off);
        if (start > off) block.free_ranges[off] = start - off;
        if (off + size > start + req.size)
          block.free_ranges[start + req.size] = off + size - start - req.size;
        block.used[start] = req.size;
        allocated_bytes_ += req.size;
        return {b, start, block.memory, block.mapped ? block.mapped + start : nullptr};
      }
    }
  }
  const bool dedicated = req.size > kBlockBytes / 2;
  const uint64_t size = dedicated ? req.size : kBlockBytes;
  if (size > limits_.max_memory_allocation_size)
    fail(what, ": ", size,
         " bytes exceed maxMemoryAllocationSize = ", limits_.max_memory_allocation_size);
  VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  mai.allocationSize = size;
  mai.memoryTypeIndex = type;
  Block block;
  block.size = size;
  block.kind = memory;
  block.dedicated = dedicated;
  if (VkResult r = vkAllocateMemory(device_, &mai, nullptr, &block.memory); r != VK_SUCCESS)
    fail(what, ": allocating ", size, " bytes of ", memory_name(memory),
         " memory failed (VkResult ", int(r), ", ", allocated_bytes_, " bytes already in use)");
  if (memory != Memory::device) {
    void* p = nullptr;
    check_vk(vkMapMemory(device_, block.memory, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
    block.mapped = static_cast<std::byte*>(p);
  }
  block.used[0] = req.size;
  if (!dedicated) block.free_ranges[req.size] = size - req.size;
  allocated_bytes_ += req.size;
  uint32_t index = uint32_t(blocks_.size());
  for (uint32_t b = 0; b < blocks_.size(); ++b)
    if (!blocks_[b].memory) index = b;
  if (index == blocks_.size()) blocks_.emplace_back();
  blocks_[index] = std::move(block);
  return {index, 0, blocks_[index].memory, blocks_[index].mapped};
}

void Device::free(uint32_t b, uint64_t offset) {
  Block& block = blocks_.at(b);
  auto it = block.used.find(offset);
  if (it == block.used.end()) return;
  uint64_t size = it->second;
  block.used.erase(it);
  allocated_bytes_ -= size;
  if (block.dedicated || block.used.empty()) {
    // An empty block goes back to the driver: weights of a closed model do not linger.
    vkFreeMemory(device_, block.memory, nullptr);
    block = Block{};
    return;
  }
  // Coalesce with the free neighbours.
  auto next = block.free_ranges.find(offset + size);
  if (next != block.free_ranges.end()) size += next->second, block.free_ranges.erase(next);
  auto prev = block.free_ranges.lower_bound(offset);
  if (prev != block.free_ranges.begin()) {
    --prev;
    if (prev->first + prev->second == offset) {
      prev->second += size;
      return;
    }
  }
  block.free_ranges[offset] = size;
}

Buffer::Buffer(Device& device, uint64_t size, Memory memory, std::string name)
    : device_(device),
      size_(size),
      memory_(memory),
      name_(std::move(name)),
      serial_(device.next_buffer_serial()) {
  const Limits& l = device.limits();
  if (size == 0) fail("buffer ", name_, ": size 0");
  if (size > l.max_buffer_size)
    fail("buffer ", name_, ": ", size, " bytes exceed maxBufferSize = ", l.max_buffer_size);
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = size;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
              VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check_vk(vkCreateBuffer(device.handle(), &bci, nullptr, &buffer_), "vkCreateBuffer");
  try {
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device.handle(), buffer_, &req);
    auto a = device.allocate(req, memory, "buffer " + name_);
    block_ = a.block;
    offset_ = a.offset;
    mapped_ = a.mapped;
    if (memory == Memory::device && device.options().on_alloc)
      device.options().on_alloc(name_, req.size, device.allocated_bytes());
    if (VkResult r = vkBindBufferMemory(device.handle(), buffer_, a.memory, a.offset);
        r != VK_SUCCESS) {
      device.free(block_, offset_);
      fail("vkBindBufferMemory failed: VkResult ", int(r));
    }
  } catch (...) {
    vkDestroyBuffer(device.handle(), buffer_, nullptr);
    throw;
  }
}

Buffer::~Buffer() {
  vkDestroyBuffer(device_.handle(), buffer_, nullptr);
  device_.free(block_, offset_);
}

std::byte* Buffer::mapped() const {
  if (!mapped_) fail("buffer ", name_, " is device-local and has no host mapping");
  return mapped_;
}

StagingRing::StagingRing(Device& device, uint64_t bytes)
    : device_(device),
      half_(align_up(std::max<uint64_t>(bytes / 2, 1024), 16)),
      staging_(device, 2 * half_, Memory::upload, "staging ring") {
  for (auto& h : halves_) {
    VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.commandPool = device.command_pool();
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 1;
    check_vk(vkAllocateCommandBuffers(device.handle(), &cai, &h.cmd), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check_vk(vkCreateFence(device.handle(), &fci, nullptr, &h.fence), "vkCreateFence");
  }
}

StagingRing::~StagingRing() {
  for (auto& h : halves_) {
    if (h.pending) vkWaitForFences(device_.handle(), 1, &h.fence, VK_TRUE, UINT64_MAX);
    vkDestroyFence(device_.handle(), h.fence, nullptr);
    vkFreeCommandBuffers(device_.handle(), device_.command_pool(), 1, &h.cmd);
  }
}

void StagingRing::wait(Half& h) {
  if (!h.pending) return;
  check_vk(vkWaitForFences(device_.handle(), 1, &h.fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  check_vk(vkResetFences(device_.handle(), 1, &h.fence), "vkResetFences");
  h.pending = false;
  device_.check();
}

void StagingRing::flush(Half& h) {
  check_vk(vkEndCommandBuffer(h.cmd), "vkEndCommandBuffer");
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &h.cmd;
  check_vk(vkQueueSubmit(device_.queue(), 1, &si, h.fence), "vkQueueSubmit");
  h.pending = true;
  ++n_submits_;
}

void StagingRing::upload(const Buffer& dst, uint64_t dst_offset, uint64_t size, const Fill& fill) {
  if (dst_offset > dst.size() || size > dst.size() - dst_offset)
    fail("upload of ", size, " bytes at offset ", dst_offset, " overflows buffer ", dst.name(),
         " (", dst.size(), " bytes)");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  for (uint64_t done = 0, i = 0; done < size; ++i) {
    Half& h = halves_[i % 2];
    wait(h);  // the copy that last used this half has finished reading it
    const uint64_t n = std::min(half_, size - done);
    std::byte* chunk = staging_.mapped() + (i % 2) * half_;
    fill(done, std::span<std::byte>(chunk, n));
    check_vk(vkBeginCommandBuffer(h.cmd, &bi), "vkBeginCommandBuffer");
    VkBufferCopy region{(i % 2) * half_, dst_offset + done, n};
    vkCmdCopyBuffer(h.cmd, staging_.handle(), dst.handle(), 1, &region);
    flush(h);
    done += n;
  }
  // Uploads finish before the caller records work that reads dst on the same queue.
  for (auto& h : halves_) wait(h);
}

void StagingRing::upload(const Buffer& dst, uint64_t dst_offset, std::span<const std::byte> b) {
  upload(dst, dst_offset, b.size(), [&](uint64_t off, std::span<std::byte> out) {
    std::memcpy(out.data(), b.data() + off, out.size());
  });
}

void StagingRing::download(const Buffer& src, uint64_t src_offset, std::span<std::byte> out) {
  if (src_offset > src.size() || out.size() > src.size() - src_offset)
    fail("download of ", out.size(), " bytes at offset ", src_offset, " overflows buffer ",
         src.name(), " (", src.size(), " bytes)");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  Half& h = halves_[0];
  for (uint64_t done = 0; done < out.size();) {
    const uint64_t n = std::min(half_, out.size() - done);
    wait(h);
    check_vk(vkBeginCommandBuffer(h.cmd, &bi), "vkBeginCommandBuffer");
    VkBufferCopy region{src_offset + done, 0, n};
    vkCmdCopyBuffer(h.cmd, src.handle(), staging_.handle(), 1, &region);
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(h.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &mb, 0, nullptr, 0, nullptr);
    flush(h);
    wait(h);
    std::memcpy(out.data() + done, staging_.mapped(), n);
    done += n;
  }
}

std::unique_ptr<Buffer> upload_buffer(Device& device, StagingRing& ring,
                                      std::span<const std::byte> bytes, std::string name) {
  auto buffer = std::make_unique<Buffer>(device, bytes.size(), Memory::device, std::move(name));
  ring.upload(*buffer, 0, bytes);
  return buffer;
}

}  // namespace ml::vk
