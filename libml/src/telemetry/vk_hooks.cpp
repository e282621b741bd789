// The Vulkan device's telemetry: its hooks turned into pipeline and gpu_alloc events, and its
// limits probe into a limits event.
#include "ml/telemetry.h"
#include "ml/vk.h"

namespace ml::telemetry {

void hook(vk::DeviceOptions& options, Telemetry& t) {
  options.on_kernel = [&t](const vk::KernelSpec& spec, bool cache_hit, double ms) {
    std::string variant = cat("WG=", spec.workgroup_size);
    for (const auto& [name, value] : spec.defines) variant += cat(" ", name, "=", value);
    t.emit(Pipeline{spec.source, variant, cache_hit, ms});
  };
  options.on_alloc = [&t](const std::string& name, uint64_t bytes, uint64_t in_use) {
    if (name != "transient") t.emit(GpuAlloc{name, bytes, in_use});
  };
  options.on_limits = [&t](const vk::Limits& limits) { t.emit(limits_event(limits)); };
}

Limits limits_event(const vk::Limits& l) {
  Limits e;
  e.device = l.device_name;
  e.driver = l.driver;
  e.max_storage_buffer_range = l.max_storage_buffer_range;
  e.max_buffer_size = l.max_buffer_size;
  e.subgroup_size = l.subgroup_size;
  e.shader_float16 = l.shader_float16;
  e.cooperative_matrix = l.cooperative_matrix;
  for (const auto& heap : l.heaps)
    if (heap.device_local) e.memory += heap.size;
  return e;
}

}  // namespace ml::telemetry
