// lowp/quant/integer_model.h — integer-only inference of a decoder-only
// transformer (I-BERT's recipe, Kim et al. 2021, applied to the GPT and Llama
// families of lowp/nn/transformer.h): from the embedding lookup to the logits,
// every operation is integer arithmetic.
//
//   residual stream  int32 at one scale S_r for the whole model (its
//                    calibrated absmax maps to 2^20; values saturate at
//                    +-2^30); the token (and position) embeddings are int32
//                    tables at S_r, so the lookup is integer too
//   norms            integer LayerNorm / RMSNorm (lowp::integer::IntNorm) to
//                    int8 at the static scale of the linear layer they feed
//   linear layers    int8 weights (int8:channel: a scale per output row) x
//                    int8 activations (one static scale per input, calibrated)
//                    -> int32 accumulators (+ int32 biases), requantized by a
//                    per-row integer multiply-shift (Dyadic)
//   attention        q, k (after integer RoPE with Q14 cos/sin tables) and v in
//                    `attention_bits`-bit integers; scores q.k / sqrt(d) in
//                    int64 requantized to the scale of i-exp; integer softmax
//                    to `softmax_bits`-bit probabilities; probabilities x v in
//                    int64, requantized to int8 for the output projection
//   MLP              i-GELU (GELU and GPT-2's tanh GELU alike), or SwiGLU with
//                    an integer sigmoid from i-exp, on int32 at a calibrated
//                    scale (absmax -> 2^14), requantized to int8 for down
//   logits           the head's int32 accumulators times their scales: the only
//                    conversion to floating point
//
// The static scales come from calibration text: the int8 inputs of the linear
// layers by lowp::calibrate_activation_scales (the same scales a float W8A8
// model with static int8 activations uses), the intermediate integer domains
// from the absmax of the float model's values there. Preparing the model uses
// floating point (scales to integer constants); running it does not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowp/nn/transformer.h"
#include "lowp/quant/act_calib.h"

namespace lowp {

struct IntegerModelOptions {
  CalibratorOptions calibrator;  // for the int8 inputs of the linear layers
  int attention_bits = 8;        // q, k, v (2..16)
  int softmax_bits = 8;          // probabilities (1..16)
  unsigned threads = 1;          // calibration
};

class IntegerTransformer {
 public:
  // Prepares the integer model from `model` (its checkpoint's fp32 weights:
  // the linear layers are quantized to int8:channel from them) and
  // calibration windows of token ids. Throws lowp::Error for a model the
  // integer path does not cover (Qwen3's q/k norms, an online Hadamard
  // rotation of the MLP) or for no calibration data.
  IntegerTransformer(const nn::Transformer& model,
                     const std::vector<std::vector<std::int32_t>>& calibration,
                     const IntegerModelOptions& opt = {});
  ~IntegerTransformer();
  IntegerTransformer(IntegerTransformer&&) noexcept;
  IntegerTransformer& operator=(IntegerTransformer&&) noexcept;

  const nn::TransformerConfig& config() const;
  // The float model the integer one mirrors: int8:channel weights, int8
  // activations at the same static scales at every linear input, every other
  // operation in fp32 ("float int8").
  const nn::Transformer& float_int8() const;
  // Bytes of the integer model's parameters: int8 weights, their fp32 row
  // scales (kept to requantize), int32 biases, embeddings and norm constants.
  std::size_t weight_bytes() const;
  double linear_bits_per_weight() const;

  // Logits [tokens.size(), vocab] of 1..n_ctx tokens at positions 0, 1, ...
  void forward(std::span<const std::int32_t> tokens, std::span<float> logits,
               unsigned threads = 1) const;
  // As Transformer::evaluate (the same windows).
  nn::EvalResult evaluate(std::span<const std::int32_t> tokens,
                          std::span<const std::uint32_t> token_bytes, unsigned threads = 1,
                          std::optional<std::int32_t> bos = std::nullopt) const;
  // Token-by-token logits with an integer KV cache (a nn::NextLogits for
  // nn::generate_with): each call appends tokens and returns the logits after
  // the last. When the context is full the oldest half is dropped and the
  // cache rebuilt.
  nn::NextLogits generator(unsigned threads = 1) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowp
