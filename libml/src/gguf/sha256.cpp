// SHA-256 through OpenSSL's EVP interface, and the chunked range digest behind gguf_range.
#include <openssl/evp.h>

#include <chrono>

#include "ml/gguf.h"

namespace ml::gguf {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(impl_->ctx);
    fail("OpenSSL: cannot start a SHA-256 digest");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(impl_->ctx);
}

void Sha256::update(std::span<const std::byte> bytes) {
  if (!bytes.empty() && EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()) != 1) {
    fail("OpenSSL: SHA-256 update failed");
  }
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, md, &n) != 1) fail("OpenSSL: SHA-256 final failed");
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::span<const std::byte> bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

RangeDigest digest_range(Source& source, uint64_t offset, uint64_t len, uint64_t chunk) {
  if (offset > source.size() || len > source.size() - offset) {
    fail(source.name(), ": range ", offset, "+", len, " is past the end (", source.size(),
         " bytes)");
  }
  if (chunk == 0) fail("digest_range: chunk size 0");
  auto start = std::chrono::steady_clock::now();
  std::vector<std::byte> buf(size_t(std::min(chunk, len)));
  Sha256 h;
  for (uint64_t done = 0; done < len;) {
    size_t n = size_t(std::min<uint64_t>(buf.size(), len - done));
    std::span<std::byte> part(buf.data(), n);
    source.read(offset + done, part);
    h.update(part);
    done += n;
  }
  RangeDigest d;
  d.bytes = len;
  d.sha256 = h.hex();
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return d;
}

}  // namespace ml::gguf
