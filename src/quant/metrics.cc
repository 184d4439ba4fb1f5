// Error statistics for judging quantization (metrics.h).
#include "lowp/quant/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "lowp/error.h"
#include "lowp/kernels.h"
#include "lowp/thread_pool.h"

namespace lowp {

namespace {

// The sums of one piece (kernels::error_sums: in vector lanes).
ErrorStats piece_stats(const float* reference, const float* quantized, std::size_t n) {
  const kernels::ErrorSums sums = kernels::error_sums(reference, quantized, n);
  ErrorStats s;
  s.count = n;
  s.nonfinite = sums.nonfinite;
  s.signal_energy = sums.signal;
  s.error_energy = sums.error;
  s.max_abs_error = sums.max_abs;
  return s;
}

// Pieces of a fixed length, summed in order: the result depends on the data
// only, never on the number of threads.
constexpr std::size_t kPiece = std::size_t{1} << 16;

}  // namespace

void ErrorStats::add(std::span<const float> reference, std::span<const float> quantized) {
  if (reference.size() != quantized.size())
    throw Error("ErrorStats: the two arrays differ in length");
  const std::size_t pieces = (reference.size() + kPiece - 1) / kPiece;
  std::vector<ErrorStats> partial(pieces);
  const unsigned threads = pieces > 1 ? std::max(1u, std::thread::hardware_concurrency()) : 1;
  parallel_for(pieces, threads, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      const std::size_t begin = p * kPiece, n = std::min(kPiece, reference.size() - begin);
      partial[p] = piece_stats(reference.data() + begin, quantized.data() + begin, n);
    }
  });
  for (const ErrorStats& s : partial) merge(s);
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
