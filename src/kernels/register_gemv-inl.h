// src/kernels/register_gemv-inl.h — per-target kernels of lowp/register_gemv.h:
// GEMV rows whose weights are decoded to fp32 in vector registers just before
// the FMA (register_gemv.cc dispatches).
//
// posit16 arithmetic decode (Posit Standard 2022 §3.2), per 32-bit lane, for a
// code c sign-extended to int32:
//   1. m = |c| & 0x7FFF (two's complement: a negative code's magnitude is -c);
//      the 15 bits after the sign, regime first.
//   2. r0 = bit 14 of m (the regime's bit). t = m, with its 15 bits inverted
//      when r0 = 1, has the regime run as leading zeros of a 15-bit number:
//      run = 14 - floor(log2 t) (at most 15, which t = 0 means). floor(log2 t)
//      is the exponent of t converted to fp32, exact since t < 2^24.
//   3. k = run - 1 for a run of ones, -run for zeros; the bits after the
//      regime's terminator, rest = (m << (run + 1)) & 0x7FFF, hold e in their
//      top es bits and the fraction below.
//   4. fp32 bits: sign << 31 | (k * 2^es + e + 127) << 23 | fraction << 8.
//      Zero and NaR (0x8000) are selected at the end.

#if defined(LOWP_KERNELS_REGISTER_GEMV_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWP_KERNELS_REGISTER_GEMV_INL_H_
#undef LOWP_KERNELS_REGISTER_GEMV_INL_H_
#else
#define LOWP_KERNELS_REGISTER_GEMV_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lowp/format/convert.h"
#include "lowp/register_gemv.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;

// N posit16 codes at `codes` as fp32 (steps 1-4 above).
HWY_INLINE hn::Vec<DF> DecodePosit16(const std::int16_t* codes, int es) {
  const DF df;
  const DI di;
  const hn::Rebind<std::int16_t, DF> d16;
  const auto c = hn::PromoteTo(di, hn::LoadU(d16, codes));
  const auto zero = hn::Zero(di);
  const auto negative = hn::Lt(c, zero);
  const auto mask15 = hn::Set(di, 0x7FFF);
  const auto m = hn::And(hn::IfThenElse(negative, hn::Neg(c), c), mask15);  // step 1
  const auto ones = hn::Ne(hn::And(m, hn::Set(di, 0x4000)), zero);          // step 2
  const auto t = hn::Xor(m, hn::IfThenElseZero(ones, mask15));
  const auto log2t =
      hn::Sub(hn::ShiftRight<23>(hn::BitCast(di, hn::ConvertTo(df, t))), hn::Set(di, 127));
  const auto run = hn::Min(hn::Sub(hn::Set(di, 14), log2t), hn::Set(di, 15));
  const auto k = hn::IfThenElse(ones, hn::Sub(run, hn::Set(di, 1)), hn::Neg(run));  // step 3
  const auto rest = hn::And(hn::Shl(m, hn::Add(run, hn::Set(di, 1))), mask15);
  const auto e = hn::ShiftRightSame(rest, 15 - es);
  const auto fraction = hn::And(hn::ShiftLeftSame(rest, es), mask15);
  const auto scale = hn::Add(hn::ShiftLeftSame(k, es), e);
  auto bits = hn::Or(hn::ShiftLeft<23>(hn::Add(scale, hn::Set(di, 127))),  // step 4
                     hn::ShiftLeft<8>(fraction));
  bits = hn::Or(bits,
                hn::IfThenElseZero(negative, hn::Set(di, static_cast<std::int32_t>(0x80000000u))));
  bits = hn::IfThenElseZero(hn::Ne(c, zero), bits);
  bits = hn::IfThenElse(hn::Eq(c, hn::Set(di, -32768)), hn::Set(di, 0x7FC00000), bits);
  return hn::BitCast(df, bits);
}

template <RegisterDecode kDecode>
HWY_INLINE hn::Vec<DF> DecodeVector(const RegisterGemv& g, const std::uint8_t* row, std::size_t c) {
  const DF df;
  const DI di;
  if constexpr (kDecode == RegisterDecode::kF32) {
    return hn::LoadU(df, reinterpret_cast<const float*>(row) + c);
  } else if constexpr (kDecode == RegisterDecode::kBf16) {
    const hn::Rebind<std::uint16_t, DF> d16;
    const hn::RebindToUnsigned<DF> du;
    const auto wide =
        hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(row) + c));
    return hn::BitCast(df, hn::ShiftLeft<16>(wide));
  } else if constexpr (kDecode == RegisterDecode::kPosit16) {
    return DecodePosit16(reinterpret_cast<const std::int16_t*>(row) + c, g.posit.exp_bits);
  } else if constexpr (kDecode == RegisterDecode::kPosit16Table) {
    const hn::Rebind<std::uint16_t, DF> d16;
    const hn::RebindToUnsigned<DF> du;
    const auto index =
        hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(row) + c));
    return hn::GatherIndex(df, g.table, hn::BitCast(di, index));
  } else {
    const hn::Rebind<std::uint8_t, DF> d8;
    const auto index = hn::PromoteTo(di, hn::LoadU(d8, row + c));
    return hn::GatherIndex(df, g.table, index);
  }
}

// The weight at column c, scalar (the tail).
template <RegisterDecode kDecode>
HWY_INLINE float ScalarWeight(const RegisterGemv& g, const std::uint8_t* row, std::size_t c) {
  if constexpr (kDecode == RegisterDecode::kF32) {
    float v;
    std::memcpy(&v, row + 4 * c, sizeof(v));
    return v;
  } else if constexpr (kDecode == RegisterDecode::kBf16) {
    std::uint16_t h;
    std::memcpy(&h, row + 2 * c, sizeof(h));
    const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  } else if constexpr (kDecode == RegisterDecode::kPosit8Table) {
    return g.table[row[c]];
  } else {
    std::uint16_t h;
    std::memcpy(&h, row + 2 * c, sizeof(h));
    return decode_f32(g.posit, h);
  }
}

template <RegisterDecode kDecode>
void RegisterGemvOf(const RegisterGemv& g, const void* weights, std::size_t cols, const float* x,
                    float* y, std::size_t r0, std::size_t r1) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t row_bytes = cols * register_gemv_bytes(kDecode);
  const std::size_t vector_end = cols - cols % (2 * lanes);
  for (std::size_t r = r0; r < r1; ++r) {
    const auto* row = static_cast<const std::uint8_t*>(weights) + r * row_bytes;
    auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
    for (std::size_t c = 0; c < vector_end; c += 2 * lanes) {
      const auto w0 = DecodeVector<kDecode>(g, row, c);
      const auto w1 = DecodeVector<kDecode>(g, row, c + lanes);
      acc0 = hn::MulAdd(w0, hn::LoadU(df, x + c), acc0);
      acc1 = hn::MulAdd(w1, hn::LoadU(df, x + c + lanes), acc1);
    }
    float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
    for (std::size_t c = vector_end; c < cols; ++c) sum += ScalarWeight<kDecode>(g, row, c) * x[c];
    y[r] = sum;
  }
}

void RegisterGemvAny(const RegisterGemv& g, const void* weights, std::size_t cols, const float* x,
                     float* y, std::size_t r0, std::size_t r1) {
  switch (g.decode) {
    case RegisterDecode::kF32:
      return RegisterGemvOf<RegisterDecode::kF32>(g, weights, cols, x, y, r0, r1);
    case RegisterDecode::kBf16:
      return RegisterGemvOf<RegisterDecode::kBf16>(g, weights, cols, x, y, r0, r1);
    case RegisterDecode::kPosit16:
      return RegisterGemvOf<RegisterDecode::kPosit16>(g, weights, cols, x, y, r0, r1);
    case RegisterDecode::kPosit16Table:
      return RegisterGemvOf<RegisterDecode::kPosit16Table>(g, weights, cols, x, y, r0, r1);
    case RegisterDecode::kPosit8Table:
      return RegisterGemvOf<RegisterDecode::kPosit8Table>(g, weights, cols, x, y, r0, r1);
  }
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // LOWP_KERNELS_REGISTER_GEMV_INL_H_
