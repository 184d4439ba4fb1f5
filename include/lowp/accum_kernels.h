// lowp/accum_kernels.h — a matrix product whose sums are kept in a narrow
// accumulator, to emulate what a low-precision tensor core does to a GEMM.
//
// Hardware that multiplies FP8/MX operands does not necessarily sum their
// products in IEEE fp32: DeepSeek-V3's technical report (arXiv:2412.19437,
// section 3.3.2) measured about 14 bits of precision in the accumulation of
// NVIDIA H800 FP8 tensor cores, and works around it by copying the partial sum
// into an fp32 register every 128 products. This kernel reproduces that model
// exactly, with the width, the rounding and the promotion interval as
// parameters; docs/accumulation.md measures what it does to a model's loss.
//
// The arithmetic, in full (one output; every output is computed the same way
// and on its own):
//
//   out[m, n] = sum over k of a[m, k] * b[n, k]     (b row-major [N, K], like x W^T)
//
//   1. Each product a[m, k] * b[n, k] is formed exactly (two fp32 values'
//      product has at most 48 significant bits and an exponent in
//      [-298, 256]: exact in double, never rounded).
//   2. The products are added in order of ascending k into a partial sum s
//      that starts at +0: s = round(s + product), one rounding per addition,
//      of the exact sum (an FMA with a narrow result).
//   3. round() rounds to the accumulator format: a binary float with
//      mantissa_bits explicit significand bits (1..23; 23 is fp32's) and fp32's
//      exponent range: normals from 2^-126 up to (2 - 2^-mantissa_bits) *
//      2^127, gradual underflow below 2^-126 in steps of 2^(-126 -
//      mantissa_bits). Every such value is an fp32 value. Modes:
//        kNearestEven: nearest, ties to even; overflow gives ±Inf;
//        kTowardZero: truncation (the magnitude never rounds up); overflow
//          gives the largest finite accumulator value.
//      A result that is exactly zero is +0 unless both addends were -0; a
//      nonzero sum that rounds to zero keeps its sign (IEEE 754 rules).
//   4. promote_every = P > 0: after every P products (k = P-1, 2P-1, ...) and
//      after the last product, the partial sum is handed to an fp32
//      accumulator and s restarts at +0. The fp32 accumulator starts as the
//      first partial sum and adds each later one with an fp32 addition
//      (round to nearest even). P = 0 (or P >= K): no promotion, the result is
//      s itself. K = 0 gives +0.
//
// So mantissa_bits = 23, kNearestEven, promote_every = 0 is the sequential
// fp32 loop s = fmaf(a[m, k], b[n, k], s), bit for bit; and, whenever every
// product is exact in fp32 (e.g. the operands are FP8 or MX elements with
// their scales, away from fp32's underflow), the plain loop s += a * b.
//
// Non-finite inputs follow IEEE arithmetic: an Inf product makes the sum Inf
// (or NaN with an opposite Inf, or Inf * 0); NaN propagates (its payload is
// not kept). They are not errors.
#pragma once

#include <cstddef>

#include "lowp/format/convert.h"  // lowp::Rounding

namespace lowp {

struct Accumulator {
  int mantissa_bits = 23;                      // explicit significand bits, 1..23
  Rounding rounding = Rounding::kNearestEven;  // kNearestEven or kTowardZero
  std::size_t promote_every = 0;               // products per fp32 promotion; 0: never
};

// Throws lowp::Error, naming the field, when `acc` is outside the ranges above
// (mantissa_bits outside 1..23, a rounding other than rne or zero).
void check_accumulator(const Accumulator& acc);

// out[i * n + j] = the sum above of a[i * k + p] * b[j * k + p] over p, for
// i < m, j < n (a row-major [m, k], b row-major [n, k], out row-major [m, n]).
// `threads` split the rows of a (the persistent pool of lowp/thread_pool.h);
// the result does not depend on them. Throws lowp::Error for a bad `acc` (see
// check_accumulator) before touching `out`.
void gemm_accumulate(const float* a, std::size_t m, const float* b, std::size_t n, std::size_t k,
                     float* out, const Accumulator& acc, unsigned threads = 1);

}  // namespace lowp
