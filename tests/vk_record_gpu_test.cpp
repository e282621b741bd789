// What keeps recording a decode step cheap, on the test device with validation on: kernel
// defines held inline (numbers written as uint literals, the same kernel however a define is
// spelled), descriptor sets written once and found again by buffer serial and range, and the
// pipeline bound only when it changes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ml/vk.h"
#include "test_util.h"

namespace ml::vk {
namespace {

using test::error_of;
using test::random_bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(Defines, HoldsPairsInOrderAndWritesNumbersAsUintLiterals) {
  Defines d{{"TYPE_Q4_K", "1"}, {"QK", 256u}};
  d.push_back({"ROWS", 0u});
  d.push_back({std::string("NA") + "ME", std::string("va") + "lue"});  // copied at once
  EXPECT_EQ(d.size(), 4u);
  EXPECT_THAT(std::vector<Defines::iterator::value_type>(d.begin(), d.end()),
              ElementsAre(Pair("TYPE_Q4_K", "1"), Pair("QK", "256u"), Pair("ROWS", "0u"),
                          Pair("NAME", "value")));
  const Defines text{{"TYPE_Q4_K", "1"}, {"QK", "256u"}, {"ROWS", "0u"}, {"NAME", "value"}};
  EXPECT_EQ(d, text);
  EXPECT_FALSE(d == (Defines{{"TYPE_Q4_K", "1"}, {"QK", 255u}}));
  const Defines copy = d;
  EXPECT_EQ(copy, d);
  EXPECT_TRUE(Defines{}.empty());
}

TEST(Defines, OverflowAndBadNamesAreErrors) {
  Defines d;
  const std::string value(100, 'x');
  EXPECT_THAT(error_of([&] {
                for (int i = 0; i < 10; ++i) d.push_back({"LONG_DEFINE", value});
              }),
              HasSubstr("LONG_DEFINE"));
  EXPECT_THAT(error_of([] { Defines{{"", "1"}}; }), HasSubstr("empty name"));
  EXPECT_THAT(error_of([] { Defines{{std::string_view("A\0B", 3), "1"}}; }), HasSubstr("NUL"));
}

TEST(Kernel, OneKernelHoweverANumberIsSpelled) {
  Device device;
  const Kernel& a = device.kernel({"copy.comp", {{"UNUSED", 7u}}, 2, 4, 64});
  const Kernel& b = device.kernel({"copy.comp", {{"UNUSED", "7u"}}, 2, 4, 64});
  const Kernel& c = device.kernel({"copy.comp", {{"UNUSED", 8u}}, 2, 4, 64});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  EXPECT_THAT(
      std::vector<Defines::iterator::value_type>(a.spec().defines.begin(), a.spec().defines.end()),
      ElementsAre(Pair("UNUSED", "7u")));
  device.check();
}

TEST(Recorder, DescriptorSetsAreWrittenOnceAcrossRecordings) {
  Device device;
  StagingRing ring(device, 1 << 20);
  const uint64_t n = 4096;
  const auto bytes = random_bytes(n, 11);
  auto a = upload_buffer(device, ring, std::span<const std::byte>(bytes), "a");
  Buffer b(device, n, Memory::device, "b"), c(device, n, Memory::device, "c");
  Recorder rec(device);
  for (int step = 0; step < 3; ++step) {
    copy_kernel(rec, *a, b, n);
    copy_kernel(rec, b, c, n);
    copy_kernel(rec, *a, b, n);  // the first dispatch's set again, out of sequence
    rec.submit();
    EXPECT_EQ(rec.n_cached_sets(), 2u) << "step " << step;
    EXPECT_EQ(download<std::byte>(ring, c, n), bytes);
    rec.restart();
  }
  // Other ranges of the same buffers are other sets.
  copy_kernel(rec, *a, b, n / 2);
  rec.submit();
  EXPECT_EQ(rec.n_cached_sets(), 3u);
  device.check();
}

// A buffer made after another is freed may get its VkBuffer handle back; a set cached for
// the old one must not be bound for it.
TEST(Recorder, ANewBufferNeverTakesAFreedBuffersSet) {
  Device device;
  StagingRing ring(device, 1 << 20);
  const uint64_t n = 4096;
  Recorder rec(device);
  for (int round = 0; round < 4; ++round) {
    const auto bytes = random_bytes(n, 20 + uint64_t(round));
    auto src = upload_buffer(device, ring, std::span<const std::byte>(bytes), "src");
    auto dst = std::make_unique<Buffer>(device, n, Memory::device, "dst");
    copy_kernel(rec, *src, *dst, n);
    rec.submit();
    EXPECT_EQ(download<std::byte>(ring, *dst, n), bytes) << "round " << round;
    rec.restart();
  }
  EXPECT_EQ(rec.n_cached_sets(), 4u);
  device.check();
}

// submit_async: each recording runs after the ones sent before it (its opening barrier), a
// wait for one ticket finishes it and the earlier ones, and the command buffers of finished
// recordings are used again; a sync submit after it waits for everything.
TEST(Recorder, SubmitAsyncRunsInOrderAndReusesCommandBuffers) {
  Device device;
  StagingRing ring(device, 1 << 20);
  const uint64_t n = 1 << 16;
  Buffer b(device, n, Memory::device, "b"), c(device, n, Memory::device, "c"),
      d(device, n, Memory::device, "d");
  Recorder rec(device);
  rec.set_flush_every(1);  // chunks sent before the async submit too
  for (uint32_t step = 0; step < 6; ++step) {
    rec.fill(b, 0, n, step);
    copy_kernel(rec, b, c, n);
    const uint64_t first = rec.submit_async();
    rec.fill(b, 0, n, step + 1000);  // after the copy above has read b
    copy_kernel(rec, b, d, n);
    const uint64_t second = rec.submit_async();
    EXPECT_EQ(second, first + 1);
    EXPECT_TRUE(rec.pending());
    rec.wait(step % 2 ? second : first);
    EXPECT_EQ(download<uint32_t>(ring, c, n / 4), std::vector<uint32_t>(n / 4, step));
    rec.wait(second);
    EXPECT_FALSE(rec.pending());
    EXPECT_EQ(download<uint32_t>(ring, d, n / 4), std::vector<uint32_t>(n / 4, step + 1000));
  }
  EXPECT_THAT(error_of([&] { rec.wait(rec.next_ticket()); }), HasSubstr("not sent yet"));
  rec.fill(b, 0, n, 7);
  rec.submit_async();
  copy_kernel(rec, b, c, n);
  rec.submit();
  EXPECT_FALSE(rec.pending());
  EXPECT_EQ(download<uint32_t>(ring, c, n / 4), std::vector<uint32_t>(n / 4, 7u));
  rec.restart();
  device.check();
}

// Pipelines bound only when they change: alternating kernels still each run their own.
TEST(Recorder, AlternatingKernelsEachRunTheirOwn) {
  Device device;
  StagingRing ring(device, 1 << 20);
  const uint64_t n = 8192;
  const auto bytes = random_bytes(n, 31);
  auto a = upload_buffer(device, ring, std::span<const std::byte>(bytes), "a");
  Buffer b(device, n, Memory::device, "b"), c(device, n, Memory::device, "c"),
      d(device, n, Memory::device, "d");
  const Kernel& k64 = device.kernel({"copy.comp", {}, 2, 4, 64});
  const uint32_t wg = device.workgroup_size(128);
  const Kernel& k128 = device.kernel({"copy.comp", {}, 2, 4, wg});
  const uint32_t words = uint32_t(n / 16);
  Recorder rec(device);
  rec.set_flush_every(2);  // and across chunks, each a new command buffer
  rec.dispatch(k64, {{a.get()}, {&b, 0, VK_WHOLE_SIZE, true}}, words, {words / 64, 1, 1});
  rec.dispatch(k128, {{&b}, {&c, 0, VK_WHOLE_SIZE, true}}, words, {words / wg, 1, 1});
  rec.dispatch(k64, {{&c}, {&d, 0, VK_WHOLE_SIZE, true}}, words, {words / 64, 1, 1});
  rec.dispatch(k64, {{&d}, {&b, 0, VK_WHOLE_SIZE, true}}, words, {words / 64, 1, 1});
  rec.submit();
  EXPECT_EQ(download<std::byte>(ring, d, n), bytes);
  EXPECT_EQ(download<std::byte>(ring, b, n), bytes);
  device.check();
}

TEST(Recorder, LabelsAreKeptOnlyWhileTiming) {
  Device device;
  Buffer a(device, 4096, Memory::device, "a"), b(device, 4096, Memory::device, "b");
  Recorder rec(device);
  EXPECT_FALSE(rec.timing());
  copy_kernel(rec, a, b, 4096);
  rec.submit();
  EXPECT_TRUE(rec.timings().empty());
  rec.restart(true);
  EXPECT_EQ(rec.timing(), device.limits().timestamps);
  const Kernel& k = device.kernel({"copy.comp", {}, 2, 4, 64});
  const std::string label = std::string("copy ") + "labelled";
  rec.dispatch(k, {{&a}, {&b, 0, VK_WHOLE_SIZE, true}}, uint32_t(256), {4, 1, 1}, label);
  rec.dispatch(k, {{&a}, {&b, 0, VK_WHOLE_SIZE, true}}, uint32_t(256), {4, 1, 1});
  rec.submit();
  if (rec.timing()) {
    ASSERT_EQ(rec.timings().size(), 2u);
    EXPECT_EQ(rec.timings()[0].label, "copy labelled");
    EXPECT_EQ(rec.timings()[1].label, "copy.comp");
  }
  device.check();
}

}  // namespace
}  // namespace ml::vk
