// src/kernels/convert-inl.h — per-target vector kernels: fp32 -> float-format
// codes and back, bit-identical to lowp::encode / lowp::decode_f32
// (lowp/format/convert.h, whose header states the semantics followed here).
// bf16 / fp16 input is widened to fp32 bits in registers (LoadAsF32Bits) and
// bf16 output rounded from them (F32BitsToBF16); bf16 into narrow float
// formats, nearest-even, has its own 16-bit-lane encoder.
//
// Compiled once per Highway target (convert.cc includes it through
// foreach_target.h). All format facts arrive in EncodeParams / DecodeParams.
//
// The encoder works on 32-bit lanes, for any float format with bits <= 16,
// emin >= -126 and man_bits M <= 10 (not E8M0):
//  1. Split the fp32 bits into sign, |x| bits, exponent field E and fraction.
//  2. Significand sig (24 bits, with the implicit bit for normals) and effective
//     exponent e = max(E, 1) - 127, so that |x| = sig * 2^(e - 23) for every
//     finite x, fp32 subnormals included (their e = -126 <= emin).
//  3. The binade max(e, emin) fixes the unit 2^(binade - M); |x| / unit has
//     integer part n = sig >> s and dropped fraction F (0.32 fixed point, the
//     floor of fraction * 2^32 as the reference's `fraction >> 32`), where
//     s = binade - M - e + 23 >= 13. Shift counts are clamped below 32 (Highway's
//     variable shifts are undefined at >= 32); beyond 24 the bits are zero anyway.
//  4. Round up iff F + a carries out of 32 bits, with a = 2^31 - 1 + (n & 1)
//     (nearest-even: F > 1/2, or = 1/2 with n odd), 2^31 (ties away: F >= 1/2),
//     the random bits r (stochastic: floor(fraction * 2^32) + r >= 2^32), or no
//     addition (toward zero).
//  5. magnitude = ((binade - emin) << M) + n + up (a carry moves to the next
//     binade by itself), then the special cases in increasing priority: zero,
//     finite overflow, Inf input, NaN input — each code given for both signs.
// E8M0 and the integer formats have their own encoders below (steps 3-4 at a
// fixed unit), and each kind of format its own decoder.
//
// The exported entry points are `inline`: block-inl.h includes this file too
// (for DecodeAny), in another translation unit.

#if defined(LOWP_KERNELS_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWP_KERNELS_CONVERT_INL_H_
#undef LOWP_KERNELS_CONVERT_INL_H_
#else
#define LOWP_KERNELS_CONVERT_INL_H_
#endif

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "kernels/params.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using detail::DecodeParams;
using detail::EncodeParams;
using detail::FakeQuantRneParams;
using detail::RoundKind;

constexpr std::size_t kMaxLanes32 = HWY_MAX_BYTES / 4;
// Software prefetch distance in bytes of input: measured on the development VM,
// the hardware prefetchers alone left the encoders ~3x slower than in cache.
constexpr std::size_t kPrefetchBytes = 4096;

// Prefetches p[i + kPrefetchBytes / sizeof(T)] when that is inside the array.
template <typename T>
HWY_INLINE void PrefetchAhead(const T* p, std::size_t i, std::size_t count) {
  constexpr std::size_t kAhead = kPrefetchBytes / sizeof(T);
  if (i + kAhead < count) hwy::Prefetch(p + i + kAhead);
}

template <class DI>
HWY_INLINE hn::Vec<DI> SetBits(DI di, std::uint32_t bits) {
  return hn::Set(di, static_cast<std::int32_t>(bits));
}

// murmur3's finaliser, as lowp::mix32.
template <class V>
HWY_INLINE V Mix32(hn::DFromV<V> du, V h) {
  h = hn::Xor(h, hn::ShiftRight<16>(h));
  h = h * hn::Set(du, 0x85EBCA6Bu);
  h = hn::Xor(h, hn::ShiftRight<13>(h));
  h = h * hn::Set(du, 0xC2B2AE35u);
  return hn::Xor(h, hn::ShiftRight<16>(h));
}

// stochastic_bits_keyed(key, index_low) for the lanes' indices.
template <class DU>
HWY_INLINE hn::Vec<DU> StochasticBits(DU du, hn::Vec<DU> index_low, std::uint32_t key) {
  const auto k = hn::Set(du, key);
  return Mix32(du, Mix32(du, hn::Xor(index_low, k)) + k);
}

// Step 3's split of a significand at bit s (0 <= s < 64): the integer part
// n = sig >> s and the dropped bits F, left-aligned in 32 bits (0.32 fixed
// point). Shift counts stay below 32 (see step 3).
template <class DU>
struct SplitBits {
  hn::Vec<DU> n;
  hn::Vec<DU> fraction;
};
template <class DU, class VI>
HWY_INLINE SplitBits<DU> SplitAt(DU du, VI sig, VI s) {
  const hn::RebindToSigned<DU> di;
  const auto sigu = hn::BitCast(du, sig);
  const auto left = hn::BitCast(du, hn::Sub(hn::Set(di, 32), hn::Min(s, hn::Set(di, 32))));
  const auto right =
      hn::BitCast(du, hn::Min(hn::Max(hn::Sub(s, hn::Set(di, 32)), hn::Zero(di)), hn::Set(di, 31)));
  return {hn::Shr(sigu, hn::BitCast(du, hn::Min(s, hn::Set(di, 31)))),
          hn::Shr(hn::Shl(sigu, left), right)};
}

// ---- 16-bit inputs: widened to fp32 bits in registers (exactly) ----

// The input element types: fp32, or bf16 / fp16 as uint16 bit patterns.
enum class Input { kF32, kBF16, kF16 };
template <Input In>
using InputT = std::conditional_t<In == Input::kF32, float, std::uint16_t>;

// The fp32 bits of fp16 bits h (uint32 lanes, h < 2^16), exactly: a normal's
// exponent re-biased by 127 - 15 = 112, Inf/NaN with the exponent field all
// ones (payload and sign kept), a subnormal m * 2^-24 as float(m) * 2^-24 (no
// fp32 subnormal arithmetic, which is slow on x86).
template <class DU>
HWY_INLINE hn::Vec<DU> F16BitsToF32(DU du, hn::Vec<DU> h) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  const auto magnitude = hn::And(h, hn::Set(du, 0x7FFFu));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto wide = hn::ShiftLeft<13>(magnitude);
  const auto normal = hn::Add(wide, hn::Set(du, 112u << 23));
  const auto subnormal = hn::BitCast(
      du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, magnitude)), hn::Set(df, 0x1p-24f)));
  const auto inf_nan = hn::Or(wide, hn::Set(du, 0x7F800000u));
  const auto m = hn::BitCast(di, magnitude);  // signed compares (< 2^15)
  auto bits = hn::IfThenElse(hn::RebindMask(du, hn::Lt(m, hn::Set(di, 0x400))), subnormal, normal);
  bits = hn::IfThenElse(hn::RebindMask(du, hn::Gt(m, hn::Set(di, 0x7BFF))), inf_nan, bits);
  return hn::Or(bits, sign);
}

// Loads lanes elements of `in` (input type In) as fp32 bits in uint32 lanes.
template <Input In, class DU>
HWY_INLINE hn::Vec<DU> LoadAsF32Bits(DU du, const InputT<In>* HWY_RESTRICT in) {
  if constexpr (In == Input::kF32) {
    return hn::BitCast(du, hn::LoadU(hn::Rebind<float, DU>(), in));
  } else {
    const auto h = hn::PromoteTo(du, hn::LoadU(hn::Rebind<std::uint16_t, DU>(), in));
    if constexpr (In == Input::kBF16) {
      return hn::ShiftLeft<16>(h);  // bf16 is the top half of an fp32
    } else {
      return F16BitsToF32(du, h);
    }
  }
}

// fp32 bits (uint32 lanes) rounded to bf16 bits, nearest-even (lowp::encode
// into bf16 of the fp32 value, which carries overflow to Inf): add half an ulp
// minus one plus the kept lsb, keep the top half. NaN gives the quiet NaN of
// its sign, 0x7FC0 | sign (as encode does; the payload is not kept).
template <class DU>
HWY_INLINE hn::Vec<DU> F32BitsToBF16(DU du, hn::Vec<DU> bits) {
  const hn::RebindToSigned<DU> di;
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(bits, hn::Set(du, 0x7FFFu)), lsb));
  const auto abs = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu)));
  const auto nan =
      hn::Or(hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u)), hn::Set(du, 0x7FC0u));
  return hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000))), nan, rounded);
}

// Step 5's special cases, in increasing priority, over the codes of any lane
// width: `zero` lanes take the code of a zero of their sign, `overflow` lanes
// that of a finite overflow, then inputs whose |bits| (`abs`, signed lanes as
// wide as the codes) equal the input type's Inf pattern `inf_bits` the code of
// Inf, and those above it the code of NaN. Each code is the one EncodeParams
// gives for the lane's sign (`negative`). Every encoder of a float format
// (E8M0 included) ends here.
template <class D>
HWY_INLINE hn::Vec<D> SpecialCases(D d, const EncodeParams& p, hn::Vec<D> code,
                                   hn::Mask<D> negative, hn::Mask<D> zero, hn::Mask<D> overflow,
                                   hn::Vec<hn::RebindToSigned<D>> abs,
                                   hn::TFromD<hn::RebindToSigned<D>> inf_bits) {
  using T = hn::TFromD<D>;
  auto by_sign = [&](const std::uint32_t(&c)[2]) {
    return hn::IfThenElse(negative, hn::Set(d, static_cast<T>(c[1])),
                          hn::Set(d, static_cast<T>(c[0])));
  };
  const hn::RebindToSigned<D> di;
  const auto inf = hn::Set(di, inf_bits);
  code = hn::IfThenElse(zero, by_sign(p.zero), code);
  code = hn::IfThenElse(overflow, by_sign(p.overflow), code);
  code = hn::IfThenElse(hn::RebindMask(d, hn::Eq(abs, inf)), by_sign(p.inf), code);
  return hn::IfThenElse(hn::RebindMask(d, hn::Gt(abs, inf)), by_sign(p.nan), code);
}

// The code (in an int32 lane) of each fp32 lane; steps 1-5 of the file comment.
template <RoundKind R, class DU>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU>> EncodeVec(DU du, const EncodeParams& p, hn::Vec<DU> bits,
                                                     hn::Vec<DU> random) {
  const hn::RebindToSigned<DU> di;
  using VI = hn::Vec<decltype(di)>;
  const VI zero = hn::Zero(di);
  // Step 1.
  const VI ibits = hn::BitCast(di, bits);
  const auto negative = hn::Lt(ibits, zero);
  const VI abs = hn::And(ibits, hn::Set(di, 0x7FFFFFFF));
  const VI exp_field = hn::ShiftRight<23>(abs);
  VI magnitude;
  if constexpr (R == RoundKind::kNearestEven) {
    // Steps 2-4 for nearest-even in fewer operations (the same magnitude for
    // every input): at or above 2^emin, round the fp32 bits at bit 23 - M
    // (add half - 1 plus the kept lsb) and re-bias the exponent field by
    // 127 - bias = 126 + emin; below 2^emin, |x| + 2^(emin - M + 23) has its
    // unit at the format's subnormal unit, so the fp32 adder rounds it and the
    // difference of the bits is the magnitude.
    (void)exp_field;
    const hn::Rebind<float, DU> df;
    const int drop = 23 - p.man_bits;
    const auto uabs = hn::BitCast(du, abs);
    // The kept lsb is n's (step 3): the mantissa's lowest kept bit, or with
    // M = 0 the implicit bit, always 1 (ties then round up, as the reference).
    const auto rebias = static_cast<std::uint32_t>(126 + p.emin) << p.man_bits;
    const std::uint32_t lsb_mask = p.man_bits > 0 ? 1u : 0u;
    const auto lsb = hn::And(hn::ShiftRightSame(uabs, drop), hn::Set(du, lsb_mask));
    const auto half = hn::Set(du, (std::uint32_t{1} << (drop - 1)) - lsb_mask);
    const auto normal =
        hn::Sub(hn::BitCast(di, hn::ShiftRightSame(hn::Add(hn::Add(uabs, half), lsb), drop)),
                hn::BitCast(di, hn::Set(du, rebias)));
    const auto magic = hn::Set(
        df, std::bit_cast<float>(static_cast<std::uint32_t>(p.emin - p.man_bits + 23 + 127) << 23));
    const auto subnormal =
        hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(df, abs), magic)), hn::BitCast(di, magic));
    magnitude = hn::IfThenElse(hn::Lt(abs, hn::Set(di, (p.emin + 127) << 23)), subnormal, normal);
  } else {
    // Step 2.
    const VI sig = hn::Or(hn::And(abs, hn::Set(di, 0x7FFFFF)),
                          hn::IfThenZeroElse(hn::Eq(exp_field, zero), hn::Set(di, 0x800000)));
    const VI e = hn::Sub(hn::Max(exp_field, hn::Set(di, 1)), hn::Set(di, 127));
    // Step 3.
    const VI binade = hn::Max(e, hn::Set(di, p.emin));
    const VI s = hn::Add(hn::Sub(binade, e), hn::Set(di, 23 - p.man_bits));
    const auto [n, fraction] = SplitAt(du, sig, s);
    // Step 4.
    auto rounded = n;
    if constexpr (R != RoundKind::kTowardZero) {
      hn::Vec<DU> addend;
      if constexpr (R == RoundKind::kNearestAway) {
        addend = hn::Set(du, 0x80000000u);
      } else {
        addend = random;
      }
      const auto sum = hn::Add(fraction, addend);
      const auto carry =
          hn::Or(hn::And(fraction, addend), hn::AndNot(sum, hn::Or(fraction, addend)));
      rounded = hn::Add(n, hn::ShiftRight<31>(carry));
    }
    // Step 5.
    magnitude = hn::Add(hn::ShiftLeftSame(hn::Sub(binade, hn::Set(di, p.emin)), p.man_bits),
                        hn::BitCast(di, rounded));
  }
  const VI code = hn::Or(magnitude, hn::IfThenElseZero(negative, SetBits(di, p.sign_mask)));
  return SpecialCases(di, p, code, negative, hn::Eq(magnitude, zero),
                      hn::Gt(magnitude, SetBits(di, p.max_magnitude)), abs, 0x7F800000);
}

// E8M0 with bias 127 (2^(code-127), no sign, no zero; convert.h's header has
// the rules). A positive finite x = 1.f * 2^e, e >= -127, has n = 1 at the unit
// 2^e, so it rounds up iff F + a carries (step 4 above, a odd-n even = ties up),
// and code = e + 127 + up: the fp32 exponent field E plus up (E = 0 with bit 22
// set is 2^-127 * 1.f'). Smaller subnormals give code 0 in every mode; codes
// above the max, zero, negative, Inf and NaN inputs take the given codes.
template <RoundKind R, class DU>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU>> EncodeVecE8m0(DU du, const EncodeParams& p,
                                                         hn::Vec<DU> bits, hn::Vec<DU> random) {
  const hn::RebindToSigned<DU> di;
  using VI = hn::Vec<decltype(di)>;
  const VI zero = hn::Zero(di);
  const VI ibits = hn::BitCast(di, bits);
  const auto negative = hn::Lt(ibits, zero);
  const VI abs = hn::And(ibits, hn::Set(di, 0x7FFFFFFF));
  const VI exp_field = hn::ShiftRight<23>(abs);
  const auto subnormal = hn::Eq(exp_field, zero);
  // Fraction below the leading bit, left-aligned: bits 22..0 (normal) or 21..0
  // (subnormal with bit 22 set; the others are below 2^-127).
  const auto fraction =
      hn::BitCast(du, hn::IfThenElse(subnormal, hn::ShiftLeft<10>(abs), hn::ShiftLeft<9>(abs)));
  VI code = exp_field;
  if constexpr (R != RoundKind::kTowardZero) {
    hn::Vec<DU> addend;
    if constexpr (R == RoundKind::kStochastic) {
      addend = random;
    } else {
      addend = hn::Set(du, 0x80000000u);  // n = 1 is odd: ties go up in both modes
    }
    const auto sum = hn::Add(fraction, addend);
    const auto carry = hn::Or(hn::And(fraction, addend), hn::AndNot(sum, hn::Or(fraction, addend)));
    const VI up = hn::BitCast(di, hn::ShiftRight<31>(carry));
    const auto rounds = hn::Or(hn::Not(subnormal), hn::Gt(abs, hn::Set(di, 0x3FFFFF)));
    code = hn::Add(code, hn::IfThenElseZero(rounds, up));
  }
  // Negative inputs (no sign in E8M0) take their own code; overflow is then
  // only that of positive inputs (zero inputs have code 0, never above max).
  const auto overflow = hn::AndNot(negative, hn::Gt(code, SetBits(di, p.max_magnitude)));
  code = hn::IfThenElse(negative, SetBits(di, p.e8m0_negative), code);
  return SpecialCases(di, p, code, negative, hn::Eq(abs, zero), overflow, abs, 0x7F800000);
}

// Integers of at most 16 bits: |x| rounded at the unit 1 as in steps 3-4 (with
// e = max(E, 1) - 127, s = 23 - e >= 4 once |x| < 2^20; larger magnitudes,
// Inf included, are clamped anyway), negated, clamped to [int_min, int_max]
// and masked to the code's bits; NaN gives 0.
template <RoundKind R, class DU>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU>> EncodeVecInt(DU du, const EncodeParams& p,
                                                        hn::Vec<DU> bits, hn::Vec<DU> random) {
  const hn::RebindToSigned<DU> di;
  using VI = hn::Vec<decltype(di)>;
  const VI zero = hn::Zero(di);
  const VI ibits = hn::BitCast(di, bits);
  const auto negative = hn::Lt(ibits, zero);
  const VI abs = hn::And(ibits, hn::Set(di, 0x7FFFFFFF));
  const VI exp_field = hn::ShiftRight<23>(abs);
  const VI sig = hn::Or(hn::And(abs, hn::Set(di, 0x7FFFFF)),
                        hn::IfThenZeroElse(hn::Eq(exp_field, zero), hn::Set(di, 0x800000)));
  const VI e = hn::Sub(hn::Max(exp_field, hn::Set(di, 1)), hn::Set(di, 127));
  const auto huge = hn::Gt(e, hn::Set(di, 19));
  const VI s = hn::Max(hn::Sub(hn::Set(di, 23), e), hn::Set(di, 4));
  const auto sigu = hn::BitCast(du, sig);
  const auto n = hn::Shr(sigu, hn::BitCast(du, hn::Min(s, hn::Set(di, 31))));
  const auto left = hn::BitCast(du, hn::Sub(hn::Set(di, 32), hn::Min(s, hn::Set(di, 32))));
  const auto right =
      hn::BitCast(du, hn::Min(hn::Max(hn::Sub(s, hn::Set(di, 32)), zero), hn::Set(di, 31)));
  const auto fraction = hn::Shr(hn::Shl(sigu, left), right);
  auto rounded = n;
  if constexpr (R != RoundKind::kTowardZero) {
    hn::Vec<DU> addend;
    if constexpr (R == RoundKind::kNearestEven) {
      addend = hn::Add(hn::Set(du, 0x7FFFFFFFu), hn::And(n, hn::Set(du, 1u)));
    } else if constexpr (R == RoundKind::kNearestAway) {
      addend = hn::Set(du, 0x80000000u);
    } else {
      addend = random;
    }
    const auto sum = hn::Add(fraction, addend);
    const auto carry = hn::Or(hn::And(fraction, addend), hn::AndNot(sum, hn::Or(fraction, addend)));
    rounded = hn::Add(n, hn::ShiftRight<31>(carry));
  }
  const VI magnitude = hn::IfThenElse(huge, hn::Set(di, 1 << 20), hn::BitCast(di, rounded));
  VI value = hn::IfThenElse(negative, hn::Neg(magnitude), magnitude);
  value = hn::Min(hn::Max(value, hn::Set(di, p.int_min)), hn::Set(di, p.int_max));
  const VI code = hn::And(value, SetBits(di, p.code_mask));
  return hn::IfThenZeroElse(hn::Gt(abs, hn::Set(di, 0x7F800000)), code);
}

enum Kernel { kFloatKernel, kE8m0Kernel, kIntKernel, kFastKernel };

template <RoundKind R, int K, class DU>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU>> EncodeAny(DU du, const EncodeParams& p, hn::Vec<DU> bits,
                                                     hn::Vec<DU> random) {
  if constexpr (K == kE8m0Kernel) {
    return EncodeVecE8m0<R>(du, p, bits, random);
  } else if constexpr (K == kIntKernel) {
    return EncodeVecInt<R>(du, p, bits, random);
  } else {
    return EncodeVec<R>(du, p, bits, random);
  }
}

template <RoundKind R, int K, Input In, typename CodeT>
HWY_NOINLINE void EncodeLoop(const EncodeParams& params, const InputT<In>* HWY_RESTRICT in,
                             std::size_t count, CodeT* HWY_RESTRICT out, std::uint32_t key,
                             std::uint32_t first_low) {
  // A local copy: byte stores through `out` could alias the caller's struct,
  // which would reload every parameter in every iteration.
  const EncodeParams p = params;
  const hn::ScalableTag<std::uint32_t> du;
  const hn::Rebind<CodeT, decltype(du)> dc;
  const std::size_t lanes = hn::Lanes(du);
  const auto iota = hn::Iota(du, 0u);
  auto random_at = [&](std::size_t i) {
    if constexpr (R == RoundKind::kStochastic) {
      const auto index = hn::Add(iota, hn::Set(du, first_low + static_cast<std::uint32_t>(i)));
      return StochasticBits(du, index, key);
    } else {
      return hn::Zero(du);
    }
  };
  std::size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    PrefetchAhead(in, i, count);
    const auto bits = LoadAsF32Bits<In>(du, in + i);
    hn::StoreU(hn::TruncateTo(dc, hn::BitCast(du, EncodeAny<R, K>(du, p, bits, random_at(i)))), dc,
               out + i);
  }
  if (i == count) return;
  // The tail goes through the same vector code via a padded copy.
  HWY_ALIGN InputT<In> tail_in[kMaxLanes32] = {};
  HWY_ALIGN CodeT tail_out[kMaxLanes32] = {};
  const std::size_t rest = count - i;
  std::memcpy(tail_in, in + i, rest * sizeof(InputT<In>));
  const auto bits = LoadAsF32Bits<In>(du, tail_in);
  hn::Store(hn::TruncateTo(dc, hn::BitCast(du, EncodeAny<R, K>(du, p, bits, random_at(i)))), dc,
            tail_out);
  std::memcpy(out + i, tail_out, rest * sizeof(CodeT));
}

// bf16 input, nearest-even, float formats with M <= 7: the encoder of
// EncodeVec on 16-bit lanes (twice the elements per vector), on the bf16 bits
// themselves. At or above 2^emin the bits are rounded at bit 7 - M and
// re-biased as in EncodeVec; below, the significand sig (7 bits plus the
// implicit one) is rounded at the format's subnormal unit by integer
// arithmetic: n = sig >> s with s = emin - e + 7 - M >= 0 (clamped to 15,
// beyond which n and the rounding are 0; s = 0 keeps sig), up iff the dropped
// bits exceed half, or equal it with n odd. The special cases are step 5's
// (SpecialCases).
#if HWY_TARGET != HWY_SSSE3
template <class D16>
HWY_INLINE hn::Vec<D16> EncodeBF16NearestEven(D16 d, const EncodeParams& p, hn::Vec<D16> h) {
  const hn::RebindToSigned<D16> di;
  using VU = hn::Vec<D16>;
  auto set = [&](std::uint32_t v) { return hn::Set(d, static_cast<std::uint16_t>(v)); };
  const VU abs = hn::And(h, set(0x7FFF));
  const auto negative = hn::RebindMask(d, hn::Lt(hn::BitCast(di, h), hn::Zero(di)));
  const int drop = 7 - p.man_bits;
  const auto rebias = static_cast<std::uint32_t>(126 + p.emin) << p.man_bits;
  VU normal = abs;
  if (drop > 0) {
    const std::uint32_t lsb_mask = p.man_bits > 0 ? 1u : 0u;
    const VU lsb = hn::And(hn::ShiftRightSame(abs, drop), set(lsb_mask));
    const VU half = set((1u << (drop - 1)) - lsb_mask);
    normal = hn::ShiftRightSame(hn::Add(hn::Add(abs, half), lsb), drop);
  }
  normal = hn::Sub(normal, set(rebias));
  const VU exp_field = hn::ShiftRight<7>(abs);
  const VU sig = hn::Or(hn::And(abs, set(0x7F)),
                        hn::IfThenZeroElse(hn::Eq(exp_field, hn::Zero(d)), set(0x80)));
  const auto e_field = hn::Max(hn::BitCast(di, exp_field), hn::Set(di, 1));
  const auto s_signed =
      hn::Sub(hn::Set(di, static_cast<std::int16_t>(p.emin + 134 - p.man_bits)), e_field);
  const VU s = hn::BitCast(d, hn::Min(hn::Max(s_signed, hn::Set(di, 1)), hn::Set(di, 15)));
  const VU one = set(1);
  const VU n_odd = hn::And(hn::Shr(sig, s), one);
  const VU half_s = hn::Sub(hn::Shl(one, hn::Sub(s, one)), one);
  // s = 0 (M = 7, emin = -126: a bf16 subnormal input is a subnormal code).
  const VU subnormal = hn::IfThenElse(hn::RebindMask(d, hn::Lt(s_signed, hn::Set(di, 1))), sig,
                                      hn::Shr(hn::Add(hn::Add(sig, half_s), n_odd), s));
  const auto is_sub = hn::RebindMask(
      d, hn::Lt(hn::BitCast(di, abs), hn::Set(di, static_cast<std::int16_t>((p.emin + 127) << 7))));
  const VU magnitude = hn::IfThenElse(is_sub, subnormal, normal);
  const VU code = hn::Or(magnitude, hn::IfThenElseZero(negative, set(p.sign_mask)));
  const auto over = hn::RebindMask(
      d,
      hn::Gt(hn::BitCast(di, magnitude), hn::Set(di, static_cast<std::int16_t>(p.max_magnitude))));
  return SpecialCases(d, p, code, negative, hn::Eq(magnitude, hn::Zero(d)), over,
                      hn::BitCast(di, abs), std::int16_t{0x7F80});
}

template <typename CodeT>
HWY_NOINLINE void EncodeLoopBF16NearestEven(const EncodeParams& params,
                                            const std::uint16_t* HWY_RESTRICT in, std::size_t count,
                                            CodeT* HWY_RESTRICT out) {
  const EncodeParams p = params;  // not aliased by the stores (see EncodeLoop)
  const hn::ScalableTag<std::uint16_t> d;
  const hn::Rebind<CodeT, decltype(d)> dc;
  const std::size_t lanes = hn::Lanes(d);
  auto store = [&](hn::Vec<decltype(d)> code, CodeT* to) {
    if constexpr (sizeof(CodeT) == 1) {
      hn::StoreU(hn::TruncateTo(dc, code), dc, to);
    } else {
      hn::StoreU(code, d, to);
    }
  };
  std::size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    PrefetchAhead(in, i, count);
    store(EncodeBF16NearestEven(d, p, hn::LoadU(d, in + i)), out + i);
  }
  if (i == count) return;
  constexpr std::size_t kMaxLanes16 = HWY_MAX_BYTES / 2;
  HWY_ALIGN std::uint16_t tail_in[kMaxLanes16] = {};
  HWY_ALIGN CodeT tail_out[kMaxLanes16] = {};
  const std::size_t rest = count - i;
  std::memcpy(tail_in, in + i, rest * sizeof(std::uint16_t));
  store(EncodeBF16NearestEven(d, p, hn::Load(d, tail_in)), tail_out);
  std::memcpy(out + i, tail_out, rest * sizeof(CodeT));
}
#endif  // HWY_TARGET != HWY_SSSE3

// Encodes in[0, count) (input type In) into codes of p.code_bytes bytes.
// `first_low` is the low half of the first element's stochastic index; the
// caller guarantees that the run does not cross a multiple of 2^32 (so `key` is
// the same for all).
template <Input In>
HWY_INLINE void EncodeInput(const EncodeParams& p, const InputT<In>* in, std::size_t count,
                            void* out, std::uint32_t key, std::uint32_t first_low) {
  auto run = [&](auto kernel, auto* codes) {
    constexpr int K = decltype(kernel)::value;
    switch (p.round) {
      case RoundKind::kNearestEven:
        return EncodeLoop<RoundKind::kNearestEven, K, In>(p, in, count, codes, key, first_low);
      case RoundKind::kNearestAway:
        return EncodeLoop<RoundKind::kNearestAway, K, In>(p, in, count, codes, key, first_low);
      case RoundKind::kTowardZero:
        return EncodeLoop<RoundKind::kTowardZero, K, In>(p, in, count, codes, key, first_low);
      case RoundKind::kStochastic:
        return EncodeLoop<RoundKind::kStochastic, K, In>(p, in, count, codes, key, first_low);
    }
  };
  using Float = std::integral_constant<int, kFloatKernel>;
  using Int = std::integral_constant<int, kIntKernel>;
  // (Not on SSSE3: Highway 1.0's 16-bit variable shifts there use an SSE4
  // intrinsic, _mm_packus_epi32, and do not compile.)
#if HWY_TARGET != HWY_SSSE3
  if constexpr (In == Input::kBF16) {
    if (p.round == RoundKind::kNearestEven && !p.e8m0 && !p.integer && p.man_bits <= 7) {
      if (p.code_bytes == 1) {
        EncodeLoopBF16NearestEven(p, in, count, static_cast<std::uint8_t*>(out));
      } else {
        EncodeLoopBF16NearestEven(p, in, count, static_cast<std::uint16_t*>(out));
      }
      return;
    }
  }
#endif
  if (p.e8m0) {
    run(std::integral_constant<int, kE8m0Kernel>{}, static_cast<std::uint8_t*>(out));
  } else if (p.integer && p.code_bytes == 1) {
    run(Int{}, static_cast<std::uint8_t*>(out));
  } else if (p.integer) {
    run(Int{}, static_cast<std::uint16_t*>(out));
  } else if (p.code_bytes == 1) {
    run(Float{}, static_cast<std::uint8_t*>(out));
  } else {
    run(Float{}, static_cast<std::uint16_t*>(out));
  }
}

inline void EncodeF32(const EncodeParams& p, const float* in, std::size_t count, void* out,
                      std::uint32_t key, std::uint32_t first_low) {
  EncodeInput<Input::kF32>(p, in, count, out, key, first_low);
}
inline void EncodeBF16(const EncodeParams& p, const std::uint16_t* in, std::size_t count, void* out,
                       std::uint32_t key, std::uint32_t first_low) {
  EncodeInput<Input::kBF16>(p, in, count, out, key, first_low);
}
inline void EncodeF16(const EncodeParams& p, const std::uint16_t* in, std::size_t count, void* out,
                      std::uint32_t key, std::uint32_t first_low) {
  EncodeInput<Input::kF16>(p, in, count, out, key, first_low);
}

// ---- Fake quantization: decode_f32(encode(x)) for float formats, nearest-even ----
// The code's value without the code: |x| rounded at the format's unit by the
// fp32 adder, r = (|x| + c) - c with c = 2^(e' + 23 - M), e' the exponent of
// |x| held within [emin, emax + 1] (c's unit is the format's there, so the sum
// rounds to nearest-even at it and the difference is exact; beyond emax + 1
// every value overflows anyway). r is the value of the magnitude code of
// steps 2-5; then SpecialCases' cases in the same order (zero, finite
// overflow r > max, Inf, NaN), each as the fp32 value its code decodes to.
template <class DF>
HWY_INLINE hn::Vec<DF> FakeQuantRneVec(DF df, const FakeQuantRneParams& p, hn::Vec<DF> x) {
  const hn::RebindToSigned<DF> di;
  const auto bits = hn::BitCast(di, x);
  const auto abs = hn::And(bits, hn::Set(di, 0x7FFFFFFF));
  const auto exponent =
      hn::Min(hn::Max(hn::And(abs, hn::Set(di, 0x7F800000)), SetBits(di, p.min_normal_bits)),
              SetBits(di, p.top_bits));
  const auto c = hn::BitCast(df, hn::Add(exponent, hn::Set(di, (23 - p.man_bits) << 23)));
  const auto r = hn::Sub(hn::Add(hn::BitCast(df, abs), c), c);
  const auto negative = hn::RebindMask(df, hn::Lt(bits, hn::Zero(di)));
  auto by_sign = [&](const std::uint32_t(&v)[2]) {
    return hn::IfThenElse(negative, hn::BitCast(df, SetBits(di, v[1])),
                          hn::BitCast(df, SetBits(di, v[0])));
  };
  auto value = hn::Or(r, hn::BitCast(df, hn::And(bits, SetBits(di, 0x80000000u))));
  value = hn::IfThenElse(hn::Eq(r, hn::Zero(df)), by_sign(p.zero), value);
  value = hn::IfThenElse(hn::Gt(r, hn::Set(df, p.max_value)), by_sign(p.overflow), value);
  const auto inf = hn::Set(di, 0x7F800000);
  value = hn::IfThenElse(hn::RebindMask(df, hn::Eq(abs, inf)), by_sign(p.inf), value);
  return hn::IfThenElse(hn::RebindMask(df, hn::Gt(abs, inf)), by_sign(p.nan), value);
}

inline HWY_NOINLINE void FakeQuantRneLoop(const FakeQuantRneParams& params, const float* in,
                                          std::size_t count, float* out) {
  const FakeQuantRneParams p = params;  // not aliased by the stores
  const hn::ScalableTag<float> df;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    hn::StoreU(FakeQuantRneVec(df, p, hn::LoadU(df, in + i)), df, out + i);
  }
  if (i == count) return;
  HWY_ALIGN float tail[kMaxLanes32] = {};
  const std::size_t rest = count - i;
  std::memcpy(tail, in + i, rest * sizeof(float));
  hn::Store(FakeQuantRneVec(df, p, hn::Load(df, tail)), df, tail);
  std::memcpy(out + i, tail, rest * sizeof(float));
}

// (In place too: each vector is loaded before it is stored.)
inline void FakeQuantRne(const FakeQuantRneParams& p, const float* in, std::size_t count,
                         float* out) {
  FakeQuantRneLoop(p, in, count, out);
}

// The fp32 bits (in int32 lanes) of each code: normal codes by re-biasing the
// exponent field, subnormals as mantissa * 2^(emin - M) (exact; see
// DecodeParams::subnormal_shift), then Inf, NaN.
template <class DI>
HWY_INLINE hn::Vec<DI> DecodeVec(DI di, const DecodeParams& p, hn::Vec<DI> code) {
  const hn::Rebind<float, DI> df;
  using VI = hn::Vec<DI>;
  const VI zero = hn::Zero(di);
  const VI magnitude = hn::And(code, SetBits(di, p.magnitude_mask));
  const VI sign = hn::IfThenZeroElse(hn::Eq(hn::And(code, SetBits(di, p.sign_mask)), zero),
                                     SetBits(di, 0x80000000u));
  const VI exp_field = hn::ShiftRightSame(magnitude, p.man_bits);
  const VI mantissa = hn::And(magnitude, hn::Set(di, (1 << p.man_bits) - 1));
  const VI normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exp_field, SetBits(di, p.exp_rebias))),
                           hn::ShiftLeftSame(mantissa, 23 - p.man_bits));
  const VI subnormal =
      p.subnormal_shift >= 0
          ? hn::ShiftLeftSame(mantissa, p.subnormal_shift)
          : hn::BitCast(di, hn::Mul(hn::ConvertTo(df, mantissa), hn::Set(df, p.subnormal_scale)));
  VI bits = hn::Or(hn::IfThenElse(hn::Eq(exp_field, zero), subnormal, normal), sign);
  bits = hn::IfThenElse(hn::Eq(magnitude, SetBits(di, p.inf_magnitude)),
                        hn::Or(hn::Set(di, 0x7F800000), sign), bits);
  const auto is_nan =
      hn::Or(hn::Gt(magnitude, SetBits(di, p.nan_above)), hn::Eq(code, SetBits(di, p.nan_code)));
  const VI quiet_nan = hn::Set(di, 0x7FC00000);
  return hn::IfThenElse(is_nan, p.nan_signed ? hn::Or(quiet_nan, sign) : quiet_nan, bits);
}

// E8M0 (bias 127): code c is 2^(c - 127), whose fp32 bits are c << 23 for
// c >= 1 and 0x00400000 (2^-127, subnormal) for c = 0; 0xFF is NaN.
template <class DI>
HWY_INLINE hn::Vec<DI> DecodeVecE8m0(DI di, hn::Vec<DI> code) {
  const auto bits =
      hn::IfThenElse(hn::Eq(code, hn::Zero(di)), hn::Set(di, 0x00400000), hn::ShiftLeft<23>(code));
  return hn::IfThenElse(hn::Eq(code, hn::Set(di, 0xFF)), hn::Set(di, 0x7FC00000), bits);
}

// Integers: sign-extend from int_bits (when signed), then convert (exact).
template <class DI>
HWY_INLINE hn::Vec<DI> DecodeVecInt(DI di, const DecodeParams& p, hn::Vec<DI> code) {
  const hn::Rebind<float, DI> df;
  hn::Vec<DI> value = code;
  if (p.int_signed) {
    const int unused = 32 - p.int_bits;
    value = hn::ShiftRightSame(hn::ShiftLeftSame(code, unused), unused);
  }
  return hn::BitCast(di, hn::ConvertTo(df, value));
}

template <int K, class DI>
HWY_INLINE hn::Vec<DI> DecodeAny(DI di, const DecodeParams& p, hn::Vec<DI> code) {
  code = hn::And(code, SetBits(di, p.code_mask));  // as lowp::decode: low f.bits bits
  if constexpr (K == kE8m0Kernel) {
    return DecodeVecE8m0(di, code);
  } else if constexpr (K == kIntKernel) {
    return DecodeVecInt(di, p, code);
  } else {
    return DecodeVec(di, p, code);
  }
}

// Whether this target converts IEEE halves in hardware (F16C or AVX-512),
// which the routes through a half need: Highway's emulation elsewhere has no
// Inf or NaN.
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr bool kHalfConversion = true;
#else
constexpr bool kHalfConversion = false;
#endif

// DecodeParams' faster routes for a whole vector of codes: the fp32 bits of
// each code through an IEEE half (8-bit codes, or fp16 codes), or bf16's
// shift, then the fix-ups that make Inf and NaN what DecodeVec gives.
template <class DI, typename CodeT>
HWY_INLINE hn::Vec<DI> DecodeFast(DI di, const DecodeParams& p, const CodeT* HWY_RESTRICT from) {
  const hn::Rebind<float, DI> df;
  const hn::RebindToUnsigned<DI> du;
  const hn::Rebind<std::uint16_t, DI> d16;
  const hn::Rebind<hwy::float16_t, DI> dh;
  using VI = hn::Vec<DI>;
  VI bits;
  if constexpr (sizeof(CodeT) == 1) {
    // The code in the top byte, then an arithmetic shift right by
    // 8 - f16_shift: the sign stays in bit 15, its copies below are masked.
    const hn::Rebind<std::uint8_t, DI> d8;
    const hn::RebindToSigned<decltype(d16)> di16;
    const auto top = hn::BitCast(di16, hn::ShiftLeft<8>(hn::PromoteTo(d16, hn::LoadU(d8, from))));
    const auto mask = static_cast<std::int16_t>(0x8000u | (0x7Fu << p.f16_shift));
    const auto half = hn::And(hn::ShiftRightSame(top, 8 - p.f16_shift), hn::Set(di16, mask));
    bits = hn::BitCast(di,
                       hn::Mul(hn::PromoteTo(df, hn::BitCast(dh, half)), hn::Set(df, p.f16_scale)));
  } else if (p.fast == DecodeParams::Fast::kF16) {
    bits = hn::BitCast(
        di, hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(from))));
  } else {
    bits = hn::BitCast(di, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, from))));
  }
  constexpr std::uint32_t kNone = 0x7FFFFFFF;
  const VI abs = hn::And(bits, hn::Set(di, 0x7FFFFFFF));
  const VI sign = hn::Xor(bits, abs);
  if (p.fast_inf_bits != kNone) {
    bits = hn::IfThenElse(hn::Eq(abs, SetBits(di, p.fast_inf_bits)),
                          hn::Or(sign, hn::Set(di, 0x7F800000)), bits);
  }
  if (p.fast_nan_above != kNone) {
    bits = hn::IfThenElse(hn::Gt(abs, SetBits(di, p.fast_nan_above)),
                          hn::Or(sign, hn::Set(di, 0x7FC00000)), bits);
  }
  if (p.fast_fnuz) {  // -0 is the NaN code, and NaN has no sign
    bits = hn::IfThenElse(hn::Eq(bits, SetBits(di, 0x80000000u)), hn::Set(di, 0x7FC00000), bits);
  }
  return bits;
}

// The output of a decode: fp32, or bf16 bits (the fp32 value rounded by
// F32BitsToBF16, or its top half where every value is a bf16: kExact).
// kStream: a non-temporal store (`to` aligned to the vector).
template <typename OutT, bool kExact, bool kStream = false, class DI>
HWY_INLINE void StoreDecoded(DI /*di*/, hn::Vec<DI> bits, OutT* HWY_RESTRICT to) {
  if constexpr (std::is_same_v<OutT, float>) {
    const hn::Rebind<float, DI> df;
    if constexpr (kStream) {
      hn::Stream(hn::BitCast(df, bits), df, to);
    } else {
      hn::StoreU(hn::BitCast(df, bits), df, to);
    }
  } else {
    const hn::RebindToUnsigned<DI> du;
    const hn::Rebind<std::uint16_t, DI> d16;
    const auto u = hn::BitCast(du, bits);
    const auto narrow = hn::TruncateTo(d16, kExact ? hn::ShiftRight<16>(u) : F32BitsToBF16(du, u));
    if constexpr (kStream) {
      hn::Stream(narrow, d16, to);
    } else {
      hn::StoreU(narrow, d16, to);
    }
  }
}

// kStream: the vectors are stored non-temporally from the first element whose
// address is a multiple of the vector's size (the ones before it, as the tail,
// through a buffer), and the stream is flushed at the end.
template <int K, typename CodeT, typename OutT, bool kExact = false, bool kStream = false>
HWY_NOINLINE void DecodeLoop(const DecodeParams& params, const CodeT* HWY_RESTRICT codes,
                             std::size_t count, OutT* HWY_RESTRICT out) {
  const DecodeParams p = params;  // not aliased by the stores (see EncodeLoop)
  const hn::ScalableTag<std::int32_t> di;
  const hn::Rebind<CodeT, decltype(di)> dc;
  const hn::RebindToUnsigned<decltype(di)> du;
  const std::size_t lanes = hn::Lanes(di);
  auto decode = [&](const CodeT* from) {
    if constexpr (K == kFastKernel) {
      return DecodeFast(di, p, from);
    } else {
      return DecodeAny<K>(di, p, hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(dc, from))));
    }
  };
  // Elements [i, i + rest), rest < lanes, through buffers.
  auto partial = [&](std::size_t i, std::size_t rest) {
    HWY_ALIGN CodeT part_in[kMaxLanes32] = {};
    HWY_ALIGN OutT part_out[kMaxLanes32] = {};
    std::memcpy(part_in, codes + i, rest * sizeof(CodeT));
    StoreDecoded<OutT, kExact>(di, decode(part_in), part_out);
    std::memcpy(out + i, part_out, rest * sizeof(OutT));
  };
  std::size_t i = 0;
  if constexpr (kStream) {
    const std::size_t vector_bytes = lanes * sizeof(OutT);
    const auto at = reinterpret_cast<std::uintptr_t>(out);
    if (at % sizeof(OutT) != 0) {  // never aligned: regular stores
      DecodeLoop<K, CodeT, OutT, kExact, false>(p, codes, count, out);
      return;
    }
    i = std::min(count, (vector_bytes - at % vector_bytes) % vector_bytes / sizeof(OutT));
    if (i > 0) partial(0, i);
  }
  for (; i + lanes <= count; i += lanes) {
    PrefetchAhead(codes, i, count);
    StoreDecoded<OutT, kExact, kStream>(di, decode(codes + i), out + i);
  }
  if (i < count) partial(i, count - i);
  if constexpr (kStream) hwy::FlushStream();
}

template <int K, typename CodeT, typename OutT, bool kExact>
HWY_INLINE void DecodeLoopOf(const DecodeParams& p, const CodeT* codes, std::size_t count,
                             OutT* out) {
  if (p.stream) {
    DecodeLoop<K, CodeT, OutT, kExact, true>(p, codes, count, out);
  } else {
    DecodeLoop<K, CodeT, OutT, kExact, false>(p, codes, count, out);
  }
}

template <typename OutT, bool kExact = false>
HWY_INLINE void DecodeTo(const DecodeParams& p, const void* codes, std::size_t count, OutT* out) {
  const auto* bytes = static_cast<const std::uint8_t*>(codes);
  const auto* words = static_cast<const std::uint16_t*>(codes);
  const bool fast = p.fast == DecodeParams::Fast::kBf16 ||
                    (kHalfConversion && p.fast != DecodeParams::Fast::kNone);
  if (fast && p.code_bytes == 1) {
    DecodeLoopOf<kFastKernel, std::uint8_t, OutT, kExact>(p, bytes, count, out);
  } else if (fast) {
    DecodeLoopOf<kFastKernel, std::uint16_t, OutT, kExact>(p, words, count, out);
  } else if (p.e8m0) {
    DecodeLoopOf<kE8m0Kernel, std::uint8_t, OutT, kExact>(p, bytes, count, out);
  } else if (p.integer && p.code_bytes == 1) {
    DecodeLoopOf<kIntKernel, std::uint8_t, OutT, kExact>(p, bytes, count, out);
  } else if (p.integer) {
    DecodeLoopOf<kIntKernel, std::uint16_t, OutT, kExact>(p, words, count, out);
  } else if (p.code_bytes == 1) {
    DecodeLoopOf<kFloatKernel, std::uint8_t, OutT, kExact>(p, bytes, count, out);
  } else {
    DecodeLoopOf<kFloatKernel, std::uint16_t, OutT, kExact>(p, words, count, out);
  }
}

inline void DecodeToF32(const DecodeParams& p, const void* codes, std::size_t count, float* out) {
  DecodeTo(p, codes, count, out);
}
inline void DecodeToBF16(const DecodeParams& p, const void* codes, std::size_t count,
                         std::uint16_t* out) {
  if (p.bf16_exact) {
    DecodeTo<std::uint16_t, true>(p, codes, count, out);
  } else {
    DecodeTo<std::uint16_t, false>(p, codes, count, out);
  }
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
