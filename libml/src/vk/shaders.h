#pragma once
// The GLSL sources of shaders/, embedded at build time (cmake/embed_shaders.cmake).
#include <string_view>
#include <vector>

namespace ml::vk {

struct EmbeddedShader {
  std::string_view name;    // file name in shaders/, e.g. "matmul.comp"
  std::string_view source;  // GLSL text
};

const std::vector<EmbeddedShader>& embedded_shaders();

}  // namespace ml::vk
