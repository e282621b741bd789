# Writes OUT: a C++ table {file name, GLSL text} of every shader in SHADER_DIR, so libml
# carries its kernels' sources and compiles them at run time with glslang.
file(GLOB shaders ${SHADER_DIR}/*.comp ${SHADER_DIR}/*.glsl)
list(SORT shaders)
set(body "")
foreach(path ${shaders})
  get_filename_component(name ${path} NAME)
  file(READ ${path} text)
  string(APPEND body "  {\"${name}\", R\"ml_glsl(${text})ml_glsl\"},\n")
endforeach()
file(WRITE ${OUT}.tmp
"// Generated from shaders/ by cmake/embed_shaders.cmake. Do not edit.
#include \"vk/shaders.h\"

namespace ml::vk {
const std::vector<EmbeddedShader>& embedded_shaders() {
  static const std::vector<EmbeddedShader> table = {
${body}  };
  return table;
}
}  // namespace ml::vk
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
