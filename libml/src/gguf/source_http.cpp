// Interim: replaced by the libcurl HttpSource from branch `net` when it merges.
#include "ml/gguf.h"

namespace ml::gguf {
struct HttpSource::Impl {};
HttpSource::HttpSource(std::string url, HttpOptions options)
    : url_(std::move(url)), options_(options) {
  fail(url_, ": HTTP sources arrive with branch net");
}
HttpSource::~HttpSource() = default;
void HttpSource::read(uint64_t, std::span<std::byte>) { fail(url_, ": no HTTP support"); }
}  // namespace ml::gguf
