#include "tok/utf8.h"

#include "ml/tok.h"

namespace ml::tok {

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt <= 0x7f) {
    out.push_back(char(cpt));
  } else if (cpt <= 0x7ff) {
    out.push_back(char(0xc0 | (cpt >> 6)));
    out.push_back(char(0x80 | (cpt & 0x3f)));
  } else if (cpt <= 0xffff) {
    out.push_back(char(0xe0 | (cpt >> 12)));
    out.push_back(char(0x80 | ((cpt >> 6) & 0x3f)));
    out.push_back(char(0x80 | (cpt & 0x3f)));
  } else {
    out.push_back(char(0xf0 | (cpt >> 18)));
    out.push_back(char(0x80 | ((cpt >> 12) & 0x3f)));
    out.push_back(char(0x80 | ((cpt >> 6) & 0x3f)));
    out.push_back(char(0x80 | (cpt & 0x3f)));
  }
}

std::vector<uint32_t> decode_lenient(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  auto cont = [&](size_t i) { return i < s.size() && (uint8_t(s[i]) & 0xc0) == 0x80; };
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = uint8_t(s[i]);
    uint32_t cpt = 0xfffd;
    size_t n = 1;
    // The same acceptance as llama.cpp's unicode_cpt_from_utf8: lead byte class and
    // continuation bytes only (overlong forms decode to their value).
    if (b < 0x80) {
      cpt = b;
    } else if ((b & 0xe0) == 0xc0 && cont(i + 1)) {
      cpt = ((b & 0x1fu) << 6) | (uint8_t(s[i + 1]) & 0x3fu), n = 2;
    } else if ((b & 0xf0) == 0xe0 && cont(i + 1) && cont(i + 2)) {
      cpt = ((b & 0x0fu) << 12) | ((uint8_t(s[i + 1]) & 0x3fu) << 6) | (uint8_t(s[i + 2]) & 0x3fu);
      n = 3;
    } else if ((b & 0xf8) == 0xf0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      cpt = ((b & 0x07u) << 18) | ((uint8_t(s[i + 1]) & 0x3fu) << 12) |
            ((uint8_t(s[i + 2]) & 0x3fu) << 6) | (uint8_t(s[i + 3]) & 0x3fu);
      n = 4;
    }
    if ((cpt >= 0xd800 && cpt <= 0xdfff) || cpt > 0x10ffff) cpt = 0xfffd, n = 1;
    out.push_back(cpt);
    i += n;
  }
  return out;
}

Utf8Step utf8_step(std::string_view s, size_t i) {
  const uint8_t b = uint8_t(s[i]);
  if (b < 0x80) return {1, true, false};
  size_t need;
  uint8_t lo = 0x80, hi = 0xbf;  // allowed range of the second byte (Unicode table 3-7)
  if (b >= 0xc2 && b <= 0xdf) {
    need = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    need = 3;
    if (b == 0xe0) lo = 0xa0;
    if (b == 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 4;
    if (b == 0xf0) lo = 0x90;
    if (b == 0xf4) hi = 0x8f;
  } else {
    return {1, false, false};
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return {k, false, true};
    const uint8_t c = uint8_t(s[i + k]);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xbf);
    if (!ok) return {k, false, false};
  }
  return {need, true, false};
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = utf8_step(s, i);
    if (!step.valid) return false;
    i += step.len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = utf8_step(s, i);
    if (step.valid) {
      out.append(s.substr(i, step.len));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += step.len;
  }
  return out;
}

const ByteUnicode& byte_unicode() {
  static const ByteUnicode table = [] {
    ByteUnicode t;
    t.decode.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cpt = printable(b) ? uint32_t(b) : uint32_t(256 + n++);
      append_utf8(t.encode[b], cpt);
      t.decode[cpt] = int16_t(b);
    }
    return t;
  }();
  return table;
}

bool byte_decode(std::string_view text, std::string& out) {
  const ByteUnicode& bu = byte_unicode();
  out.clear();
  for (size_t i = 0; i < text.size();) {
    const Utf8Step step = utf8_step(text, i);
    if (!step.valid) return false;
    uint32_t cpt;
    const auto* p = reinterpret_cast<const uint8_t*>(text.data() + i);
    switch (step.len) {
      case 1:
        cpt = p[0];
        break;
      case 2:
        cpt = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
        break;
      default:
        return false;  // every mapped code point is below U+0800
    }
    if (cpt >= bu.decode.size() || bu.decode[cpt] < 0) return false;
    out.push_back(char(bu.decode[cpt]));
    i += step.len;
  }
  return true;
}

}  // namespace ml::tok
