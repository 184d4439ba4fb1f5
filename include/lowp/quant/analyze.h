// lowp/quant/analyze.h — which format for which tensor: the error of every
// candidate format at a bit budget, measured on data and, for the standard
// distributions, computed from the format's grid (`lowp analyze`).
//
// Candidates at a budget of b bits (2..8):
//   int<b>            symmetric integers [-(2^(b-1)-1), 2^(b-1)-1], one FP32
//                     scale per tensor, and (matrices) one per row (:channel)
//   e<X>m<Y>fin       every minifloat with 1 + X + Y = b, X >= 1, every code
//                     a number; the bias is absorbed by the FP32 scale (a
//                     scale times 2^k is the same grid with the bias moved by
//                     k), so each shape is one grid up to scale; per tensor
//                     and per row
//   block formats     the MX formats and NVFP4 whose element has b bits
//                     (mxfp4, nvfp4; mxfp6_*; mxfp8_*, mxint8), counted at
//                     their bits per value with the block scales
//
// The clip search (scalar formats). A scale s puts the format's largest
// magnitude at the clip c = s * max(F). For a candidate c the squared error of
// the data is computed exactly (in fp64, from |x| sorted once with prefix sums
// of |x| and x^2: the values that round to grid point g_k lie between the two
// midpoints around it, and their error is S2 - 2 g S1 + n g^2), so a clip
// costs O(grid points x log n). Steps:
//   1. c = amax * r for 121 ratios r log-spaced over [1e-3, 1] (r = 1 is the
//      rule's scale amax / max(F));
//   2. golden-section search of log c between the grid neighbours of the best
//      ratio (40 steps), keeping the best clip seen;
//   3. the chosen scale is then applied by the storage layer's quantizer
//      (SegmentQuantizer, the code PackedMatrix stores) and the MSE and SQNR
//      reported are measured from its output (ErrorStats).
// Block formats take the mse method of lowp/quant/methods.h (each block's
// scale the best of its rule's neighbours) and are measured the same way.
//
// The analytic error (Kuzmin et al. 2022, "FP8 Quantization: The Power of the
// Exponent", §3): for a symmetric density p and a scaled grid {±s g_k}, the
// expected squared error is
//   E = 2 sum_k int_{s m_(k-1)}^{s m_k} (x - s g_k)^2 p(x) dx      (rounding)
//     + 2 int_{s g_K}^inf (x - s g_K)^2 p(x) dx                      (clipping)
// with m_k the midpoints between grid points (m_0 = 0). Each interval is
// integrated by adaptive Gauss–Kronrod (G7/K15, fp64), the tail after the
// substitution x = t + u / (1 - u).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/format/format.h"
#include "lowp/quant/metrics.h"
#include "lowp/storage/matrix_format.h"

namespace lowp {

// ---- distributions ----

enum class Distribution : std::uint8_t { kGaussian, kLaplace, kStudentT, kUniform };

// A zero-mean symmetric distribution in its standard form (N(0, 1); Laplace
// with scale 1, density exp(-|x|) / 2; Student-t with nu degrees of freedom
// and scale 1; uniform on [-1, 1]), optionally with outliers: a fraction
// `outlier_fraction` of the values multiplied by `outlier_factor` (the
// mixture (1 - p) f(x) + p f(x / F) / F).
struct DistributionSpec {
  Distribution kind = Distribution::kGaussian;
  double nu = 0;  // Student-t only (> 0)
  double outlier_fraction = 0;
  double outlier_factor = 1;
};

// "gaussian" (or "normal"), "laplace", "student-t:NU" (NU > 0), "uniform".
// Throws lowp::Error naming the spelling otherwise.
DistributionSpec parse_distribution(std::string_view name);
// Sets the outliers from "P:FACTOR" (0 <= P <= 1, FACTOR > 0). Throws
// lowp::Error naming the spelling otherwise.
void parse_outliers(std::string_view text, DistributionSpec& d);
std::string distribution_name(const DistributionSpec& d);

double distribution_pdf(const DistributionSpec& d, double x);
// E[x^2] (+Inf for Student-t with nu <= 2).
double distribution_second_moment(const DistributionSpec& d);

// n values drawn with a seeded generator (the same seed, the same values, on
// every platform: mt19937_64 and explicit transforms, Box–Muller for the
// Gaussian, the inverse CDF for Laplace, Bailey's polar method for Student-t).
// Outliers: exactly round(p n) values, chosen by a seeded partial shuffle, are
// multiplied by the factor.
std::vector<float> sample_distribution(const DistributionSpec& d, std::size_t n,
                                       std::uint64_t seed);

// ---- the analytic error ----

// The non-negative values of a symmetric element format, increasing, 0 first
// (integers and floats of at most 16 bits; NaN and Inf codes skipped).
std::vector<double> format_grid(const Format& f);

// Expected squared error of x ~ d quantized to nearest on the grid scaled by s
// (s * grid; saturating). `grid` as format_grid gives it.
double analytic_mse(const DistributionSpec& d, std::span<const double> grid, double scale);

// The scale minimizing analytic_mse (the clip search of the header over clips
// c = s * max(grid) in [1e-2, 1e3] x sqrt(E[x^2]); needs a finite second
// moment), and its error.
struct AnalyticOptimum {
  double scale = 0;
  double mse = 0;
};
AnalyticOptimum analytic_best_scale(const DistributionSpec& d, std::span<const double> grid);

// Adaptive Gauss–Kronrod (G7/K15) of f over [a, b] (b may be +Inf), to
// absolute error about `tol`.
double integrate(const std::function<double(double)>& f, double a, double b, double tol);

// ---- the clip search on data ----

// |x| sorted with prefix sums: the exact squared error of any scaled grid.
class SortedMagnitudes {
 public:
  explicit SortedMagnitudes(std::span<const float> x);
  // Squared error summed over the values, quantized to nearest on s * grid
  // (saturating).
  double squared_error(std::span<const double> grid, double scale) const;
  double amax() const { return mag_.empty() ? 0.0 : mag_.back(); }
  std::size_t size() const { return mag_.size(); }

 private:
  std::vector<double> mag_, s1_, s2_;  // sorted |x|, prefix sums of |x| and x^2
};

// The clip search of the header; returns the scale (0 for all-zero data).
double search_scale(const SortedMagnitudes& m, std::span<const double> grid);

// ---- the analysis ----

struct TensorStats {
  std::size_t count = 0;
  double mean = 0, std = 0, amax = 0;
  double kurtosis = 0;          // E[(x-mean)^4] / std^4 (Gaussian: 3, Laplace: 6)
  double outlier_fraction = 0;  // share of |x - mean| > 6 std (Gaussian: 2e-9)
};
TensorStats tensor_stats(std::span<const float> x);

enum class FormatFamily : std::uint8_t { kInt, kFloat, kBlock };
std::string_view family_name(FormatFamily f);  // "int", "fp", "block"

struct FormatResult {
  std::string name;  // matrix format spelling: "int4", "e2m1fin:channel", "mxfp4"
  FormatFamily family = FormatFamily::kInt;
  int bits = 0;               // element bits (the budget it answers)
  double bits_per_value = 0;  // with the scales of a block or row
  bool per_channel = false;
  double clip_over_amax = 0;    // scalar formats: clip / amax (mean over rows per channel); 0: n/a
  double clip_over_std = 0;     // the same clip / the data's standard deviation
  ErrorStats error;             // measured
  double analytic_sqnr_db = 0;  // with a distribution (scalar formats); NaN: n/a
  double analytic_clip_over_std = 0;  // the analytic optimum's clip / sqrt(E[x^2]); NaN: n/a
};

struct AnalyzeOptions {
  std::vector<int> bits = {4, 8};
  bool per_channel = true;  // also per-row scales for matrices (rows > 1)
  bool blocks = true;
  const DistributionSpec* distribution = nullptr;  // analytic columns when set
  unsigned threads = 1;                            // results do not depend on it
};

struct TensorAnalysis {
  std::string name;
  std::size_t rows = 0, cols = 0;
  TensorStats stats;
  std::vector<FormatResult> formats;  // by bits, then int, fp, block
  // Per budget: the index in `formats` of the scalar format (int or eXmY, per
  // tensor or channel) with the best measured SQNR.
  std::vector<std::pair<int, std::size_t>> recommendation;
};

// The candidates' names at a budget (the header's list); throws lowp::Error
// for bits outside 2..8.
std::vector<std::string> candidate_formats(int bits, bool per_channel, bool blocks);

// Analyzes x as a rows x cols matrix (rows == 1: a vector). Throws lowp::Error
// for a non-finite value, a size that is not rows * cols, or bits outside 2..8.
TensorAnalysis analyze_tensor(std::string name, std::span<const float> x, std::size_t rows,
                              std::size_t cols, const AnalyzeOptions& opt);

// ---- hardware cost (docs/analyze.md: the sources) ----

// What the literature reports for a multiply-accumulate in a format
// relative to an INT8 one, as text ("1", "1.5-2.8", ...): scalar formats
// against a scalar INT8 MAC, block formats against an MXINT8 dot-product
// unit (the reference field says which). "n/a" where no cited number was
// found; source is the short citation (docs/analyze.md lists what each
// number measures).
struct HardwareCost {
  std::string relative_to_int8;
  std::string reference;  // "int8", "mxint8"; empty with "n/a"
  std::string source;
};
HardwareCost hardware_cost(const FormatResult& r);

}  // namespace lowp
