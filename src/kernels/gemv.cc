// src/kernels/gemv.cc — dispatch for the packed-weight products of gemv.h to the
// best Highway target of gemv-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/gemv-inl.h"

#if HWY_ONCE

#include <vector>

namespace lowp::kernels {

HWY_EXPORT(PackedGemm);
HWY_EXPORT(DenseGemm);
HWY_EXPORT(GemvChunk);
HWY_EXPORT(GemvSegmentQuantum);

std::size_t gemv_chunk(WeightDecode decode) { return HWY_DYNAMIC_DISPATCH(GemvChunk)(decode); }

std::size_t gemv_segment_quantum(WeightDecode decode) {
  return HWY_DYNAMIC_DISPATCH(GemvSegmentQuantum)(decode);
}

void permute_x(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* out) {
  const std::size_t chunk = gemv_chunk(p.decode);
  const std::size_t half = chunk / 2;
  const std::size_t vector_end = p.cols - p.cols % chunk;
  for (std::size_t i = 0; i < n; ++i) {
    const float* from = x + i * ldx;
    float* to = out + i * ldx;
    for (std::size_t c = 0; c < vector_end; c += chunk) {
      for (std::size_t k = 0; k < half; ++k) {
        to[c + k] = from[c + 2 * k];
        to[c + half + k] = from[c + 2 * k + 1];
      }
    }
    for (std::size_t c = vector_end; c < p.cols; ++c) to[c] = from[c];
  }
}

void packed_gemm(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* y,
                 std::size_t ldy, std::size_t r0, std::size_t r1) {
  HWY_DYNAMIC_DISPATCH(PackedGemm)(p, x, n, ldx, y, ldy, r0, r1);
}

void dense_gemm(FillRow fill, const void* ctx, std::size_t cols, const float* x, std::size_t n,
                std::size_t ldx, float* y, std::size_t ldy, std::size_t r0, std::size_t r1) {
  HWY_DYNAMIC_DISPATCH(DenseGemm)(fill, ctx, cols, x, n, ldx, y, ldy, r0, r1);
}

}  // namespace lowp::kernels

#endif  // HWY_ONCE
