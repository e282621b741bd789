// What gguf_serve serves and how a request target maps onto it. The rule that keeps this
// safe: a target is decoded once, hostile segments are refused outright, and whatever is left
// is resolved through the file system (symlinks included) and must still lie inside a root.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "ml/error.h"
#include "ml/net.h"

namespace fs = std::filesystem;

namespace ml::net {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.1 percent-decoding; nullopt for a malformed escape. '+' is not a space in a
// path (that is only form encoding).
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += char(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// True when `path` (canonical) is `root` itself or below it.
bool inside(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
         path[root.size()] == '/';
}

bool is_regular_file(const std::string& path, uint64_t* size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (size) *size = uint64_t(st.st_size);
  return true;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string url_encode_path(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

Catalog make_catalog(const std::vector<std::string>& paths) {
  if (paths.empty()) fail("nothing to serve: give at least one file or folder");
  Catalog catalog;
  std::set<std::string> names;
  for (const std::string& p : paths) {
    std::error_code ec;
    fs::path canonical = fs::canonical(p, ec);
    if (ec) fail(p, ": ", ec.message());
    fs::file_status st = fs::status(canonical, ec);
    if (ec) fail(p, ": ", ec.message());
    Catalog::Root root;
    root.path = canonical.string();
    if (fs::is_directory(st)) {
      root.is_dir = true;
    } else if (fs::is_regular_file(st)) {
      root.name = canonical.filename().string();
      if (!names.insert(root.name).second) {
        fail(p, ": another file given is also named '", root.name, "'; serve their folders");
      }
    } else {
      fail(p, ": neither a regular file nor a folder");
    }
    catalog.roots.push_back(std::move(root));
  }
  return catalog;
}

Resolved resolve(const Catalog& catalog, std::string_view target) {
  using Kind = Resolved::Kind;
  std::string_view raw = target.substr(0, target.find_first_of("?#"));
  if (raw.empty() || raw.front() != '/') return {Kind::bad_request, {}, "target is not a path"};
  auto decoded = percent_decode(raw);
  if (!decoded) return {Kind::bad_request, {}, "malformed percent-encoding"};

  // Split after decoding, so `%2f` and `%2e%2e` meet the same checks as `/` and `..`.
  std::vector<std::string> segments;
  std::string_view rest = *decoded;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (seg.empty()) continue;
    if (seg == "." || seg == "..") return {Kind::bad_request, {}, "'.' or '..' in the path"};
    if (seg.find('\0') != std::string_view::npos || seg.find('\\') != std::string_view::npos) {
      return {Kind::bad_request, {}, "NUL or backslash in the path"};
    }
    segments.emplace_back(seg);
  }
  if (segments.empty()) return {Kind::listing, {}, {}};

  std::string relative;
  for (const std::string& s : segments) relative += (relative.empty() ? "" : "/") + s;
  for (const Catalog::Root& root : catalog.roots) {
    if (!root.is_dir) {
      if (relative == root.name && is_regular_file(root.path, nullptr)) {
        return {Kind::file, root.path, {}};
      }
      continue;
    }
    std::error_code ec;
    fs::path canonical = fs::canonical(fs::path(root.path) / relative, ec);
    if (ec) continue;
    std::string c = canonical.string();
    if (inside(c, root.path) && is_regular_file(c, nullptr)) return {Kind::file, c, {}};
  }
  return {Kind::not_found, {}, "no such file"};
}

std::vector<Listed> list_files(const Catalog& catalog, size_t limit) {
  std::vector<Listed> out;
  std::set<std::string> seen;
  auto add = [&](std::string name, const std::string& path) {
    uint64_t size = 0;
    if (out.size() < limit && is_regular_file(path, &size) && seen.insert(name).second) {
      out.push_back({std::move(name), size});
    }
  };
  for (const Catalog::Root& root : catalog.roots) {
    if (!root.is_dir) {
      add(root.name, root.path);
      continue;
    }
    std::error_code ec;
    fs::recursive_directory_iterator it(root.path, fs::directory_options::skip_permission_denied,
                                        ec);
    for (; !ec && it != fs::recursive_directory_iterator() && out.size() < limit;
         it.increment(ec)) {
      fs::path canonical = fs::canonical(it->path(), ec);
      if (ec) {
        ec.clear();
        continue;
      }
      if (!inside(canonical.string(), root.path)) continue;  // a symlink out: not served
      add(fs::relative(it->path(), root.path, ec).generic_string(), canonical.string());
      ec.clear();
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Listed& a, const Listed& b) { return a.name < b.name; });
  return out;
}

std::string listing_html(const std::vector<Listed>& files) {
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gguf_serve</title></head>"
      "<body>\n<h1>gguf_serve</h1>\n<table>\n<tr><th>name</th><th>bytes</th></tr>\n";
  for (const Listed& f : files) {
    html += cat("<tr><td><a href=\"/", html_escape(url_encode_path(f.name)), "\">",
                html_escape(f.name), "</a></td><td>", f.size, "</td></tr>\n");
  }
  html += "</table>\n</body></html>\n";
  return html;
}

}  // namespace ml::net
