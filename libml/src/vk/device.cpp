// Instance, validation messenger, physical device choice, logical device and queue.
#include <glslang/Include/glslang_c_interface.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>

#include "ml/vk.h"
#include "vk/util.h"

namespace ml::vk {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                          VkDebugUtilsMessageTypeFlagsEXT,
                                          const VkDebugUtilsMessengerCallbackDataEXT* data,
                                          void* user) {
  if (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                  VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
    static_cast<Device*>(user)->record_message(data && data->pMessage ? data->pMessage : "?");
  }
  return VK_FALSE;
}

bool env_true(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

// Discrete GPUs first, then integrated, virtual, CPU (lavapipe).
int device_rank(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return 1;
    default:
      return 0;
  }
}

std::optional<uint32_t> compute_family(VkPhysicalDevice pd) {
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> families(n);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, families.data());
  for (uint32_t i = 0; i < n; ++i)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return i;
  return std::nullopt;
}

std::string default_cache_dir() {
  if (const char* v = std::getenv("ML_CACHE_DIR"); v && *v) return v;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return std::string(v) + "/ml";
  if (const char* v = std::getenv("HOME"); v && *v) return std::string(v) + "/.cache/ml";
  return {};
}

}  // namespace

Device::Device(const DeviceOptions& options) : options_(options) {
  validate_ = options.validate || env_true("ML_VALIDATE");
  disk_cache_ = options.disk_cache;
  cache_dir_ = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;

  uint32_t loader_version = VK_API_VERSION_1_0;
  vkEnumerateInstanceVersion(&loader_version);
  if (loader_version < VK_API_VERSION_1_2)
    fail("the Vulkan loader supports only ", VK_API_VERSION_MAJOR(loader_version), ".",
         VK_API_VERSION_MINOR(loader_version), "; ml needs Vulkan 1.2");

  std::vector<const char*> layers, extensions;
  if (validate_) {
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, nullptr);
    std::vector<VkLayerProperties> available(n);
    vkEnumerateInstanceLayerProperties(&n, available.data());
    bool found = false;
    for (const auto& l : available) found |= std::strcmp(l.layerName, kValidationLayer) == 0;
    if (!found)
      fail("ML_VALIDATE=1 but the layer ", kValidationLayer,
           " is not installed (Debian: vulkan-validationlayers)");
    layers.push_back(kValidationLayer);
    extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "ml";
  app.apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2;
  VkDebugUtilsMessengerCreateInfoEXT messenger{
      VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  messenger.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                              VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  messenger.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                          VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                          VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  messenger.pfnUserCallback = on_message;
  messenger.pUserData = this;

  VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ici.pApplicationInfo = &app;
  ici.enabledLayerCount = uint32_t(layers.size());
  ici.ppEnabledLayerNames = layers.data();
  ici.enabledExtensionCount = uint32_t(extensions.size());
  ici.ppEnabledExtensionNames = extensions.data();
  if (validate_) ici.pNext = &messenger;  // also catches messages of vkCreateInstance itself
  check_vk(vkCreateInstance(&ici, nullptr, &instance_), "vkCreateInstance");

  try {
    if (validate_) {
      auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(instance_, "vkCreateDebugUtilsMessengerEXT"));
      if (!create) fail("vkCreateDebugUtilsMessengerEXT is missing");
      check_vk(create(instance_, &messenger, nullptr, &messenger_),
               "vkCreateDebugUtilsMessengerEXT");
    }
    pick_device(options);
    probe_limits();
    if (options.storage_buffer_range_cap)
      limits_.max_storage_buffer_range =
          std::min(limits_.max_storage_buffer_range, options.storage_buffer_range_cap);
    if (options.on_limits) options.on_limits(limits_);

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = queue_family_;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    const auto has = device_extensions(physical_);
    std::vector<const char*> enabled;
    // matmul_vec_q.comp's packed int8x4 dot products (OpSDot) need the feature enabled; the
    // extension is named too so a 1.2 device that has it (and validation) accept the SPIR-V.
    VkPhysicalDeviceShaderIntegerDotProductFeatures idp{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    if (limits_.integer_dot_product) {
      idp.shaderIntegerDotProduct = VK_TRUE;
      idp.pNext = const_cast<void*>(dci.pNext);
      dci.pNext = &idp;
      if (has(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME))
        enabled.push_back(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    }
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pep{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    if (const char* e = std::getenv("ML_PIPELINE_STATS");
        e && std::strcmp(e, "1") == 0 &&
        has(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME)) {
      pep.pipelineExecutableInfo = VK_TRUE;
      pep.pNext = const_cast<void*>(dci.pNext);
      dci.pNext = &pep;
      enabled.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
      pipeline_stats_ = true;
    }
    // 64-bit integers where present: matmul_vec_q.comp's funnel shifts.
    VkPhysicalDeviceFeatures features{};
    features.shaderInt64 = limits_.shader_int64 ? VK_TRUE : VK_FALSE;
    dci.pEnabledFeatures = &features;
    dci.enabledExtensionCount = uint32_t(enabled.size());
    dci.ppEnabledExtensionNames = enabled.data();
    check_vk(vkCreateDevice(physical_, &dci, nullptr, &device_), "vkCreateDevice");
    vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = queue_family_;
    check_vk(vkCreateCommandPool(device_, &pci, nullptr, &pool_), "vkCreateCommandPool");
    glslang_initialize_process();
    glslang_ready_ = true;
    check();
  } catch (...) {
    release();
    throw;
  }
}

Device::~Device() noexcept(false) {
  release();
  if (!messages_.empty() && std::uncaught_exceptions() == 0) check();
}

void Device::release() noexcept {
  kernels_.clear();
  if (device_) {
    vkDeviceWaitIdle(device_);
    if (pool_) vkDestroyCommandPool(device_, pool_, nullptr);
    for (auto& b : blocks_)
      if (b.memory) vkFreeMemory(device_, b.memory, nullptr);
    vkDestroyDevice(device_, nullptr);
  }
  blocks_.clear();
  device_ = VK_NULL_HANDLE;
  pool_ = VK_NULL_HANDLE;
  if (messenger_) {
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
    if (destroy) destroy(instance_, messenger_, nullptr);
    messenger_ = VK_NULL_HANDLE;
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
  instance_ = VK_NULL_HANDLE;
  if (glslang_ready_) glslang_finalize_process();
  glslang_ready_ = false;
}

void Device::pick_device(const DeviceOptions& options) {
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(instance_, &n, nullptr);
  std::vector<VkPhysicalDevice> devices(n);
  vkEnumeratePhysicalDevices(instance_, &n, devices.data());
  if (n == 0) fail("no Vulkan device found (lavapipe: install mesa-vulkan-drivers)");

  std::optional<uint32_t> wanted = options.index;
  if (!wanted) {
    if (const char* env = std::getenv("ML_DEVICE"); env && *env) {
      char* end = nullptr;
      unsigned long v = std::strtoul(env, &end, 10);
      if (*end || v > 1000) fail("ML_DEVICE=", env, " is not a device index");
      wanted = uint32_t(v);
    }
  }
  auto usable = [](VkPhysicalDevice pd) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    return p.apiVersion >= VK_API_VERSION_1_2 && compute_family(pd).has_value();
  };
  if (wanted) {
    if (*wanted >= n) fail("device ", *wanted, " requested but there are only ", n, " devices");
    if (!usable(devices[*wanted])) fail("device ", *wanted, " lacks Vulkan 1.2 or a compute queue");
    physical_ = devices[*wanted];
  } else {
    int best = -1;
    for (auto pd : devices) {
      if (!usable(pd)) continue;
      VkPhysicalDeviceProperties p;
      vkGetPhysicalDeviceProperties(pd, &p);
      if (device_rank(p.deviceType) > best) best = device_rank(p.deviceType), physical_ = pd;
    }
    if (!physical_) fail("no Vulkan device has Vulkan 1.2 and a compute queue");
  }
  queue_family_ = *compute_family(physical_);
}

PFN_vkVoidFunction Device::proc(const char* name) const {
  PFN_vkVoidFunction f = vkGetDeviceProcAddr(device_, name);
  if (!f) fail("the Vulkan device has no function ", name);
  return f;
}

void Device::record_message(std::string message) {
  std::lock_guard lock(messages_mutex_);
  messages_.push_back(std::move(message));
}

std::vector<std::string> Device::take_messages() {
  std::lock_guard lock(messages_mutex_);
  return std::exchange(messages_, {});
}

void Device::check() {
  auto messages = take_messages();
  if (messages.empty()) return;
  std::string text = cat("Vulkan validation reported ", messages.size(), " message(s):");
  for (const auto& m : messages) text += "\n  " + m;
  throw Error(text);
}

uint32_t Device::workgroup_size(uint32_t wanted) const {
  for (uint32_t size : {256u, 128u, 64u})
    if (size <= wanted && size <= limits_.max_workgroup_size[0] &&
        size <= limits_.max_workgroup_invocations)
      return size;
  fail("maxComputeWorkGroupSize[0] = ", limits_.max_workgroup_size[0],
       " / maxComputeWorkGroupInvocations = ", limits_.max_workgroup_invocations,
       " is below 64, the smallest workgroup ml's kernels use");
}

std::array<uint32_t, 3> fold_groups(const Device& device, uint64_t n, uint64_t z) {
  const auto& max = device.limits().max_workgroup_count;
  if (n == 0 || z == 0) return {0, 0, 0};
  uint64_t x = std::min<uint64_t>(n, max[0]);
  uint64_t y = (n + x - 1) / x;
  if (y > max[1])
    fail(n, " workgroups exceed maxComputeWorkGroupCount[0] x [1] = ", max[0], " x ", max[1]);
  if (z > max[2]) fail(z, " workgroups in z exceed maxComputeWorkGroupCount[2] = ", max[2]);
  return {uint32_t(x), uint32_t(y), uint32_t(z)};
}

}  // namespace ml::vk
