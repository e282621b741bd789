// Metadata values and their typed accessors. A GGUF writer may store a count as UINT32 in one
// file and UINT64 or INT32 in another, so integer accessors accept any integer type and
// check the range instead of the exact type.
#include <cmath>
#include <limits>

#include "ml/gguf.h"

namespace ml::gguf {

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::UINT8: return "UINT8";
    case ValueType::INT8: return "INT8";
    case ValueType::UINT16: return "UINT16";
    case ValueType::INT16: return "INT16";
    case ValueType::UINT32: return "UINT32";
    case ValueType::INT32: return "INT32";
    case ValueType::FLOAT32: return "FLOAT32";
    case ValueType::BOOL: return "BOOL";
    case ValueType::STRING: return "STRING";
    case ValueType::ARRAY: return "ARRAY";
    case ValueType::UINT64: return "UINT64";
    case ValueType::INT64: return "INT64";
    case ValueType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

bool Value::is_integer() const {
  switch (type()) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

bool Value::is_number() const {
  return is_integer() || type() == ValueType::FLOAT32 || type() == ValueType::FLOAT64;
}

int64_t Value::to_int(std::string_view what) const {
  if (const auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail(what, ": value ", *u, " does not fit a signed 64-bit integer");
    }
    return int64_t(*u);
  }
  if (!is_integer()) fail(what, ": expected an integer, found ", value_type_name(type()));
  return std::visit(
      [](const auto& v) -> int64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) return int64_t(v);
        return 0;
      },
      data);
}

uint64_t Value::to_uint(std::string_view what) const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  int64_t v = to_int(what);
  if (v < 0) fail(what, ": expected a non-negative integer, found ", v);
  return uint64_t(v);
}

double Value::to_double(std::string_view what) const {
  if (const auto* f = std::get_if<float>(&data)) return *f;
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&data)) return double(*u);
  if (!is_integer()) fail(what, ": expected a number, found ", value_type_name(type()));
  return double(to_int(what));
}

const Value* Metadata::find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

void Metadata::set(std::string key, Value value) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  entries_.push_back({std::move(key), std::move(value)});
}

const Value& Metadata::at(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail("metadata key ", key, " is missing");
  return *v;
}

namespace {
std::string key_what(std::string_view key) { return cat("metadata key ", key); }
}  // namespace

std::string Metadata::string(std::string_view key) const {
  const Value& v = at(key);
  const auto* s = std::get_if<std::string>(&v.data);
  if (!s) fail(key_what(key), ": expected STRING, found ", value_type_name(v.type()));
  return *s;
}

uint64_t Metadata::uint(std::string_view key) const { return at(key).to_uint(key_what(key)); }
int64_t Metadata::integer(std::string_view key) const { return at(key).to_int(key_what(key)); }
double Metadata::number(std::string_view key) const { return at(key).to_double(key_what(key)); }

bool Metadata::boolean(std::string_view key) const {
  const Value& v = at(key);
  const auto* b = std::get_if<bool>(&v.data);
  if (!b) fail(key_what(key), ": expected BOOL, found ", value_type_name(v.type()));
  return *b;
}

const Array& Metadata::array(std::string_view key) const {
  const Value& v = at(key);
  const auto* a = std::get_if<Array>(&v.data);
  if (!a) fail(key_what(key), ": expected ARRAY, found ", value_type_name(v.type()));
  return *a;
}

std::vector<std::string> Metadata::strings(std::string_view key) const {
  const Array& a = array(key);
  if (a.type != ValueType::STRING) {
    fail(key_what(key), ": expected an array of STRING, found ", value_type_name(a.type));
  }
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const Value& v : a.items) out.push_back(std::get<std::string>(v.data));
  return out;
}

std::vector<float> Metadata::floats(std::string_view key) const {
  const Array& a = array(key);
  std::vector<float> out;
  out.reserve(a.items.size());
  std::string what = key_what(key);
  for (const Value& v : a.items) out.push_back(float(v.to_double(what)));
  return out;
}

std::vector<int64_t> Metadata::integers(std::string_view key) const {
  const Array& a = array(key);
  std::vector<int64_t> out;
  out.reserve(a.items.size());
  std::string what = key_what(key);
  for (const Value& v : a.items) out.push_back(v.to_int(what));
  return out;
}

std::string Metadata::string_or(std::string_view key, std::string fallback) const {
  return has(key) ? string(key) : fallback;
}
uint64_t Metadata::uint_or(std::string_view key, uint64_t fallback) const {
  return has(key) ? uint(key) : fallback;
}
double Metadata::number_or(std::string_view key, double fallback) const {
  return has(key) ? number(key) : fallback;
}
bool Metadata::boolean_or(std::string_view key, bool fallback) const {
  return has(key) ? boolean(key) : fallback;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) fail("tensor ", name, " is not in the file");
  return *t;
}

}  // namespace ml::gguf
