// The Vulkan layer on the test device (lavapipe in CI) with the validation layer on:
// device and limits, buffers and the staging ring, the recorder's barriers and timestamps,
// kernels and their disk cache, validation messages as failures, and limit errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "ml/vk.h"
#include "test_util.h"

namespace ml::vk {
namespace {

using test::error_of;
using test::random_bytes;
using ::testing::HasSubstr;

TEST(Device, CreatesWithValidationAndProbesLimits) {
  Device device;
  EXPECT_EQ(device.validating(), std::getenv("ML_VALIDATE") != nullptr &&
                                     std::string(std::getenv("ML_VALIDATE")) != "0");
  const Limits& l = device.limits();
  EXPECT_FALSE(l.device_name.empty());
  EXPECT_GE(l.max_storage_buffer_range, 1u << 27);  // Vulkan's minimum is 2^27
  EXPECT_GE(l.max_buffer_size, l.max_storage_buffer_range);
  EXPECT_GE(l.max_workgroup_invocations, 128u);
  EXPECT_GE(l.max_shared_memory, 16384u);
  EXPECT_GE(l.max_per_stage_storage_buffers, 4u);
  EXPECT_GT(l.subgroup_size, 0u);
  EXPECT_FALSE(l.heaps.empty());
  const std::string text = describe(l);
  for (const char* name : {"maxStorageBufferRange", "maxBufferSize", "maxBoundDescriptorSets",
                           "maxPerStageDescriptorStorageBuffers", "maxComputeWorkGroupSize",
                           "maxComputeWorkGroupInvocations", "maxComputeSharedMemorySize",
                           "subgroupSize", "shaderFloat16", "shaderInt8",
                           "storageBuffer16BitAccess", "cooperativeMatrix", "memory heap 0"})
    EXPECT_THAT(text, HasSubstr(name));
  EXPECT_EQ(device.workgroup_size(256) % 64, 0u);
  EXPECT_EQ(device.workgroup_size(100), 64u);
  device.check();
}

TEST(Device, DeviceIndexOutOfRangeNamesTheCount) {
  DeviceOptions o;
  o.index = 999;
  EXPECT_THAT(error_of([&] { Device d(o); }), HasSubstr("device 999 requested"));
  setenv("ML_DEVICE", "banana", 1);
  EXPECT_THAT(error_of([] { Device d; }), HasSubstr("ML_DEVICE=banana"));
  unsetenv("ML_DEVICE");
}

TEST(Device, ValidationMessageFailsTheCheck) {
  Device device;
  if (!device.validating()) GTEST_SKIP() << "needs ML_VALIDATE=1";
  // A deliberately invalid call: fence flags with an undefined bit.
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  fci.flags = 0x100;
  VkFence fence = VK_NULL_HANDLE;
  device.proc<PFN_vkCreateFence>("vkCreateFence")(device.handle(), &fci, nullptr, &fence);
  if (fence) device.proc<PFN_vkDestroyFence>("vkDestroyFence")(device.handle(), fence, nullptr);
  EXPECT_THAT(error_of([&] { device.check(); }), HasSubstr("VUID-VkFenceCreateInfo-flags"));
  device.check();  // the messages were taken: the device is clean again
}

TEST(Device, DestructorThrowsOnUncheckedMessage) {
  if (!Device().validating()) GTEST_SKIP() << "needs ML_VALIDATE=1";
  // A message nobody checked fails the test when the Device goes out of scope.
  EXPECT_THAT(
      error_of([] {
        Device device;
        VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        fci.flags = 0x100;
        VkFence fence = VK_NULL_HANDLE;
        device.proc<PFN_vkCreateFence>("vkCreateFence")(device.handle(), &fci, nullptr, &fence);
        if (fence)
          device.proc<PFN_vkDestroyFence>("vkDestroyFence")(device.handle(), fence, nullptr);
      }),
      HasSubstr("validation reported"));
}

TEST(Buffer, RoundTripThroughStaging) {
  Device device;
  StagingRing ring(device, 1 << 20);
  for (size_t n : {4ul, 1000ul, 4096ul + 12, 3ul << 20}) {
    const auto bytes = random_bytes(n, n);
    auto buffer = upload_buffer(device, ring, std::span<const std::byte>(bytes), "round trip");
    std::vector<std::byte> back(n);
    ring.download(*buffer, 0, back);
    EXPECT_EQ(back, bytes) << n << " bytes";
  }
  device.check();
}

TEST(Buffer, StagingRingStreamsUploadsLargerThanTheRing) {
  Device device;
  StagingRing ring(device, 256 << 10);  // two halves of 128 KiB
  const uint64_t n = (5 << 20) + 12;
  Buffer buffer(device, n, Memory::device, "streamed");
  uint64_t next = 0;
  ring.upload(buffer, 0, n, [&](uint64_t offset, std::span<std::byte> out) {
    EXPECT_EQ(offset, next);  // chunks arrive in order
    EXPECT_LE(out.size(), ring.chunk_bytes());
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::byte((offset + i) * 7 >> 3);
    next = offset + out.size();
  });
  EXPECT_EQ(next, n);
  EXPECT_GE(ring.n_submits(), n / ring.chunk_bytes());
  std::vector<std::byte> back(n);
  ring.download(buffer, 0, back);
  for (uint64_t i = 0; i < n; i += 4099) ASSERT_EQ(back[i], std::byte(i * 7 >> 3)) << i;
  ASSERT_EQ(back[n - 1], std::byte((n - 1) * 7 >> 3));
  device.check();
}

TEST(Buffer, SubAllocatesAndReusesBlocks) {
  Device device;
  std::vector<std::unique_ptr<Buffer>> buffers;
  for (int i = 0; i < 40; ++i)
    buffers.push_back(std::make_unique<Buffer>(device, 1000 + i * 100, Memory::device, "small"));
  EXPECT_GE(device.allocated_bytes(), 40u * 1000);
  StagingRing ring(device, 1 << 16);
  for (size_t i = 0; i < buffers.size(); i += 7) {
    const auto bytes = random_bytes(buffers[i]->size(), i);
    ring.upload(*buffers[i], 0, bytes);
    std::vector<std::byte> back(bytes.size());
    ring.download(*buffers[i], 0, back);
    EXPECT_EQ(back, bytes);
  }
  const uint64_t before = device.allocated_bytes();
  for (size_t i = 0; i < buffers.size(); i += 2) buffers[i].reset();
  EXPECT_LT(device.allocated_bytes(), before);
  Buffer again(device, 1500, Memory::upload, "host");
  std::memset(again.mapped(), 0x5a, again.size());
  EXPECT_EQ(again.mapped()[1499], std::byte(0x5a));
  EXPECT_THAT(error_of([&] { (void)buffers[1]->mapped(); }), HasSubstr("device-local"));
  device.check();
}

TEST(Limits, BufferLargerThanMaxBufferSizeNamesTheLimit) {
  Device device;
  const uint64_t too_big = device.limits().max_buffer_size + 1;
  EXPECT_THAT(error_of([&] { Buffer b(device, too_big, Memory::device, "huge"); }),
              HasSubstr("maxBufferSize"));
}

TEST(Limits, KernelAndDispatchLimitsNameTheLimit) {
  Device device;
  const Limits& l = device.limits();
  EXPECT_THAT(error_of([&] {
                device.kernel({"copy.comp", {}, 2, 4, l.max_workgroup_size[0] + 1});
              }),
              HasSubstr("maxComputeWorkGroupSize"));
  EXPECT_THAT(error_of([&] {
                device.kernel({"copy.comp", {}, 2, l.max_push_constants_size + 4, 64});
              }),
              HasSubstr("maxPushConstantsSize"));
  EXPECT_THAT(error_of([&] {
                device.kernel({"copy.comp", {}, 2, 4, 64, l.max_shared_memory + 1});
              }),
              HasSubstr("maxComputeSharedMemorySize"));
  EXPECT_THAT(error_of([&] {
                (void)fold_groups(
                    device, uint64_t(l.max_workgroup_count[0]) * l.max_workgroup_count[1] + 1);
              }),
              HasSubstr("maxComputeWorkGroupCount"));
  const auto folded = fold_groups(device, uint64_t(l.max_workgroup_count[0]) + 5);
  EXPECT_EQ(folded[1], 2u);

  const Kernel& copy = device.kernel({"copy.comp", {}, 2, 4, 64});
  Buffer a(device, 1024, Memory::device, "a"), b(device, 1024, Memory::device, "b");
  Recorder rec(device);
  const uint32_t n = 64;
  EXPECT_THAT(error_of([&] {
                rec.dispatch(copy, {{&a}, {&b, 0, VK_WHOLE_SIZE, true}}, n,
                             {l.max_workgroup_count[0] + 1, 1, 1});
              }),
              HasSubstr("maxComputeWorkGroupCount[0]"));
  EXPECT_THAT(error_of([&] {
                rec.dispatch(copy, {{&a, 4}, {&b, 0, VK_WHOLE_SIZE, true}}, n, {1, 1, 1});
              }),
              HasSubstr("minStorageBufferOffsetAlignment"));
  EXPECT_THAT(error_of([&] {
                rec.dispatch(copy, {{&a, 0, 2048}, {&b, 0, VK_WHOLE_SIZE, true}}, n, {1, 1, 1});
              }),
              HasSubstr("outside buffer a"));
  device.check();
}

TEST(Limits, BindingOverMaxStorageBufferRangeNamesTheLimit) {
  DeviceOptions o;
  o.storage_buffer_range_cap = 4096;  // the same check as a 128 MiB range, on 8 KiB
  Device device(o);
  const Kernel& copy = device.kernel({"copy.comp", {}, 2, 4, 64});
  Buffer a(device, 8192, Memory::device, "a"), b(device, 8192, Memory::device, "b");
  Recorder rec(device);
  const uint32_t n = 512;
  EXPECT_THAT(error_of([&] {
                rec.dispatch(copy, {{&a}, {&b, 0, VK_WHOLE_SIZE, true}}, n, {8, 1, 1});
              }),
              HasSubstr("maxStorageBufferRange = 4096"));
  device.check();
}

TEST(Recorder, BarriersOnlyWhereAHazardIs) {
  Device device;
  StagingRing ring(device, 1 << 20);
  const uint64_t n = 1 << 16;
  const auto bytes = random_bytes(n, 3);
  auto a = upload_buffer(device, ring, std::span<const std::byte>(bytes), "a");
  Buffer b(device, n, Memory::device, "b"), c(device, n, Memory::device, "c"),
      d(device, n, Memory::device, "d");
  Recorder rec(device, true);
  copy_kernel(rec, *a, b, n);  // b = a
  copy_kernel(rec, *a, d, n);  // d = a: reads a again, writes another buffer: no barrier
  EXPECT_EQ(rec.n_barriers(), 0u);
  copy_kernel(rec, b, c, n);  // c = b: reads what the first wrote: barrier
  EXPECT_EQ(rec.n_barriers(), 1u);
  rec.fill(b, 0, n, 0);  // overwrites what the third reads: barrier
  EXPECT_EQ(rec.n_barriers(), 2u);
  rec.copy(b, 0, d, 0, 256);  // d[0..256) = 0 after the fill and the second copy: barrier
  EXPECT_EQ(rec.n_barriers(), 3u);
  rec.submit();
  EXPECT_EQ(download<std::byte>(ring, c, n), bytes);
  auto dd = download<std::byte>(ring, d, n);
  EXPECT_EQ(std::vector<std::byte>(dd.begin() + 256, dd.end()),
            std::vector<std::byte>(bytes.begin() + 256, bytes.end()));
  EXPECT_EQ(dd[0], std::byte(0));
  EXPECT_EQ(dd[255], std::byte(0));
  if (device.limits().timestamps) {
    ASSERT_EQ(rec.timings().size(), rec.n_dispatches());
    EXPECT_EQ(rec.timings()[0].label, "copy");
    for (const auto& t : rec.timings()) EXPECT_GE(t.ms, 0.0);
  }
  // The same command buffer runs again.
  rec.submit();
  EXPECT_EQ(download<std::byte>(ring, c, n), bytes);
  EXPECT_THAT(error_of([&] { rec.fill(b, 0, 4, 0); }), HasSubstr("after submit"));
  device.check();
}

// The read ceiling of bench_copy: it reads every uvec4 (validation sees the binding) and
// leaves dst as it was; too small a dst, or a length not a multiple of 16, is an error.
TEST(Recorder, ReadKernelReadsAndNeverWrites) {
  Device device;
  StagingRing ring(device, 1 << 20);
  const uint64_t n = 1 << 16;
  const auto bytes = random_bytes(n, 5);
  auto src = upload_buffer(device, ring, std::span<const std::byte>(bytes), "src");
  Buffer dst(device, n, Memory::device, "dst");
  for (uint32_t reads : {1u, 3u, 8u}) {
    SCOPED_TRACE(cat(reads, " uvec4s per invocation"));
    Recorder rec(device, true);
    rec.fill(dst, 0, n, 0x01020304u);
    read_kernel(rec, *src, dst, n - 48, reads);
    rec.submit();
    EXPECT_EQ(download<uint32_t>(ring, dst, n / 4), std::vector<uint32_t>(n / 4, 0x01020304u));
    if (device.limits().timestamps) {
      EXPECT_EQ(rec.timings().back().label, "read");
    }
  }
  Recorder rec(device);
  Buffer small(device, 256, Memory::device, "small");
  EXPECT_THAT(error_of([&] { read_kernel(rec, *src, small, n, 1); }), HasSubstr("exceed buffer"));
  EXPECT_THAT(error_of([&] { read_kernel(rec, *src, dst, 100, 4); }),
              HasSubstr("not a multiple of 16"));
  EXPECT_THAT(error_of([&] { read_kernel(rec, *src, dst, n, 0); }), HasSubstr("0 uvec4s"));
  device.check();
}

TEST(Kernel, CompilesOnceAndCachesSpirvOnDisk) {
  const auto dir = std::filesystem::temp_directory_path() / cat("ml-vk-cache-", getpid());
  std::filesystem::remove_all(dir);
  DeviceOptions o;
  o.cache_dir = dir.string();
  {
    Device device(o);
    const Kernel& k1 = device.kernel({"copy.comp", {}, 2, 4, 64});
    const Kernel& k2 = device.kernel({"copy.comp", {}, 2, 4, 64});
    EXPECT_EQ(&k1, &k2);
    device.kernel({"copy.comp", {{"UNUSED_DEFINE", "1"}}, 2, 4, 64});
  }
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().extension(), ".spv");
    ++files;
  }
  EXPECT_EQ(files, 2u);  // one per set of defines; the workgroup size is specialised
  {
    Device device(o);  // reads the cached SPIR-V and still runs it
    StagingRing ring(device, 1 << 16);
    const auto bytes = random_bytes(4096, 5);
    auto a = upload_buffer(device, ring, std::span<const std::byte>(bytes), "a");
    Buffer b(device, 4096, Memory::device, "b");
    Recorder rec(device);
    copy_kernel(rec, *a, b, 4096);
    rec.submit();
    EXPECT_EQ(download<std::byte>(ring, b, 4096), bytes);
  }
  std::filesystem::remove_all(dir);
  EXPECT_THAT(error_of([] {
                (void)compile_glsl("copy.comp", {{"n", "+"}});
              }),
              HasSubstr("compiling copy.comp"));
  EXPECT_THAT(error_of([] { (void)compile_glsl("nope.comp", {}); }), HasSubstr("nope.comp"));
}

}  // namespace
}  // namespace ml::vk
