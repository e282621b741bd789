// The Vulkan backend's attention: shaders/attention.comp over the batch and the KV cache,
// split over workgroups for decode (flash-decoding) whose last one joins the splits. The CPU
// reference is ml::ops::attention.
#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "backend/vulkan_ops.h"

namespace ml {
using namespace vkops;
namespace {

// Most token·heads a split dispatch has (256 / items ≥ 2 splits): attention_part_ holds a
// counter for each and (acc[head_dim], m, l) for items · n_split ≤ 2 · kSplitItems of them.
constexpr uint64_t kSplitItems = 128;
// Most splits of one item (attention.comp's shared split_m / split_l).
constexpr uint64_t kMaxSplits = 64;

bool env_is(const char* name, std::string_view value) {
  const char* e = std::getenv(name);
  return e && value == e;
}

}  // namespace

Tensor VulkanBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& k_cache, const Tensor& v_cache, const Tensor* sinks,
                                const ops::AttentionParams& ap) {
  const int64_t head_dim = q.ne[0], n_head = q.ne[1], T = q.ne[2], n_head_kv = k.ne[1];
  need(k.ne[0] == head_dim && k.ne[2] == T && v.ne == k.ne && n_head_kv > 0 &&
           n_head % n_head_kv == 0 && k_cache.ne[0] == head_dim * n_head_kv &&
           v_cache.ne == k_cache.ne && k_cache.type == v_cache.type &&
           (k_cache.type == gguf::Type::F16 || k_cache.type == gguf::Type::F32),
       "attention", "q ", Shape{q}, " k ", Shape{k}, " cache ", Shape{k_cache});
  need(head_dim <= 256 && head_dim % 8 == 0, "attention", "head_dim ", head_dim,
       ": the kernel takes multiples of 8 up to 256");
  need(ap.pos0 >= 0 && ap.n_swa >= 0, "attention", "negative pos0 or window");
  if (sinks) need(sinks->n_elements() == n_head, "attention", "one sink per head");
  Tensor y = scratch(gguf::Type::F32, {head_dim * n_head, T, 1, 1});
  // The clustered layout (attention.comp) needs subgroups of 8+ lanes with shuffles and rows of
  // 8 lanes × a multiple of 8 dims; other shapes take the one-key-per-invocation layout, as
  // does ML_ATTENTION=plain (to compare the two in one build).
  const vk::Limits& lim = device_->limits();
  const bool cluster = head_dim % 64 == 0 && lim.subgroup_size >= 8 &&
                       vk::has_subgroup_operation(lim, "shuffle") &&
                       !env_is("ML_ATTENTION", "plain");
  // Clustered: WG / 8 clusters of KPL keys each per step, KPL keys' rows in registers at once
  // (two 16-byte loads a key per lane at head_dim 64, eight at 256).
  const uint32_t wg = cluster ? device_->workgroup_size(head_dim == 64 ? 128 : 256) : kWg;
  const uint32_t kpl = head_dim == 64 ? 8 : head_dim == 128 ? 4 : 2;
  // Flash-decoding: when the batch's token·heads are too few workgroups to fill the GPU,
  // each one's keys are split over several (at least kMinChunk keys each) and combined after.
  // The plain layout runs its keys' value sums one after another, so even a short cache is
  // split (64 keys in one workgroup per head took ~25 us per layer on the H200); a clustered
  // workgroup takes a whole step of keys in one memory round trip, so its splits are steps.
  // (H200, llama3.2-1b at 512-640 keys: splits of one step, of two and one workgroup of five
  // steps all took 13 us per layer.)
  const uint64_t kMinChunk = cluster ? uint64_t(wg / 8 * kpl) : 16;
  const uint64_t items = uint64_t(T * n_head);
  const int64_t span = ap.pos0 + T,
                n_keys = ap.n_swa > 0 ? std::min<int64_t>(span, ap.n_swa) : span;
  const uint64_t units = (uint64_t(n_keys) + kMinChunk - 1) / kMinChunk;
  const uint64_t wanted = std::min(std::clamp<uint64_t>(256 / items, 1, kMaxSplits), units);
  const uint64_t chunk = (units + wanted - 1) / wanted * kMinChunk;
  const uint64_t n_split = (uint64_t(n_keys) + chunk - 1) / chunk;
  struct Push {
    uint32_t head_dim, n_head, n_head_kv, n_tokens, pos0, n_swa, n_cells, has_sinks;
    float scale, softcap;
    uint32_t chunk, n_split;
  } p{u32(head_dim, "attention"),
      u32(n_head, "attention"),
      u32(n_head_kv, "attention"),
      u32(T, "attention"),
      uint32_t(ap.pos0),
      uint32_t(ap.n_swa),
      u32(k_cache.ne[1], "attention"),
      sinks ? 1u : 0u,
      ap.scale,
      ap.softcap,
      u32(chunk, "attention"),
      uint32_t(n_split)};
  const vk::Buffer& qb = f32(q, "attention");
  const bool f16 = k_cache.type == gguf::Type::F16;
  const bool split = n_split > 1;
  // Splits happen only for items ≤ 128 (wanted ≥ 2), with items · n_split ≤ 256.
  need(!split ||
           (items <= kSplitItems && items * n_split <= 2 * kSplitItems && n_split <= kMaxSplits),
       "attention", items, " items in ", n_split, " splits");
  if (split && !attn_part_) {
    attn_part_ =
        alloc(gguf::Type::F32, {int64_t(kSplitItems + 2 * kSplitItems * (256 + 2)), 1, 1, 1},
              "attention_part");
    upload(attn_part_, std::vector<std::byte>(tensor_bytes(attn_part_)), 0);  // counters at 0
  }
  std::vector<vk::Binding> b = {bind(*device_, qb),
                                bind(*device_, f32(k, "attention")),
                                bind(*device_, f32(v, "attention")),
                                bind(*device_, buffer(k_cache)),
                                bind(*device_, buffer(v_cache)),
                                bind(*device_, sinks ? f32(*sinks, "attention") : qb),
                                bind(*device_, buffer(y), true)};
  if (split) b.push_back(bind(*device_, buffer(attn_part_), true));
  // At decode, y quantized alongside for the output projection (blocks within a head).
  const vk::Buffer* x_q = head_dim % 32 == 0 ? quantize_alongside(y) : nullptr;
  if (x_q) b.push_back(bind(*device_, *x_q, true));
  rec_->dispatch(device_->kernel(spec("attention.comp", uint32_t(b.size()), sizeof(Push),
                                      {{"CACHE_F16", f16 ? "1" : "0"},
                                       {"HEAD_DIM", std::to_string(head_dim) + "u"},
                                       {"SPLIT", split ? "1" : "0"},
                                       {"CLUSTER", cluster ? "1" : "0"},
                                       {"KPL", std::to_string(cluster ? kpl : 0) + "u"},
                                       {"MAX_ITEMS", std::to_string(kSplitItems) + "u"},
                                       {"MAX_SPLITS", std::to_string(kMaxSplits) + "u"},
                                       {"QUANTIZE", x_q ? "1" : "0"},
                                       {"QUANTIZE_BINDING", x_q ? uint32_t(b.size() - 1) : 0u},
                                       {"X_RESIDUAL", "1"}},
                                      wg)),
                 b, bytes_of(p), vk::fold_groups(*device_, items, n_split), "attention");
  return y;
}

}  // namespace ml
