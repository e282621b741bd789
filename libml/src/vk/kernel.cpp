// Kernels: embedded GLSL compiled by glslang with #define variants, SPIR-V cached on disk
// keyed by source, defines and device, pipelines with the workgroup size as a
// specialization constant.
#include <glslang/Public/ResourceLimits.h>
#include <glslang/Public/ShaderLang.h>
#include <glslang/SPIRV/GlslangToSpv.h>
#include <unistd.h>

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

// Resolves `#include "quant.glsl"` from the embedded table, so libml needs no files at run time.
class Includer final : public glslang::TShader::Includer {
 public:
  IncludeResult* includeLocal(const char* header, const char*, size_t) override {
    const EmbeddedShader* s = find_shader(header);
    if (!s) return nullptr;
    return new IncludeResult(header, s->source.data(), s->source.size(), nullptr);
  }
  IncludeResult* includeSystem(const char* header, const char* from, size_t depth) override {
    return includeLocal(header, from, depth);
  }
  // glslang's interface hands results back through a raw pointer it owns no deleter for.
  void releaseInclude(IncludeResult* result) override { delete result; }
};

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

}  // namespace

std::vector<uint32_t> compile_glsl(
    const std::string& source, const std::vector<std::pair<std::string, std::string>>& defines) {
  const EmbeddedShader* s = find_shader(source);
  if (!s) fail("shader ", source, " is not among the embedded shaders");
  // glslang counts its clients; a Device holds one for its lifetime, this one covers callers
  // without a Device.
  struct Process {
    Process() { glslang::InitializeProcess(); }
    ~Process() { glslang::FinalizeProcess(); }
  } process;
  std::string preamble;
  for (const auto& [name, value] : defines) preamble += cat("#define ", name, " ", value, "\n");

  glslang::TShader shader(EShLangCompute);
  const char* text = s->source.data();
  const int length = int(s->source.size());
  const char* name = source.c_str();
  shader.setStringsWithLengthsAndNames(&text, &length, &name, 1);
  shader.setPreamble(preamble.c_str());
  shader.setEnvInput(glslang::EShSourceGlsl, EShLangCompute, glslang::EShClientVulkan, 100);
  shader.setEnvClient(glslang::EShClientVulkan, glslang::EShTargetVulkan_1_2);
  shader.setEnvTarget(glslang::EShTargetSpv, glslang::EShTargetSpv_1_5);
  Includer includer;
  const auto messages = EShMessages(EShMsgSpvRules | EShMsgVulkanRules);
  if (!shader.parse(GetDefaultResources(), 460, false, messages, includer))
    fail("compiling ", source, " (", preamble.empty() ? "no defines" : preamble,
         "): ", shader.getInfoLog());
  glslang::TProgram program;
  program.addShader(&shader);
  if (!program.link(messages)) fail("linking ", source, ": ", program.getInfoLog());
  std::vector<uint32_t> spirv;
  glslang::SpvOptions options;
  options.disableOptimizer = false;
  glslang::GlslangToSpv(*program.getIntermediate(EShLangCompute), spirv, &options);
  return spirv;
}

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
    check_vk(vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &pci, nullptr, &pipeline_),
             "vkCreateComputePipelines");
    vkDestroyShaderModule(dev, module, nullptr);
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
  std::string key =
      cat(spec.source, "|wg=", spec.workgroup_size, "|b=", spec.n_buffers, "|p=", spec.push_bytes);
  for (const auto& [n, v] : spec.defines) key += cat("|", n, "=", v);
  if (auto it = kernels_.find(key); it != kernels_.end()) return *it->second;

  // The SPIR-V depends on the source and everything it can include, the defines, the
  // compiler and (by the brief's rule, for drivers that differ in what they accept) the device.
  Hash h;
  h.add(spec.source);
  for (const auto& s : embedded_shaders()) h.add(s.name), h.add(s.source);
  for (const auto& [n, v] : spec.defines) h.add(n), h.add(v);
  h.add(cat(limits_.vendor_id, ":", limits_.device_id, ":", limits_.driver_version));
  h.add(glslang::GetGlslVersionString());
  std::ostringstream file;
  file << spec.source << "-" << std::hex << std::setw(16) << std::setfill('0') << h.h << ".spv";
  std::filesystem::path path;
  std::vector<uint32_t> spirv;
  if (disk_cache_ && !cache_dir_.empty()) {
    path = std::filesystem::path(cache_dir_) / file.str();
    spirv = read_spirv(path);
  }
  if (spirv.empty()) {
    spirv = compile_glsl(spec.source, spec.defines);
    if (!path.empty()) write_spirv(path, spirv);
  }
  auto kernel = std::make_unique<Kernel>(*this, spec, spirv);
  check();
  return *kernels_.emplace(key, std::move(kernel)).first->second;
}

}  // namespace ml::vk
