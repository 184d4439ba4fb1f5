// src/kernels/int_gemm.cc — gemm_i8 (lowp/kernels.h): int8 x int8 products
// widened to int16 in registers and summed in int32 pairs
// (ReorderWidenMulAccumulate: pmaddwd on x86).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/int_gemm.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>

#include "lowp/kernels.h"
#include "lowp/thread_pool.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

std::int32_t DotI8(const std::int8_t* HWY_RESTRICT a, const std::int8_t* HWY_RESTRICT b,
                   std::size_t n) {
  const hn::ScalableTag<std::int16_t> d16;
  const hn::Repartition<std::int32_t, decltype(d16)> d32;
  const hn::Rebind<std::int8_t, decltype(d16)> d8;  // half a vector of int8
  const std::size_t lanes = hn::Lanes(d16);
  auto sum0 = hn::Zero(d32), sum1 = hn::Zero(d32), sum2 = hn::Zero(d32), sum3 = hn::Zero(d32);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto a0 = hn::PromoteTo(d16, hn::LoadU(d8, a + i));
    const auto b0 = hn::PromoteTo(d16, hn::LoadU(d8, b + i));
    const auto a1 = hn::PromoteTo(d16, hn::LoadU(d8, a + i + lanes));
    const auto b1 = hn::PromoteTo(d16, hn::LoadU(d8, b + i + lanes));
    sum0 = hn::ReorderWidenMulAccumulate(d32, a0, b0, sum0, sum1);
    sum2 = hn::ReorderWidenMulAccumulate(d32, a1, b1, sum2, sum3);
  }
  for (; i + lanes <= n; i += lanes) {
    const auto a0 = hn::PromoteTo(d16, hn::LoadU(d8, a + i));
    const auto b0 = hn::PromoteTo(d16, hn::LoadU(d8, b + i));
    sum0 = hn::ReorderWidenMulAccumulate(d32, a0, b0, sum0, sum1);
  }
  std::int32_t s =
      hn::GetLane(hn::SumOfLanes(d32, hn::Add(hn::Add(sum0, sum1), hn::Add(sum2, sum3))));
  for (; i < n; ++i) s += static_cast<std::int32_t>(a[i]) * static_cast<std::int32_t>(b[i]);
  return s;
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowp::kernels {

HWY_EXPORT(DotI8);

void gemm_i8(const std::int8_t* x, std::size_t n, const std::int8_t* w, std::size_t rows,
             std::size_t cols, std::int32_t* y, unsigned threads) {
  const auto dot = HWY_DYNAMIC_DISPATCH(DotI8);
  parallel_for(rows, threads, 16, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const std::int8_t* wr = w + r * cols;
      for (std::size_t t = 0; t < n; ++t) y[t * rows + r] = dot(x + t * cols, wr, cols);
    }
  });
}

}  // namespace lowp::kernels
#endif  // HWY_ONCE
