#pragma once
// A model: hyper-parameters from GGUF metadata (Config), its tensors on a backend (Weights)
// and its architecture's forward pass. Architectures live one per file in libml/src/model/
// (llama.cpp, which also runs qwen2; qwen3.cpp; gemma3.cpp; gpt_oss.cpp) and register by
// general.architecture in registry.cpp.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ml/backend.h"
#include "ml/gguf.h"
#include "ml/ops.h"

namespace ml {

struct Config {
  std::string arch;  // general.architecture
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_ff = 0;
  int64_t n_head = 0, n_head_kv = 0;
  int64_t head_dim = 0;    // attention.key_length (n_embd / n_head when absent)
  int64_t head_dim_v = 0;  // attention.value_length
  int64_t n_ctx_train = 0;
  float norm_eps = 0.0f;             // attention.layer_norm_rms_epsilon
  ops::RopeParams rope;              // full-attention layers
  ops::RopeParams rope_swa;          // sliding-window layers (gemma3: rope.freq_base_swa or 10000)
  int32_t n_swa = 0;                 // attention.sliding_window; 0 = none
  std::vector<bool> swa_layers;      // [n_layer]: layer attends within the sliding window
  float attn_scale = 1.0f;           // multiplies q·k
  float final_logit_softcap = 0.0f;  // final_logit_softcapping; 0 = none
  float embed_scale = 1.0f;          // gemma: √n_embd on the embeddings
  bool tied_output = false;          // no output.weight: the LM head is token_embd
  bool attn_bias = false;            // qwen2 / gpt-oss: q, k, v, o biases
  int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;  // gpt-oss MoE

  int64_t n_embd_q() const { return head_dim * n_head; }
  int64_t n_embd_kv() const { return head_dim * n_head_kv; }
};

// Reads and validates the hyper-parameters of a supported architecture; a missing or absurd
// key is an ml::Error naming it.
Config load_config(const gguf::Metadata& metadata);

// One transformer block's tensors; an absent tensor is an empty handle. Shapes in ggml order.
struct LayerWeights {
  Tensor attn_norm;                                  // [n_embd]
  Tensor wq, wk, wv, wo;                             // [n_embd, n_embd_q] ... wo [n_embd_q, n_embd]
  Tensor bq, bk, bv, bo;                             // biases (qwen2, gpt-oss)
  Tensor attn_q_norm, attn_k_norm;                   // [head_dim] (qwen3, gemma3)
  Tensor attn_post_norm;                             // gemma3 post_attention_norm; gpt-oss pre-MoE
  Tensor attn_sinks;                                 // [n_head] (gpt-oss)
  Tensor ffn_norm, ffn_post_norm;                    // [n_embd]
  Tensor ffn_gate, ffn_up, ffn_down;                 // dense FFN
  Tensor ffn_gate_inp, ffn_gate_inp_b;               // router [n_embd, n_expert], [n_expert]
  Tensor ffn_gate_exps, ffn_up_exps, ffn_down_exps;  // [n_embd, n_ff_exp, n_expert] ...
  Tensor ffn_gate_exps_b, ffn_up_exps_b, ffn_down_exps_b;  // [n_ff_exp, n_expert] ...
};

struct Weights {
  Tensor token_embd;   // [n_embd, n_vocab]
  Tensor output_norm;  // [n_embd]
  Tensor output;       // [n_embd, n_vocab]; token_embd when tied
  Tensor rope_freqs;   // [head_dim/2] Llama 3 rope scaling factors, optional
  std::vector<LayerWeights> layers;
  uint64_t bytes = 0;  // device bytes the weights take
};

namespace telemetry {
class Telemetry;
}

struct LoadOptions {
  gguf::FetchOptions fetch;                  // requests in flight, piece size, retries
  telemetry::Telemetry* telemetry = nullptr;  // load_stage events; may be null
};

// Names a tensor while loading: need/optional check presence, shape and type and allocate it
// on the backend; finish() then fetches every named tensor's bytes in FILE order (so an HTTP
// source reads the file front to back with several ranges in flight) and uploads each piece
// as it arrives. Host memory holds a few pieces, never the file.
class WeightLoader {
 public:
  WeightLoader(Backend& be, gguf::Source& source, const gguf::File& file, LoadOptions options = {})
      : be_(be), source_(source), file_(file), options_(options) {}
  enum class Kind { matrix, f32 };  // matrix: any weight type matmul takes; f32: norms, biases
  Tensor need(const std::string& name, std::vector<int64_t> shape, Kind kind);
  Tensor optional(const std::string& name, std::vector<int64_t> shape, Kind kind);
  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  // Fetches and uploads the tensors named so far; each tensor's byte count is checked.
  void finish();
  uint64_t bytes() const { return bytes_; }  // bytes uploaded by finish()

 private:
  struct Pending {
    Tensor tensor;
    const gguf::TensorInfo* info = nullptr;
  };
  Backend& be_;
  gguf::Source& source_;
  const gguf::File& file_;
  LoadOptions options_;
  std::vector<Pending> pending_;
  uint64_t bytes_ = 0;
};

struct KvCache {
  gguf::Type type = gguf::Type::F16;
  std::vector<Tensor> k, v;      // [n_layer] each [n_embd_kv, n_cells[il]]
  std::vector<int64_t> n_cells;  // n_ctx, or n_swa for a sliding-window layer (ring buffer)
};

// The inputs of one forward pass over a batch of T tokens at positions pos0 .. pos0+T-1.
struct Forward {
  Backend& be;
  const Config& cfg;
  const Weights& w;
  const KvCache& kv;
  Tensor tokens;    // [T] I32
  Tensor pos;       // [T] I32
  Tensor out_rows;  // [n_out] I32: the batch rows whose logits are wanted (none: every row)
  int32_t pos0 = 0;
  int64_t n_tokens = 0;
  int64_t n_layer = 0;        // layers to run (≤ cfg.n_layer; fewer for debugging)
  bool moe_fallback = false;  // gpt-oss bring-up: every token to expert 0 alone, no router

  void cb(const Tensor& t, std::string_view name, int il) const { be.observe(t, name, il); }
};

// An architecture: its tensor list, its transformer block and its forward pass (→ logits
// [n_vocab, n_out]). forward runs embed → layer 0 .. n_layer-1 → LM head, so `layer` is the
// one copy of the block code; test_layer and test_attention call it alone on hidden states
// x [n_embd, T] with only layer il's KV cache in f.kv.
struct Architecture {
  std::string_view name;
  void (*load)(WeightLoader& loader, const Config& cfg, Weights& w);
  Tensor (*layer)(const Forward& f, const Tensor& x, int il);
  Tensor (*forward)(const Forward& f);
};
const Architecture& find_architecture(std::string_view name);  // throws for unknown ones

struct Model {
  Config config;
  Weights weights;
  const Architecture* arch = nullptr;
};

// Parses the header, metadata and tensor table of `source` as the load's "header" stage.
gguf::File load_header(gguf::Source& source, telemetry::Telemetry* telemetry);

// Parses the config and uploads every tensor the architecture needs to `be`.
Model load_model(Backend& be, gguf::Source& source, const gguf::File& file,
                 const LoadOptions& options = {});

}  // namespace ml
