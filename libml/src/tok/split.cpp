// The regex split behind every BPE pre-tokenizer (llama.cpp unicode_regex_split): each regex
// runs inside each piece the previous one left; its matches and the text between them become
// the new pieces. PCRE2 in UTF mode with JIT; the text is valid UTF-8 by the time it gets here.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ml/error.h"
#include "tok/pretokenize.h"

namespace ml::tok {
namespace {

// Unicode White_Space, the set llama.cpp's unicode_set_whitespace holds (its \s).
constexpr std::string_view kSpaceItems =
    R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

struct Code {
  pcre2_code* code = nullptr;
  Code() = default;
  explicit Code(pcre2_code* c) : code(c) {}
  Code(Code&& o) noexcept : code(o.code) { o.code = nullptr; }
  Code& operator=(Code&& o) noexcept {
    std::swap(code, o.code);
    return *this;
  }
  ~Code() { pcre2_code_free(code); }
};

// Per-call matching state: match data sized for the largest pattern and a JIT stack big
// enough for the lookahead-heavy o200k pattern on long runs of letters.
struct Scratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  Scratch() {
    data = pcre2_match_data_create(32, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) fail("pre-tokenizer: out of memory for PCRE2 match data");
    pcre2_jit_stack_assign(context, nullptr, stack);
    pcre2_set_heap_limit(context, 1u << 20);  // KiB: 1 GiB of interpreter frames at most
    pcre2_set_match_limit(context, 1u << 30);
  }
  ~Scratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

size_t next_char(std::string_view s, size_t i) {
  ++i;
  while (i < s.size() && (uint8_t(s[i]) & 0xc0) == 0x80) ++i;
  return i;
}

}  // namespace

std::string translate_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's') {
        out += in_class ? std::string(kSpaceItems) : "[" + std::string(kSpaceItems) + "]";
      } else if (e == 'S') {
        if (in_class) fail("pre-tokenizer pattern: \\S inside a class is not supported: ", p);
        out += "[^" + std::string(kSpaceItems) + "]";
      } else if (e == 'd') {
        out += in_class ? "0-9" : "[0-9]";
      } else if (p.compare(i, 5, "\\p{Lu") == 0 || p.compare(i, 5, "\\p{Ll") == 0 ||
                 p.compare(i, 5, "\\p{Lt") == 0 || p.compare(i, 5, "\\p{Lm") == 0 ||
                 p.compare(i, 5, "\\p{Lo") == 0) {
        out += "\\p{L}";
        i += 5;  // past "}" after the loop's ++i
        continue;
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

struct Splitter::Impl {
  std::string name;
  std::vector<Code> codes;
};

Splitter::Splitter(const PreSpec& spec, std::string_view name) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::string(name);
  for (std::string_view regex : spec.regexes) {
    const std::string pattern = translate_pattern(regex);
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &error, &error_offset, nullptr);
    if (!code) {
      fail("pre-tokenizer '", name, "': regex does not compile at offset ", error_offset, ": ",
           pcre2_message(error), " (", pattern, ")");
    }
    // JIT is a speed-up only; the interpreter gives the same matches when JIT is unavailable.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    impl_->codes.emplace_back(code);
  }
}

Splitter::~Splitter() = default;
Splitter::Splitter(Splitter&&) noexcept = default;
Splitter& Splitter::operator=(Splitter&&) noexcept = default;

std::vector<std::pair<size_t, size_t>> Splitter::split(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> pieces;
  if (text.empty()) return pieces;
  pieces.emplace_back(0, text.size());
  Scratch scratch;
  std::vector<std::pair<size_t, size_t>> next;
  for (const Code& code : impl_->codes) {
    next.clear();
    next.reserve(pieces.size() * 2);
    for (auto [begin, length] : pieces) {
      // The piece is the whole subject, so lookaheads and `$` stop at its end, as with
      // llama.cpp's regex_iterator over [begin, begin + length).
      const std::string_view piece = text.substr(begin, length);
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t last = 0;   // end of the previous match
      size_t start = 0;  // where to search next
      uint32_t options = 0;
      while (start <= piece.size()) {
        int rc = pcre2_match(code.code, subject, piece.size(), start, options | PCRE2_NO_UTF_CHECK,
                             scratch.data, scratch.context);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          // A very long word outgrew the JIT stack: the interpreter keeps its backtracking
          // frames on the heap (bounded by the context's heap limit) and finds the same match.
          rc = pcre2_match(code.code, subject, piece.size(), start,
                           options | PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, scratch.data,
                           scratch.context);
        }
        if (rc == PCRE2_ERROR_NOMATCH) {
          if (options == 0) break;
          // No non-empty match at an empty match's position: step one character on.
          options = 0;
          start = next_char(piece, start);
          continue;
        }
        if (rc < 0) {
          fail("pre-tokenizer '", impl_->name, "': regex match failed at byte ", begin + start,
               ": ", pcre2_message(rc));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data);
        const size_t m0 = ovector[0], m1 = ovector[1];
        if (m0 > last) next.emplace_back(begin + last, m0 - last);
        if (m1 > m0) next.emplace_back(begin + m0, m1 - m0);
        last = m1;
        if (m1 == m0) {
          if (m1 >= piece.size()) break;
          options = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
        } else {
          options = 0;
        }
        start = m1;
      }
      if (last < piece.size()) next.emplace_back(begin + last, piece.size() - last);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace ml::tok
