// Pieces of src/quant/methods.cc that other methods of src/quant reuse.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "lowp/quant/methods.h"

namespace lowp::detail {

// U, the upper Cholesky factor of (H + damp * mean(diag H) * I)^-1 as GPTQ
// uses it (cols x cols, row-major; dead inputs count with diag 1), for a
// layer of `rows` rows; the damping is raised tenfold with a warning while
// the factorisation fails. Returns the damping used.
double gptq_inverse_factor(const InputHessian& h, std::size_t rows, double damp, unsigned threads,
                           std::vector<double>& u, std::vector<std::string>& warnings);

// The fp32 matrix the runtime holds for a method whose storage is not one
// packed matrix (LoRC, power, vq): its weights, and the bytes stored.
PackedMatrix stand_in(std::span<const float> weights, std::size_t rows, std::size_t cols);

}  // namespace lowp::detail
