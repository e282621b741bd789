#pragma once
// Private helpers of the vk module.
#include <vulkan/vulkan.h>

#include <cstdint>
#include <functional>

#include "ml/error.h"

namespace ml::vk {

inline void check_vk(VkResult result, const char* what) {
  if (result != VK_SUCCESS) fail(what, " failed: VkResult ", int(result));
}

inline uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}
inline uint64_t align_down(uint64_t v, uint64_t a) {
  return v / a * a;
}

// Whether `physical` offers a device extension, by name (its list read once per call of this
// function; the returned test may be asked many names).
std::function<bool(const char*)> device_extensions(VkPhysicalDevice physical);

}  // namespace ml::vk
