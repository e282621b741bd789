#pragma once
// Private helpers of the vk module.
#include <vulkan/vulkan.h>

#include <cstdint>

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

}  // namespace ml::vk
