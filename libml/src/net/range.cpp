// Range header semantics (RFC 9110 §14.1.2): `bytes=first-last`, `bytes=first-`,
// `bytes=-suffix_length`; positions are inclusive and 0-based.
#include <cstdio>
#include <ctime>
#include <limits>

#include "ml/net.h"

namespace ml::net {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Decimal digits only; a number too large for 64 bits saturates (it is past any file end,
// which is what such a position means).
std::optional<uint64_t> parse_position(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = uint64_t(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      v = std::numeric_limits<uint64_t>::max();
    } else {
      v = v * 10 + d;
    }
  }
  return v;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
    if (a != prefix[i]) return false;
  }
  return true;
}

}  // namespace

ByteRange parse_range(std::string_view header, uint64_t size) {
  using Kind = ByteRange::Kind;
  header = trim(header);
  if (header.empty()) return {};
  const ByteRange bad{Kind::unsatisfiable};
  if (!iequals_prefix(header, "bytes=")) return bad;
  std::string_view spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return {};  // multi-range: whole file
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return bad;
  std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));

  if (a.empty()) {  // suffix: the last n bytes
    auto n = parse_position(b);
    if (!n || *n == 0 || size == 0) return bad;
    uint64_t len = *n < size ? *n : size;
    return {Kind::partial, size - len, size - 1};
  }
  auto first = parse_position(a);
  if (!first) return bad;
  uint64_t last = std::numeric_limits<uint64_t>::max();
  if (!b.empty()) {
    auto l = parse_position(b);
    if (!l || *l < *first) return bad;
    last = *l;
  }
  if (*first >= size) return bad;
  if (last > size - 1) last = size - 1;
  return {Kind::partial, *first, last};
}

std::string http_date(int64_t unix_seconds) {
  std::time_t t = std::time_t(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

}  // namespace ml::net
