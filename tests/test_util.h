#pragma once
// What the tests share: paths (the test data in ../shared or $ML_SHARED_DIR, the built
// binaries), seeded random bytes, and the message of the ml::Error a call throws.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "ml/error.h"

namespace ml::test {

inline std::filesystem::path shared_dir() {
  const char* env = std::getenv("ML_SHARED_DIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(ML_SHARED_DIR_DEFAULT);
}

inline std::filesystem::path shared(const std::string& relative) {
  return shared_dir() / relative;
}

inline std::filesystem::path bin(const std::string& name) {
  return std::filesystem::path(ML_BIN_DIR) / name;
}

inline std::filesystem::path source_dir() {
  return std::filesystem::path(ML_SOURCE_DIR);
}

inline std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = std::byte(rng());
  return out;
}

// The message of the ml::Error f throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace ml::test
