// The limits probe: what the chosen device can do, read once through
// vkGetPhysicalDeviceProperties2/Features2 and kept in Limits.
#include <cstring>
#include <sstream>

#include "ml/vk.h"
#include "vk/util.h"

namespace ml::vk {
namespace {

const char* type_name(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "CPU";
    default:
      return "other";
  }
}

std::string subgroup_ops(VkSubgroupFeatureFlags f) {
  static const std::pair<VkSubgroupFeatureFlagBits, const char*> names[] = {
      {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
      {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
      {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
      {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
      {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
      {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
  };
  std::string out;
  for (auto [bit, name] : names)
    if (f & bit) {
      if (!out.empty()) out += ' ';
      out.append(name);
    }
  return out;
}

std::string mib(uint64_t bytes) {
  std::ostringstream s;
  s << bytes << " (" << double(bytes) / double(1 << 20) << " MiB)";
  return s.str();
}

}  // namespace

std::function<bool(const char*)> device_extensions(VkPhysicalDevice physical) {
  uint32_t n_ext = 0;
  vkEnumerateDeviceExtensionProperties(physical, nullptr, &n_ext, nullptr);
  std::vector<VkExtensionProperties> exts(n_ext);
  vkEnumerateDeviceExtensionProperties(physical, nullptr, &n_ext, exts.data());
  return [exts = std::move(exts)](const char* name) {
    for (const auto& e : exts)
      if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
  };
}

void Device::probe_limits() {
  const auto has_ext = device_extensions(physical_);

  VkPhysicalDeviceProperties base;
  vkGetPhysicalDeviceProperties(physical_, &base);
  const bool v13 = base.apiVersion >= VK_API_VERSION_1_3;

  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  VkPhysicalDeviceVulkan11Properties p11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
  VkPhysicalDeviceVulkan12Properties p12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
  VkPhysicalDeviceMaintenance4Properties m4{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
  props.pNext = &p11;
  p11.pNext = &p12;
  // maintenance4 (core in 1.3) is the only place maxBufferSize is reported.
  const bool has_m4 = v13 || has_ext(VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
  if (has_m4) p12.pNext = &m4;
  vkGetPhysicalDeviceProperties2(physical_, &props);

  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures idp{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  feats.pNext = &f11;
  f11.pNext = &f12;
  // The feature struct may be chained only where the device knows it (1.3, or the extension).
  if (v13 || has_ext(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME)) f12.pNext = &idp;
  vkGetPhysicalDeviceFeatures2(physical_, &feats);

  const auto& l = base.limits;
  Limits& o = limits_;
  o.device_name = base.deviceName;
  o.device_type = type_name(base.deviceType);
  o.driver = std::string(p12.driverName) + " " + p12.driverInfo;
  o.vendor_id = base.vendorID;
  o.device_id = base.deviceID;
  o.driver_version = base.driverVersion;
  o.api_version = base.apiVersion;
  o.max_storage_buffer_range = l.maxStorageBufferRange;
  o.max_memory_allocation_size = p11.maxMemoryAllocationSize;
  o.max_buffer_size_from_maintenance4 = has_m4;
  o.max_buffer_size = has_m4 ? m4.maxBufferSize : p11.maxMemoryAllocationSize;
  o.min_storage_buffer_offset_alignment = l.minStorageBufferOffsetAlignment;
  o.max_bound_descriptor_sets = l.maxBoundDescriptorSets;
  o.max_per_stage_storage_buffers = l.maxPerStageDescriptorStorageBuffers;
  o.max_push_constants_size = l.maxPushConstantsSize;
  for (int i = 0; i < 3; ++i) {
    o.max_workgroup_size[i] = l.maxComputeWorkGroupSize[i];
    o.max_workgroup_count[i] = l.maxComputeWorkGroupCount[i];
  }
  o.max_workgroup_invocations = l.maxComputeWorkGroupInvocations;
  o.max_shared_memory = l.maxComputeSharedMemorySize;
  o.subgroup_size = p11.subgroupSize;
  o.subgroup_arithmetic = (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  o.subgroup_operations = subgroup_ops(p11.subgroupSupportedOperations);
  o.shader_float16 = f12.shaderFloat16;
  o.shader_int8 = f12.shaderInt8;
  o.shader_int16 = feats.features.shaderInt16;
  o.shader_int64 = feats.features.shaderInt64;
  o.storage_buffer_16bit = f11.storageBuffer16BitAccess;
  o.storage_buffer_8bit = f12.storageBuffer8BitAccess;
  o.integer_dot_product = idp.shaderIntegerDotProduct;
  o.cooperative_matrix =
      has_ext("VK_KHR_cooperative_matrix") || has_ext("VK_NV_cooperative_matrix");

  uint32_t n_fam = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &n_fam, nullptr);
  std::vector<VkQueueFamilyProperties> fams(n_fam);
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &n_fam, fams.data());
  o.timestamps = fams[queue_family_].timestampValidBits > 0 && l.timestampPeriod > 0;
  o.timestamp_period_ns = l.timestampPeriod;

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(physical_, &mem);
  for (uint32_t i = 0; i < mem.memoryHeapCount; ++i)
    o.heaps.push_back({mem.memoryHeaps[i].size,
                       bool(mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)});
}

bool has_subgroup_operation(const Limits& limits, std::string_view op) {
  const std::string_view ops = limits.subgroup_operations;
  for (size_t at = ops.find(op); at != std::string_view::npos; at = ops.find(op, at + 1))
    if ((at == 0 || ops[at - 1] == ' ') &&
        (at + op.size() == ops.size() || ops[at + op.size()] == ' '))
      return true;
  return false;
}

std::string describe(const Limits& l) {
  std::ostringstream s;
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  s << "device: " << l.device_name << " (" << l.device_type << ", vendor 0x" << std::hex
    << l.vendor_id << " device 0x" << l.device_id << std::dec << ", Vulkan "
    << VK_API_VERSION_MAJOR(l.api_version) << "." << VK_API_VERSION_MINOR(l.api_version) << "."
    << VK_API_VERSION_PATCH(l.api_version) << ", driver " << l.driver << ")\n";
  s << "maxStorageBufferRange: " << mib(l.max_storage_buffer_range) << "\n";
  s << "maxBufferSize: " << mib(l.max_buffer_size)
    << (l.max_buffer_size_from_maintenance4 ? " (maintenance4)" : " (maxMemoryAllocationSize)")
    << "\n";
  s << "maxMemoryAllocationSize: " << mib(l.max_memory_allocation_size) << "\n";
  s << "minStorageBufferOffsetAlignment: " << l.min_storage_buffer_offset_alignment << "\n";
  s << "maxBoundDescriptorSets: " << l.max_bound_descriptor_sets << "\n";
  s << "maxPerStageDescriptorStorageBuffers: " << l.max_per_stage_storage_buffers << "\n";
  s << "maxPushConstantsSize: " << l.max_push_constants_size << "\n";
  s << "maxComputeWorkGroupSize: " << l.max_workgroup_size[0] << " " << l.max_workgroup_size[1]
    << " " << l.max_workgroup_size[2] << "\n";
  s << "maxComputeWorkGroupCount: " << l.max_workgroup_count[0] << " " << l.max_workgroup_count[1]
    << " " << l.max_workgroup_count[2] << "\n";
  s << "maxComputeWorkGroupInvocations: " << l.max_workgroup_invocations << "\n";
  s << "maxComputeSharedMemorySize: " << l.max_shared_memory << "\n";
  s << "subgroupSize: " << l.subgroup_size << " (operations: " << l.subgroup_operations << ")\n";
  s << "shaderFloat16: " << yes(l.shader_float16) << ", shaderInt8: " << yes(l.shader_int8)
    << ", shaderInt16: " << yes(l.shader_int16) << ", shaderInt64: " << yes(l.shader_int64) << "\n";
  s << "storageBuffer16BitAccess: " << yes(l.storage_buffer_16bit)
    << ", storageBuffer8BitAccess: " << yes(l.storage_buffer_8bit) << "\n";
  s << "shaderIntegerDotProduct: " << yes(l.integer_dot_product) << "\n";
  s << "cooperativeMatrix: " << yes(l.cooperative_matrix) << "\n";
  s << "timestamps: " << yes(l.timestamps) << " (period " << l.timestamp_period_ns << " ns)\n";
  for (size_t i = 0; i < l.heaps.size(); ++i)
    s << "memory heap " << i << ": " << mib(l.heaps[i].size)
      << (l.heaps[i].device_local ? " device-local" : " host") << "\n";
  return s.str();
}

}  // namespace ml::vk
