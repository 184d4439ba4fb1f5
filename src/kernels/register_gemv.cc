// src/kernels/register_gemv.cc — dispatch for lowp/register_gemv.h to the best
// Highway target of register_gemv-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/register_gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/register_gemv-inl.h"

#if HWY_ONCE

namespace lowp::kernels {

HWY_EXPORT(RegisterGemvAny);

void register_gemv(const RegisterGemv& g, const void* weights, std::size_t cols, const float* x,
                   float* y, std::size_t r0, std::size_t r1) {
  HWY_DYNAMIC_DISPATCH(RegisterGemvAny)(g, weights, cols, x, y, r0, r1);
}

}  // namespace lowp::kernels

#endif  // HWY_ONCE
