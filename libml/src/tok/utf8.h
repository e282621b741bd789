#pragma once
// UTF-8 as the tokenizers read it, and GPT-2's byte-to-unicode mapping.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ml::tok {

// Length of the UTF-8 sequence a lead byte announces, 1 for a stray continuation byte
// (llama.cpp's unicode_len_utf8: the SPM and BPE symbol splitters step by it).
inline size_t utf8_len(char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[uint8_t(lead) >> 4];
}

void append_utf8(std::string& out, uint32_t cpt);

// Code points the way llama.cpp's unicode_cpts_from_utf8 reads them: a byte that does not start
// a complete sequence becomes U+FFFD and reading resumes at the next byte. Unlike llama.cpp,
// a surrogate or a value above U+10FFFF also reads as U+FFFD per byte (llama.cpp would throw
// while re-encoding it), so the result always re-encodes to valid UTF-8.
std::vector<uint32_t> decode_lenient(std::string_view s);

// The next character at s[i]: its length when valid; otherwise the length of the maximal
// invalid subsequence (>= 1) with valid = false; truncated = the bytes so far are a valid
// prefix that the end of s cut off.
struct Utf8Step {
  size_t len;
  bool valid;
  bool truncated;
};
Utf8Step utf8_step(std::string_view s, size_t i);

// GPT-2 bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in order, so every byte string becomes printable text without spaces.
struct ByteUnicode {
  std::array<std::string, 256> encode;  // byte -> UTF-8 of its code point
  std::array<int16_t, 324> decode;      // code point (< 324) -> byte, -1 when unmapped
};
const ByteUnicode& byte_unicode();

// Token text in GPT-2 byte encoding back to bytes; false when a character is not in the
// mapping (a special token such as "<|endoftext|>" is plain ASCII and maps to itself).
bool byte_decode(std::string_view text, std::string& out);

}  // namespace ml::tok
