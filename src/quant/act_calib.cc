// Activation calibrators (lowp/quant/act_calib.h).
#include "lowp/quant/act_calib.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {

AbsHistogram::AbsHistogram(std::size_t bins) : counts_(std::max<std::size_t>(bins, 2), 0.0) {
  if (counts_.size() % 2 != 0) counts_.push_back(0.0);  // pairs merge evenly
}

void AbsHistogram::grow_to(double range) {
  const std::size_t n = counts_.size();
  while (range_ < range) {
    for (std::size_t i = 0; i < n / 2; ++i) counts_[i] = counts_[2 * i] + counts_[2 * i + 1];
    std::fill(counts_.begin() + static_cast<std::ptrdiff_t>(n / 2), counts_.end(), 0.0);
    range_ *= 2.0;
  }
}

void AbsHistogram::add(const float* x, std::size_t n) {
  const auto bins = static_cast<double>(counts_.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      ++nonfinite_;
      continue;
    }
    const double a = std::fabs(static_cast<double>(x[i]));
    ++total_;
    if (a > 0.0) {
      if (range_ == 0.0) {
        range_ = std::ldexp(1.0, std::ilogb(a) + 1);
      } else if (a >= range_) {
        grow_to(std::ldexp(1.0, std::ilogb(a) + 1));
      }
    }
    max_ = std::max(max_, a);
    const auto b = range_ > 0.0 ? static_cast<std::size_t>(a / range_ * bins) : 0;
    counts_[std::min(b, counts_.size() - 1)] += 1.0;
  }
}

void AbsHistogram::merge(const AbsHistogram& other) {
  if (other.counts_.size() != counts_.size()) {
    throw Error("histogram: merging " + std::to_string(other.counts_.size()) + " bins into " +
                std::to_string(counts_.size()));
  }
  AbsHistogram o = other;
  if (range_ == 0.0) {
    range_ = o.range_;
  } else if (o.range_ > 0.0) {
    grow_to(o.range_);
    o.grow_to(range_);
  }
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  max_ = std::max(max_, o.max_);
  total_ += o.total_;
  nonfinite_ += o.nonfinite_;
}

CalibratorOptions parse_calibrator(std::string_view name) {
  CalibratorOptions o;
  if (name == "max") {
    o.method = Calibrator::kMax;
  } else if (name == "mse") {
    o.method = Calibrator::kMse;
  } else if (name == "entropy") {
    o.method = Calibrator::kEntropy;
  } else if (name.substr(0, 10) == "percentile") {
    o.method = Calibrator::kPercentile;
    if (name.size() > 10) {
      const std::string p(name.substr(11));
      char* end = nullptr;
      o.percentile = std::strtod(p.c_str(), &end);
      if (name[10] != ':' || p.empty() || *end != '\0' || !(o.percentile > 0.0) ||
          !(o.percentile <= 100.0)) {
        throw Error("calibrator '" + std::string(name) +
                    "': expected percentile:P with 0 < P <= 100, e.g. percentile:99.99");
      }
    }
  } else {
    throw Error("unknown calibrator '" + std::string(name) +
                "' (expected max, percentile[:P], mse or entropy)");
  }
  return o;
}

namespace {

// The element's non-negative values, increasing, and the value nearest to x
// (ties to the lower one), saturating.
struct Grid {
  std::vector<double> v;
  explicit Grid(const Format& e) {
    for (std::uint32_t c = 0; c < (std::uint32_t{1} << std::min(e.bits, 16)); ++c) {
      if (is_nan_code(e, c)) continue;
      const double x = decode(e, c);
      if (std::isfinite(x) && x >= 0.0) v.push_back(x);
    }
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  std::size_t nearest(double x) const {
    const auto it = std::lower_bound(v.begin(), v.end(), x);
    if (it == v.end()) return v.size() - 1;
    const auto i = static_cast<std::size_t>(it - v.begin());
    if (i == 0) return 0;
    return x - v[i - 1] <= v[i] - x ? i - 1 : i;
  }
};

double percentile_clip(const AbsHistogram& h, double p) {
  const auto c = h.counts();
  const double target = p / 100.0 * static_cast<double>(h.total());
  double cum = 0.0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (cum + c[i] >= target && c[i] > 0.0) {
      const double x = (static_cast<double>(i) + (target - cum) / c[i]) * h.bin_width();
      return std::min(x, h.max());
    }
    cum += c[i];
  }
  return h.max();
}

double mse_clip(const AbsHistogram& h, const Grid& g) {
  const auto c = h.counts();
  const double w = h.bin_width(), top = g.v.back();
  double best = std::numeric_limits<double>::infinity(), pick = h.max();
  const std::size_t last = std::min(c.size(), static_cast<std::size_t>(h.max() / w) + 1);
  for (std::size_t k = 1; k <= last; ++k) {
    const double clip = std::min(static_cast<double>(k) * w, h.max());
    const double s = clip / top;
    double err = 0.0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c[i] == 0.0) continue;
      const double x = (static_cast<double>(i) + 0.5) * w;
      const double q = g.v[g.nearest(x / s)] * s;
      err += c[i] * (x - q) * (x - q);
    }
    if (err < best) {
      best = err;
      pick = clip;
    }
  }
  return pick;
}

double entropy_clip(const AbsHistogram& h, const Grid& g) {
  const auto c = h.counts();
  const std::size_t n = c.size(), levels = g.v.size();
  const double top = g.v.back();
  double best = std::numeric_limits<double>::infinity();
  std::size_t pick = n;
  std::vector<double> p(n);
  std::vector<std::size_t> code(n);
  std::vector<std::pair<double, double>> group(levels);  // per value: mass, non-empty bins
  for (std::size_t i = std::min(levels, n); i <= n; ++i) {
    // P: bins [0, i) with the mass above added to the last.
    double above = 0.0;
    for (std::size_t j = i; j < n; ++j) above += c[j];
    std::copy(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(i), p.begin());
    p[i - 1] += above;
    // Q: bins grouped by the element value their centre quantizes to, under
    // the scale that maps the threshold (bin edge i) to the largest value.
    const double s = static_cast<double>(i) / top;  // in units of bins
    std::fill(group.begin(), group.end(), std::pair<double, double>{0.0, 0.0});
    for (std::size_t j = 0; j < i; ++j) {
      code[j] = g.nearest((static_cast<double>(j) + 0.5) / s);
      auto& [mass, count] = group[code[j]];
      mass += c[j];  // Q is built from the histogram itself: the clipped mass is lost
      count += p[j] > 0.0 ? 1.0 : 0.0;
    }
    double total_p = 0.0, total_q = 0.0;
    for (std::size_t j = 0; j < i; ++j) {
      total_p += p[j];
      if (p[j] > 0.0) total_q += group[code[j]].first / group[code[j]].second;
    }
    if (total_p == 0.0 || total_q == 0.0) continue;
    double kl = 0.0;
    for (std::size_t j = 0; j < i; ++j) {
      if (p[j] == 0.0) continue;
      const auto& [mass, count] = group[code[j]];
      // An empty level where P has mass: a small floor instead of infinity.
      const double q = std::max(mass / count / total_q, 1e-12);
      const double pj = p[j] / total_p;
      kl += pj * std::log(pj / q);
    }
    if (kl < best) {
      best = kl;
      pick = i;
    }
  }
  return std::min(static_cast<double>(pick) * h.bin_width(), h.max());
}

}  // namespace

double calibrate_clip(const AbsHistogram& h, const Format& element, const CalibratorOptions& opt) {
  if (h.total() == 0) throw Error("calibration: no finite activation values were seen");
  if (!(h.max() > 0.0)) return 0.0;
  switch (opt.method) {
    case Calibrator::kMax:
      return h.max();
    case Calibrator::kPercentile:
      return percentile_clip(h, opt.percentile);
    case Calibrator::kMse:
      return mse_clip(h, Grid(element));
    case Calibrator::kEntropy:
      return entropy_clip(h, Grid(element));
  }
  return h.max();
}

}  // namespace lowp
