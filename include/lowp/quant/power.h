// lowp/quant/power.h — power-function non-uniform quantization (PowerQuant,
// Yvinec et al., ICLR 2023; the data-free part of NUPES, 2023): a weight w
// is mapped to t = sign(w) |w|^a (0 < a <= 1), t is stored in any scaled
// matrix format, and the layer uses w' = sign(t') |t'|^(1/a) of the stored
// t'. With a < 1 the format's uniform grid becomes denser near zero, where
// weights are. `a` is searched per matrix over 0.25, 0.30, ..., 1.00 for the
// least squared weight error (weighted by diag(H) when statistics are
// given), t's scales chosen by the mse search (lowp/quant/methods.h) for
// each a; a = 1 is the mse method itself.
//
// With calibration statistics (method nupes, after NUPES' refinement of a on
// calibration data): each a is judged by the layer's output error
// tr(dW H dW^T) instead, and the grid's best a is then refined by a
// golden-section search over a* +- 0.05 (12 steps) — a derivative-free
// stand-in for the paper's gradient descent on a, which is one-dimensional.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "lowp/quant/methods.h"

namespace lowp {

// The exponents the search tries, increasing.
std::vector<double> power_exponents();

// t = sign(w) |w|^a, element by element (fp64, rounded once to fp32).
std::vector<float> power_forward(std::span<const float> w, double a);
// w' = sign(t) |t|^(1/a) (fp64, rounded once to fp32).
std::vector<float> power_inverse(std::span<const float> t, double a);

struct PowerQuantization {
  double exponent = 1.0;       // the chosen a
  PackedMatrix stored;         // t in the format
  std::vector<float> weights;  // power_inverse of stored's values
  std::vector<double> errors;  // per exponent of power_exponents()
  double error = 0;            // the chosen exponent's
};

// Searches a for w [rows x cols] in the scaled format f; `importance`
// (cols, may be null) weights the columns of the error; `h` (may be null)
// makes it the output error and refines a (above). Throws lowp::Error for a
// format that is not a scaled integer or float format.
PowerQuantization power_quantize(const MatrixFormat& f, std::span<const float> w, std::size_t rows,
                                 std::size_t cols, const double* importance, unsigned threads = 1,
                                 const InputHessian* h = nullptr);

}  // namespace lowp
