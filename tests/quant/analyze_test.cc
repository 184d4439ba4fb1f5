// lowp/quant/analyze.h: the analytic error against closed forms and against
// Monte Carlo, the clip search against brute force and the literature, the
// samplers, and the recommendation on data whose answer the math fixes.
#include "lowp/quant/analyze.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <tuple>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

// ---- closed forms, written from the densities (no lowp code) ----

// int_a^b x^j phi(x) dx for j = 0, 1, 2 (b may be +Inf), phi = N(0, 1).
struct Moments {
  double m0, m1, m2;
};
double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }
double upper_tail(double x) { return 0.5 * std::erfc(x / std::numbers::sqrt2); }
Moments gauss_moments(double a, double b) {
  // d/dx(-phi) = x phi;  int x^2 phi = [-x phi] + int phi.
  const double pa = phi(a), pb = std::isinf(b) ? 0.0 : phi(b);
  const double q = upper_tail(a) - (std::isinf(b) ? 0.0 : upper_tail(b));
  const double bpb = std::isinf(b) ? 0.0 : b * pb;
  return {q, pa - pb, a * pa - bpb + q};
}
// Laplace(0, 1), density exp(-x) / 2 on x >= 0: int x^j e^-x / 2.
Moments laplace_moments(double a, double b) {
  const auto f = [](double x, int j) {  // antiderivative of x^j e^-x / 2, at x
    if (std::isinf(x)) return 0.0;
    const double e = std::exp(-x);
    if (j == 0) return -0.5 * e;
    if (j == 1) return -0.5 * (x + 1) * e;
    return -0.5 * (x * x + 2 * x + 2) * e;
  };
  return {f(b, 0) - f(a, 0), f(b, 1) - f(a, 1), f(b, 2) - f(a, 2)};
}

// The expected squared error of the scaled grid from interval moments.
template <class M>
double closed_form_mse(const std::vector<double>& grid, double s, M moments) {
  double total = 0;
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const double lo = k == 0 ? 0.0 : 0.5 * s * (grid[k - 1] + grid[k]);
    const double hi = k + 1 < grid.size() ? 0.5 * s * (grid[k] + grid[k + 1]) : INFINITY;
    const double q = s * grid[k];
    const Moments m = moments(lo, hi);
    total += m.m2 - 2 * q * m.m1 + q * q * m.m0;
  }
  return 2 * total;
}

std::vector<double> int_grid(int k) {  // 0, 1, ..., k
  std::vector<double> g;
  for (int i = 0; i <= k; ++i) g.push_back(i);
  return g;
}

TEST(AnalyzeGrid, FormatGridIsTheNonNegativeValues) {
  EXPECT_EQ(format_grid(parse_format("int4")), int_grid(7));  // symmetric: -8 unused
  EXPECT_EQ(format_grid(parse_format("fp4_e2m1")),
            (std::vector<double>{0, 0.5, 1, 1.5, 2, 3, 4, 6}));
  // E4M3 (fn): 0x7F is NaN, the largest is 448; 127 values >= 0.
  const auto g = format_grid(parse_format("fp8_e4m3"));
  EXPECT_EQ(g.size(), 127u);
  EXPECT_EQ(g.back(), 448.0);
}

TEST(AnalyzeAnalytic, UniformQuantizerOnUniformDataIsDeltaSquaredOver12) {
  // Levels k*D, |k| <= K, cells of width D tiling [-1, 1] exactly: no
  // clipping, and every cell's error is D^2 / 12.
  DistributionSpec u = parse_distribution("uniform");
  for (int k : {1, 7, 127}) {
    const double delta = 1.0 / (k + 0.5);
    EXPECT_NEAR(analytic_mse(u, int_grid(k), delta) / (delta * delta / 12), 1.0, 1e-10) << k;
  }
}

TEST(AnalyzeAnalytic, GaussianAndLaplaceMatchClosedForms) {
  const DistributionSpec g = parse_distribution("gaussian"), l = parse_distribution("laplace");
  for (const char* f : {"int4", "int8", "fp4_e2m1", "fp8_e4m3", "e3m0fin"}) {
    const std::vector<double> grid = format_grid(parse_format(f));
    for (double clip : {0.5, 2.5, 4.0, 9.0}) {
      const double s = clip / grid.back();
      const double want_g = closed_form_mse(grid, s, gauss_moments);
      EXPECT_NEAR(analytic_mse(g, grid, s) / want_g, 1.0, 1e-9) << f << " clip " << clip;
      const double want_l = closed_form_mse(grid, s, laplace_moments);
      EXPECT_NEAR(analytic_mse(l, grid, s) / want_l, 1.0, 1e-9) << f << " clip " << clip;
    }
  }
}

// Monte Carlo with an independent quantizer (nearest grid point by a scan):
// the analytic error lies within 4 standard errors of the sample mean.
void expect_matches_monte_carlo(const DistributionSpec& d, const char* format, double clip) {
  const std::vector<double> grid = format_grid(parse_format(format));
  const double s = clip / grid.back();
  const std::vector<float> x = sample_distribution(d, 1'000'000, 7);
  double sum = 0, sum2 = 0;
  for (float v : x) {
    const double a = std::fabs(static_cast<double>(v));
    double best = INFINITY;
    for (double g : grid) best = std::min(best, (a - s * g) * (a - s * g));
    sum += best;
    sum2 += best * best;
  }
  const double n = static_cast<double>(x.size()), mean = sum / n;
  const double se = std::sqrt((sum2 / n - mean * mean) / n);
  EXPECT_NEAR(analytic_mse(d, grid, s), mean, 4 * se) << distribution_name(d) << " " << format;
}

// Regression: the adaptive quadrature halved its absolute tolerance with each
// bisection, so an integral too large for the tolerance (Student-t nu = 3 at
// small clips) recursed on rounding noise for minutes. It now stops at a
// relative 1e-12 of each piece.
TEST(AnalyzeAnalytic, QuadratureStopsAtRoundingNoise) {
  std::size_t calls = 0;
  const double v = integrate(
      [&](double x) {
        ++calls;
        return 1e6 * std::exp(x);
      },
      0.0, 1.0, 0.0);
  EXPECT_NEAR(v / (1e6 * (std::numbers::e - 1)), 1.0, 1e-12);
  EXPECT_LT(calls, 1000u);
  const DistributionSpec t3 = parse_distribution("student-t:3");
  const AnalyticOptimum a = analytic_best_scale(t3, format_grid(parse_format("fp8_e4m3")));
  EXPECT_TRUE(std::isfinite(a.mse) && a.mse > 0);
}

TEST(AnalyzeAnalytic, MatchesMonteCarlo) {
  expect_matches_monte_carlo(parse_distribution("student-t:6"), "int4", 3.0);
  expect_matches_monte_carlo(parse_distribution("student-t:6"), "fp4_e2m1", 4.0);
  DistributionSpec outliers = parse_distribution("gaussian");
  parse_outliers("0.01:10", outliers);
  expect_matches_monte_carlo(outliers, "int4", 5.0);
  expect_matches_monte_carlo(parse_distribution("laplace"), "e3m0fin", 6.0);
}

TEST(AnalyzeSearch, GaussianInt4OptimalClipAgreesWithBruteForceAndLiterature) {
  const DistributionSpec g = parse_distribution("gaussian");
  const std::vector<double> grid = int_grid(7);
  // Brute force over the closed form, clip in steps of 1e-4 sigma.
  double best_clip = 0, best = INFINITY;
  for (int i = 15000; i <= 40000; ++i) {
    const double c = i * 1e-4, e = closed_form_mse(grid, c / 7, gauss_moments);
    if (e < best) best = e, best_clip = c;
  }
  const AnalyticOptimum a = analytic_best_scale(g, grid);
  EXPECT_NEAR(a.scale * 7, best_clip, 2e-4);
  EXPECT_NEAR(a.mse / best, 1.0, 1e-9);
  // Banner et al. 2019 (ACIQ, "Post training 4-bit quantization of
  // convolutional networks for rapid-deployment", §4) give 2.55 sigma for a
  // 16-level 4-bit quantizer with the rounding error approximated by D^2/12;
  // the exact optimum of the symmetric 15-level grid is close to it.
  EXPECT_GT(best_clip, 2.4);
  EXPECT_LT(best_clip, 2.7);
  // The search on 10^6 samples finds the same clip (up to sampling).
  const std::vector<float> x = sample_distribution(g, 1'000'000, 1);
  const SortedMagnitudes m(x);
  EXPECT_NEAR(search_scale(m, grid) * 7, best_clip, 0.05);
}

TEST(AnalyzeSearch, UniformInt4ClipsAtTheLastCellsCentre) {
  // On U(-1, 1) the 15-level grid is best with cells tiling [-1, 1]: the
  // largest level at 7 / 7.5 of the range.
  const std::vector<float> x = sample_distribution(parse_distribution("uniform"), 1'000'000, 2);
  const SortedMagnitudes m(x);
  EXPECT_NEAR(search_scale(m, int_grid(7)) * 7 / m.amax(), 7.0 / 7.5, 0.005);
  const AnalyticOptimum a = analytic_best_scale(parse_distribution("uniform"), int_grid(7));
  EXPECT_NEAR(a.scale * 7, 7.0 / 7.5, 1e-4);
}

TEST(AnalyzeSearch, SortedSquaredErrorMatchesDirectSum) {
  const std::vector<float> x = sample_distribution(parse_distribution("laplace"), 5000, 3);
  const SortedMagnitudes m(x);
  const std::vector<double> grid = format_grid(parse_format("fp4_e2m1"));
  for (double s : {0.1, 0.7, 2.0}) {
    double want = 0;
    for (float v : x) {
      const double a = std::fabs(static_cast<double>(v));
      double best = INFINITY;
      for (double g : grid) best = std::min(best, (a - s * g) * (a - s * g));
      want += best;
    }
    EXPECT_NEAR(m.squared_error(grid, s) / want, 1.0, 1e-9) << s;
  }
}

TEST(AnalyzeSample, SeededAndOutliersExact) {
  DistributionSpec d = parse_distribution("student-t:3");
  EXPECT_EQ(sample_distribution(d, 1000, 5), sample_distribution(d, 1000, 5));
  EXPECT_NE(sample_distribution(d, 1000, 5), sample_distribution(d, 1000, 6));
  // Uniform values times 1000: exactly round(0.01 * 10000) = 100 exceed 1.
  DistributionSpec u = parse_distribution("uniform");
  parse_outliers("0.01:1000", u);
  const std::vector<float> x = sample_distribution(u, 10000, 9);
  EXPECT_EQ(std::count_if(x.begin(), x.end(), [](float v) { return std::fabs(v) > 1.0f; }), 100);
  // Sample moments near the distribution's (Laplace: variance 2, kurtosis 6).
  const TensorStats st =
      tensor_stats(sample_distribution(parse_distribution("laplace"), 1'000'000, 4));
  EXPECT_NEAR(st.std * st.std, 2.0, 0.02);
  EXPECT_NEAR(st.kurtosis, 6.0, 0.2);
}

TEST(AnalyzeSample, BadSpellingsThrow) {
  EXPECT_THROW(parse_distribution("cauchy"), Error);
  EXPECT_THROW(parse_distribution("student-t:"), Error);
  EXPECT_THROW(parse_distribution("student-t:-1"), Error);
  DistributionSpec d;
  EXPECT_THROW(parse_outliers("0.1", d), Error);
  EXPECT_THROW(parse_outliers("2:10", d), Error);
  EXPECT_THROW(parse_outliers("0.1:0", d), Error);
  EXPECT_THROW(candidate_formats(9, false, false), Error);
  EXPECT_THROW(candidate_formats(1, false, false), Error);
}

const FormatResult& find(const TensorAnalysis& t, const std::string& name) {
  for (const FormatResult& r : t.formats) {
    if (r.name == name) return r;
  }
  throw Error("no " + name);
}

TEST(AnalyzeTensor, MeasuredErrorIsTheScaledQuantizersError) {
  // int4 per tensor, recomputed here from the reported clip: round half to
  // even of x / s, clamped to +-7.
  const std::vector<float> x = sample_distribution(parse_distribution("gaussian"), 20000, 11);
  AnalyzeOptions opt;
  opt.bits = {4};
  opt.blocks = false;
  const TensorAnalysis t = analyze_tensor("g", x, 1, x.size(), opt);
  const FormatResult& r = find(t, "int4");
  const auto s = static_cast<float>(r.clip_over_amax * t.stats.amax / 7);
  double err = 0;
  for (float v : x) {
    const float c = std::clamp(std::nearbyint(v / s), -7.0f, 7.0f);
    const double d = static_cast<double>(v) - static_cast<double>(c * s);
    err += d * d;
  }
  EXPECT_NEAR(r.error.error_energy / err, 1.0, 1e-5);
}

TEST(AnalyzeTensor, RecommendationFollowsTheTails) {
  AnalyzeOptions opt;  // measured only: the recommendation does not read the analytic column
  opt.bits = {4, 8};
  opt.blocks = false;
  const auto recommend = [&](const char* dist, const char* outliers, int bits) {
    DistributionSpec d = parse_distribution(dist);
    if (outliers != nullptr) parse_outliers(outliers, d);
    const std::vector<float> x = sample_distribution(d, 200000, 1);
    const TensorAnalysis t = analyze_tensor(dist, x, 1, x.size(), opt);
    for (const auto& [b, idx] : t.recommendation) {
      if (b == bits) return t.formats[idx];
    }
    throw Error("no recommendation");
  };
  // Light tails: the uniform grid is the best for uniform data.
  EXPECT_EQ(recommend("uniform", nullptr, 4).family, FormatFamily::kInt);
  EXPECT_EQ(recommend("uniform", nullptr, 8).family, FormatFamily::kInt);
  // Heavy tails (Student-t, nu = 3; Gaussian with 0.1% of values x 30):
  // floats, at both budgets.
  EXPECT_EQ(recommend("student-t:3", nullptr, 4).family, FormatFamily::kFloat);
  EXPECT_EQ(recommend("student-t:3", nullptr, 8).family, FormatFamily::kFloat);
  EXPECT_EQ(recommend("gaussian", "0.001:30", 4).family, FormatFamily::kFloat);
  EXPECT_EQ(recommend("gaussian", "0.001:30", 8).family, FormatFamily::kFloat);
}

TEST(AnalyzeTensor, AnalyticAgreesWithMeasuredOnSamples) {
  DistributionSpec d = parse_distribution("laplace");
  AnalyzeOptions opt;
  opt.bits = {4};
  opt.blocks = false;
  opt.distribution = &d;
  const std::vector<float> x = sample_distribution(d, 1'000'000, 3);
  const TensorAnalysis t = analyze_tensor("l", x, 1, x.size(), opt);
  for (const FormatResult& r : t.formats) {
    // The measured search fits the sample; the analytic optimum the
    // density: within a tenth of a dB at 10^6 samples.
    EXPECT_NEAR(r.error.sqnr_db(), r.analytic_sqnr_db, 0.1) << r.name;
  }
}

TEST(AnalyzeTensor, MatrixHasChannelAndBlockCandidates) {
  const std::vector<float> x = sample_distribution(parse_distribution("gaussian"), 64 * 64, 5);
  AnalyzeOptions opt;
  opt.bits = {4};
  const TensorAnalysis t = analyze_tensor("w", x, 64, 64, opt);
  EXPECT_TRUE(find(t, "int4:channel").per_channel);
  EXPECT_EQ(find(t, "mxfp4").family, FormatFamily::kBlock);
  EXPECT_DOUBLE_EQ(find(t, "mxfp4").bits_per_value, 4.25);
  EXPECT_EQ(find(t, "nvfp4").family, FormatFamily::kBlock);
  // Per-row scales never lose to one scale per tensor by much; here the
  // rows are alike, so both are near the Gaussian's int4 optimum (~20 dB).
  EXPECT_GT(find(t, "int4:channel").error.sqnr_db(), 18.0);
  std::vector<float> bad = x;
  bad[3] = NAN;
  EXPECT_THROW(analyze_tensor("w", bad, 64, 64, opt), Error);
  EXPECT_THROW(analyze_tensor("w", x, 64, 65, opt), Error);
}

// docs/analyze.md, "Hardware cost": the cited figures, and n/a where none was found.
TEST(AnalyzeHardwareCost, CitedFiguresPerFormat) {
  const auto cost = [](const char* name, FormatFamily family, int bits) {
    FormatResult r;
    r.name = name;
    r.family = family;
    r.bits = bits;
    return hardware_cost(r);
  };
  const HardwareCost int8 = cost("int8", FormatFamily::kInt, 8);
  EXPECT_EQ(int8.relative_to_int8, "1");
  EXPECT_EQ(int8.reference, "int8");
  EXPECT_EQ(cost("int8:channel", FormatFamily::kInt, 8).relative_to_int8, "1");
  // van Baalen et al. 2023: FP8 50-180% less efficient than INT8.
  for (const char* fp8 : {"e4m3fin", "e5m2fin", "e2m5fin:channel"}) {
    const HardwareCost c = cost(fp8, FormatFamily::kFloat, 8);
    EXPECT_EQ(c.relative_to_int8, "1.5-2.8") << fp8;
    EXPECT_EQ(c.reference, "int8") << fp8;
    EXPECT_EQ(c.source, "van Baalen et al. 2023") << fp8;
  }
  // Chen et al. 2025, Table 5, rescaled from MXFP8 = 1 to MXINT8 = 1:
  // MXFP8 1/0.79 (area) .. 1/0.63 (energy); NVFP4 0.54/0.79 .. 0.55/0.63.
  EXPECT_EQ(cost("mxint8", FormatFamily::kBlock, 8).relative_to_int8, "1");
  const HardwareCost mxfp8 = cost("mxfp8_e4m3", FormatFamily::kBlock, 8);
  EXPECT_EQ(mxfp8.relative_to_int8, "1.3-1.6");
  EXPECT_EQ(mxfp8.reference, "mxint8");
  EXPECT_EQ(mxfp8.source, "Chen et al. 2025");
  EXPECT_NEAR(1 / 0.79, 1.3, 0.05);
  EXPECT_NEAR(1 / 0.63, 1.6, 0.05);
  const HardwareCost nvfp4 = cost("nvfp4", FormatFamily::kBlock, 4);
  EXPECT_EQ(nvfp4.relative_to_int8, "0.68-0.87");
  EXPECT_EQ(nvfp4.reference, "mxint8");
  EXPECT_NEAR(0.54 / 0.79, 0.68, 0.005);
  EXPECT_NEAR(0.55 / 0.63, 0.87, 0.005);
  // No cited number: scalar int4 and FP4, the other block formats.
  for (const auto& [name, family, bits] :
       {std::tuple{"int4", FormatFamily::kInt, 4}, std::tuple{"e2m1fin", FormatFamily::kFloat, 4},
        std::tuple{"mxfp8_e5m2", FormatFamily::kBlock, 8},
        std::tuple{"mxfp6_e2m3", FormatFamily::kBlock, 6},
        std::tuple{"mxfp4", FormatFamily::kBlock, 4}}) {
    const HardwareCost c = cost(name, family, bits);
    EXPECT_EQ(c.relative_to_int8, "n/a") << name;
    EXPECT_TRUE(c.reference.empty()) << name;
  }
}

}  // namespace
}  // namespace lowp
