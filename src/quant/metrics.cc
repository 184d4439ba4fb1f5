// Error statistics for judging quantization (metrics.h).
#include "lowp/quant/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lowp/error.h"

namespace lowp {

void ErrorStats::add(std::span<const float> reference, std::span<const float> quantized) {
  if (reference.size() != quantized.size())
    throw Error("ErrorStats: the two arrays differ in length");
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double x = reference[i];
    const double q = quantized[i];
    ++count;
    if (!std::isfinite(x) || !std::isfinite(q)) {
      ++nonfinite;
      continue;
    }
    const double e = x - q;
    signal_energy += x * x;
    error_energy += e * e;
    max_abs_error = std::max(max_abs_error, std::fabs(e));
  }
}

void ErrorStats::merge(const ErrorStats& other) {
  count += other.count;
  nonfinite += other.nonfinite;
  signal_energy += other.signal_energy;
  error_energy += other.error_energy;
  max_abs_error = std::max(max_abs_error, other.max_abs_error);
}

double ErrorStats::mse() const {
  const std::uint64_t finite = count - nonfinite;
  return finite == 0 ? 0.0 : error_energy / static_cast<double>(finite);
}

double ErrorStats::sqnr_db() const {
  if (error_energy == 0) return std::numeric_limits<double>::infinity();
  if (signal_energy == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal_energy / error_energy);
}

}  // namespace lowp
