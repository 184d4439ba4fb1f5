// src/kernels/accumulate.cc — gemm_accumulate (lowp/accum_kernels.h): a GEMM
// whose sums are rounded to a narrow accumulator after every addition, with
// optional promotion of the partial sums to fp32.
//
// One addition s = round(s + a * b), exactly (the header has the model), for
// a vector of outputs at once, in double lanes:
//
//   1. product = double(a) * double(b): exact (at most 48 significant bits).
//   2. hi = s + product, and its rounding error lo (Knuth's TwoSum), so the
//      exact sum is hi + lo with |lo| <= ulp(hi) / 2.
//   3. hi becomes the exact sum rounded to odd at double precision: when
//      lo != 0 and hi's last bit is even, hi moves one ulp toward lo (its bit
//      pattern is sign-magnitude: +1 is away from zero). Rounding to odd at 53
//      bits and then to any precision of at most 51 bits (here at most 24)
//      is a correct rounding in every mode (Boldo and Melquiond, "Emulation of
//      FMA and correctly rounded sums: proved algorithms using rounding to
//      odd", IEEE Trans. Computers 57(4), 2008), so step 4 rounds one double.
//   4. The accumulator's quantum in hi's binade is q = 2^(max(e, -126) -
//      mantissa_bits), e = floor(log2 |hi|) read from hi's exponent field.
//      hi / q (exact: a power of two) is rounded to an integer, nearest-even
//      by adding and subtracting 1.5 * 2^52 (the FPU's default mode), toward
//      zero by Trunc; the result is that integer times q with hi's sign (a sum
//      that rounds to zero keeps it). Every result is an fp32 value, held in
//      a double lane; a nearest-even result of 2^128 or more becomes Inf,
//      truncation clamps to the largest finite accumulator value. A
//      non-finite hi (Inf or NaN operands) is kept as is.
//
// The promotion to fp32 is the same rounding with 23 bits, nearest-even: an
// IEEE fp32 addition. Results leave the double lanes through a scalar
// conversion to float (exact; Highway's DemoteTo would clamp Inf on some
// targets).
//
// Exactness needs every operation above rounded on its own: this file is
// compiled with -ffp-contract=off (no fused multiply-adds).
//
// Layout: b is transposed to bt [k][n_padded] (columns padded with zeros to a
// whole tile), so that one row of a and a tile of kTileVectors vectors of
// outputs run their independent chains of additions side by side; a tile's
// k loop reads contiguous rows of bt. Each output's additions stay in order of
// ascending k, so the tiling, the SIMD target and the threads change nothing.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/accumulate.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowp/accum_kernels.h"
#include "lowp/error.h"
#include "lowp/thread_pool.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<double>;
using DH = hn::Rebind<float, DF>;  // b's values, loaded and widened
using VF = hn::Vec<DF>;

constexpr std::size_t kTileVectors = 4;

std::size_t AccumulateTileWidth() { return kTileVectors * hn::Lanes(DF()); }

struct StepConstants {
  hn::Vec<hn::RebindToSigned<DF>> mantissa_bits;
  VF max_finite;  // (2 - 2^-mantissa_bits) * 2^127
};

StepConstants MakeConstants(int mantissa_bits) {
  return {hn::Set(hn::RebindToSigned<DF>(), mantissa_bits),
          hn::Set(DF(), std::ldexp(2.0 - std::ldexp(1.0, -mantissa_bits), 127))};
}

// s (accumulator values) + product, rounded once to the accumulator: steps 2-4.
template <bool kNearestEven>
HWY_INLINE VF Step(VF s, VF product, const StepConstants& c) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  // 2. TwoSum.
  const VF hi = hn::Add(s, product);
  const VF b_virtual = hn::Sub(hi, s);
  const VF lo = hn::Add(hn::Sub(s, hn::Sub(hi, b_virtual)), hn::Sub(product, b_virtual));
  // 3. Round to odd.
  auto bits = hn::BitCast(du, hi);
  const auto one = hn::Set(du, 1);
  const auto even = hn::Eq(hn::And(bits, one), hn::Zero(du));
  const auto inexact = hn::RebindMask(du, hn::Ne(lo, hn::Zero(df)));
  const auto opposite = hn::ShiftRight<63>(hn::BitCast(du, hn::Xor(hi, lo)));  // 1: signs differ
  const auto toward_lo = hn::Sub(one, hn::Add(opposite, opposite));            // +1 or -1
  bits = hn::IfThenElse(hn::And(inexact, even), hn::Add(bits, toward_lo), bits);
  const VF x = hn::BitCast(df, bits);
  // 4. Round to the accumulator: quantum = biased exponent of q.
  const auto biased = hn::BitCast(di, hn::And(hn::ShiftRight<52>(bits), hn::Set(du, 0x7FF)));
  const auto quantum = hn::Sub(hn::Max(biased, hn::Set(di, 1023 - 126)), c.mantissa_bits);
  const VF to_units = hn::BitCast(df, hn::ShiftLeft<52>(hn::Sub(hn::Set(di, 2046), quantum)));
  const VF unit = hn::BitCast(df, hn::ShiftLeft<52>(quantum));
  const VF scaled = hn::Mul(x, to_units);  // |scaled| < 2^(mantissa_bits + 1)
  VF integral;
  if constexpr (kNearestEven) {
    const VF round = hn::Set(df, 0x1.8p52);  // ulp 1 around it: the addition rounds
    integral = hn::Sub(hn::Add(scaled, round), round);
  } else {
    integral = hn::Trunc(scaled);
  }
  VF r = hn::CopySign(hn::Mul(integral, unit), x);
  if constexpr (kNearestEven) {
    const VF overflow = hn::Set(df, 0x1p128);
    r = hn::IfThenElse(hn::Lt(hn::Abs(r), overflow), r, hn::CopySign(hn::Inf(df), x));
  } else {
    r = hn::CopySign(hn::Min(hn::Abs(r), c.max_finite), x);
  }
  return hn::IfThenElse(hn::IsFinite(hi), r, hi);
}

template <bool kNearestEven>
void AccumulateRowsT(const float* HWY_RESTRICT a, std::size_t rows, const float* HWY_RESTRICT bt,
                     std::size_t n, std::size_t n_padded, std::size_t k, int mantissa_bits,
                     std::size_t promote_every, float* HWY_RESTRICT out) {
  const DF df;
  const DH dh;
  const std::size_t lanes = hn::Lanes(df);
  const StepConstants c = MakeConstants(mantissa_bits), fp32 = MakeConstants(23);
  const std::size_t chunk = promote_every == 0 ? k : promote_every;
  std::vector<double> tile(kTileVectors * lanes);
  for (std::size_t i = 0; i < rows; ++i) {
    const float* a_row = a + i * k;
    float* out_row = out + i * n;
    for (std::size_t j0 = 0; j0 < n_padded; j0 += kTileVectors * lanes) {
      VF t0 = hn::Zero(df), t1 = t0, t2 = t0, t3 = t0;
      for (std::size_t p0 = 0; p0 < k; p0 += chunk) {
        VF s0 = hn::Zero(df), s1 = s0, s2 = s0, s3 = s0;  // +0
        const std::size_t p1 = std::min(k, p0 + chunk);
        for (std::size_t p = p0; p < p1; ++p) {
          const VF x = hn::Set(df, static_cast<double>(a_row[p]));
          const float* b_row = bt + p * n_padded + j0;
          s0 = Step<kNearestEven>(s0, hn::Mul(x, hn::PromoteTo(df, hn::LoadU(dh, b_row))), c);
          s1 = Step<kNearestEven>(s1, hn::Mul(x, hn::PromoteTo(df, hn::LoadU(dh, b_row + lanes))),
                                  c);
          s2 = Step<kNearestEven>(
              s2, hn::Mul(x, hn::PromoteTo(df, hn::LoadU(dh, b_row + 2 * lanes))), c);
          s3 = Step<kNearestEven>(
              s3, hn::Mul(x, hn::PromoteTo(df, hn::LoadU(dh, b_row + 3 * lanes))), c);
        }
        // Promotion: the first partial sum is the fp32 total; later ones are
        // added to it in fp32 (nearest-even).
        if (p0 == 0) {
          t0 = s0, t1 = s1, t2 = s2, t3 = s3;
        } else {
          t0 = Step<true>(t0, s0, fp32), t1 = Step<true>(t1, s1, fp32);
          t2 = Step<true>(t2, s2, fp32), t3 = Step<true>(t3, s3, fp32);
        }
      }
      hn::StoreU(t0, df, tile.data());
      hn::StoreU(t1, df, tile.data() + lanes);
      hn::StoreU(t2, df, tile.data() + 2 * lanes);
      hn::StoreU(t3, df, tile.data() + 3 * lanes);
      const std::size_t width = std::min(n - std::min(n, j0), kTileVectors * lanes);
      for (std::size_t t = 0; t < width; ++t) out_row[j0 + t] = static_cast<float>(tile[t]);
    }
  }
}

void AccumulateRows(const float* a, std::size_t rows, const float* bt, std::size_t n,
                    std::size_t n_padded, std::size_t k, int mantissa_bits, bool nearest_even,
                    std::size_t promote_every, float* out) {
  if (nearest_even) {
    AccumulateRowsT<true>(a, rows, bt, n, n_padded, k, mantissa_bits, promote_every, out);
  } else {
    AccumulateRowsT<false>(a, rows, bt, n, n_padded, k, mantissa_bits, promote_every, out);
  }
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowp {
namespace kernels {
HWY_EXPORT(AccumulateTileWidth);
HWY_EXPORT(AccumulateRows);
}  // namespace kernels

void check_accumulator(const Accumulator& acc) {
  if (acc.mantissa_bits < 1 || acc.mantissa_bits > 23) {
    throw Error("accumulator mantissa_bits " + std::to_string(acc.mantissa_bits) +
                " is out of range: 1..23 (23 is fp32's)");
  }
  if (acc.rounding != Rounding::kNearestEven && acc.rounding != Rounding::kTowardZero) {
    throw Error("accumulator rounding " + std::string(rounding_name(acc.rounding)) +
                " is not supported: rne or zero");
  }
}

void gemm_accumulate(const float* a, std::size_t m, const float* b, std::size_t n, std::size_t k,
                     float* out, const Accumulator& acc, unsigned threads) {
  check_accumulator(acc);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(out, out + m * n, 0.0f);
    return;
  }
  const std::size_t tile = HWY_DYNAMIC_DISPATCH(kernels::AccumulateTileWidth)();
  const std::size_t n_padded = (n + tile - 1) / tile * tile;
  std::vector<float> bt(k * n_padded, 0.0f);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t p = 0; p < k; ++p) bt[p * n_padded + j] = b[j * k + p];
  }
  const auto rows = HWY_DYNAMIC_DISPATCH(kernels::AccumulateRows);
  parallel_for(m, threads, [&](std::size_t i0, std::size_t i1) {
    rows(a + i0 * k, i1 - i0, bt.data(), n, n_padded, k, acc.mantissa_bits,
         acc.rounding == Rounding::kNearestEven, acc.promote_every, out + i0 * n);
  });
}

}  // namespace lowp
#endif  // HWY_ONCE
