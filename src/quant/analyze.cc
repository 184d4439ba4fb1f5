// Which format for which tensor: measured and analytic error of every
// candidate format at a bit budget (analyze.h; the method is described there).
#include "lowp/quant/analyze.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>

#include "lowp/block/block_format.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/quant/methods.h"
#include "lowp/storage/segment_quantizer.h"
#include "lowp/thread_pool.h"

namespace lowp {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

bool parse_double(std::string_view text, double& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(out);
}

std::string number_text(double v) {
  char buf[32];
  const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, ptr) : std::string("?");
}

// The density of the standard form (no outliers).
double base_pdf(const DistributionSpec& d, double x) {
  switch (d.kind) {
    case Distribution::kGaussian:
      return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
    case Distribution::kLaplace:
      return 0.5 * std::exp(-std::fabs(x));
    case Distribution::kStudentT: {
      // log of Gamma((nu+1)/2) / (sqrt(nu pi) Gamma(nu/2)), kept for the last nu.
      thread_local double last_nu = 0, log_c = 0;
      const double nu = d.nu;
      if (nu != last_nu) {
        log_c = std::lgamma(0.5 * (nu + 1.0)) - std::lgamma(0.5 * nu) -
                0.5 * std::log(nu * std::numbers::pi);
        last_nu = nu;
      }
      return std::exp(log_c - 0.5 * (nu + 1.0) * std::log1p(x * x / nu));
    }
    case Distribution::kUniform:
      return std::fabs(x) <= 1.0 ? 0.5 : 0.0;
  }
  return 0.0;
}

double base_second_moment(const DistributionSpec& d) {
  switch (d.kind) {
    case Distribution::kGaussian:
      return 1.0;
    case Distribution::kLaplace:
      return 2.0;
    case Distribution::kStudentT:
      return d.nu > 2.0 ? d.nu / (d.nu - 2.0) : kInf;
    case Distribution::kUniform:
      return 1.0 / 3.0;
  }
  return kInf;
}

// A uniform double in [0, 1) from 53 random bits.
double uniform01(std::mt19937_64& gen) { return static_cast<double>(gen() >> 11) * 0x1p-53; }

// ---- Gauss–Kronrod G7/K15 (the nodes and weights of QUADPACK's qk15) ----
constexpr std::array<double, 8> kXgk = {
    0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
    0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
    0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
    0.207784955007898467600689403773245, 0.0};
constexpr std::array<double, 8> kWgk = {
    0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
    0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
    0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
    0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
// Gauss 7-point weights for the nodes kXgk[1], kXgk[3], kXgk[5], kXgk[7].
constexpr std::array<double, 4> kWg = {
    0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
    0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

double gk15_adaptive(const std::function<double(double)>& f, double a, double b, double tol,
                     int depth) {
  const double c = 0.5 * (a + b), h = 0.5 * (b - a);
  const double fc = f(c);
  double k = kWgk[7] * fc, g = kWg[3] * fc;
  for (std::size_t j = 0; j < 7; ++j) {
    const double dx = h * kXgk[j];
    const double s = f(c - dx) + f(c + dx);
    k += kWgk[j] * s;
    if (j % 2 == 1) g += kWg[j / 2] * s;
  }
  k *= h, g *= h;
  // Done at the absolute tolerance, or at a relative 1e-12 of the piece (a
  // smaller difference is rounding noise: halving the tolerance with the
  // interval would otherwise never be met where the integral is large).
  if (std::fabs(k - g) <= std::max(tol, 1e-12 * std::fabs(k)) || depth >= 30 || c <= a || c >= b) {
    return k;
  }
  return gk15_adaptive(f, a, c, 0.5 * tol, depth + 1) +
         gk15_adaptive(f, c, b, 0.5 * tol, depth + 1);
}

// Where a density has jumps (uniform: at 1, and at the outlier factor).
std::vector<double> breakpoints(const DistributionSpec& d) {
  std::vector<double> b;
  if (d.kind == Distribution::kUniform) {
    b.push_back(1.0);
    if (d.outlier_fraction > 0) b.push_back(d.outlier_factor);
  }
  return b;
}

// int_a^b f, split at the breakpoints inside (a, b).
double integrate_split(const std::function<double(double)>& f, double a, double b, double tol,
                       const std::vector<double>& breaks) {
  double total = 0.0, lo = a;
  for (double p : breaks) {
    if (p > lo && p < b) {
      total += integrate(f, lo, p, tol);
      lo = p;
    }
  }
  return total + integrate(f, lo, b, tol);
}

}  // namespace

// ---- distributions ----

DistributionSpec parse_distribution(std::string_view name) {
  DistributionSpec d;
  if (name == "gaussian" || name == "normal") {
    d.kind = Distribution::kGaussian;
  } else if (name == "laplace") {
    d.kind = Distribution::kLaplace;
  } else if (name == "uniform") {
    d.kind = Distribution::kUniform;
  } else if (name.starts_with("student-t:")) {
    d.kind = Distribution::kStudentT;
    if (!parse_double(name.substr(10), d.nu) || !(d.nu > 0)) {
      throw Error("distribution '" + std::string(name) +
                  "': student-t needs degrees of freedom NU > 0, as student-t:3");
    }
  } else {
    throw Error("unknown distribution '" + std::string(name) +
                "' (gaussian, laplace, student-t:NU, uniform)");
  }
  return d;
}

void parse_outliers(std::string_view text, DistributionSpec& d) {
  const auto colon = text.find(':');
  double p = 0, factor = 0;
  if (colon == std::string_view::npos || !parse_double(text.substr(0, colon), p) ||
      !parse_double(text.substr(colon + 1), factor) || p < 0 || p > 1 || !(factor > 0)) {
    throw Error("outliers '" + std::string(text) +
                "': expected P:FACTOR with 0 <= P <= 1 and FACTOR > 0, as 0.001:20");
  }
  d.outlier_fraction = p;
  d.outlier_factor = factor;
}

std::string distribution_name(const DistributionSpec& d) {
  std::string s;
  switch (d.kind) {
    case Distribution::kGaussian:
      s = "gaussian";
      break;
    case Distribution::kLaplace:
      s = "laplace";
      break;
    case Distribution::kStudentT:
      s = "student-t:" + number_text(d.nu);
      break;
    case Distribution::kUniform:
      s = "uniform";
      break;
  }
  if (d.outlier_fraction > 0) {
    s += " + outliers " + number_text(d.outlier_fraction) + ":" + number_text(d.outlier_factor);
  }
  return s;
}

double distribution_pdf(const DistributionSpec& d, double x) {
  const double p = d.outlier_fraction;
  if (!(p > 0)) return base_pdf(d, x);
  const double f = d.outlier_factor;
  return (1.0 - p) * base_pdf(d, x) + p * base_pdf(d, x / f) / f;
}

double distribution_second_moment(const DistributionSpec& d) {
  const double m = base_second_moment(d), p = d.outlier_fraction;
  return (1.0 - p) * m + p * d.outlier_factor * d.outlier_factor * m;
}

std::vector<float> sample_distribution(const DistributionSpec& d, std::size_t n,
                                       std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<float> out(n);
  std::size_t i = 0;
  while (i < n) {
    switch (d.kind) {
      case Distribution::kGaussian: {
        // Box–Muller: two independent N(0, 1) from two uniforms.
        const double u1 = 1.0 - uniform01(gen), u2 = uniform01(gen);
        const double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * std::numbers::pi * u2;
        out[i++] = static_cast<float>(r * std::cos(t));
        if (i < n) out[i++] = static_cast<float>(r * std::sin(t));
        break;
      }
      case Distribution::kLaplace: {
        // Inverse CDF: x = -sign(u) ln(1 - 2|u|), u uniform on (-1/2, 1/2).
        const double u = uniform01(gen) - 0.5;
        const double m = 1.0 - 2.0 * std::fabs(u);
        if (!(m > 0.0)) break;
        out[i++] = static_cast<float>(u < 0 ? std::log(m) : -std::log(m));
        break;
      }
      case Distribution::kStudentT: {
        // Bailey's polar method (Math. Comp. 62 (1994) 779–781): (U, V)
        // uniform in the unit disc, W = U^2 + V^2, T = U sqrt(nu (W^(-2/nu) - 1) / W).
        const double u = 2.0 * uniform01(gen) - 1.0, v = 2.0 * uniform01(gen) - 1.0;
        const double w = u * u + v * v;
        if (!(w < 1.0) || !(w > 0.0)) break;
        out[i++] = static_cast<float>(u * std::sqrt(d.nu * (std::pow(w, -2.0 / d.nu) - 1.0) / w));
        break;
      }
      case Distribution::kUniform:
        out[i++] = static_cast<float>(2.0 * uniform01(gen) - 1.0);
        break;
    }
  }
  if (d.outlier_fraction > 0 && n > 0) {
    // Exactly round(p n) distinct positions: a partial Fisher–Yates shuffle.
    const auto k =
        static_cast<std::size_t>(std::llround(d.outlier_fraction * static_cast<double>(n)));
    std::vector<std::size_t> index(n);
    for (std::size_t j = 0; j < n; ++j) index[j] = j;
    for (std::size_t j = 0; j < std::min(k, n); ++j) {
      const auto r = j + std::min(n - j - 1, static_cast<std::size_t>(uniform01(gen) *
                                                                      static_cast<double>(n - j)));
      std::swap(index[j], index[r]);
      out[index[j]] = static_cast<float>(static_cast<double>(out[index[j]]) * d.outlier_factor);
    }
  }
  return out;
}

// ---- the analytic error ----

std::vector<double> format_grid(const Format& f) {
  if (f.bits > 16 || is_table(f))
    throw Error("format_grid: needs an integer or float format of at most 16 bits");
  std::vector<double> g;
  for (std::uint32_t c = 0; c < (std::uint32_t{1} << f.bits); ++c) {
    if (is_nan_code(f, c) || is_inf_code(f, c)) continue;
    const double v = decode(f, c);
    if (std::isfinite(v) && v >= 0.0) g.push_back(v);
  }
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
  if (g.empty() || g.front() != 0.0) g.insert(g.begin(), 0.0);
  return g;
}

double integrate(const std::function<double(double)>& f, double a, double b, double tol) {
  if (!(b > a)) return 0.0;
  if (std::isinf(b)) {
    // x = a + u / (1 - u), dx = du / (1 - u)^2, u in [0, 1).
    const auto g = [&](double u) {
      const double one_minus = 1.0 - u;
      const double v = f(a + u / one_minus) / (one_minus * one_minus);
      return std::isfinite(v) ? v : 0.0;
    };
    return gk15_adaptive(g, 0.0, 1.0, tol, 0);
  }
  return gk15_adaptive(f, a, b, tol, 0);
}

double analytic_mse(const DistributionSpec& d, std::span<const double> grid, double scale) {
  if (grid.empty() || !(scale > 0)) return distribution_second_moment(d);
  if (!std::isfinite(distribution_second_moment(d))) return kInf;
  const std::vector<double> breaks = breakpoints(d);
  const double m2 = distribution_second_moment(d);
  const double tol = 1e-14 * m2 / static_cast<double>(grid.size());
  double total = 0.0;
  // Interval k: [s m_k, s m_(k+1)) rounds to s g_k; the last runs to +Inf.
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const double lo = k == 0 ? 0.0 : 0.5 * scale * (grid[k - 1] + grid[k]);
    const double hi = k + 1 < grid.size() ? 0.5 * scale * (grid[k] + grid[k + 1]) : kInf;
    const double q = scale * grid[k];
    const auto err = [&](double x) { return (x - q) * (x - q) * distribution_pdf(d, x); };
    if (k + 1 < grid.size()) {
      total += integrate_split(err, lo, hi, tol, breaks);
    } else {
      // The last interval: rounding error up to the largest value, then the
      // clipping error of the tail.
      total += integrate_split(err, lo, q, tol, breaks) + integrate_split(err, q, hi, tol, breaks);
    }
  }
  return 2.0 * total;
}

namespace {

// The search of the header over log(clip) in [lo, hi]: `points` grid points
// (the last exactly hi), then golden-section refinement between the best
// point's neighbours. err(clip) is the objective; returns the best clip.
template <class Err>
double clip_search(double lo, double hi, int points, Err err) {
  const double llo = std::log(lo), lhi = std::log(hi);
  std::vector<double> e(static_cast<std::size_t>(points));
  std::size_t best = 0;
  for (int i = 0; i < points; ++i) {
    const double c = i + 1 == points ? hi : std::exp(llo + (lhi - llo) * i / (points - 1));
    e[static_cast<std::size_t>(i)] = err(c);
    if (e[static_cast<std::size_t>(i)] < e[best]) best = static_cast<std::size_t>(i);
  }
  const auto at = [&](std::size_t i) {
    return i + 1 == e.size() ? lhi : llo + (lhi - llo) * static_cast<double>(i) / (points - 1);
  };
  double best_l = at(best), best_e = e[best];
  double a = at(best == 0 ? 0 : best - 1), b = at(std::min(best + 1, e.size() - 1));
  const double inv_phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double x1 = b - inv_phi * (b - a), x2 = a + inv_phi * (b - a);
  double f1 = err(std::exp(x1)), f2 = err(std::exp(x2));
  for (int it = 0; it < 40; ++it) {
    if (f1 < best_e) best_e = f1, best_l = x1;
    if (f2 < best_e) best_e = f2, best_l = x2;
    if (f1 <= f2) {
      b = x2, x2 = x1, f2 = f1;
      x1 = b - inv_phi * (b - a);
      f1 = err(std::exp(x1));
    } else {
      a = x1, x1 = x2, f1 = f2;
      x2 = a + inv_phi * (b - a);
      f2 = err(std::exp(x2));
    }
  }
  if (f1 < best_e) best_e = f1, best_l = x1;
  if (f2 < best_e) best_e = f2, best_l = x2;
  return best_l == lhi ? hi : std::exp(best_l);
}

}  // namespace

AnalyticOptimum analytic_best_scale(const DistributionSpec& d, std::span<const double> grid) {
  const double m2 = distribution_second_moment(d);
  if (!std::isfinite(m2) || grid.size() < 2) return {0.0, m2};
  const double rms = std::sqrt(m2), gmax = grid.back();
  const double clip = clip_search(1e-2 * rms, 1e3 * rms, 121,
                                  [&](double c) { return analytic_mse(d, grid, c / gmax); });
  return {clip / gmax, analytic_mse(d, grid, clip / gmax)};
}

// ---- the clip search on data ----

SortedMagnitudes::SortedMagnitudes(std::span<const float> x) : mag_(x.size()) {
  for (std::size_t i = 0; i < x.size(); ++i) mag_[i] = std::fabs(static_cast<double>(x[i]));
  std::sort(mag_.begin(), mag_.end());
  s1_.assign(mag_.size() + 1, 0.0);
  s2_.assign(mag_.size() + 1, 0.0);
  for (std::size_t i = 0; i < mag_.size(); ++i) {
    s1_[i + 1] = s1_[i] + mag_[i];
    s2_[i + 1] = s2_[i] + mag_[i] * mag_[i];
  }
}

double SortedMagnitudes::squared_error(std::span<const double> grid, double scale) const {
  if (grid.empty()) return s2_.back();
  double total = 0.0;
  std::size_t i0 = 0;
  for (std::size_t k = 0; k < grid.size() && i0 < mag_.size(); ++k) {
    std::size_t i1 = mag_.size();
    if (k + 1 < grid.size()) {
      const double edge = 0.5 * scale * (grid[k] + grid[k + 1]);
      i1 = static_cast<std::size_t>(
          std::lower_bound(mag_.begin() + static_cast<std::ptrdiff_t>(i0), mag_.end(), edge) -
          mag_.begin());
    }
    if (i1 > i0) {
      const double q = scale * grid[k], n = static_cast<double>(i1 - i0);
      const double s1 = s1_[i1] - s1_[i0], s2 = s2_[i1] - s2_[i0];
      total += std::max(0.0, s2 - 2.0 * q * s1 + n * q * q);
    }
    i0 = i1;
  }
  return total;
}

double search_scale(const SortedMagnitudes& m, std::span<const double> grid) {
  const double amax = m.amax();
  if (!(amax > 0) || grid.size() < 2) return 0.0;
  const double gmax = grid.back();
  const double clip = clip_search(1e-3 * amax, amax, 121,
                                  [&](double c) { return m.squared_error(grid, c / gmax); });
  return clip / gmax;
}

// ---- the analysis ----

TensorStats tensor_stats(std::span<const float> x) {
  TensorStats s;
  s.count = x.size();
  if (x.empty()) return s;
  double sum = 0.0;
  for (float v : x) {
    sum += v;
    s.amax = std::max(s.amax, std::fabs(static_cast<double>(v)));
  }
  const double n = static_cast<double>(x.size());
  s.mean = sum / n;
  double m2 = 0.0, m4 = 0.0;
  for (float v : x) {
    const double d = static_cast<double>(v) - s.mean, d2 = d * d;
    m2 += d2;
    m4 += d2 * d2;
  }
  s.std = std::sqrt(m2 / n);
  if (s.std > 0) {
    s.kurtosis = (m4 / n) / ((m2 / n) * (m2 / n));
    std::size_t beyond = 0;
    for (float v : x) beyond += std::fabs(static_cast<double>(v) - s.mean) > 6.0 * s.std ? 1 : 0;
    s.outlier_fraction = static_cast<double>(beyond) / n;
  }
  return s;
}

std::string_view family_name(FormatFamily f) {
  switch (f) {
    case FormatFamily::kInt:
      return "int";
    case FormatFamily::kFloat:
      return "fp";
    case FormatFamily::kBlock:
      return "block";
  }
  return "?";
}

std::vector<std::string> candidate_formats(int bits, bool per_channel, bool blocks) {
  if (bits < 2 || bits > 8) {
    throw Error("bit budget " + std::to_string(bits) + " is outside 2..8");
  }
  std::vector<std::string> names;
  const auto add = [&](const std::string& n) {
    names.push_back(n);
    if (per_channel) names.push_back(n + ":channel");
  };
  add("int" + std::to_string(bits));
  for (int e = 1; e <= bits - 1; ++e) {
    add("e" + std::to_string(e) + "m" + std::to_string(bits - 1 - e) + "fin");
  }
  if (blocks) {
    for (const NamedBlockFormat& b : block_registry()) {
      if (b.format.element.bits == bits) names.emplace_back(b.name);
    }
  }
  return names;
}

TensorAnalysis analyze_tensor(std::string name, std::span<const float> x, std::size_t rows,
                              std::size_t cols, const AnalyzeOptions& opt) {
  if (rows * cols != x.size() || (x.empty() && rows * cols != 0)) {
    throw Error("analyze " + name + ": " + std::to_string(x.size()) + " values for " +
                std::to_string(rows) + " x " + std::to_string(cols));
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw Error("analyze " + name + ": value " + std::to_string(i) + " is not finite");
    }
  }
  for (int b : opt.bits) (void)candidate_formats(b, false, false);  // checks the range
  TensorAnalysis out;
  out.name = std::move(name);
  out.rows = rows;
  out.cols = cols;
  out.stats = tensor_stats(x);
  if (x.empty()) return out;
  const SortedMagnitudes all(x);
  const bool channels = opt.per_channel && rows > 1;
  std::vector<float> q(x.size());
  for (int bits : opt.bits) {
    std::size_t best = 0;
    bool have_best = false;
    for (const std::string& fname : candidate_formats(bits, channels, opt.blocks)) {
      const MatrixFormat mf = parse_matrix_format(fname);
      FormatResult r;
      r.name = fname;
      r.bits = bits;
      r.bits_per_value = mf.bits_per_value(cols);
      r.analytic_sqnr_db = kNan;
      r.analytic_clip_over_std = kNan;
      if (mf.scheme == MatrixScheme::kBlock) {
        r.family = FormatFamily::kBlock;
        MethodOptions mo;
        mo.method = QuantMethod::kMse;
        mo.threads = opt.threads;
        quantize_weight(mf, x, rows, cols, mo).matrix.dequantize(q);
      } else {
        r.family = mf.element.kind == Kind::kInt ? FormatFamily::kInt : FormatFamily::kFloat;
        const std::vector<double> grid = format_grid(mf.element);
        const double gmax = grid.back();
        if (mf.scheme == MatrixScheme::kTensor) {
          const double s = search_scale(all, grid);
          const SegmentQuantizer sq(mf, cols, static_cast<float>(s));
          const SegmentScale sc = sq.rule({});
          for (std::size_t i = 0; i < x.size(); ++i) q[i] = sq.quantize(x[i], sc);
          r.clip_over_amax = all.amax() > 0 ? s * gmax / all.amax() : 0.0;
          r.clip_over_std = out.stats.std > 0 ? s * gmax / out.stats.std : 0.0;
        } else {
          r.per_channel = true;
          const SegmentQuantizer sq(mf, cols);
          std::vector<double> ratio(rows, -1.0), clip(rows, 0.0);
          parallel_for(rows, opt.threads, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t row = r0; row < r1; ++row) {
              const auto v = x.subspan(row * cols, cols);
              const SortedMagnitudes m(v);
              const double s = search_scale(m, grid);
              SegmentScale sc;
              sc.value = static_cast<float>(s);
              for (std::size_t i = 0; i < cols; ++i) q[row * cols + i] = sq.quantize(v[i], sc);
              clip[row] = s * gmax;
              if (m.amax() > 0) ratio[row] = s * gmax / m.amax();
            }
          });
          double sum_ratio = 0, sum_clip = 0;
          std::size_t counted = 0;
          for (std::size_t row = 0; row < rows; ++row) {
            if (ratio[row] < 0) continue;
            sum_ratio += ratio[row];
            sum_clip += clip[row];
            ++counted;
          }
          if (counted > 0) {
            r.clip_over_amax = sum_ratio / static_cast<double>(counted);
            if (out.stats.std > 0) {
              r.clip_over_std = sum_clip / static_cast<double>(counted) / out.stats.std;
            }
          }
        }
        if (opt.distribution != nullptr && !r.per_channel) {
          const double m2 = distribution_second_moment(*opt.distribution);
          if (std::isfinite(m2)) {
            const AnalyticOptimum a = analytic_best_scale(*opt.distribution, grid);
            r.analytic_sqnr_db = 10.0 * std::log10(m2 / a.mse);
            r.analytic_clip_over_std = a.scale * gmax / std::sqrt(m2);
          }
        }
      }
      r.error.add(x, q);
      out.formats.push_back(std::move(r));
      const FormatResult& added = out.formats.back();
      if (added.family != FormatFamily::kBlock &&
          (!have_best || added.error.sqnr_db() > out.formats[best].error.sqnr_db())) {
        best = out.formats.size() - 1;
        have_best = true;
      }
    }
    if (have_best) out.recommendation.emplace_back(bits, best);
  }
  return out;
}

HardwareCost hardware_cost(const FormatResult& r) {
  // docs/analyze.md, "Hardware cost": where each figure comes from and what it measures.
  if (r.family == FormatFamily::kInt && r.bits == 8) return {"1", "int8", "reference"};
  if (r.family == FormatFamily::kFloat && r.bits == 8) {
    // van Baalen et al. 2023: FP8 50-180% less efficient than INT8 in dedicated hardware.
    return {"1.5-2.8", "int8", "van Baalen et al. 2023"};
  }
  if (r.family == FormatFamily::kBlock) {
    // Chen et al. 2025, Table 5 (area and energy at equal throughput, MXFP8 = 1):
    // MXINT8 0.79 area, 0.63 energy; NVFP4 0.54 area, 0.55 energy. Divided by
    // MXINT8's: MXFP8 1/0.79..1/0.63, NVFP4 0.54/0.79..0.55/0.63.
    if (r.name == "mxint8") return {"1", "mxint8", "reference"};
    if (r.name == "mxfp8_e4m3") return {"1.3-1.6", "mxint8", "Chen et al. 2025"};
    if (r.name == "nvfp4") return {"0.68-0.87", "mxint8", "Chen et al. 2025"};
  }
  return {"n/a", "", ""};
}

}  // namespace lowp
