// The copy kernel behind the bandwidth benchmark (shaders/copy.comp).
#include <algorithm>

#include "ml/vk.h"
#include "vk/util.h"

namespace ml::vk {

void copy_kernel(Recorder& rec, const Buffer& src, const Buffer& dst, uint64_t bytes) {
  Device& device = rec.device();
  const Limits& l = device.limits();
  if (bytes % 16) fail("copy_kernel: ", bytes, " bytes is not a multiple of 16");
  if (bytes > src.size() || bytes > dst.size())
    fail("copy_kernel: ", bytes, " bytes exceed buffer ", src.name(), " or ", dst.name());
  const uint32_t wg = device.workgroup_size(256);
  const Kernel& kernel = device.kernel({"copy.comp", {}, 2, 4, wg});
  // Slices no larger than maxStorageBufferRange, starting at offsets the binding accepts.
  const uint64_t slice = align_down(l.max_storage_buffer_range,
                                    std::max<uint64_t>(256, l.min_storage_buffer_offset_alignment));
  for (uint64_t off = 0; off < bytes; off += slice) {
    const uint64_t n = std::min(slice, bytes - off);
    const uint32_t words = uint32_t(n / 16);
    rec.dispatch(kernel, {{&src, off, n, false}, {&dst, off, n, true}}, words,
                 fold_groups(device, (words + wg - 1) / wg), "copy");
  }
}

}  // namespace ml::vk
