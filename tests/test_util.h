#pragma once
// Paths the tests share: the test data (../shared, or $ML_SHARED_DIR) and the built binaries.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ml::test {

inline std::filesystem::path shared_dir() {
  const char* env = std::getenv("ML_SHARED_DIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(ML_SHARED_DIR_DEFAULT);
}

inline std::filesystem::path shared(const std::string& relative) { return shared_dir() / relative; }

inline std::filesystem::path bin(const std::string& name) {
  return std::filesystem::path(ML_BIN_DIR) / name;
}

inline std::filesystem::path source_dir() { return std::filesystem::path(ML_SOURCE_DIR); }

}  // namespace ml::test
