#pragma once
// vk: the Vulkan layer. A Device (instance, physical device choice, validation, limits, memory
// sub-allocation, kernel cache), Buffers, a StagingRing for uploads and readback, Kernels
// (GLSL compiled at run time by glslang, SPIR-V cached on disk) and a Recorder that puts many
// dispatches with their barriers into one command buffer.
//
// Every limit a request can exceed is checked before Vulkan sees it and raised as an
// ml::Error naming the limit (maxStorageBufferRange, maxComputeWorkGroupCount, ...).
#include <vulkan/vulkan.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ml/error.h"

namespace ml::vk {

struct KernelSpec;
struct Limits;

struct DeviceOptions {
  std::optional<uint32_t> index;  // physical device index (--device N); else $ML_DEVICE; else best
  bool validate = false;          // VK_LAYER_KHRONOS_validation; also on when $ML_VALIDATE=1
  std::string cache_dir;  // SPIR-V cache; empty: $ML_CACHE_DIR, $XDG_CACHE_HOME/ml, ~/.cache/ml
  bool disk_cache = true;
  // Lowers maxStorageBufferRange to this many bytes (0: the device's own), so tests reach the
  // slice path with small tensors.
  uint64_t storage_buffer_range_cap = 0;
  // Telemetry hooks, may be empty: a pipeline made (compiled, or SPIR-V from the disk cache)
  // a device-local buffer allocated (with the device's bytes in use after it), and the
  // limits probe.
  std::function<void(const KernelSpec& spec, bool cache_hit, double ms)> on_kernel;
  std::function<void(const std::string& name, uint64_t bytes, uint64_t in_use)> on_alloc;
  std::function<void(const Limits& limits)> on_limits;
};

// What the device can do, probed once at startup; printed by gguf_gate_c.
struct Limits {
  std::string device_name, device_type, driver;
  uint32_t vendor_id = 0, device_id = 0, driver_version = 0, api_version = 0;
  uint64_t max_storage_buffer_range = 0;
  uint64_t max_buffer_size = 0;  // VkPhysicalDeviceMaintenance4Properties, else max allocation
  bool max_buffer_size_from_maintenance4 = false;
  uint64_t max_memory_allocation_size = 0;
  uint64_t min_storage_buffer_offset_alignment = 0;
  uint32_t max_bound_descriptor_sets = 0;
  uint32_t max_per_stage_storage_buffers = 0;
  uint32_t max_push_constants_size = 0;
  std::array<uint32_t, 3> max_workgroup_size{}, max_workgroup_count{};
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_shared_memory = 0;
  uint32_t subgroup_size = 0;
  bool subgroup_arithmetic = false;  // subgroupAdd in compute shaders
  std::string subgroup_operations;   // "basic vote arithmetic ballot shuffle ..."
  bool shader_float16 = false, shader_int8 = false, shader_int16 = false, shader_int64 = false;
  bool storage_buffer_16bit = false, storage_buffer_8bit = false;
  bool cooperative_matrix = false;   // VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix
  bool integer_dot_product = false;  // shaderIntegerDotProduct (core 1.3 or the KHR extension)
  bool timestamps = false;           // compute queue timestamps
  double timestamp_period_ns = 0;
  struct Heap {
    uint64_t size = 0;
    bool device_local = false;
  };
  std::vector<Heap> heaps;
};

// One line per limit, for logs and gguf_gate_c.
std::string describe(const Limits& limits);
// Whether limits.subgroup_operations names `op` itself ("shuffle" is not "shuffle_relative").
bool has_subgroup_operation(const Limits& limits, std::string_view op);

// Where memory lives: device-local (weights, activations), host-visible for writing
// (staging), host-visible cached for reading back.
enum class Memory { device, upload, readback };

class Device;

// A VkBuffer bound to a range of a larger memory block (or its own allocation when big).
class Buffer {
 public:
  Buffer(Device& device, uint64_t size, Memory memory, std::string name = "buffer");
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  uint64_t size() const { return size_; }
  Memory memory() const { return memory_; }
  const std::string& name() const { return name_; }
  // Unique among the device's buffers, never reused (a VkBuffer handle may be): what cached
  // descriptor sets are keyed by.
  uint64_t serial() const { return serial_; }
  // Host pointer for upload/readback buffers; throws for device-local ones.
  std::byte* mapped() const;
  template <typename T>
  std::span<T> span() const {
    return {reinterpret_cast<T*>(mapped()), size_ / sizeof(T)};
  }

 private:
  Device& device_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  uint64_t size_;
  Memory memory_;
  std::string name_;
  uint64_t serial_ = 0;
  uint32_t block_ = 0;
  uint64_t offset_ = 0;
  std::byte* mapped_ = nullptr;
};

// A shader's -D NAME=VALUE list in one inline buffer: a kernel is looked up on every
// dispatch, and building, hashing and comparing its defines allocates nothing.
class Defines {
 public:
  // An argument only (its views are copied at once): NAME=text, or NAME=<number>u, the
  // GLSL uint literal every numeric define here is written as.
  struct Define {
    Define(std::string_view name, std::string_view text) : name(name), text(text) {}
    Define(std::string_view name, uint32_t number) : name(name), number(number), is_number(true) {}
    std::string_view name, text;
    uint32_t number = 0;
    bool is_number = false;
  };
  static constexpr size_t kCapacity = 496;  // bytes of "NAME\0VALUE\0" pairs

  Defines() = default;
  Defines(std::initializer_list<Define> list) {
    for (const Define& d : list) push_back(d);
  }
  // Copies only the bytes in use.
  Defines(const Defines& o) : used_(o.used_), count_(o.count_) {
    std::memcpy(text_.data(), o.text_.data(), used_);
  }
  Defines& operator=(const Defines& o) {
    used_ = o.used_, count_ = o.count_;
    std::memcpy(text_.data(), o.text_.data(), used_);
    return *this;
  }
  void push_back(const Define& d);
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  // Every define's bytes, for hashing and comparing.
  std::string_view bytes() const { return {text_.data(), used_}; }
  bool operator==(const Defines& o) const { return bytes() == o.bytes(); }

  // Iterates (name, value) pairs in the order they were added.
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::pair<std::string_view, std::string_view>;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;
    iterator() = default;
    explicit iterator(const char* at) : at_(at) {}
    value_type operator*() const;
    iterator& operator++();
    iterator operator++(int) {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const { return at_ == o.at_; }

   private:
    const char* at_ = nullptr;
  };
  iterator begin() const { return iterator(text_.data()); }
  iterator end() const { return iterator(text_.data() + used_); }

 private:
  std::array<char, kCapacity> text_;  // only the first used_ bytes are ever read
  uint16_t used_ = 0, count_ = 0;
};

// A compute pipeline: storage buffers at bindings 0..n_buffers-1 of set 0, push constants,
// workgroup size x as specialization constant 0 (local_size_x_id = 0 in the shader).
struct KernelSpec {
  std::string source;  // file in shaders/: "matmul_vec.comp"
  Defines defines;     // -D NAME=VALUE
  uint32_t n_buffers = 1;
  uint32_t push_bytes = 0;
  uint32_t workgroup_size = 64;
  uint32_t shared_bytes = 0;  // shared memory the defines ask for, checked against the limit
};

class Kernel {
 public:
  Kernel(Device& device, const KernelSpec& spec, const std::vector<uint32_t>& spirv);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  const KernelSpec& spec() const { return spec_; }
  VkPipeline pipeline() const { return pipeline_; }
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }

 private:
  Device& device_;
  KernelSpec spec_;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

// GLSL (an embedded shaders/ file, #includes resolved from the same table) → SPIR-V words.
std::vector<uint32_t> compile_glsl(const std::string& source,
                                   const std::vector<std::pair<std::string, std::string>>& defines);

class Device {
 public:
  explicit Device(const DeviceOptions& options = {});
  // Throws (when not already unwinding) if validation reported anything, so a test whose
  // device saw a message fails even if it never called check().
  ~Device() noexcept(false);
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const Limits& limits() const { return limits_; }
  bool validating() const { return validate_; }
  // With $ML_PIPELINE_STATS=1 on a device with VK_KHR_pipeline_executable_properties, every
  // pipeline made prints the driver's statistics (registers, shared and local memory on
  // NVIDIA) to stderr: a tuning aid for the kernels' occupancy.
  bool pipeline_stats() const { return pipeline_stats_; }
  VkDevice handle() const { return device_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  VkCommandPool command_pool() const { return pool_; }
  // A device-level Vulkan function by name (vkGetDeviceProcAddr), for callers that do not
  // link the loader themselves; throws when the device has no such function.
  PFN_vkVoidFunction proc(const char* name) const;
  template <typename Fn>
  Fn proc(const char* name) const {
    return reinterpret_cast<Fn>(proc(name));
  }

  // Throws ml::Error listing every validation message recorded since the last check.
  void check();
  // Messages recorded so far (and clears them): for tests that expect one.
  std::vector<std::string> take_messages();

  // The compiled pipeline for spec, compiled on first use (or read from the disk cache).
  const Kernel& kernel(const KernelSpec& spec);
  // 256, 128 or 64: the largest of those at most `wanted` that the limits allow.
  uint32_t workgroup_size(uint32_t wanted = 256) const;
  const std::string& cache_dir() const { return cache_dir_; }

  // Sub-allocator, used by Buffer: memory for `requirements` in `memory`.
  struct Allocation {
    uint32_t block;
    uint64_t offset;
    VkDeviceMemory memory;
    std::byte* mapped;
  };
  Allocation allocate(const VkMemoryRequirements& requirements, Memory memory,
                      const std::string& what);
  void free(uint32_t block, uint64_t offset);
  uint64_t allocated_bytes() const { return allocated_bytes_; }
  uint64_t next_buffer_serial() { return ++buffer_serial_; }
  const DeviceOptions& options() const { return options_; }

  void record_message(std::string message);

 private:
  struct Block {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    uint64_t size = 0;
    Memory kind = Memory::device;
    std::byte* mapped = nullptr;
    std::map<uint64_t, uint64_t> free_ranges;  // offset → size
    std::map<uint64_t, uint64_t> used;         // offset → size
    bool dedicated = false;
  };
  void release() noexcept;
  void pick_device(const DeviceOptions& options);
  void probe_limits();
  uint32_t memory_type(uint32_t type_bits, Memory memory) const;

  DeviceOptions options_;
  bool validate_ = false;
  bool pipeline_stats_ = false;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  Limits limits_;
  std::string cache_dir_;
  bool disk_cache_ = true;
  std::mutex messages_mutex_;
  std::vector<std::string> messages_;
  // By a hash of the spec; a bucket holds the specs that share one.
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<Kernel>>> kernels_;
  std::vector<Block> blocks_;
  uint64_t allocated_bytes_ = 0;
  uint64_t buffer_serial_ = 0;
  bool glslang_ready_ = false;
};

// A range of a buffer bound to one storage-buffer binding of a dispatch.
struct Binding {
  const Buffer* buffer = nullptr;
  uint64_t offset = 0;
  uint64_t size = VK_WHOLE_SIZE;  // whole rest of the buffer
  bool write = false;             // the dispatch writes it (for barrier tracking)
};

// Records dispatches and copies into one command buffer; a barrier is inserted only where a
// command touches a buffer that an earlier unbarriered command wrote (or reads what it
// writes). submit() ends the buffer, submits once and waits on a fence. A decode step binds
// the same (kernel, buffer ranges) every token, so descriptor sets are written once and kept
// across recordings, keyed by the set layout and each binding's buffer serial and range.
class Recorder {
 public:
  explicit Recorder(Device& device, bool timing = false);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  Device& device() const { return device_; }
  // label names the command in timings(), kept only while timing (empty: the kernel's source).
  void dispatch(const Kernel& kernel, std::span<const Binding> bindings,
                std::span<const std::byte> push, std::array<uint32_t, 3> groups,
                std::string_view label = {});
  template <typename Push>
  void dispatch(const Kernel& kernel, std::initializer_list<Binding> bindings, const Push& push,
                std::array<uint32_t, 3> groups, std::string_view label = {}) {
    dispatch(kernel, std::span<const Binding>(bindings.begin(), bindings.size()),
             std::as_bytes(std::span<const Push>(&push, 1)), groups, label);
  }
  // Whether commands are timed: callers build a label that takes work only then.
  bool timing() const { return timing_; }
  void copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset,
            uint64_t size);
  void fill(const Buffer& dst, uint64_t offset, uint64_t size, uint32_t value);
  // Host bytes written into dst by the command buffer itself (vkCmdUpdateBuffer): small
  // inputs (token ids, positions) need no staging copy and no submit of their own.
  static constexpr uint64_t kMaxUpdateBytes = 65536;
  void update(const Buffer& dst, uint64_t offset, std::span<const std::byte> bytes);
  void barrier();  // a full compute/transfer barrier, whether or not one is needed
  // Ends, submits and waits (may be called again to run the same commands again).
  void submit();
  // Ends and submits without waiting, and goes on recording in other command buffers: the
  // host records the next decode step while the device runs this one. The new recording
  // starts with a barrier, so it is ordered after everything sent before. wait(ticket)
  // returns once the device has run this submit (and every earlier one); submit() and
  // wait_all() wait for all. Not while timing (timestamps are read per recording).
  uint64_t submit_async();
  uint64_t next_ticket() const { return next_ticket_; }  // the next submit_async()'s
  void wait(uint64_t ticket);
  void wait_all();
  // Whether submit_async() work may still run on the device.
  bool pending() const { return !sent_.empty(); }
  // Drops the recorded commands (after submit) and starts recording anew in the same command
  // buffers, with timestamps when `timing`.
  void restart(bool timing = false);
  // Submits what is recorded so far without waiting and goes on in a new command buffer, so
  // the GPU works while the host records; submit() sends the rest and waits for all of it.
  void flush();
  // flush() after every n commands (the first after at most 16), unless a submit_async()
  // recording still runs; 0: only explicit flushes.
  void set_flush_every(uint32_t n) { flush_every_ = n; }
  size_t n_dispatches() const { return n_commands_; }
  size_t n_barriers() const { return n_barriers_; }
  // Descriptor sets written so far and kept (for tests of the cache).
  size_t n_cached_sets() const { return sets_.size(); }

  struct Timing {
    std::string label;
    double ms = 0;
  };
  // Per command, from timestamp queries, after submit() (empty without timing support).
  const std::vector<Timing>& timings() const { return timings_; }
  // Host time in the calls that may block or cost more than recording a command: queue
  // submits, fence waits, descriptor set writes (cache misses). Summed until taken.
  struct HostTimes {
    double submit_ms = 0, wait_ms = 0, sets_ms = 0;
    uint64_t submits = 0, waits = 0, set_writes = 0;
  };
  HostTimes take_host_times() { return std::exchange(host_, {}); }

 private:
  static constexpr uint32_t kMaxBindings = 10;  // attention: 8, and its quantized output
  struct Access {
    VkBuffer buffer;
    bool write;
  };
  // A descriptor set's contents: the layout and, per binding, buffer serial and range.
  struct SetKey {
    VkDescriptorSetLayout layout = VK_NULL_HANDLE;
    uint32_t n = 0;
    std::array<std::array<uint64_t, 3>, kMaxBindings> ranges;  // serial, offset, size
    bool operator==(const SetKey& o) const;
  };
  struct SetKeyHash {
    size_t operator()(const SetKey& k) const;
  };
  void begin(bool timing);
  void end();  // ends the recording with the barrier that makes results visible to the host
  void next_command_buffer();
  void recorded();  // counts a command, flushes on schedule
  void track(std::span<const Access> accesses);
  void stamp();
  VkDescriptorSet descriptor_set(const SetKey& key, std::span<const VkDescriptorBufferInfo> infos);
  VkDescriptorSet cached_set(const SetKey& key, std::span<const VkDescriptorBufferInfo> infos);
  void drop_sets();
  // Returns the command buffers and fences of sent_[0, n) (the device has run them).
  void retire(size_t n);

  // A recording sent by submit_async() that nobody has waited for yet.
  struct Sent {
    uint64_t ticket;
    VkFence fence;
    std::vector<VkCommandBuffer> cmds;
  };

  Device& device_;
  std::vector<VkCommandBuffer> cmds_;  // chunks of one recording, cmds_[current_] recording
  size_t current_ = 0, n_sent_ = 0;    // n_sent_: chunks flush() has submitted
  uint32_t flush_every_ = 0, since_flush_ = 0;
  uint32_t deferred_ = 0;  // commands a flush waited for the device (recorded())
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  std::vector<Sent> sent_;  // oldest first
  std::vector<VkCommandBuffer> free_cmds_;
  std::vector<VkFence> free_fences_;
  uint64_t next_ticket_ = 1, done_ticket_ = 0;
  std::vector<VkDescriptorPool> pools_;
  size_t next_pool_ = 0;  // pools_[next_pool_ - 1] hands out sets
  uint32_t sets_left_ = 0;
  std::unordered_map<SetKey, VkDescriptorSet, SetKeyHash> sets_;
  // The sets of the last recording by dispatch, which the next one (the next decode step)
  // asks for in the same order: checked before sets_.
  std::vector<std::pair<SetKey, VkDescriptorSet>> sequence_;
  size_t n_sets_ = 0;                  // dispatches that took a set in this recording
  VkPipeline bound_ = VK_NULL_HANDLE;  // in cmd_
  HostTimes host_;
  bool timing_ = false;
  bool recording_ = true;
  bool in_flight_ = false;
  std::vector<VkBuffer> read_, written_;  // since the last barrier
  size_t n_commands_ = 0, n_barriers_ = 0;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  uint32_t n_queries_ = 0;
  std::vector<std::string> labels_;
  std::vector<Timing> timings_;
};

// Host-visible staging memory in two halves: one is filled while the other's copy runs, so an
// upload of any size streams through without the whole tensor in host memory twice.
class StagingRing {
 public:
  explicit StagingRing(Device& device, uint64_t bytes = 64ull << 20);
  ~StagingRing();
  StagingRing(const StagingRing&) = delete;
  StagingRing& operator=(const StagingRing&) = delete;

  // Called with (offset within the upload, destination span) for each chunk, in order.
  using Fill = std::function<void(uint64_t offset, std::span<std::byte> out)>;
  void upload(const Buffer& dst, uint64_t dst_offset, uint64_t size, const Fill& fill);
  void upload(const Buffer& dst, uint64_t dst_offset, std::span<const std::byte> bytes);
  void download(const Buffer& src, uint64_t src_offset, std::span<std::byte> out);
  uint64_t chunk_bytes() const { return half_; }
  size_t n_submits() const { return n_submits_; }

 private:
  struct Half {
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    bool pending = false;
  };
  void wait(Half& half);
  void flush(Half& half);

  Device& device_;
  uint64_t half_;
  Buffer staging_;
  std::array<Half, 2> halves_;
  size_t n_submits_ = 0;
};

// Uploads host bytes into a new device-local buffer through a ring.
std::unique_ptr<Buffer> upload_buffer(Device& device, StagingRing& ring,
                                      std::span<const std::byte> bytes, std::string name);
template <typename T>
std::unique_ptr<Buffer> upload_buffer(Device& device, StagingRing& ring, std::span<const T> v,
                                      std::string name) {
  return upload_buffer(device, ring, std::as_bytes(v), std::move(name));
}
template <typename T>
std::vector<T> download(StagingRing& ring, const Buffer& src, uint64_t count) {
  std::vector<T> out(count);
  ring.download(src, 0, std::as_writable_bytes(std::span<T>(out)));
  return out;
}

// The bandwidth ceiling: dst = src, bytes (a multiple of 16) copied by a compute kernel that
// reads and writes uvec4s, in slices of maxStorageBufferRange.
void copy_kernel(Recorder& rec, const Buffer& src, const Buffer& dst, uint64_t bytes);
// The read ceiling: `bytes` of src read in uvec4s, `per_invocation` each a grid apart, and
// folded; dst (a uvec4 per invocation) is bound but never written.
void read_kernel(Recorder& rec, const Buffer& src, const Buffer& dst, uint64_t bytes,
                 uint32_t per_invocation);

// Splits `n` workgroups over x and y so neither exceeds maxComputeWorkGroupCount (the kernel
// folds them back: id = x + y * gl_NumWorkGroups.x); throws naming the limit when it cannot.
std::array<uint32_t, 3> fold_groups(const Device& device, uint64_t n, uint64_t z = 1);

}  // namespace ml::vk
