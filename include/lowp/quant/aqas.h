// lowp/quant/aqas.h — activation-quantization-aware scaling (AQAS; Lee et
// al. 2023, "Enhancing Computation Efficiency in Large Language Models
// through Weight and Activation Quantization"): SmoothQuant's per-channel
// migration of difficulty from activations to weights (lowp/quant/smooth.h),
// its strength chosen per input against the error of the product with both
// operands quantized, not of either alone.
//
// For each block's attention input (read by q, k, v) and MLP input (read by
// up and gate), with X the first `tokens` calibration rows of that input in
// the FP32 model and W each matrix reading it, every alpha of the grid (and
// "not smoothed") gives factors s (smooth.h) and the error
//   E(alpha) = sum over W of || Qa(X diag(s)^-1) Qw(W diag(s))^T - X W^T ||^2
// with Qw the weight format's round to nearest and Qa the activation format
// applied per token as the runtime applies it. The input takes the alpha of
// least E (ties: not smoothed, then the smaller alpha); the folding is
// smooth_quant's, so the FP32 model computes the same function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowp/nn/transformer.h"
#include "lowp/quant/smooth.h"
#include "lowp/storage/matrix_format.h"

namespace lowp {

struct AqasOptions {
  MatrixFormat weights;      // the format the weights will be stored in
  MatrixFormat activations;  // the activations' format, per token (fake_quantize_rows)
  std::vector<double> alphas = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
  std::size_t tokens = 512;  // calibration rows per input
  bool pow2 = false;         // factors rounded to powers of two (smooth.h)
  unsigned threads = 1;
};

struct AqasResult {
  SmoothAlphas alphas;             // NaN where not smoothing was best
  nn::TransformerWeights weights;  // the checkpoint with those factors folded in
  // One line per input: its alpha, E(alpha) and E(not smoothed).
  std::vector<std::string> lines;
};

// The calibration pass, which does not depend on the formats: the first
// `tokens` rows of each block's attention and MLP inputs in the FP32 model,
// and their per-channel |max| over every calibration token. Computed once,
// it serves the aqas() of every weight format. Throws lowp::Error without
// calibration windows or for tokens = 0.
struct AqasSamples {
  std::vector<std::vector<float>> attention, mlp;  // [layer]: rows x d_model
  SmoothStats stats;
};
AqasSamples aqas_samples(const nn::Transformer& model,
                         const std::vector<std::vector<std::int32_t>>& calibration,
                         std::size_t tokens, unsigned threads);

// The alphas for one weight format from samples of `model` (opt.tokens and
// opt.threads are the samples' business). Throws lowp::Error for an alpha
// outside [0, 1].
AqasResult aqas(const nn::Transformer& model, const AqasSamples& samples, const AqasOptions& opt);

// Both steps. Throws lowp::Error without calibration windows, for an alpha
// outside [0, 1] or tokens = 0.
AqasResult aqas(const nn::Transformer& model,
                const std::vector<std::vector<std::int32_t>>& calibration, const AqasOptions& opt);

}  // namespace lowp
