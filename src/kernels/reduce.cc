// src/kernels/reduce.cc — error_sums (lowp/kernels.h): the sums behind
// lowp::ErrorStats, in double lanes. Each lane accumulates the pairs of its
// position (the order depends on the target's vector width only); the lanes
// are added at the end, then the scalar tail in element order.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/reduce.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "lowp/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

ErrorSums ErrorSumsOf(const float* HWY_RESTRICT x, const float* HWY_RESTRICT q, std::size_t n) {
  ErrorSums s;
  std::size_t i = 0;
#if HWY_HAVE_FLOAT64
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;  // half as many bytes: one double each
  const std::size_t lanes = hn::Lanes(dd);
  auto signal = hn::Zero(dd), error = hn::Zero(dd), worst = hn::Zero(dd);
  std::uint64_t nonfinite = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto xv = hn::PromoteTo(dd, hn::LoadU(df, x + i));
    const auto qv = hn::PromoteTo(dd, hn::LoadU(df, q + i));
    const auto finite = hn::And(hn::IsFinite(xv), hn::IsFinite(qv));
    nonfinite += lanes - hn::CountTrue(dd, finite);
    const auto xs = hn::IfThenElseZero(finite, xv);
    const auto e = hn::IfThenElseZero(finite, hn::Sub(xv, qv));
    signal = hn::MulAdd(xs, xs, signal);
    error = hn::MulAdd(e, e, error);
    worst = hn::Max(worst, hn::Abs(e));
  }
  s.signal = hn::GetLane(hn::SumOfLanes(dd, signal));
  s.error = hn::GetLane(hn::SumOfLanes(dd, error));
  s.max_abs = hn::GetLane(hn::MaxOfLanes(dd, worst));
  s.nonfinite = nonfinite;
#endif
  for (; i < n; ++i) {
    const double xd = x[i], qd = q[i];
    if (!std::isfinite(xd) || !std::isfinite(qd)) {
      ++s.nonfinite;
      continue;
    }
    const double e = xd - qd;
    s.signal += xd * xd;
    s.error += e * e;
    s.max_abs = std::max(s.max_abs, std::fabs(e));
  }
  return s;
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowp::kernels {

HWY_EXPORT(ErrorSumsOf);

ErrorSums error_sums(const float* x, const float* q, std::size_t n) {
  return HWY_DYNAMIC_DISPATCH(ErrorSumsOf)(x, q, n);
}

}  // namespace lowp::kernels
#endif  // HWY_ONCE
