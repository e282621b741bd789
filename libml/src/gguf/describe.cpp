// gguf_dump's two renderings of a parsed file: a summary for people and a JSON document for
// scripts (the one gguf-py's reader is checked against).
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

// ordered_json keeps metadata in file order.
using json = nlohmann::ordered_json;

json value_json(const Value& v, int64_t limit) {
  return std::visit(
      [limit](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Array>) {
          json a = json::array();
          size_t n = limit < 0 ? x.items.size() : std::min<size_t>(x.items.size(), limit);
          for (size_t i = 0; i < n; ++i) a.push_back(value_json(x.items[i], limit));
          return a;
        } else if constexpr (std::is_same_v<T, float>) {
          return double(x);
        } else {
          return x;
        }
      },
      v.data);
}

std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string value_text(const Value& v, int64_t limit) {
  if (const auto* a = std::get_if<Array>(&v.data)) {
    std::string out = "[";
    size_t n = limit < 0 ? a->items.size() : std::min<size_t>(a->items.size(), limit);
    for (size_t i = 0; i < n; ++i) out += (i ? ", " : "") + value_text(a->items[i], limit);
    if (n < a->items.size()) out += cat(n ? ", " : "", "... (", a->items.size(), " total)");
    return out + "]";
  }
  if (const auto* s = std::get_if<std::string>(&v.data)) {
    std::string q = quoted(*s);
    return q.size() > 200 ? q.substr(0, 200) + cat("...\" (", s->size(), " bytes)") : q;
  }
  return value_json(v, limit).dump();
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += cat(i ? ", " : "", shape[i]);
  return s + "]";
}

}  // namespace

std::string describe(const File& f, const DescribeOptions& o) {
  std::string out;
  uint64_t data_bytes = 0;
  for (const TensorInfo& t : f.tensors) data_bytes += t.size;
  out += cat("GGUF v", f.version, ", ", human_bytes(f.file_size), " (", f.file_size, " bytes)\n");
  out += cat("architecture: ", f.architecture().empty() ? "(none)" : f.architecture(), "\n");
  out += cat("alignment: ", f.alignment, ", data offset: ", f.data_offset, "\n");
  out += cat("metadata: ", f.metadata.size(), " keys; tensors: ", f.tensors.size(), ", ",
             human_bytes(data_bytes), "\n");
  if (o.metadata) {
    out += "\nmetadata:\n";
    for (const Metadata::Entry& e : f.metadata.entries()) {
      std::string type = value_type_name(e.value.type());
      if (const auto* a = std::get_if<Array>(&e.value.data)) {
        type = cat("ARRAY<", value_type_name(a->type), ">[", a->items.size(), "]");
      }
      out += cat("  ", e.key, " (", type, ") = ", value_text(e.value, o.array_limit), "\n");
    }
  }
  if (o.tensors) {
    out += "\ntensors:\n";
    char line[512];
    for (const TensorInfo& t : f.tensors) {
      std::snprintf(line, sizeof line, "  %-40s %-8s %-24s %12" PRIu64 " bytes @ %" PRIu64 "\n",
                    t.name.c_str(), type_name(t.type), shape_text(t.shape).c_str(), t.size,
                    t.offset);
      out += line;
    }
  }
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // name → (count, bytes)
  for (const TensorInfo& t : f.tensors) {
    auto& [count, bytes] = by_type[type_name(t.type)];
    ++count;
    bytes += t.size;
  }
  out += "\nbytes per type:\n";
  for (const auto& [name, cb] : by_type) {
    out += cat("  ", name, ": ", cb.first, " tensors, ", human_bytes(cb.second), " (", cb.second,
               " bytes)\n");
  }
  return out;
}

std::string to_json(const File& f, int64_t array_limit, bool pretty) {
  json doc;
  doc["version"] = f.version;
  doc["alignment"] = f.alignment;
  doc["data_offset"] = f.data_offset;
  doc["file_size"] = f.file_size;
  json meta = json::object();
  for (const Metadata::Entry& e : f.metadata.entries()) meta[e.key] = value_json(e.value, array_limit);
  doc["metadata"] = std::move(meta);
  json tensors = json::array();
  for (const TensorInfo& t : f.tensors) {
    tensors.push_back({{"name", t.name},
                       {"type", type_name(t.type)},
                       {"shape", t.shape},
                       {"offset", t.offset},
                       {"size", t.size}});
  }
  doc["tensors"] = std::move(tensors);
  return doc.dump(pretty ? 1 : -1, ' ', false, json::error_handler_t::replace);
}

}  // namespace ml::gguf
