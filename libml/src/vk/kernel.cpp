// Kernels: embedded GLSL compiled by glslang with #define variants, SPIR-V cached on disk
// keyed by source, defines and device, pipelines with the workgroup size as a
// specialization constant.
// glslang's C interface: its C++ classes come from a library built without RTTI, which
// UBSan's vptr check (the sanitizer build) cannot link against.
#include <glslang/Include/glslang_c_interface.h>
#include <glslang/Public/resource_limits_c.h>
#include <glslang/build_info.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "ml/vk.h"
#include "vk/shaders.h"
#include "vk/util.h"

namespace ml::vk {
namespace {

const EmbeddedShader* find_shader(std::string_view name) {
  for (const auto& s : embedded_shaders())
    if (s.name == name) return &s;
  return nullptr;
}

// Expands `#include "quant.glsl"` lines from the embedded table, so libml needs no files at
// run time (glslang 12's C interface has no include callbacks).
void expand_includes(std::string_view text, std::string& out, int depth) {
  if (depth > 8) fail("shader includes nest deeper than 8");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.starts_with("#include \"")) {
      const size_t close = line.find('"', 10);
      const std::string_view name = line.substr(10, close - 10);
      const EmbeddedShader* s = find_shader(name);
      if (close == std::string_view::npos || !s) fail("shader include ", line, " not found");
      expand_includes(s->source, out, depth + 1);
    } else {
      out.append(line);
    }
    out += '\n';
    pos = end + 1;
  }
}

// FNV-1a, 64 bits: the cache key only has to change when its inputs do.
struct Hash {
  uint64_t h = 1469598103934665603ull;
  void add(std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
};

std::vector<uint32_t> read_spirv(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 20 || bytes.size() % 4) return {};
  std::vector<uint32_t> words(bytes.size() / 4);
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return words[0] == 0x07230203u ? words : std::vector<uint32_t>{};
}

void write_spirv(const std::filesystem::path& path, const std::vector<uint32_t>& words) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  // Write then rename, so a parallel test never reads half a file.
  auto tmp = path;
  tmp += cat(".", getpid(), ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) return;  // an unwritable cache only costs compile time
    out.write(reinterpret_cast<const char*>(words.data()), std::streamsize(words.size() * 4));
    if (!out) return;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

// Mixes v into h (boost::hash_combine's constant, on 64 bits).
size_t combine(size_t h, size_t v) {
  return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
}

}  // namespace

void Defines::push_back(const Define& d) {
  std::array<char, 16> digits;
  std::string_view value = d.text;
  if (d.is_number) {
    const auto [end, ec] =
        std::to_chars(digits.data(), digits.data() + digits.size() - 1, d.number);
    *end = 'u';
    value = std::string_view(digits.data(), size_t(end + 1 - digits.data()));
  }
  if (d.name.empty() || d.name.find('\0') != std::string_view::npos ||
      value.find('\0') != std::string_view::npos)
    fail("shader define: an empty name, or a NUL byte in a name or value (", d.name.size(),
         " name bytes, ", value.size(), " value bytes)");
  const size_t need = d.name.size() + value.size() + 2;
  if (need > kCapacity - used_)
    fail("shader define ", d.name, "=", value, " does not fit: the defines take ", used_, " of ",
         kCapacity, " bytes");
  char* out = text_.data() + used_;
  std::memcpy(out, d.name.data(), d.name.size());
  out[d.name.size()] = '\0';
  std::memcpy(out + d.name.size() + 1, value.data(), value.size());
  out[d.name.size() + 1 + value.size()] = '\0';
  used_ = uint16_t(used_ + need);
  ++count_;
}

Defines::iterator::value_type Defines::iterator::operator*() const {
  const std::string_view name(at_);
  return {name, std::string_view(at_ + name.size() + 1)};
}

Defines::iterator& Defines::iterator::operator++() {
  const auto [name, value] = **this;
  at_ += name.size() + value.size() + 2;
  return *this;
}

std::vector<uint32_t> compile_glsl(
    const std::string& source, const std::vector<std::pair<std::string, std::string>>& defines) {
  const EmbeddedShader* s = find_shader(source);
  if (!s) fail("shader ", source, " is not among the embedded shaders");
  std::string preamble;
  for (const auto& [name, value] : defines) preamble += cat("#define ", name, " ", value, "\n");
  std::string text;
  expand_includes(s->source, text, 0);

  // glslang counts its clients; a Device holds one for its lifetime, this one covers callers
  // without a Device.
  struct Process {
    Process() { glslang_initialize_process(); }
    ~Process() { glslang_finalize_process(); }
  } process;
  glslang_input_t input{};
  input.language = GLSLANG_SOURCE_GLSL;
  input.stage = GLSLANG_STAGE_COMPUTE;
  input.client = GLSLANG_CLIENT_VULKAN;
  input.client_version = GLSLANG_TARGET_VULKAN_1_2;
  input.target_language = GLSLANG_TARGET_SPV;
  input.target_language_version = GLSLANG_TARGET_SPV_1_5;
  input.code = text.c_str();
  input.default_version = 460;
  input.default_profile = GLSLANG_NO_PROFILE;
  input.messages = glslang_messages_t(GLSLANG_MSG_SPV_RULES_BIT | GLSLANG_MSG_VULKAN_RULES_BIT);
  input.resource = glslang_default_resource();

  std::unique_ptr<glslang_shader_t, void (*)(glslang_shader_t*)> shader(
      glslang_shader_create(&input), glslang_shader_delete);
  if (!shader) fail("glslang could not create a shader for ", source);
  glslang_shader_set_preamble(shader.get(), preamble.c_str());
  if (!glslang_shader_preprocess(shader.get(), &input) ||
      !glslang_shader_parse(shader.get(), &input))
    fail("compiling ", source, " (", preamble.empty() ? "no defines" : preamble,
         "): ", glslang_shader_get_info_log(shader.get()));
  std::unique_ptr<glslang_program_t, void (*)(glslang_program_t*)> program(glslang_program_create(),
                                                                           glslang_program_delete);
  glslang_program_add_shader(program.get(), shader.get());
  if (!glslang_program_link(program.get(), input.messages))
    fail("linking ", source, ": ", glslang_program_get_info_log(program.get()));
  glslang_program_SPIRV_generate(program.get(), GLSLANG_STAGE_COMPUTE);
  const size_t n = glslang_program_SPIRV_get_size(program.get());
  std::vector<uint32_t> spirv(n);
  glslang_program_SPIRV_get(program.get(), spirv.data());
  if (spirv.empty()) fail("glslang produced no SPIR-V for ", source);
  return spirv;
}

namespace {

// $ML_PIPELINE_STATS: the driver's statistics of each executable of `pipeline`, one line.
void print_stats(const Device& device, const KernelSpec& spec, VkPipeline pipeline) {
  const auto props =
      device.proc<PFN_vkGetPipelineExecutablePropertiesKHR>("vkGetPipelineExecutablePropertiesKHR");
  const auto stats =
      device.proc<PFN_vkGetPipelineExecutableStatisticsKHR>("vkGetPipelineExecutableStatisticsKHR");
  VkPipelineInfoKHR info{VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR};
  info.pipeline = pipeline;
  uint32_t n = 0;
  props(device.handle(), &info, &n, nullptr);
  std::string line = "pipeline stats: " + spec.source;
  for (const auto& [name, text] : spec.defines) line += cat(" ", name, "=", text);
  line += cat(" wg=", spec.workgroup_size, ":");
  for (uint32_t e = 0; e < n; ++e) {
    VkPipelineExecutableInfoKHR exe{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
    exe.pipeline = pipeline;
    exe.executableIndex = e;
    uint32_t m = 0;
    stats(device.handle(), &exe, &m, nullptr);
    std::vector<VkPipelineExecutableStatisticKHR> list(
        m, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
    stats(device.handle(), &exe, &m, list.data());
    for (const auto& st : list) {
      line += cat(" ", st.name, "=");
      switch (st.format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
          line += cat(st.value.b32 ? 1 : 0);
          break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
          line += cat(st.value.i64);
          break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
          line += cat(st.value.u64);
          break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR:
          line += cat(st.value.f64);
          break;
        default:
          break;
      }
      line += ";";
    }
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

Kernel::Kernel(Device& device, const KernelSpec& spec, const std::vector<uint32_t>& spirv)
    : device_(device), spec_(spec) {
  const Limits& l = device.limits();
  if (spec.workgroup_size == 0 || spec.workgroup_size > l.max_workgroup_size[0])
    fail(spec.source, ": workgroup size ", spec.workgroup_size,
         " exceeds maxComputeWorkGroupSize[0] = ", l.max_workgroup_size[0]);
  if (spec.workgroup_size > l.max_workgroup_invocations)
    fail(spec.source, ": workgroup size ", spec.workgroup_size,
         " exceeds maxComputeWorkGroupInvocations = ", l.max_workgroup_invocations);
  if (spec.n_buffers > l.max_per_stage_storage_buffers)
    fail(spec.source, ": ", spec.n_buffers, " storage buffers exceed ",
         "maxPerStageDescriptorStorageBuffers = ", l.max_per_stage_storage_buffers);
  if (spec.push_bytes > l.max_push_constants_size)
    fail(spec.source, ": ", spec.push_bytes, " bytes of push constants exceed ",
         "maxPushConstantsSize = ", l.max_push_constants_size);
  if (spec.shared_bytes > l.max_shared_memory)
    fail(spec.source, ": ", spec.shared_bytes, " bytes of shared memory exceed ",
         "maxComputeSharedMemorySize = ", l.max_shared_memory);
  VkDevice dev = device.handle();

  std::vector<VkDescriptorSetLayoutBinding> bindings(spec.n_buffers);
  for (uint32_t i = 0; i < spec.n_buffers; ++i)
    bindings[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo dci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dci.bindingCount = spec.n_buffers;
  dci.pBindings = bindings.data();
  check_vk(vkCreateDescriptorSetLayout(dev, &dci, nullptr, &set_layout_),
           "vkCreateDescriptorSetLayout");

  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, spec.push_bytes};
  VkPipelineLayoutCreateInfo lci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  lci.setLayoutCount = 1;
  lci.pSetLayouts = &set_layout_;
  lci.pushConstantRangeCount = spec.push_bytes ? 1 : 0;
  lci.pPushConstantRanges = &range;
  VkShaderModule module = VK_NULL_HANDLE;
  try {
    check_vk(vkCreatePipelineLayout(dev, &lci, nullptr, &layout_), "vkCreatePipelineLayout");
    VkShaderModuleCreateInfo mci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    mci.codeSize = spirv.size() * 4;
    mci.pCode = spirv.data();
    check_vk(vkCreateShaderModule(dev, &mci, nullptr, &module), "vkCreateShaderModule");

    VkSpecializationMapEntry entry{0, 0, sizeof(uint32_t)};
    VkSpecializationInfo spec_info{1, &entry, sizeof(uint32_t), &spec.workgroup_size};
    VkComputePipelineCreateInfo pci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    pci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    pci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    pci.stage.module = module;
    pci.stage.pName = "main";
    pci.stage.pSpecializationInfo = &spec_info;
    pci.layout = layout_;
    if (device.pipeline_stats()) pci.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    check_vk(vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &pci, nullptr, &pipeline_),
             "vkCreateComputePipelines");
    vkDestroyShaderModule(dev, module, nullptr);
    if (device.pipeline_stats()) print_stats(device, spec, pipeline_);
  } catch (...) {
    if (module) vkDestroyShaderModule(dev, module, nullptr);
    if (layout_) vkDestroyPipelineLayout(dev, layout_, nullptr);
    vkDestroyDescriptorSetLayout(dev, set_layout_, nullptr);
    throw;
  }
}

Kernel::~Kernel() {
  VkDevice dev = device_.handle();
  vkDestroyPipeline(dev, pipeline_, nullptr);
  vkDestroyPipelineLayout(dev, layout_, nullptr);
  vkDestroyDescriptorSetLayout(dev, set_layout_, nullptr);
}

const Kernel& Device::kernel(const KernelSpec& spec) {
  // Looked up on every dispatch: the spec's bytes hashed a word at a time, no key built.
  const uint32_t numbers[] = {spec.workgroup_size, spec.n_buffers, spec.push_bytes,
                              spec.shared_bytes};
  const std::hash<std::string_view> hash;
  size_t key = combine(hash(spec.source), hash(spec.defines.bytes()));
  key =
      combine(key, hash(std::string_view(reinterpret_cast<const char*>(numbers), sizeof(numbers))));
  auto& bucket = kernels_[key];
  for (const auto& k : bucket) {
    const KernelSpec& o = k->spec();
    if (o.source == spec.source && o.defines == spec.defines &&
        o.workgroup_size == spec.workgroup_size && o.n_buffers == spec.n_buffers &&
        o.push_bytes == spec.push_bytes && o.shared_bytes == spec.shared_bytes)
      return *k;
  }

  // The SPIR-V depends on the source and everything it can include, the defines, the
  // compiler and (by the brief's rule, for drivers that differ in what they accept) the device.
  Hash h;
  h.add(spec.source);
  for (const auto& s : embedded_shaders()) h.add(s.name), h.add(s.source);
  for (const auto& [n, v] : spec.defines) h.add(n), h.add(v);
  h.add(cat(limits_.vendor_id, ":", limits_.device_id, ":", limits_.driver_version));
  h.add(cat("glslang ", GLSLANG_VERSION_MAJOR, ".", GLSLANG_VERSION_MINOR, ".",
            GLSLANG_VERSION_PATCH));
  std::ostringstream file;
  file << spec.source << "-" << std::hex << std::setw(16) << std::setfill('0') << h.h << ".spv";
  std::filesystem::path path;
  std::vector<uint32_t> spirv;
  const auto start = std::chrono::steady_clock::now();
  if (disk_cache_ && !cache_dir_.empty()) {
    path = std::filesystem::path(cache_dir_) / file.str();
    spirv = read_spirv(path);
  }
  const bool cache_hit = !spirv.empty();
  if (spirv.empty()) {
    spirv = compile_glsl(spec.source, {spec.defines.begin(), spec.defines.end()});
    if (!path.empty()) write_spirv(path, spirv);
  }
  bucket.push_back(std::make_unique<Kernel>(*this, spec, spirv));
  check();
  if (options_.on_kernel)
    options_.on_kernel(
        spec, cache_hit,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  return *bucket.back();
}

}  // namespace ml::vk
