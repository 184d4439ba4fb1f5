// lowp/nn/transformer.h — one decoder-only transformer runtime for the model
// families people ship, driven by a configuration rather than hard-wired:
// lowp's own byte-level GPT, GPT-2, Llama, Mistral, Qwen2 and Qwen3, read from
// lowp checkpoints, Hugging Face model directories and llama.cpp GGUF files
// (lowp/nn/model_files.h). Every linear layer is a PackedMatrix in any lowp
// matrix format (lowp/storage/matrix_format.h), with optional fake-quantized
// activations.
//
// Per block (pre-norm):
//   h = norm_1(x); q, k, v = h Wq, h Wk, h Wv (+ biases; one fused matrix for
//   the GPT family); [per-head RMSNorm of q and k (Qwen3)]; [RoPE on q and k];
//   x += Wo attention(q, k, v)   (causal, grouped-query: query head h reads key/
//                                 value head h / (n_head / n_kv_head))
//   h = norm_2(x); x += W_down act(h)   act: GELU(h W_fc) | SwiGLU: silu(h W_gate) * (h W_up)
// logits = head(norm_f(x)) (the token embedding when the head is tied).
// Norms: LayerNorm (weight and bias; statistics in fp64) or RMSNorm
// (x / sqrt(mean(x^2) + eps) * weight; statistics in fp64). RoPE pairs
// component i with i + head_dim/2 of each head (Hugging Face's rotate-half
// convention; GGUF's interleaved q/k rows are put back in this order when they
// are loaded).
//
// Determinism: every result (logits, losses, generated tokens) is the same bit
// for bit for any thread count: threads split independent rows, heads or
// evaluation windows, never a sum. The whole-sequence path and the token-by-
// token path (Generator) run one block function.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/storage/packed_matrix.h"

namespace lowp::nn {

enum class NormKind { kLayerNorm, kRmsNorm };
enum class MlpKind { kGelu, kGeluTanh, kSwiGlu };
enum class RopeScaling { kNone, kLinear, kLlama3 };

struct TransformerConfig {
  // The family the checkpoint came as: "lowp-gpt", "gpt2", "llama", "mistral",
  // "qwen2", "qwen3" (names tensors and metadata when the model is written).
  std::string family = "lowp-gpt";
  int vocab_size = 256;
  int n_ctx = 128;  // the longest sequence the runtime runs
  int d_model = 128;
  int n_head = 4;
  int n_kv_head = 4;  // < n_head: grouped-query attention
  int head_dim = 32;  // usually d_model / n_head (Qwen3 may differ)
  int n_layer = 5;
  int d_ff = 512;
  NormKind norm = NormKind::kLayerNorm;
  float norm_eps = 1e-5f;
  MlpKind mlp = MlpKind::kGelu;
  bool learned_positions = true;  // else RoPE
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;             // linear and llama3
  double rope_low_freq_factor = 1.0;    // llama3
  double rope_high_freq_factor = 4.0;   // llama3
  double rope_original_context = 8192;  // llama3: original_max_position_embeddings
  // Per-pair divisors of RoPE's frequencies given by the file (GGUF's
  // rope_freqs tensor); when present they replace rope_scaling's.
  std::vector<double> rope_divisors;
  bool fused_qkv = true;  // one [q; k; v] matrix (the GPT family)
  bool qkv_bias = true;   // biases on q, k and v
  bool o_bias = true;     // a bias on the attention output
  bool mlp_bias = true;   // biases on the MLP's matrices
  bool qk_norm = false;   // Qwen3: per-head RMSNorm of q and k
  bool tied_head = false;
  // An online Hadamard rotation of the MLP's inner activations: the input of
  // down is transformed by hadamard_rows() in chunks of the largest power of
  // two dividing d_ff (down_hadamard_block()), and down's weight holds
  // W_down H (lowp/quant/rotate.h folds it), so the FP32 model is unchanged
  // while outliers spread over each chunk before the input is quantized
  // (QuaRot).
  bool down_hadamard = false;
  std::size_t down_hadamard_block() const {
    const auto f = static_cast<std::size_t>(d_ff);
    return f & (~f + 1);
  }
  std::optional<std::int32_t> bos, eos;  // token ids, when the checkpoint names them

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_kv_head * head_dim; }
  // Throws lowp::Error naming `source` for sizes out of range or inconsistent
  // (n_head not a multiple of n_kv_head, odd head_dim with RoPE, ...).
  void validate(const std::string& source) const;
};

// One divisor of RoPE's inverse frequency theta^(-2i/head_dim) per pair i of
// a head's components: the config's rope_divisors when given, else those of
// its rope_scaling (linear: the factor; llama3: Llama 3.1's wavelength bands),
// empty without scaling.
std::vector<double> rope_frequency_divisors(const TransformerConfig& c);

// The result of Transformer::evaluate: the mean cross-entropy of the
// predicted tokens, per token and per byte of the text they stand for.
struct EvalResult {
  double nats = 0.0;       // total cross-entropy of the predicted tokens
  std::size_t tokens = 0;  // tokens predicted
  std::size_t bytes = 0;   // bytes of text those tokens stand for
  double seconds = 0.0;    // wall time of the evaluation
  double nats_per_token() const;
  double nats_per_byte() const;
  double bits_per_byte() const;
  double perplexity() const;  // per token of the model's own tokenizer
};

// The fp32 values of every tensor of a checkpoint, in the runtime's own
// layout: matrices [out, in] row-major, q/k rows in rotate-half order.
// Produced by the loaders in lowp/nn/model_files.h.
struct TransformerWeights {
  struct Layer {
    std::vector<float> norm_1_w, norm_1_b;  // b empty for RMSNorm
    std::vector<float> qkv_w, qkv_b;        // fused [q_dim + 2 kv_dim, d]; else empty
    std::vector<float> q_w, q_b, k_w, k_b, v_w, v_b;
    std::vector<float> o_w, o_b;
    std::vector<float> q_norm, k_norm;  // [head_dim] (Qwen3)
    std::vector<float> norm_2_w, norm_2_b;
    std::vector<float> fc_w, fc_b;      // GELU: [d_ff, d]; SwiGLU: the up projection
    std::vector<float> gate_w, gate_b;  // SwiGLU: [d_ff, d]
    std::vector<float> down_w, down_b;
  };
  std::vector<float> tok_emb;  // [vocab, d]
  std::vector<float> pos_emb;  // [n_ctx, d] (learned positions)
  std::vector<float> norm_f_w, norm_f_b;
  std::vector<float> head;  // [vocab, d]; empty when tied
  std::vector<Layer> layers;
};

// The inputs of a block's linear layers (and of the head), where calibration
// observes activations and where static activation scales apply.
enum class LinearInput : std::uint8_t {
  kAttention,        // norm_1's output: read by q, k, v (or the fused qkv)
  kAttentionOutput,  // the heads' mixed values: read by o
  kMlp,              // norm_2's output: read by fc (up) and gate
  kMlpOutput,        // the activation's output: read by down
  kHead,             // norm_f's output: read by the head
};
inline constexpr int kLinearInputs = 5;
std::string_view linear_input_name(LinearInput i);  // "attention", "attention_output", ...

// The linear layers of a block (and the head).
enum class LinearKind : std::uint8_t { kQkv, kQ, kK, kV, kO, kFc, kGate, kDown, kHead };
std::string_view linear_kind_name(LinearKind k);  // "qkv", "q", ..., "head"
LinearInput linear_input_of(LinearKind k);

// Called with the input of a block's linear layers (after any activation
// quantization), rows x cols row-major; `layer` is n_layer for the head.
using LinearObserver = std::function<void(int layer, LinearInput input, const float* x,
                                          std::size_t rows, std::size_t cols)>;

// Static activation quantization: per (layer, input) a fixed scale (one, or
// one per channel) for a symmetric scalar element format; a value x becomes
// decode(encode_saturating(x / s)) * s. Set by calibration.
struct ActivationScales {
  Format element;
  // [layer][input]: empty (not quantized), 1 scale, or cols scales. The head
  // is layer n_layer.
  std::vector<std::array<std::vector<float>, kLinearInputs>> scales;
};

class Transformer {
 public:
  // Checks every tensor's size against the configuration and that every value
  // is finite; throws lowp::Error naming `source` and the tensor otherwise.
  // The linear layers start in fp32.
  Transformer(TransformerConfig config, TransformerWeights weights, const std::string& source);

  const TransformerConfig& config() const { return config_; }
  const TransformerWeights& weights() const { return *weights_; }
  std::size_t parameter_count() const;

  // A copy whose every linear weight (attention, MLP and the head, also when
  // tied) is stored in `f`, quantized from the checkpoint's fp32 values (never
  // from the current format). Embeddings, norms and biases stay fp32.
  Transformer with_weights(const MatrixFormat& f) const;
  const MatrixFormat& weight_format() const { return weight_format_; }

  // A copy that fake-quantizes the input of every linear layer to `f` (nullopt:
  // none), each row (one token's vector) on its own (fake_quantize_rows).
  Transformer with_activations(std::optional<MatrixFormat> f) const;
  const std::optional<MatrixFormat>& activation_format() const { return activations_; }

  // A copy whose activations at each linear input are fake-quantized with the
  // given static scales (replacing any with_activations format for the
  // inputs it covers). Throws lowp::Error for a table of the wrong shape.
  Transformer with_activation_scales(std::optional<ActivationScales> scales) const;
  const std::optional<ActivationScales>& activation_scales() const { return static_; }

  // The linear layers of block `layer` (0 .. n_layer - 1; n_layer: the head)
  // in the order the block runs them.
  std::vector<LinearKind> linear_kinds(int layer) const;
  const PackedMatrix& linear_weight(int layer, LinearKind kind) const;
  // The checkpoint's fp32 values of that matrix, [out, in] row-major.
  std::span<const float> linear_source(int layer, LinearKind kind) const;
  // A copy with one linear weight replaced (the same shape). Throws
  // lowp::Error for a layer or kind the model does not have, or another shape.
  // `stored_bytes` (0: m.bytes()) is what the weight takes as its method
  // stores it, when the runtime holds a stand-in: e.g. LoRC's quantized
  // low-rank factors added to the packed matrix, held as one fp32 matrix.
  // weight_bytes() and linear_bits_per_weight() count it.
  Transformer with_linear(int layer, LinearKind kind, PackedMatrix m,
                          std::size_t stored_bytes = 0) const;
  // The same in place.
  void set_linear(int layer, LinearKind kind, PackedMatrix m, std::size_t stored_bytes = 0);

  // Calibration, one block at a time. The hidden states of a sequence of 1 to
  // n_ctx tokens at the input of block 0 ([n, d_model], row-major) ...
  std::vector<float> embed(std::span<const std::int32_t> tokens) const;
  // ... run through block `layer` in place (positions 0 .. n-1), with
  // `observer` (may be empty) called on the inputs of its linear layers ...
  void run_block(int layer, std::span<float> x, const LinearObserver& observer,
                 unsigned threads = 1) const;
  // ... and the head's input (norm_f of x, activation-quantized), observed.
  void observe_head(std::span<const float> x, const LinearObserver& observer) const;

  // A copy that runs at most `n_ctx` tokens at a time (evaluation windows,
  // forward, the generator's context), from 1 to config().n_ctx: long-context
  // models are evaluated on shorter windows. Throws lowp::Error otherwise.
  Transformer with_context(int n_ctx) const;

  // Bytes of all parameters as this runtime stores them: the packed linear
  // weights (scales included) plus 4 bytes per fp32 value. A tied head's
  // packed matrix is counted besides the fp32 embedding.
  std::size_t weight_bytes() const;
  // Stored bits per linear weight over all linear layers (scales included).
  double linear_bits_per_weight() const;

  // Logits [tokens.size(), vocab_size] (row-major) of a sequence of 1 to n_ctx
  // tokens at positions 0, 1, ..., through the GEMM path. Throws lowp::Error
  // for an empty or too long sequence, a token outside the vocabulary or a
  // logits span of the wrong size.
  void forward(std::span<const std::int32_t> tokens, std::span<float> logits,
               unsigned threads = 1) const;

  // Mean cross-entropy over a tokenized text: non-overlapping windows, each
  // predicting its tokens from the ones before it in the window. Without
  // `bos`, a window is n_ctx tokens and predicts its tokens 1..n-1 (the last
  // partial window counts if it has >= 2 tokens); with `bos`, a window is
  // `bos` followed by up to n_ctx - 1 tokens, all of which it predicts.
  // token_bytes[i] is the number of text bytes token i stands for (all 1 for a
  // byte-level model). Threads take whole windows; the sum runs in window
  // order. Throws lowp::Error if nothing is left to predict or the spans
  // differ in size.
  EvalResult evaluate(std::span<const std::int32_t> tokens,
                      std::span<const std::uint32_t> token_bytes, unsigned threads = 1,
                      std::optional<std::int32_t> bos = std::nullopt) const;
  // A byte-level model (vocab_size 256) on raw bytes: evaluate() with every
  // byte a token of one byte, no bos.
  EvalResult evaluate_bytes(std::span<const std::uint8_t> text, unsigned threads = 1) const;

 private:
  friend class Generator;
  struct Linear {
    PackedMatrix weight;           // [out, in]
    std::vector<float> bias;       // [out] or empty
    std::size_t stored_bytes = 0;  // 0: weight.bytes() (see set_linear)
    std::size_t bytes() const { return stored_bytes ? stored_bytes : weight.bytes(); }
  };
  struct Layer {
    std::vector<Linear> qkv;  // one fused [q; k; v] matrix, or q, k and v
    Linear o, fc, gate, down;
  };
  // Keys and values of every layer for positions [0, length): per layer
  // [capacity, kv_dim] each.
  struct KvCache {
    std::vector<std::vector<float>> k, v;
    std::size_t length = 0;
  };

  struct BlockBuffers;

  Transformer() = default;
  void build(const MatrixFormat& f);
  // One block on n = x.size() / d_model tokens at positions cache.length ..,
  // appending their keys and values to cache.k/v[layer] (grown as needed;
  // cache.length is left to the caller).
  void block(std::size_t layer, float* x, std::size_t n, KvCache& cache, const float* cos,
             const float* sin, BlockBuffers& buf, unsigned threads,
             const LinearObserver& observer) const;
  // Quantizes a linear layer's input in place (static scales, else the
  // activation format).
  void quantize_input(std::size_t layer, LinearInput input, float* x, std::size_t rows,
                      std::size_t cols) const;
  Linear& linear_ref(int layer, LinearKind kind);
  const Linear& linear_ref(int layer, LinearKind kind) const;
  void linear(const Linear& l, float* x, std::size_t rows, float* y, unsigned threads) const;
  // Runs `tokens` at positions cache.length, cache.length + 1, ... through
  // every block, appending their keys and values to `cache` (grown as
  // needed), and writes the logits of the last `logit_rows` tokens.
  void run(std::span<const std::int32_t> tokens, KvCache& cache, float* logits,
           std::size_t logit_rows, unsigned threads) const;
  KvCache make_cache(std::size_t capacity) const;
  void check_tokens(std::span<const std::int32_t> tokens, const char* what) const;

  TransformerConfig config_;
  std::shared_ptr<const TransformerWeights> weights_;
  MatrixFormat weight_format_;
  std::optional<MatrixFormat> activations_;
  std::optional<ActivationScales> static_;
  std::vector<Layer> layers_;
  Linear head_;
};

// Token-by-token inference with a KV cache (the GEMV path). Logits equal
// Transformer::forward's on the same tokens to fp32 rounding of the matrix
// products (GEMV and GEMM may sum in different orders). When the context is
// full (n_ctx tokens), the oldest half is dropped and the cache rebuilt from
// the rest at positions 0, 1, ... (through the GEMM path).
class Generator {
 public:
  // Keeps a reference to `model`, which must outlive the generator.
  explicit Generator(const Transformer& model, unsigned threads = 1);

  // Appends a token and returns the logits of the next one (vocab_size
  // values, valid until the next call). Throws lowp::Error for a token
  // outside the vocabulary.
  std::span<const float> push(std::int32_t token);
  // Appends several tokens in one pass through the GEMM path (prompt
  // processing) and returns the logits after the last one.
  std::span<const float> push(std::span<const std::int32_t> tokens);
  // Forgets the context.
  void reset();
  std::size_t context_length() const { return tokens_.size(); }

 private:
  void rebuild();  // refills the cache from tokens_

  const Transformer& model_;
  unsigned threads_;
  std::vector<std::int32_t> tokens_;
  Transformer::KvCache cache_;
  std::vector<float> logits_;
};

// The logits of one evaluation window: tokens at positions 0, 1, ... in,
// [tokens.size(), vocab] logits out.
using WindowLogits =
    std::function<void(std::span<const std::int32_t> tokens, std::span<float> logits)>;
// Throws lowp::Error "WHAT: token T at position I is outside the vocabulary
// [0, V)" for the first token outside [0, vocab_size).
void check_token_ids(std::span<const std::int32_t> tokens, int vocab_size, const char* what);

// Transformer::evaluate's windows and sums for any model that gives a
// window's logits (n_ctx tokens at most): the integer-only runtime uses it.
// Checks the byte counts against the tokens, and the tokens and bos against
// the vocabulary, as Transformer::evaluate does.
EvalResult evaluate_windows(std::size_t n_ctx, std::size_t vocab,
                            std::span<const std::int32_t> tokens,
                            std::span<const std::uint32_t> token_bytes, unsigned threads,
                            std::optional<std::int32_t> bos, const WindowLogits& window_logits);

// A model run token by token: appends tokens to its context and returns the
// logits of the next one (valid until the next call), as Generator::push.
using NextLogits = std::function<std::span<const float>(std::span<const std::int32_t> tokens)>;

// Samples `count` tokens after `prompt` (at least one token): temperature 0 is
// greedy (argmax, lowest index on ties); otherwise softmax(logits /
// temperature) restricted to the top_k largest logits (0: all), drawn with a
// generator seeded by `seed`. Stops early after `stop` when given. The same
// arguments give the same tokens for any thread count.
std::vector<std::int32_t> generate(const Transformer& model, std::span<const std::int32_t> prompt,
                                   std::size_t count, double temperature, int top_k,
                                   std::uint64_t seed, unsigned threads = 1,
                                   std::optional<std::int32_t> stop = std::nullopt);
// The same sampling for any model run token by token (the prompt is pushed
// one token at a time).
std::vector<std::int32_t> generate_with(const NextLogits& push,
                                        std::span<const std::int32_t> prompt, std::size_t count,
                                        double temperature, int top_k, std::uint64_t seed,
                                        std::optional<std::int32_t> stop = std::nullopt);

}  // namespace lowp::nn
