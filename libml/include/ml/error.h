#pragma once
// ml::Error: the one exception libml throws for anything a file, a server or a user controls.
// Its message names what is at fault (file, byte offset, key, tensor, limit); binaries print
// it as `error: <message>` and exit 1.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ml {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates its arguments with operator<< (GCC 12 has no <format>).
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace ml
