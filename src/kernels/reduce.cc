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
  // Four sets of accumulators, so that the adds of one set do not wait on
  // each other's latency; they are summed in a fixed order at the end.
  using V = hn::Vec<decltype(dd)>;
  V signal0 = hn::Zero(dd), signal1 = signal0, signal2 = signal0, signal3 = signal0;
  V error0 = signal0, error1 = signal0, error2 = signal0, error3 = signal0;
  V worst = signal0;
  std::uint64_t nonfinite = 0;
  const auto step = [&](std::size_t at, V& signal, V& error) {
    const V xv = hn::PromoteTo(dd, hn::LoadU(df, x + at));
    const V qv = hn::PromoteTo(dd, hn::LoadU(df, q + at));
    const auto finite = hn::And(hn::IsFinite(xv), hn::IsFinite(qv));
    nonfinite += lanes - hn::CountTrue(dd, finite);
    const V xs = hn::IfThenElseZero(finite, xv);
    const V e = hn::IfThenElseZero(finite, hn::Sub(xv, qv));
    signal = hn::MulAdd(xs, xs, signal);
    error = hn::MulAdd(e, e, error);
    worst = hn::Max(worst, hn::Abs(e));
  };
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    step(i, signal0, error0);
    step(i + lanes, signal1, error1);
    step(i + 2 * lanes, signal2, error2);
    step(i + 3 * lanes, signal3, error3);
  }
  for (; i + lanes <= n; i += lanes) step(i, signal0, error0);
  const V signal = hn::Add(hn::Add(signal0, signal1), hn::Add(signal2, signal3));
  const V error = hn::Add(hn::Add(error0, error1), hn::Add(error2, error3));
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
