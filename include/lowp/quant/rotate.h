// lowp/quant/rotate.h — randomized Hadamard rotations folded into a
// transformer's weights (QuaRot, Ashkboos et al. 2024; SpinQuant), so that
// outlier channels spread over all channels before weights and activations
// are quantized. The rotated model computes the same logits in FP32 (up to
// rounding); only the MLP's inner rotation adds work at run time (a fast
// Walsh-Hadamard transform of down's input, TransformerConfig::down_hadamard).
//
// The residual stream is rotated: every row vector x becomes x Q, with
//   Q = D H / sqrt(d) [G]       d a power of two: D random signs, H Sylvester's
//                               Hadamard matrix (applied by fwht);
//   Q = R [G]                   otherwise: R a seeded random orthogonal matrix
//                               (Gram-Schmidt of a Gaussian one);
// and, for LayerNorm models, G the Householder reflection that makes
// 1^T Q = 1^T. Then mean(x Q) = mean(x) and centring commutes with Q, so
// LayerNorm with unit weight and zero bias commutes with Q as RMSNorm does.
// Folding: each norm's weight g goes into the matrices reading it
// (W <- W diag(g) Q), its weight becomes 1 and a LayerNorm bias b becomes
// (b / g) Q (lowp::Error where g is 0 but b is not); matrices writing the
// residual (o, down) become Q^T W and their biases b Q; embedding rows x Q. A
// tied head is untied (the head is the embedding times diag(g_f) Q).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowp/nn/transformer.h"

namespace lowp {

// In-place orthonormal fast Walsh-Hadamard transform: x <- x H / sqrt(n), n a
// power of two (lowp::Error otherwise). Symmetric: applying it twice gives x.
void fwht(double* x, std::size_t n);

struct RotateOptions {
  std::uint64_t seed = 0;
  // Also rotate the MLP's inner dimension: down's columns by the block
  // Hadamard of TransformerConfig::down_hadamard_block(), applied online.
  bool mlp = true;
};

struct RotatedModel {
  nn::TransformerConfig config;
  nn::TransformerWeights weights;
};

RotatedModel rotate_hadamard(const nn::TransformerConfig& c, const nn::TransformerWeights& w,
                             const RotateOptions& opt = {});

}  // namespace lowp
