// lowp/quant/metrics.h — what quantization did to a tensor: error statistics
// accumulated over (reference, quantized) pairs in double: in vector lanes
// per piece of 2^16 pairs (kernels::error_sums), pieces summed in order (the
// same result for any number of threads).
#pragma once

#include <cstdint>
#include <span>

namespace lowp {

struct ErrorStats {
  std::uint64_t count = 0;
  std::uint64_t nonfinite = 0;  // pairs where either side is NaN or ±Inf (not in the sums)
  double signal_energy = 0;     // sum of x^2
  double error_energy = 0;      // sum of (x - q)^2
  double max_abs_error = 0;

  void add(std::span<const float> reference, std::span<const float> quantized);
  void merge(const ErrorStats& other);
  double mse() const;
  // Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x-q)^2);
  // +Inf when the error is zero, -Inf for a zero signal with nonzero error.
  double sqnr_db() const;
};

}  // namespace lowp
