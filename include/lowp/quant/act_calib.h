// lowp/quant/act_calib.h — static activation scales from calibration data:
// a one-pass histogram of |x| and the calibrators of the integer-quantization
// whitepaper (Wu et al. 2020) and TensorRT: max, percentile, MSE and entropy
// (KL divergence).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "lowp/format/format.h"

namespace lowp {

// A histogram of |x| over [0, range) in `bins` equal bins. The range starts at
// the first non-zero |x| rounded up to the next power of two (strictly above
// it) and doubles, merging adjacent pairs of bins, whenever a larger |x|
// arrives: one pass suffices, and the result does not depend on how the same
// sequence of values is split into add() calls. NaN and infinities are
// counted apart and not binned.
class AbsHistogram {
 public:
  explicit AbsHistogram(std::size_t bins = 2048);
  void add(const float* x, std::size_t n);
  // As if other's values had been added too (bins must agree).
  void merge(const AbsHistogram& other);
  double max() const { return max_; }      // largest |x| seen
  double range() const { return range_; }  // upper edge of the last bin (0: nothing seen)
  std::size_t bins() const { return counts_.size(); }
  double bin_width() const { return range_ / static_cast<double>(counts_.size()); }
  std::span<const double> counts() const { return counts_; }
  std::uint64_t total() const { return total_; }  // finite values added
  std::uint64_t nonfinite() const { return nonfinite_; }

 private:
  void grow_to(double range);  // doubles the range until it reaches `range`

  std::vector<double> counts_;
  double range_ = 0.0, max_ = 0.0;
  std::uint64_t total_ = 0, nonfinite_ = 0;
};

enum class Calibrator { kMax, kPercentile, kMse, kEntropy };

struct CalibratorOptions {
  Calibrator method = Calibrator::kMax;
  double percentile = 99.99;
};

// "max", "percentile" or "percentile:P" (0 < P <= 100), "mse", "entropy";
// throws lowp::Error naming the spelling otherwise.
CalibratorOptions parse_calibrator(std::string_view name);

// The clip c > 0 to map to the element's largest value (the activation scale
// is c / max_finite(element), symmetric, per tensor):
//   max         the largest |x|;
//   percentile  the P-th percentile of |x| (linear within its bin);
//   mse         the bin edge whose quantize-dequantize error, summed over the
//               histogram at bin centres (clipping and rounding to the
//               element's grid), is least;
//   entropy     TensorRT's KL calibration: for each candidate threshold (a bin
//               edge, from as many bins as the element has non-negative
//               values up to all of them), P is the histogram below it with
//               the mass above added to its last bin, Q the same bins merged
//               by the element value they quantize to and spread evenly over
//               each group's non-empty bins; the threshold with the least
//               KL(P || Q) wins. For int8 this is TensorRT's 128-level
//               algorithm; for a float element the levels are its grid.
// Returns 0 for a histogram of zeros. Throws lowp::Error for an empty one.
double calibrate_clip(const AbsHistogram& h, const Format& element, const CalibratorOptions& opt);

}  // namespace lowp
