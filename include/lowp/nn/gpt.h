// lowp/nn/gpt.h — the byte-level GPT that lowp's report and generator run: a
// decoder-only transformer whose linear layers are PackedMatrix weights in any
// lowp matrix format (lowp/storage/matrix_format.h), with optional
// fake-quantized activations.
//
// The architecture is python/lowp/examples/charlm.py, operation for operation:
//   x = wte[tok] + wpe[pos]
//   per block: x += c_proj(attn(ln_1(x)));  x += mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
//     attn: c_attn gives q, k, v (in that order along its output), n_head
//     heads, causal softmax(q k^T / sqrt(d_head)) v
//   logits = lm_head(ln_f(x))  (no bias; wte when the head is tied)
// LayerNorm with eps ln_eps (1e-5), GELU with the exact erf.
//
// Checkpoints (safetensors or GGUF, read through lowp::io::ModelReader):
// tensor names and shapes as charlm.py documents them, any float dtype (F32,
// F16, BF16, lowp's packed block formats, ...; read as fp32). The metadata
// must hold "lowp.arch" = "gpt" and the integers vocab_size (256: the runtime
// is byte-level), n_ctx, d_model, n_head, n_layer, d_ff; "tied_head" ("0" or
// "1") is inferred from the presence of lm_head.weight when absent, "ln_eps"
// defaults to 1e-5. Every tensor must be present with exactly its shape, hold
// finite values, and no other tensor may be present.
//
// Determinism: every result (logits, losses, generated text) is the same bit
// for bit for any thread count: threads split independent rows, heads or
// evaluation windows, never a sum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowp/io/model.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::nn {

struct GptConfig {
  int vocab_size = 256;
  int n_ctx = 128;
  int d_model = 128;
  int n_head = 4;
  int n_layer = 5;
  int d_ff = 512;
  bool tied_head = false;
  float ln_eps = 1e-5f;

  int d_head() const { return d_model / n_head; }
};

// The result of Gpt::evaluate.
struct EvalResult {
  double nats_per_byte = 0.0;  // mean cross-entropy per predicted byte
  std::size_t tokens = 0;      // bytes predicted
  double seconds = 0.0;        // wall time of the evaluation

  double bits_per_byte() const;
  double perplexity() const;
};

class Gpt {
 public:
  // Loads and validates a checkpoint (see the file comment); the linear layers
  // start in fp32. Throws lowp::Error naming the source and the tensor or
  // metadata key at fault, with the expected and found shape where it applies.
  static Gpt load(const io::ModelReader& reader, const std::string& source);
  static Gpt load(const std::filesystem::path& path);

  const GptConfig& config() const { return config_; }
  std::size_t parameter_count() const;

  // A copy whose every linear weight (c_attn, c_proj, mlp.c_fc, mlp.c_proj and
  // the head, also when tied) is stored in `f`, quantized from the checkpoint's
  // fp32 values (never from the current format). Embeddings, LayerNorms and
  // biases stay fp32.
  Gpt with_weights(const MatrixFormat& f) const;
  const MatrixFormat& weight_format() const { return weight_format_; }

  // A copy that fake-quantizes the input of every linear layer to `f` (nullopt:
  // none), each row (one token's vector) on its own, exactly as a one-row
  // PackedMatrix of that format would store it: block formats have their
  // blocks along the reduction dimension (the MX paper's direct-cast
  // inference), scalar float formats one dynamic FP32 scale per row, fp32/bf16/
  // fp16 a plain cast. See fake_quantize_rows.
  Gpt with_activations(std::optional<MatrixFormat> f) const;
  const std::optional<MatrixFormat>& activation_format() const { return activations_; }

  // Bytes of all parameters as this runtime stores them: the packed linear
  // weights (scales included) plus 4 bytes per fp32 value (embeddings,
  // LayerNorms, biases). A tied head's packed matrix is counted besides the
  // fp32 wte the embedding lookup reads.
  std::size_t weight_bytes() const;
  // Stored bits per linear weight over all linear layers (scales included).
  double linear_bits_per_weight() const;

  // Logits [tokens.size(), vocab_size] (row-major) of a sequence of at most
  // n_ctx tokens, through the GEMM path. Throws lowp::Error for an empty or too
  // long sequence or a logits span of the wrong size.
  void forward(std::span<const std::uint8_t> tokens, std::span<float> logits,
               unsigned threads = 1) const;

  // Mean cross-entropy over `text`: non-overlapping windows of n_ctx bytes
  // (the last partial window included if it has >= 2 bytes); each window
  // predicts its bytes 1..n-1 from the bytes before them in the window.
  // Threads take whole windows; the sum runs in window order. Throws
  // lowp::Error if the text has fewer than 2 bytes.
  EvalResult evaluate(std::span<const std::uint8_t> text, unsigned threads = 1) const;

 private:
  friend class Generator;
  struct Linear {
    PackedMatrix weight;      // [out, in]
    std::vector<float> bias;  // [out], empty for the head
  };
  struct Layer {
    std::vector<float> ln_1_weight, ln_1_bias, ln_2_weight, ln_2_bias;
    Linear c_attn, attn_proj, c_fc, mlp_proj;
  };
  // The checkpoint's fp32 values of every tensor, shared between copies.
  struct Checkpoint;

  Gpt() = default;
  void build(const MatrixFormat& f);
  // x [rows, in] -> y [rows, out] = act(x) W^T + b (x is overwritten when
  // activations are quantized); rows == 1 takes the GEMV path.
  void linear(const Linear& l, float* x, std::size_t rows, float* y, unsigned threads) const;
  // The GEMM path over a sequence: logits [n, vocab] and, when k_cache and
  // v_cache are non-null, every layer's keys and values ([n, d_model] each).
  void run(std::span<const std::uint8_t> tokens, float* logits, unsigned threads,
           std::vector<std::vector<float>>* k_cache,
           std::vector<std::vector<float>>* v_cache) const;

  GptConfig config_;
  std::shared_ptr<const Checkpoint> checkpoint_;
  MatrixFormat weight_format_;
  std::optional<MatrixFormat> activations_;
  std::vector<Layer> layers_;
  Linear head_;
};

// Token-by-token inference with a KV cache, through the GEMV path. Logits
// equal Gpt::forward's on the same tokens (to fp32 rounding of the products).
// When the context is full (n_ctx tokens), the oldest half is dropped and the
// cache rebuilt from the rest at positions 0, 1, ... (through the GEMM path).
class Generator {
 public:
  // Keeps a reference to `model`, which must outlive the generator.
  explicit Generator(const Gpt& model, unsigned threads = 1);

  // Appends a token and returns the logits of the next one (vocab_size
  // values, valid until the next call).
  std::span<const float> push(std::uint8_t token);
  // Forgets the context.
  void reset();
  std::size_t context_length() const { return tokens_.size(); }

 private:
  void step(std::uint8_t token);  // runs position tokens_.size() - 1
  void rebuild();                 // refills the cache from tokens_

  const Gpt& model_;
  unsigned threads_;
  std::vector<std::uint8_t> tokens_;
  std::vector<std::vector<float>> k_cache_, v_cache_;  // per layer [n_ctx, d_model]
  std::vector<float> logits_;
};

// Samples `count` bytes after `prompt` (at least one byte): temperature 0 is
// greedy (argmax, lowest index on ties); otherwise softmax(logits /
// temperature) restricted to the top_k largest logits (0: all), drawn with a
// generator seeded by `seed`. The same arguments give the same bytes for any
// thread count.
std::vector<std::uint8_t> generate(const Gpt& model, std::span<const std::uint8_t> prompt,
                                   std::size_t count, double temperature, int top_k,
                                   std::uint64_t seed, unsigned threads = 1);

}  // namespace lowp::nn
