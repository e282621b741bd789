// The copy kernel behind the bandwidth benchmark (shaders/copy.comp).
#include <algorithm>
#include <array>
#include <span>

#include "ml/vk.h"
#include "vk/util.h"

namespace ml::vk {

namespace {

// copy.comp over `bytes` of src in slices no larger than maxStorageBufferRange, starting at
// offsets the binding accepts; `reads` 0 copies to dst, more reads that many uvec4s per
// invocation and binds dst for one uvec4 per invocation (never written).
void stream(Recorder& rec, const Buffer& src, const Buffer& dst, uint64_t bytes, uint32_t reads,
            const char* label) {
  Device& device = rec.device();
  const Limits& l = device.limits();
  if (bytes % 16) fail(label, ": ", bytes, " bytes is not a multiple of 16");
  const uint32_t wg = device.workgroup_size(256);
  const uint64_t slice = align_down(l.max_storage_buffer_range,
                                    std::max<uint64_t>(256, l.min_storage_buffer_offset_alignment));
  // uvec4s of dst a slice's invocations cover (whole workgroups).
  const auto out_bytes = [&](uint64_t n) {
    return reads ? ((n / 16 + reads - 1) / reads + wg - 1) / wg * wg * 16 : n;
  };
  if (bytes > src.size() || out_bytes(std::min(slice, bytes)) > dst.size())
    fail(label, ": ", bytes, " bytes exceed buffer ", src.name(), " or ", dst.name());
  const Kernel& kernel = reads ? device.kernel({"copy.comp", {{"READ_ONLY", cat(reads)}}, 2, 8, wg})
                               : device.kernel({"copy.comp", {}, 2, 4, wg});
  for (uint64_t off = 0; off < bytes; off += slice) {
    const uint64_t n = std::min(slice, bytes - off);
    // The fold of src is compared with a word no fill of the benchmark gives.
    const std::array<uint32_t, 2> push = {uint32_t(n / 16), 0x5A5A5A5Au};
    const uint64_t out = out_bytes(n);
    const std::span<const std::byte> push_bytes =
        std::as_bytes(std::span(push)).first(reads ? 8 : 4);
    const std::array<Binding, 2> bindings = {Binding{&src, off, n, false},
                                             Binding{&dst, reads ? 0 : off, out, true}};
    rec.dispatch(kernel, bindings, push_bytes, fold_groups(device, (out / 16 + wg - 1) / wg),
                 label);
  }
}

}  // namespace

void copy_kernel(Recorder& rec, const Buffer& src, const Buffer& dst, uint64_t bytes) {
  stream(rec, src, dst, bytes, 0, "copy");
}

void read_kernel(Recorder& rec, const Buffer& src, const Buffer& dst, uint64_t bytes,
                 uint32_t per_invocation) {
  if (per_invocation == 0) fail("read_kernel: 0 uvec4s per invocation");
  stream(rec, src, dst, bytes, per_invocation, "read");
}

}  // namespace ml::vk
