// lowp/quant/smooth.h — SmoothQuant (Xiao et al. 2022): move the activation
// outliers of each linear input into the weights that read it, so that both
// quantize well. The division of the activations by s is folded into what
// produces them, so the FP32 model computes the same function (up to rounding).
#pragma once

#include <span>
#include <vector>

#include "lowp/nn/transformer.h"

namespace lowp {

// Per-channel absmax of each block's inputs as calibration saw them:
// attention (norm_1's output, [n_layer][d_model]), mlp (norm_2's output,
// [n_layer][d_model]) and, optionally, attention_output (o's input,
// [n_layer][q_dim]; empty: o is not smoothed).
struct SmoothStats {
  std::vector<std::vector<float>> attention, mlp, attention_output;
};

// Per channel j of an input read by matrices W (every matrix reading it):
// s_j = max|X_j|^alpha / max_i |W_ij|^(1 - alpha), clamped to [1e-5, 1e5]
// (1 where either maximum is 0). Folded exactly where the function allows:
//   attention, mlp   the preceding norm's weight (and LayerNorm bias) divided
//                    by s, the reading matrices' columns multiplied by s;
//   attention_output v's rows (and bias) divided by s (attention mixes v
//                    linearly per channel; with grouped-query attention s is
//                    per v channel, shared by the query heads of the group),
//                    o's columns multiplied by s.
// With `pow2`, each s_j is rounded to the nearest power of two (in the log
// domain): LLM-FP4's pre-shifted exponent biases (Liu et al. 2023), where a
// channel's own activation exponent bias is folded into the weights as an
// exact shift and the activations keep one bias per tensor.
// Throws lowp::Error for alpha outside [0, 1] or statistics of the wrong shape.
nn::TransformerWeights smooth_quant(const nn::TransformerConfig& c, const nn::TransformerWeights& w,
                                    const SmoothStats& stats, double alpha, bool pow2 = false);

// The same with an alpha per layer and input (each vector [n_layer]; an empty
// attention_output: o is not smoothed); a NaN alpha leaves that input as it is.
struct SmoothAlphas {
  std::vector<double> attention, mlp, attention_output;
  bool pow2 = false;  // factors rounded to powers of two
};
nn::TransformerWeights smooth_quant(const nn::TransformerConfig& c, const nn::TransformerWeights& w,
                                    const SmoothStats& stats, const SmoothAlphas& alphas);

// The factors s_j above for an input with per-channel absmax `absmax`, read
// by the matrices `reads` ([rows, absmax.size()] row-major each); all 1 for a
// NaN alpha; rounded to powers of two with `pow2`.
std::vector<double> smoothing_factors(std::span<const float> absmax,
                                      const std::vector<std::span<const float>>& reads,
                                      double alpha, bool pow2 = false);

}  // namespace lowp
