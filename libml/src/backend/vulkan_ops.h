#pragma once
// Helpers shared by the Vulkan backend's op files (vulkan_ops.cpp, vulkan_attention.cpp):
// shape checks, kernel specs, bindings.
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/vulkan.h"

namespace ml::vkops {

inline constexpr uint32_t kWg = 64;  // every kernel here: 64 invocations (always within the limits)

// A tensor's shape in an error message, formatted only when the message is built.
struct Shape {
  const Tensor& t;
};
inline std::ostream& operator<<(std::ostream& out, Shape s) {
  return out << shape_string(s.t);
}

// The message is built only on failure: shapes are checked on every op of every token.
template <typename... Args>
void need(bool ok, std::string_view op, const Args&... what) {
  if (!ok) fail("vulkan backend: ", op, ": ", what...);
}

inline uint32_t u32(int64_t v, std::string_view op) {
  need(v >= 0 && v <= int64_t(UINT32_MAX), op, v, " does not fit the kernels' 32-bit indices");
  return uint32_t(v);
}

inline vk::KernelSpec spec(std::string source, uint32_t n_buffers, uint32_t push_bytes,
                           vk::Defines defines = {}, uint32_t wg = kWg) {
  defines.push_back({"WG", wg});
  return {std::move(source), defines, n_buffers, push_bytes, wg, 0};
}

// The whole buffer as one binding; a binding cannot exceed maxStorageBufferRange.
inline vk::Binding bind(const vk::Device& device, const vk::Buffer& b, bool write = false) {
  if (b.size() > device.limits().max_storage_buffer_range)
    fail("vulkan backend: tensor ", b.name(), " of ", b.size(),
         " bytes exceeds maxStorageBufferRange = ", device.limits().max_storage_buffer_range);
  return {&b, 0, VK_WHOLE_SIZE, write};
}

template <typename Push>
std::span<const std::byte> bytes_of(const Push& p) {
  return std::as_bytes(std::span<const Push>(&p, 1));
}

}  // namespace ml::vkops
