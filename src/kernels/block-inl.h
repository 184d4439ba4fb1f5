// src/kernels/block-inl.h — per-target kernels for MX (OCP Microscaling v1.0
// §6.3) and NVFP4 blocks: fp32 -> packed elements + scale bytes, and back,
// bit-identical to the scalar reference (lowp/block/mx.h states the rules,
// lowp/block/tensor.h the packed layout).
//
// Compiled once per Highway target (block.cc includes it through
// foreach_target.h). The kernels take whole blocks of k (a multiple of 16)
// values in a group of up to kGroup elements at a time:
//  1. Per block, amax = the largest |x| as fp32 bits (an integer max of the
//     bits without sign). Bits >= 0x7F800000 mean NaN or Inf: a NaN block.
//  2. The scale, on vectors of blocks: MX by the scale rule
//     (mx_scale_code_of_bits), NVFP4 by torchao's fp32 steps (as
//     nvfp4_quantize_block).
//  3. Elements, in element order: MX multiplies by 2^-s (exact; two factors
//     when 2^-s is not a normal fp32, see MxFactors), NVFP4 divides by the
//     block's total scale and clamps to ±6; then the fast nearest-even encoder
//     (FastEncode). Codes go to a byte buffer (8-bit elements: straight out).
//  4. FP6 and FP4 codes are packed into the little-endian bit stream with
//     interleaved byte loads/stores (four codes -> three bytes, two -> one).
// Decoding runs the same steps backwards: unpack to bytes, then a float
// element with the scale folded in (FastDecode: one rounding), an integer
// element by conversion (convert-inl.h's DecodeAny) times the scale.
//
// Vectors are capped at 16 lanes of 32 bits, so that a vector never straddles
// two blocks.

#if defined(LOWP_KERNELS_BLOCK_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWP_KERNELS_BLOCK_INL_H_
#undef LOWP_KERNELS_BLOCK_INL_H_
#else
#define LOWP_KERNELS_BLOCK_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/block_params.h"
#include "kernels/convert-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using detail::BlockDequantParams;
using detail::BlockQuantParams;
using detail::DecodeParams;

// Elements per group: the codes of one group sit in a stack buffer between
// steps 3 and 4 (a multiple of every interleaved unit: 4 x 64 byte lanes).
constexpr std::size_t kGroup = 512;

using BlockTagU = hn::CappedTag<std::uint32_t, 16>;

// The element code (int32 lanes) of finite fp32 values, nearest-even with
// saturation: the magnitude rounded by the fp32 adder (below), clamped to the
// largest finite magnitude, and the sign moved to the element's sign bit.
// Integer elements: |x| < 2^22, so x + 1.5 * 2^23 rounds x to an integer in
// the low mantissa bits.
template <class DU>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU>> FastEncode(DU du, const BlockQuantParams& p,
                                                      hn::Vec<DU> bits) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  if (p.integer) {
    const auto magic = hn::Set(df, 12582912.0f);  // 1.5 * 2^23
    auto value =
        hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(df, bits), magic)), hn::BitCast(di, magic));
    value = hn::Min(hn::Max(value, hn::Set(di, p.int_min)), hn::Set(di, p.int_max));
    return hn::And(value, hn::Set(di, static_cast<std::int32_t>(p.code_mask)));
  }
  // Floats: the fp32 adder rounds |x| at the element's unit. With c the power
  // of two 2^(e + 23 - M), e = the exponent of |x| held within
  // [emin, emax + 1], |x| + c has the unit 2^(e - M) of the element's binade
  // (of its subnormals below 2^emin) and rounds to nearest-even there; its bits
  // minus c's count the units, 2^M + mantissa for a normal, the mantissa for a
  // subnormal, and (e - emin) << M more is the magnitude code. Beyond the
  // largest binade the count only grows: clamped to the largest magnitude.
  const auto abs = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu)));
  const auto emin_bits = static_cast<std::int32_t>(p.min_normal_bits);
  const int emin = emin_bits >> 23;  // biased
  const auto top_bits =
      static_cast<std::int32_t>(emin + static_cast<int>(p.max_magnitude >> p.man_bits)) << 23;
  const auto exponent =
      hn::Min(hn::Max(hn::And(abs, hn::Set(di, 0x7F800000)), hn::Set(di, emin_bits)),
              hn::Set(di, top_bits));
  const auto c = hn::Add(exponent, hn::Set(di, (23 - p.man_bits) << 23));
  const auto sum = hn::BitCast(di, hn::Add(hn::BitCast(df, abs), hn::BitCast(df, c)));
  const auto binade =
      hn::ShiftRightSame(hn::Sub(exponent, hn::Set(di, emin_bits)), 23 - p.man_bits);
  auto magnitude = hn::Add(hn::Sub(sum, c), binade);
  magnitude = hn::Min(magnitude, hn::Set(di, static_cast<std::int32_t>(p.max_magnitude)));
  const auto sign = hn::ShiftRightSame(hn::And(bits, hn::Set(du, 0x80000000u)), p.sign_shift);
  return hn::Or(magnitude, hn::BitCast(di, sign));
}

// MX: x / 2^s (times 2^fraction_bits for integers) as x * first * second with
// both factors normal fp32 powers of two; `first` is the whole factor when it
// is normal. Otherwise the first product is exact or below 2^-126 (where every
// element rounds to zero anyway), and the second exact.
struct MxFactors {
  float first, second;
};
inline MxFactors MxEncodeFactors(const BlockQuantParams& p, std::uint8_t scale) {
  const int f = 127 - static_cast<int>(scale) + p.fraction_bits;
  const int f1 = std::clamp(f, -126, 127);
  return {std::bit_cast<float>(detail::pow2_bits(f1)),
          std::bit_cast<float>(detail::pow2_bits(f - f1))};
}

// Step 4 for one group: n codes (bytes, n a multiple of 16) -> packed bits.
// `codes` is readable up to kGroup bytes; `out` receives n * bits / 8 bytes.
HWY_INLINE void PackGroup(int bits, const std::uint8_t* HWY_RESTRICT codes, std::size_t n,
                          std::uint8_t* HWY_RESTRICT out) {
  const hn::CappedTag<std::uint8_t, 64> d8;
  const std::size_t lanes = hn::Lanes(d8);
  HWY_ALIGN std::uint8_t staged[kGroup];
  const bool direct = n == kGroup;
  std::uint8_t* to = direct ? out : staged;
  if (bits == 4) {
    for (std::size_t i = 0; i < n; i += 2 * lanes) {
      hn::Vec<decltype(d8)> a, b;
      hn::LoadInterleaved2(d8, codes + i, a, b);
      hn::StoreU(hn::Or(a, hn::ShiftLeft<4>(b)), d8, to + i / 2);
    }
  } else {  // 6
    for (std::size_t i = 0; i < n; i += 4 * lanes) {
      hn::Vec<decltype(d8)> a, b, c, d;
      hn::LoadInterleaved4(d8, codes + i, a, b, c, d);
      const auto o0 = hn::Or(a, hn::ShiftLeft<6>(b));
      const auto o1 = hn::Or(hn::ShiftRight<2>(b), hn::ShiftLeft<4>(c));
      const auto o2 = hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<2>(d));
      hn::StoreInterleaved3(o0, o1, o2, d8, to + i / 4 * 3);
    }
  }
  if (!direct) std::memcpy(out, staged, n * static_cast<std::size_t>(bits) / 8);
}

// The inverse of PackGroup: n codes (a multiple of 16) from n * bits / 8 bytes.
HWY_INLINE void UnpackGroup(int bits, const std::uint8_t* HWY_RESTRICT in, std::size_t n,
                            std::uint8_t* HWY_RESTRICT codes) {
  const hn::CappedTag<std::uint8_t, 64> d8;
  const std::size_t lanes = hn::Lanes(d8);
  HWY_ALIGN std::uint8_t staged[kGroup];
  const std::uint8_t* from = in;
  if (n != kGroup) {  // the loops below read whole units
    std::memcpy(staged, in, n * static_cast<std::size_t>(bits) / 8);
    from = staged;
  }
  if (bits == 4) {
    const auto low = hn::Set(d8, std::uint8_t{0x0F});
    for (std::size_t i = 0; i < n; i += 2 * lanes) {
      const auto v = hn::LoadU(d8, from + i / 2);
      hn::StoreInterleaved2(hn::And(v, low), hn::ShiftRight<4>(v), d8, codes + i);
    }
  } else {  // 6
    const auto six = hn::Set(d8, std::uint8_t{0x3F});
    for (std::size_t i = 0; i < n; i += 4 * lanes) {
      hn::Vec<decltype(d8)> o0, o1, o2;
      hn::LoadInterleaved3(d8, from + i / 4 * 3, o0, o1, o2);
      const auto a = hn::And(o0, six);
      const auto b = hn::And(hn::Or(hn::ShiftRight<6>(o0), hn::ShiftLeft<2>(o1)), six);
      const auto c = hn::And(hn::Or(hn::ShiftRight<4>(o1), hn::ShiftLeft<4>(o2)), six);
      const auto d = hn::ShiftRight<2>(o2);
      hn::StoreInterleaved4(a, b, c, d, d8, codes + i);
    }
  }
}

// MX step 2 for a vector of block maxima (fp32 bits; >= 0x7F800000: a NaN
// block): mx_scale_code_of_bits lane by lane, 0xFF for NaN blocks. A
// subnormal amax takes floor(log2) from the exponent of float(mantissa).
template <class DU>
HWY_INLINE hn::Vec<DU> MxScaleCodes(DU du, const BlockQuantParams& p, hn::Vec<DU> amax_bits) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  using VI = hn::Vec<decltype(di)>;
  const VI a = hn::BitCast(di, amax_bits);
  const VI zero = hn::Zero(di);
  const VI exp_field = hn::ShiftRight<23>(a);
  const VI mantissa = hn::And(a, hn::Set(di, 0x7FFFFF));
  const VI emax = hn::Set(di, p.emax_elem);
  VI shared;
  switch (p.scale_rule) {
    case ScaleRule::kFloor: {
      const VI subnormal_log2 = hn::Sub(
          hn::ShiftRight<23>(hn::BitCast(di, hn::ConvertTo(df, mantissa))), hn::Set(di, 127 + 149));
      const VI log2 = hn::IfThenElse(hn::Eq(exp_field, zero), subnormal_log2,
                                     hn::Sub(exp_field, hn::Set(di, 127)));
      shared = hn::IfThenElse(hn::Eq(a, zero), hn::Set(di, -127), hn::Sub(log2, emax));
      break;
    }
    case ScaleRule::kCeil: {
      const VI up = hn::IfThenZeroElse(hn::Eq(mantissa, zero), hn::Set(di, 1));
      shared = hn::Sub(hn::Add(hn::Sub(exp_field, hn::Set(di, 127)), up), emax);
      break;
    }
    case ScaleRule::kEven: {
      const std::int32_t add = p.element_mbits < 23 ? std::int32_t{1} << (22 - p.element_mbits) : 0;
      shared = hn::Sub(hn::ShiftRight<23>(hn::Add(a, hn::Set(di, add))), hn::Set(di, 127));
      shared = hn::Sub(shared, emax);
      break;
    }
    case ScaleRule::kRceil: {
      const VI t = hn::BitCast(di, hn::Mul(hn::BitCast(df, a), hn::Set(df, p.rceil_reciprocal)));
      const VI t_exp = hn::ShiftRight<23>(t);
      const VI t_mantissa = hn::And(t, hn::Set(di, 0x7FFFFF));
      const VI up = hn::IfThenElse(
          hn::Eq(t_exp, zero),
          hn::IfThenElseZero(hn::Gt(t_mantissa, hn::Set(di, 0x400000)), hn::Set(di, 1)),
          hn::IfThenZeroElse(hn::Eq(t_mantissa, zero), hn::Set(di, 1)));
      shared = hn::Sub(hn::Add(t_exp, up), hn::Set(di, 127));
      break;
    }
  }
  const VI code =
      hn::Add(hn::Min(hn::Max(shared, hn::Set(di, -127)), hn::Set(di, 127)), hn::Set(di, 127));
  return hn::BitCast(du,
                     hn::IfThenElse(hn::Gt(a, hn::Set(di, 0x7F7FFFFF)), hn::Set(di, 0xFF), code));
}

// NVFP4 step 2 for a vector of block maxima (fp32 bits): nvfp4_quantize_block's
// fp32 steps on whole vectors. `code` is the E4M3 scale code (0x7F for a NaN
// block; every finite block's code is at most 0x7E), `total` the block's
// total scale tensor_scale * e4m3, `valid` whether that is usable (> 0 and
// finite; else every element's code is 0).
template <class DU>
struct Nvfp4Scale {
  hn::Vec<DU> code;
  hn::Vec<hn::Rebind<float, DU>> total;
  hn::Mask<hn::Rebind<float, DU>> valid;
};
template <class DU>
HWY_INLINE Nvfp4Scale<DU> Nvfp4ScaleOf(DU du, const BlockQuantParams& p, hn::Vec<DU> amax) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  const auto nan_block = hn::Gt(hn::BitCast(di, amax), hn::Set(di, 0x7F7FFFFF));
  auto relative =
      hn::Div(hn::Div(hn::BitCast(df, amax), hn::Set(df, 6.0f)), hn::Set(df, p.tensor_scale));
  const auto low = hn::Set(df, 0x1p-6f), high = hn::Set(df, 448.0f);
  relative = hn::IfThenElse(hn::Ge(relative, low), relative,
                            hn::IfThenElse(hn::Gt(relative, high), high, low));
  const auto r = hn::BitCast(du, hn::Min(relative, high));
  auto code = hn::Sub(hn::ShiftRight<20>(hn::Add(hn::Add(r, hn::Set(du, 0x7FFFFu)),
                                                 hn::And(hn::ShiftRight<20>(r), hn::Set(du, 1u)))),
                      hn::Set(du, 120u << 3));
  code = hn::Min(code, hn::Set(du, 0x7Eu));
  const auto e4m3 = hn::BitCast(df, hn::Add(hn::ShiftLeft<20>(code), hn::Set(du, 120u << 23)));
  const auto total = hn::Mul(hn::Set(df, p.tensor_scale), e4m3);
  const auto valid = hn::And(hn::Gt(total, hn::Zero(df)),
                             hn::Lt(total, hn::Set(df, std::numeric_limits<float>::infinity())));
  return {hn::IfThenElse(hn::RebindMask(du, nan_block), hn::Set(du, 0x7Fu), code), total, valid};
}

// MX and NVFP4, k = lanes * vectors per block: steps 1-2 for nb blocks at once. The
// lane-wise maxima of each block (one vector per block) are folded pairwise
// (odd/even lanes of two vectors: after log2(lanes) rounds lane j holds block
// j's amax), then the scale rule runs on whole vectors. Writes each block's
// scale code and its two factors (MxEncodeFactors).
template <class DU>
HWY_INLINE void ScalesOfGroup(DU du, const BlockQuantParams& p, const float* HWY_RESTRICT in,
                              std::size_t nb, std::uint8_t* HWY_RESTRICT scales,
                              float* HWY_RESTRICT first, float* HWY_RESTRICT second) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t k = static_cast<std::size_t>(p.block_size);
  constexpr std::size_t kMaxBlocks = kGroup / 16;
  HWY_ALIGN std::uint32_t folded[kMaxBlocks * 16];
  HWY_ALIGN std::uint32_t codes[kMaxBlocks];
  const std::size_t padded = (nb + lanes - 1) / lanes * lanes;
  for (std::size_t b = 0; b < padded; ++b) {
    auto m = hn::Zero(di);
    if (b < nb) {
      const float* block = in + b * k;
      for (std::size_t j = 0; j < k; j += lanes) {
        m = hn::Max(m, hn::And(hn::BitCast(di, hn::LoadU(df, block + j)), hn::Set(di, 0x7FFFFFFF)));
      }
    }
    hn::Store(hn::BitCast(du, m), du, folded + b * lanes);
  }
  for (std::size_t s = 0; s < padded; s += lanes) {
    std::uint32_t* set = folded + s * lanes;
#if HWY_TARGET != HWY_SCALAR
    for (std::size_t count = lanes; count > 1; count /= 2) {
      for (std::size_t i = 0; i < count / 2; ++i) {
        const auto lo = hn::Load(du, set + 2 * i * lanes);
        const auto hi = hn::Load(du, set + (2 * i + 1) * lanes);
        hn::Store(hn::Max(hn::ConcatOdd(du, hi, lo), hn::ConcatEven(du, hi, lo)), du,
                  set + i * lanes);
      }
    }
#endif
    if (p.nvfp4) {
      // The total scale to `first` and whether it is usable (1 or 0) to
      // `second`.
      const auto scale = Nvfp4ScaleOf(du, p, hn::Load(du, set));
      hn::Store(scale.code, du, codes + s);
      hn::Store(scale.total, df, first + s);
      hn::Store(hn::IfThenElseZero(scale.valid, hn::Set(df, 1.0f)), df, second + s);
      continue;
    }
    const auto code = MxScaleCodes(du, p, hn::Load(du, set));
    hn::Store(code, du, codes + s);
    // MxEncodeFactors on whole vectors.
    const auto f = hn::Sub(hn::Set(di, 127 + p.fraction_bits), hn::BitCast(di, code));
    const auto f1 = hn::Min(hn::Max(f, hn::Set(di, -126)), hn::Set(di, 127));
    const auto bias = hn::Set(di, 127);
    hn::Store(hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(f1, bias))), df, first + s);
    hn::Store(hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(hn::Sub(f, f1), bias))), df, second + s);
  }
  for (std::size_t b = 0; b < nb; ++b) scales[b] = static_cast<std::uint8_t>(codes[b]);
}

// Four vectors of 16 codes (int32 lanes, each in [0, 255]) -> 64 bytes in
// lane order, by two rounds of saturating packs (which interleave the 128-bit
// lanes) and one dword permute that puts them back: four shuffles for 64
// codes where a truncating store per vector takes two each.
template <class DI>
HWY_INLINE void StoreCodes4(DI di, hn::Vec<DI> a, hn::Vec<DI> b, hn::Vec<DI> c, hn::Vec<DI> d,
                            std::uint8_t* HWY_RESTRICT to) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (hn::MaxLanes(DI()) == 16) {
    const __m512i ab = _mm512_packus_epi32(a.raw, b.raw);
    const __m512i cd = _mm512_packus_epi32(c.raw, d.raw);
    // 128-bit lane L: a[4L..4L+3] b[..] c[..] d[..], a dword each.
    const __m512i mixed = _mm512_packus_epi16(ab, cd);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512(to, _mm512_permutexvar_epi32(order, mixed));
    return;
  }
#endif
  const hn::Rebind<std::uint8_t, DI> d8;
  const hn::RebindToUnsigned<DI> du;
  const std::size_t lanes = hn::Lanes(di);
  hn::StoreU(hn::TruncateTo(d8, hn::BitCast(du, a)), d8, to);
  hn::StoreU(hn::TruncateTo(d8, hn::BitCast(du, b)), d8, to + lanes);
  hn::StoreU(hn::TruncateTo(d8, hn::BitCast(du, c)), d8, to + 2 * lanes);
  hn::StoreU(hn::TruncateTo(d8, hn::BitCast(du, d)), d8, to + 3 * lanes);
}

// NVFP4's element step: x / total (the reference's division, which a
// reciprocal would not reproduce), clamped to +-6, encoded.
template <class DU>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU>> Nvfp4Element(DU du, const BlockQuantParams& p,
                                                        hn::Vec<hn::Rebind<float, DU>> x,
                                                        hn::Vec<hn::Rebind<float, DU>> total) {
  const auto q = hn::BitCast(du, hn::Div(x, total));
  const auto abs = hn::Min(hn::And(q, hn::Set(du, 0x7FFFFFFFu)), hn::Set(du, 0x40C00000u));  // 6
  return FastEncode(du, p, hn::Or(abs, hn::And(q, hn::Set(du, 0x80000000u))));
}

// Quantizes `blocks` full blocks of p.block_size values: packed element bits to
// `elements` (byte-aligned), one scale byte per block to `scales`. (No
// software prefetch: on the Zen 4 machine of docs/performance.md the
// hardware's did better.)
HWY_NOINLINE void QuantizeBlocksImpl(const BlockQuantParams& params, const float* HWY_RESTRICT in,
                                     std::size_t blocks, std::uint8_t* HWY_RESTRICT elements,
                                     std::uint8_t* HWY_RESTRICT scales) {
  const BlockQuantParams p = params;  // not aliased by the byte stores
  const BlockTagU du;
  const hn::Rebind<float, decltype(du)> df;
  const hn::Rebind<std::uint8_t, decltype(du)> d8;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t k = static_cast<std::size_t>(p.block_size);
  const std::size_t group_blocks = std::max<std::size_t>(1, kGroup / k);
  HWY_ALIGN std::uint8_t codes[kGroup] = {};
  // MX factors per block (padded to whole vectors of blocks).
  HWY_ALIGN float first[kGroup / 16 + 16], second[kGroup / 16 + 16];
  const bool bytes_out = p.element_bits == 8;
  for (std::size_t b0 = 0; b0 < blocks; b0 += group_blocks) {
    const std::size_t nb = std::min(group_blocks, blocks - b0);
    std::uint8_t* code_out = bytes_out ? elements + b0 * k : codes;
    ScalesOfGroup(du, p, in + b0 * k, nb, scales + b0, first, second);
    // MX groups of whole 4-vector runs where every block has a finite amax
    // and a one-product factor (all but extreme scales): the elements in runs
    // of four vectors, each times its block's factor, four stores in one.
    // (NVFP4: every block finite with a usable total, each element divided
    // by its block's total and clamped to +-6, as below.)
    bool runs = (nb * k) % (4 * lanes) == 0;
    for (std::size_t b = 0; runs && b < nb; ++b) {
      runs = p.nvfp4 ? scales[b0 + b] != 0x7F && second[b] != 0.0f
                     : scales[b0 + b] != 0xFF && second[b] == 1.0f;
    }
    if (runs) {
      const float* from = in + b0 * k;
      using VI = hn::Vec<hn::RebindToSigned<decltype(du)>>;
      auto encode_runs = [&](auto nvfp4_tag) HWY_ATTR {
        for (std::size_t j = 0; j < nb * k; j += 4 * lanes) {
          VI code[4];
          for (std::size_t v = 0; v < 4; ++v) {
            const std::size_t at = j + v * lanes;
            const auto x = hn::LoadU(df, from + at);
            const auto factor = hn::Set(df, first[at / k]);
            if constexpr (decltype(nvfp4_tag)::value) {
              code[v] = Nvfp4Element(du, p, x, factor);
            } else {
              code[v] = FastEncode(du, p, hn::BitCast(du, hn::Mul(x, factor)));
            }
          }
          StoreCodes4(hn::RebindToSigned<decltype(du)>(), code[0], code[1], code[2], code[3],
                      code_out + j);
        }
      };
      if (p.nvfp4) {
        encode_runs(std::true_type());
      } else {
        encode_runs(std::false_type());
      }
    }
    for (std::size_t b = 0; !runs && b < nb; ++b) {
      const float* block = in + (b0 + b) * k;
      std::uint8_t* dst = code_out + b * k;
      if (!p.nvfp4) {
        if (scales[b0 + b] == 0xFF) {  // NaN or Inf in the block
          std::memset(dst, static_cast<int>(p.nan_code), k);
          continue;
        }
        const auto vfirst = hn::Set(df, first[b]);
        if (second[b] == 1.0f) {  // all but the extreme scales: one product
          for (std::size_t j = 0; j < k; j += lanes) {
            const auto scaled = hn::Mul(hn::LoadU(df, block + j), vfirst);
            hn::StoreU(
                hn::TruncateTo(d8, hn::BitCast(du, FastEncode(du, p, hn::BitCast(du, scaled)))), d8,
                dst + j);
          }
          continue;
        }
        const auto vsecond = hn::Set(df, second[b]);
        for (std::size_t j = 0; j < k; j += lanes) {
          const auto scaled = hn::Mul(hn::Mul(hn::LoadU(df, block + j), vfirst), vsecond);
          hn::StoreU(
              hn::TruncateTo(d8, hn::BitCast(du, FastEncode(du, p, hn::BitCast(du, scaled)))), d8,
              dst + j);
        }
        continue;
      }
      // NVFP4: the block's scale and total from ScalesOfGroup, then a
      // division per element (the reference's v / total, which a reciprocal
      // would not reproduce).
      if (scales[b0 + b] == 0x7F) {  // NaN or Inf in the block
        std::memset(dst, static_cast<int>(p.nan_code), k);
        continue;
      }
      if (second[b] == 0.0f) {  // a total scale of 0 or not finite
        std::memset(dst, 0, k);
        continue;
      }
      const auto total = hn::Set(df, first[b]);
      for (std::size_t j = 0; j < k; j += lanes) {
        const auto code = Nvfp4Element(du, p, hn::LoadU(df, block + j), total);
        hn::StoreU(hn::TruncateTo(d8, hn::BitCast(du, code)), d8, dst + j);
      }
    }
    if (!bytes_out) {
      PackGroup(p.element_bits, codes, nb * k,
                elements + b0 * k * static_cast<std::size_t>(p.element_bits) / 8);
    }
  }
}

// (`in_end`, the input's end, serves the 16-bit inputs' prefetch below; the
// fp32 kernel does not prefetch.)
inline void QuantizeBlocks(const BlockQuantParams& p, const float* in, std::size_t blocks,
                           std::uint8_t* elements, std::uint8_t* scales, const float* /*in_end*/) {
  QuantizeBlocksImpl(p, in, blocks, elements, scales);
}

// 16-bit input (bf16 / fp16 bits): each group of blocks is widened, exactly,
// into an fp32 buffer in L1 (LoadAsF32Bits) and quantized from there by the
// fp32 kernel, so the result is the fp32 path's on the widened values.
template <Input In>
HWY_NOINLINE void QuantizeBlocksFrom16(const BlockQuantParams& p,
                                       const std::uint16_t* HWY_RESTRICT in, std::size_t blocks,
                                       std::uint8_t* HWY_RESTRICT elements,
                                       std::uint8_t* HWY_RESTRICT scales,
                                       const std::uint16_t* in_end) {
  const auto readable = static_cast<std::size_t>(in_end - in);
  const BlockTagU du;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t k = static_cast<std::size_t>(p.block_size);
  const std::size_t group_blocks = std::max<std::size_t>(1, kGroup / k);
  const auto bits = static_cast<std::size_t>(p.element_bits);
  HWY_ALIGN float wide[kGroup];
  for (std::size_t b0 = 0; b0 < blocks; b0 += group_blocks) {
    const std::size_t nb = std::min(group_blocks, blocks - b0);
    const std::uint16_t* from = in + b0 * k;
    for (std::size_t j = 0; j < nb * k; j += lanes) {
      PrefetchAhead(in, b0 * k + j, readable);
      hn::Store(hn::BitCast(df, LoadAsF32Bits<In>(du, from + j)), df, wide + j);
    }
    QuantizeBlocksImpl(p, wide, nb, elements + b0 * k * bits / 8, scales + b0);
  }
}

inline void QuantizeBlocksBF16(const BlockQuantParams& p, const std::uint16_t* in,
                               std::size_t blocks, std::uint8_t* elements, std::uint8_t* scales,
                               const std::uint16_t* in_end) {
  QuantizeBlocksFrom16<Input::kBF16>(p, in, blocks, elements, scales, in_end);
}
inline void QuantizeBlocksF16(const BlockQuantParams& p, const std::uint16_t* in,
                              std::size_t blocks, std::uint8_t* elements, std::uint8_t* scales,
                              const std::uint16_t* in_end) {
  QuantizeBlocksFrom16<Input::kF16>(p, in, blocks, elements, scales, in_end);
}

// A float element times its block's scale, in one rounding: the magnitude's
// bits moved to fp32's exponent/mantissa fields with the exponent raised by
// `offset` (>= 1, so every code is a normal fp32: an element subnormal gets
// offset + 1 and its false leading one subtracted, exactly), then one multiply
// by `factor` (a normal fp32) rounds the exact product P * scale as the
// reference's double product cast to fp32 does. NaN and Inf codes by their
// sign, as decode_f32 (only MX reaches them: an NVFP4 element is E2M1).
struct FastDecodeBlock {
  int offset;
  float factor;
};
template <class DI>
HWY_INLINE hn::Vec<DI> FastDecode(DI di, const BlockDequantParams& p, const FastDecodeBlock& block,
                                  hn::Vec<DI> code) {
  const hn::Rebind<float, DI> df;
  const DecodeParams& e = p.element;
  const auto magnitude = hn::And(code, SetBits(di, e.magnitude_mask));
  const auto subnormal = hn::Lt(magnitude, hn::Set(di, 1 << e.man_bits));
  const auto offset_bits = hn::IfThenElse(subnormal, hn::Set(di, (block.offset + 1) << 23),
                                          hn::Set(di, block.offset << 23));
  const auto moved = hn::Add(hn::ShiftLeftSame(magnitude, 23 - e.man_bits), offset_bits);
  const auto leading_one = std::bit_cast<float>(detail::pow2_bits(block.offset + 1 - 127));
  const auto exact =
      hn::Sub(hn::BitCast(df, moved),
              hn::IfThenElseZero(hn::RebindMask(df, subnormal), hn::Set(df, leading_one)));
  // The sign goes on before the product (NVFP4's total scale may be negative).
  const auto sign = hn::And(hn::ShiftLeftSame(code, 32 - p.element_bits), SetBits(di, 0x80000000u));
  const auto signed_value = hn::Or(hn::BitCast(di, exact), sign);
  auto bits = hn::BitCast(di, hn::Mul(hn::BitCast(df, signed_value), hn::Set(df, block.factor)));
  bits = hn::IfThenElse(hn::Eq(magnitude, SetBits(di, e.inf_magnitude)),
                        hn::Or(hn::Set(di, 0x7F800000), sign), bits);
  return hn::IfThenElse(hn::Gt(magnitude, SetBits(di, e.nan_above)),
                        hn::Or(hn::Set(di, 0x7FC00000), sign), bits);
}

template <int K>
HWY_NOINLINE void DequantizeBlocksImpl(const BlockDequantParams& params,
                                       const std::uint8_t* HWY_RESTRICT elements,
                                       const std::uint8_t* HWY_RESTRICT scales, std::size_t blocks,
                                       float* HWY_RESTRICT out, const std::uint8_t* elements_end) {
  const BlockDequantParams p = params;
  const auto readable = static_cast<std::size_t>(elements_end - elements);
  const BlockTagU du;
  const hn::RebindToSigned<decltype(du)> di;
  const hn::Rebind<float, decltype(du)> df;
  const hn::Rebind<std::uint8_t, decltype(du)> d8;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t k = static_cast<std::size_t>(p.block_size);
  const std::size_t group_blocks = std::max<std::size_t>(1, kGroup / k);
  HWY_ALIGN std::uint8_t codes[kGroup] = {};
  const bool bytes_in = p.element_bits == 8;
  const auto nan = hn::BitCast(df, hn::Set(du, 0x7FC00000u));
  // Non-temporal stores where every block starts on a 64-byte boundary.
  const bool stream = p.stream && reinterpret_cast<std::uintptr_t>(out) % 64 == 0 &&
                      (k * sizeof(float)) % 64 == 0 && hn::Lanes(df) * sizeof(float) <= 64;
  auto store = [&](hn::Vec<decltype(df)> v, float* to) HWY_ATTR {
    if (stream) {
      hn::Stream(v, df, to);
    } else {
      hn::StoreU(v, df, to);
    }
  };
  // 8-bit float elements through an IEEE half (DecodeFast: the exact element
  // value, Inf and NaN), then one product with the block's 2^t.
  const bool via_half = kHalfConversion && K == kFloatKernel && !p.nvfp4 && bytes_in &&
                        p.element.fast == DecodeParams::Fast::kViaF16;
  // 4-bit float elements through a 16-lane table of their values (exact),
  // then one product with the block's factor, as via_half.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const bool nibble_table = K == kFloatKernel && p.element_bits == 4 && hn::Lanes(df) == 16;
  const auto table = hn::LoadU(df, p.nibble_values);
  auto lookup = [&](const std::uint8_t* from) HWY_ATTR {
    const auto index = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, from)));
    return hn::TableLookupLanes(table, hn::IndicesFromVec(df, index));
  };
#else
  const bool nibble_table = false;
  auto lookup = [&](const std::uint8_t*) { return hn::Zero(df); };
#endif
  for (std::size_t b0 = 0; b0 < blocks; b0 += group_blocks) {
    const std::size_t nb = std::min(group_blocks, blocks - b0);
    const std::uint8_t* code_in = codes;
    if (bytes_in) {
      code_in = elements + b0 * k;
    } else {
      UnpackGroup(p.element_bits, elements + b0 * k * static_cast<std::size_t>(p.element_bits) / 8,
                  nb * k, codes);
    }
    for (std::size_t b = 0; b < nb; ++b) {
      float* dst = out + (b0 + b) * k;
      const std::uint8_t* src = code_in + b * k;
      const std::size_t packed_bytes = k * static_cast<std::size_t>(p.element_bits) / 8;
      PrefetchAhead(elements, (b0 + b) * packed_bytes, readable);
      const std::uint8_t scale = scales[b0 + b];
      float first = 1.0f, second;
      // Float elements: the exponent offset that FastDecode adds (kept inside
      // fp32's normal exponents) and the factor left for one multiply.
      int offset = 0;
      if (p.nvfp4) {
        second = p.e4m3_values[scale];
        if (std::isnan(second)) {
          for (std::size_t j = 0; j < k; j += lanes) store(nan, dst + j);
          continue;
        }
        second = p.tensor_scale * second;
        if (nibble_table) {
          const auto total = hn::Set(df, second);
          for (std::size_t j = 0; j < k; j += lanes)
            store(hn::Mul(lookup(src + j), total), dst + j);
          continue;
        }
        offset = static_cast<int>(p.element.exp_rebias);  // exactly P, times total
      } else {
        if (scale == 0xFF) {
          for (std::size_t j = 0; j < k; j += lanes) store(nan, dst + j);
          continue;
        }
        // P * 2^t, t = s - fraction_bits: exact times 2^(t - tb), then one
        // rounding by the normal 2^tb (as the double product cast to fp32).
        const int t = static_cast<int>(scale) - 127 - p.fraction_bits;
        if (nibble_table && t >= -126) {
          const auto factor = hn::Set(df, std::bit_cast<float>(detail::pow2_bits(t)));
          for (std::size_t j = 0; j < k; j += lanes)
            store(hn::Mul(lookup(src + j), factor), dst + j);
          continue;
        }
        if (via_half && t >= -126) {
          const auto factor = hn::Set(df, std::bit_cast<float>(detail::pow2_bits(t)));
          for (std::size_t j = 0; j < k; j += lanes) {
            store(hn::Mul(hn::BitCast(df, DecodeFast(di, p.element, src + j)), factor), dst + j);
          }
          continue;
        }
        const int tb = std::max(t, -126);
        first = std::bit_cast<float>(detail::pow2_bits(t - tb));
        second = std::bit_cast<float>(detail::pow2_bits(tb));
        if constexpr (K == kFloatKernel) {
          const int total = static_cast<int>(p.element.exp_rebias) + t;
          offset = std::clamp(
              total, 1, 254 - static_cast<int>(p.element.magnitude_mask >> p.element.man_bits));
          second = std::bit_cast<float>(detail::pow2_bits(total - offset));
        }
      }
      if constexpr (K == kFloatKernel) {
        const FastDecodeBlock block{offset, second};
        for (std::size_t j = 0; j < k; j += lanes) {
          const auto code = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, src + j)));
          store(hn::BitCast(df, FastDecode(di, p, block, code)), dst + j);
        }
      } else {
        const auto vfirst = hn::Set(df, first);
        const auto vsecond = hn::Set(df, second);
        for (std::size_t j = 0; j < k; j += lanes) {
          const auto code = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, src + j)));
          const auto value = hn::BitCast(df, DecodeAny<K>(di, p.element, code));
          store(hn::Mul(hn::Mul(value, vfirst), vsecond), dst + j);
        }
      }
    }
  }
  if (stream) hwy::FlushStream();
}

// (`elements_end`: as QuantizeBlocks' in_end, for the packed input.)
inline void DequantizeBlocks(const BlockDequantParams& p, const std::uint8_t* elements,
                             const std::uint8_t* scales, std::size_t blocks, float* out,
                             const std::uint8_t* elements_end) {
  if (p.integer) {
    DequantizeBlocksImpl<kIntKernel>(p, elements, scales, blocks, out, elements_end);
  } else {
    DequantizeBlocksImpl<kFloatKernel>(p, elements, scales, blocks, out, elements_end);
  }
}

// bf16 output: each group of blocks is dequantized to fp32 in L1 by the
// kernel above and rounded to bf16 (F32BitsToBF16), as the fp32 value of
// dequantize_blocked rounded to the nearest bf16.
HWY_NOINLINE void DequantizeBlocksToBF16Impl(const BlockDequantParams& p,
                                             const std::uint8_t* HWY_RESTRICT elements,
                                             const std::uint8_t* HWY_RESTRICT scales,
                                             std::size_t blocks, std::uint16_t* HWY_RESTRICT out,
                                             const std::uint8_t* elements_end) {
  const BlockTagU du;
  const hn::Rebind<std::uint16_t, decltype(du)> d16;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t k = static_cast<std::size_t>(p.block_size);
  const std::size_t group_blocks = std::max<std::size_t>(1, kGroup / k);
  const auto bits = static_cast<std::size_t>(p.element_bits);
  HWY_ALIGN float wide[kGroup];
  for (std::size_t b0 = 0; b0 < blocks; b0 += group_blocks) {
    const std::size_t nb = std::min(group_blocks, blocks - b0);
    DequantizeBlocks(p, elements + b0 * k * bits / 8, scales + b0, nb, wide, elements_end);
    for (std::size_t j = 0; j < nb * k; j += lanes) {
      const auto f32 = hn::BitCast(du, hn::Load(hn::Rebind<float, decltype(du)>(), wide + j));
      hn::StoreU(hn::TruncateTo(d16, F32BitsToBF16(du, f32)), d16, out + b0 * k + j);
    }
  }
}

inline void DequantizeBlocksToBF16(const BlockDequantParams& p, const std::uint8_t* elements,
                                   const std::uint8_t* scales, std::size_t blocks,
                                   std::uint16_t* out, const std::uint8_t* elements_end) {
  DequantizeBlocksToBF16Impl(p, elements, scales, blocks, out, elements_end);
}

// ---- Fake quantization: quantize, then dequantize, with no codes between ----
//
// The values of QuantizeBlocks followed by DequantizeBlocks (so of the scalar
// reference), bit for bit, for nearest-even and stochastic elements. An
// element code's value is exactly the scaled input rounded to the element's
// grid and clamped to the largest element value, so the kernels compute that
// value and multiply it by the block's scale:
//  1. y = x / X as QuantizeBlocks does (MX: x times 2^-s, as two exact factors
//     at the extreme scales; NVFP4: x / total, clamped to +-6).
//  2. The element value r (ElementValue). Floats: |y| rounded at the unit
//     2^(max(e, emin) - M), e the exponent of |y|; nearest-even by the fp32
//     adder, r = (|y| + c) - c with c = 2^(max(e, emin) + 23 - M) (exact: c's
//     unit is the element's, as in FastEncode); stochastic from n = floor(|y|
//     / unit) and F, the top 32 bits of the dropped fraction, as convert-inl.h's
//     steps 2-4 (n + 1 iff F + random carries out of 32 bits), r = n * unit.
//     Then r = min(r, max_elem) with y's sign (a zero keeps it, as the
//     element's -0 does). Integers: y rounded to an integer the same ways (the
//     nearest-even adder is 1.5 * 2^23), clamped to [int_min, int_max]; zero
//     is +0, as an integer code has no -0.
//  3. value = r * 2^t (MX, t = s - fraction_bits): one product, which rounds
//     the exact r * 2^t once, as the reference's double product cast to fp32;
//     for t < -126 two, r * 2^(t + 126) * 2^-126, the first exact (a nonzero
//     element value is at least 2^-16 and t >= -133). NVFP4: r * total, the
//     reference's fp32 product. A NaN block gives NaN (0x7FC00000); an NVFP4
//     block with an unusable total scale gives +0 (its codes are 0).
// FakeQuantRowBlocks takes whole blocks of k contiguous values, as
// QuantizeBlocks. FakeQuantColumns takes blocks along a strided axis, one
// block per lane: a vector holds neighbouring columns, so loads and stores
// stay contiguous and nothing is transposed.

// Step 2 for fp32 lanes y (random: the stochastic bits, else unused).
template <bool kStochastic, bool kInteger, class DF>
HWY_INLINE hn::Vec<DF> ElementValue(DF df, const BlockQuantParams& p, hn::Vec<DF> y,
                                    hn::Vec<hn::RebindToUnsigned<DF>> random) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  using VI = hn::Vec<decltype(di)>;
  if constexpr (!kStochastic && kInteger) {
    // |y| < 2^8 (y = x * 2^(fraction_bits - s), |x| < 2^(s + 1)).
    const auto magic = hn::Set(df, 12582912.0f);  // 1.5 * 2^23
    const auto r = hn::Sub(hn::Add(y, magic), magic);
    return hn::Min(hn::Max(r, hn::Set(df, static_cast<float>(p.int_min))),
                   hn::Set(df, static_cast<float>(p.int_max)));
  }
  const VI bits = hn::BitCast(di, y);
  const VI abs = hn::And(bits, hn::Set(di, 0x7FFFFFFF));
  const auto emin_bits = static_cast<std::int32_t>(p.min_normal_bits);
  if constexpr (!kStochastic) {
    // The exponent held within [emin, emax + 1], as FastEncode: beyond the
    // largest binade every value clamps anyway.
    const int emin = emin_bits >> 23;  // biased
    const auto top_bits =
        static_cast<std::int32_t>(emin + static_cast<int>(p.max_magnitude >> p.man_bits)) << 23;
    const VI exponent =
        hn::Min(hn::Max(hn::And(abs, hn::Set(di, 0x7F800000)), hn::Set(di, emin_bits)),
                hn::Set(di, top_bits));
    const auto c = hn::BitCast(df, hn::Add(exponent, hn::Set(di, (23 - p.man_bits) << 23)));
    const auto r = hn::Min(hn::Sub(hn::Add(hn::BitCast(df, abs), c), c), hn::Set(df, p.max_value));
    return hn::Or(
        r, hn::BitCast(df, hn::And(bits, hn::Set(di, std::numeric_limits<std::int32_t>::min()))));
  } else {
    // Steps 2-4 of convert-inl.h: |y| = sig * 2^(e - 150) (e the biased
    // exponent, fp32 subnormals at e = 1), the unit 2^(unit - 127) with unit
    // = max(e, emin) - M (integers: 127), n = sig >> s, F = the s dropped bits
    // at the top of 32, s = unit - e + 23 (integers: at least 4; from
    // |y| >= 2^19 on, n is beyond every int_max anyway).
    const VI zero = hn::Zero(di);
    const VI e = hn::Max(hn::ShiftRight<23>(abs), hn::Set(di, 1));
    // The mantissa with the implicit bit of a normal: abs - (e - 1) * 2^23.
    const VI sig = hn::Sub(hn::Add(abs, hn::Set(di, 0x800000)), hn::ShiftLeft<23>(e));
    VI unit;
    VI s;
    if constexpr (kInteger) {
      unit = hn::Set(di, 127);
      s = hn::Max(hn::Sub(hn::Set(di, 150), e), hn::Set(di, 4));
    } else {
      unit = hn::Sub(hn::Max(e, hn::Set(di, emin_bits >> 23)), hn::Set(di, p.man_bits));
      s = hn::Add(hn::Sub(unit, e), hn::Set(di, 23));
    }
    const auto [n, fraction] = SplitAt(du, sig, s);
    // Up iff F + random carries out of 32 bits (the sum wraps below F).
    const auto up = hn::Lt(hn::Add(fraction, random), fraction);
    const VI count = hn::BitCast(di, hn::Sub(n, hn::VecFromMask(du, up)));
    if constexpr (kInteger) {
      const VI value = hn::IfThenElse(hn::Lt(bits, zero), hn::Sub(zero, count), count);
      return hn::ConvertTo(df,
                           hn::Min(hn::Max(value, hn::Set(di, p.int_min)), hn::Set(di, p.int_max)));
    } else {
      const auto r =
          hn::Min(hn::Mul(hn::ConvertTo(df, count), hn::BitCast(df, hn::ShiftLeft<23>(unit))),
                  hn::Set(df, p.max_value));
      return hn::Or(
          r, hn::BitCast(df, hn::And(bits, hn::Set(di, std::numeric_limits<std::int32_t>::min()))));
    }
  }
}

// NVFP4's step 1: x / total clamped to +-6 (as Nvfp4Element).
template <class DF>
HWY_INLINE hn::Vec<DF> Nvfp4Scaled(DF df, hn::Vec<DF> x, hn::Vec<DF> total) {
  const hn::RebindToUnsigned<DF> du;
  const auto q = hn::BitCast(du, hn::Div(x, total));
  const auto abs = hn::Min(hn::And(q, hn::Set(du, 0x7FFFFFFFu)), hn::Set(du, 0x40C00000u));  // 6
  return hn::BitCast(df, hn::Or(abs, hn::And(q, hn::Set(du, 0x80000000u))));
}

// 2^e as an fp32 vector (int32 lanes e, -126 <= e <= 127).
template <class DF>
HWY_INLINE hn::Vec<DF> Pow2(DF df, hn::Vec<hn::RebindToSigned<DF>> e) {
  const hn::RebindToSigned<DF> di;
  return hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(e, hn::Set(di, 127))));
}

// Nearest-even MX with the block scale folded into the grid: steps 1-3 in one
// rounding, x rounded at the element's unit times X = 2^t directly and
// clamped to X * max_elem (floats: (|x| + c) - c with c = X * 2^(max(e_y, emin)
// + 23 - M), e_y the exponent of y = x / X; integers: (x + m) - m with m =
// X * 1.5 * 2^23, clamped to X * [int_min, int_max]). The scaling by X is
// exact, so this is r * X with r of ElementValue, and r * X is exact in fp32
// here (a multiple of X * 2^(emin - M) below X * 2^(emax + 1)), as the
// reference's product then is. Valid when the constants stay normal fp32
// numbers: t within ScaledRneRangeOf (floats: emin + t >= -126 and emax + t +
// 23 - M <= 127; integers: -126 <= t <= 103). `low`: floats, the fp32 bits of 2^(emin + t);
// integers, m. `lo`, `hi`: the clamp (floats: lo unused, hi = X * max_elem).
struct ScaledRneRange {
  int t_min, t_max;
};
inline ScaledRneRange ScaledRneRangeOf(const BlockQuantParams& p) {
  if (p.integer) return {-126, 103};
  const int emin = static_cast<int>(p.min_normal_bits >> 23) - 127;
  return {-126 - emin, 104 + p.man_bits - p.emax_elem};
}
template <bool kInteger, class DF>
HWY_INLINE hn::Vec<DF> ScaledRneValue(DF df, const BlockQuantParams& p, hn::Vec<DF> x,
                                      hn::Vec<DF> low, hn::Vec<DF> lo, hn::Vec<DF> hi) {
  if constexpr (kInteger) {
    (void)p;
    return hn::Min(hn::Max(hn::Sub(hn::Add(x, low), low), lo), hi);
  } else {
    (void)lo;
    const hn::RebindToSigned<DF> di;
    const auto bits = hn::BitCast(di, x);
    const auto abs = hn::And(bits, hn::Set(di, 0x7FFFFFFF));
    const auto exponent = hn::Max(hn::And(abs, hn::Set(di, 0x7F800000)), hn::BitCast(di, low));
    const auto c = hn::BitCast(df, hn::Add(exponent, hn::Set(di, (23 - p.man_bits) << 23)));
    const auto r = hn::Min(hn::Sub(hn::Add(hn::BitCast(df, abs), c), c), hi);
    return hn::Or(
        r, hn::BitCast(df, hn::And(bits, hn::Set(di, std::numeric_limits<std::int32_t>::min()))));
  }
}
// ScaledRneValue's constants for nb blocks from their E8M0 scale codes, a
// vector of blocks at a time, into low / lo / hi (nb rounded up to whole
// vectors). Returns whether every block is finite with t in ScaledRneRangeOf.
template <bool kInteger, class DU>
HWY_INLINE bool ScaledRneGroup(DU du, const BlockQuantParams& p,
                               const std::uint8_t* HWY_RESTRICT scales, std::size_t nb,
                               float* HWY_RESTRICT low, float* HWY_RESTRICT lo,
                               float* HWY_RESTRICT hi) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  const hn::Rebind<std::uint8_t, DU> d8;
  const std::size_t lanes = hn::Lanes(du);
  const int emin = static_cast<int>(p.min_normal_bits >> 23) - 127;
  const ScaledRneRange range = ScaledRneRangeOf(p);  // a NaN block's 0xFF is beyond it
  bool all = true;
  for (std::size_t s = 0; s < nb; s += lanes) {
    const auto code = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, scales + s)));
    const auto t = hn::Sub(code, hn::Set(di, 127 + p.fraction_bits));
    // (Highway 1.0 has no integer >= or <=: bounds one beyond.)
    const auto valid =
        hn::And(hn::Gt(t, hn::Set(di, range.t_min - 1)), hn::Lt(t, hn::Set(di, range.t_max + 1)));
    all = all && hn::AllTrue(di, hn::Or(hn::Not(hn::FirstN(di, nb - s)), valid));
    const auto tv = hn::IfThenElseZero(valid, t);
    const auto scale = Pow2(df, tv);
    if constexpr (kInteger) {
      hn::Store(hn::Mul(hn::Set(df, 12582912.0f), scale), df, low + s);
      hn::Store(hn::Mul(hn::Set(df, static_cast<float>(p.int_min)), scale), df, lo + s);
      hn::Store(hn::Mul(hn::Set(df, static_cast<float>(p.int_max)), scale), df, hi + s);
    } else {
      hn::Store(Pow2(df, hn::Add(tv, hn::Set(di, emin))), df, low + s);
      hn::Store(hn::Mul(hn::Set(df, p.max_value), scale), df, hi + s);
    }
  }
  return all;
}

// `blocks` whole blocks of p.block_size values from `in` to `out`; element i
// draws stochastic bits at index first_low + i (key: their high half). kBlock:
// the block size when it is known at compile time (32: MX, 16: NVFP4), else 0.
template <bool kStochastic, bool kInteger, std::size_t kBlock>
HWY_NOINLINE void FakeQuantRowBlocksImpl(const BlockQuantParams& params,
                                         const float* HWY_RESTRICT in, std::size_t blocks,
                                         float* HWY_RESTRICT out, std::uint32_t key,
                                         std::uint32_t first_low) {
  const BlockQuantParams p = params;  // not aliased by the stores
  const BlockTagU du;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t k = kBlock != 0 ? kBlock : static_cast<std::size_t>(p.block_size);
  const std::size_t group_blocks = std::max<std::size_t>(1, kGroup / k);
  HWY_ALIGN std::uint8_t scales[kGroup / 16 + 16] = {};
  HWY_ALIGN float first[kGroup / 16 + 16], second[kGroup / 16 + 16];
  HWY_ALIGN float encode_factor[kGroup / 16], decode_factor[kGroup / 16];
  // Nearest-even MX: ScaledRneValue's constants per block.
  HWY_ALIGN float rne_low[kGroup / 16 + 16], rne_lo[kGroup / 16 + 16], rne_hi[kGroup / 16 + 16];
  const auto iota = hn::Iota(du, 0u);
  const auto nan = hn::BitCast(df, hn::Set(du, 0x7FC00000u));
  for (std::size_t b0 = 0; b0 < blocks; b0 += group_blocks) {
    const std::size_t nb = std::min(group_blocks, blocks - b0);
    const float* group_in = in + b0 * k;
    float* group_out = out + b0 * k;
    ScalesOfGroup(du, p, group_in, nb, scales, first, second);
    auto random = [&](std::size_t at) HWY_ATTR {  // at: the element's offset in the group
      if constexpr (kStochastic) {
        const std::uint32_t low = first_low + static_cast<std::uint32_t>(b0 * k + at);
        return StochasticBits(du, hn::Add(iota, hn::Set(du, low)), key);
      } else {
        (void)at;
        return hn::Zero(du);
      }
    };
    // Nearest-even MX where every block allows it: ScaledRneValue.
    if constexpr (!kStochastic) {
      if (!p.nvfp4 && ScaledRneGroup<kInteger>(du, p, scales, nb, rne_low, rne_lo, rne_hi)) {
        for (std::size_t b = 0; b < nb; ++b) {
          const auto vlow = hn::Set(df, rne_low[b]), vlo = hn::Set(df, rne_lo[b]),
                     vhi = hn::Set(df, rne_hi[b]);
          for (std::size_t j = b * k; j < (b + 1) * k; j += lanes) {
            hn::StoreU(ScaledRneValue<kInteger>(df, p, hn::LoadU(df, group_in + j), vlow, vlo, vhi),
                       df, group_out + j);
          }
        }
        continue;
      }
    }
    // Step 3's factor per block, and whether every block of the group is
    // ordinary: finite, with one factor each way (MX: all but the extreme
    // scales) or a usable total (NVFP4).
    bool ordinary = true;
    for (std::size_t b = 0; b < nb; ++b) {
      if (p.nvfp4) {
        ordinary = ordinary && scales[b] != 0x7F && second[b] != 0.0f;
        encode_factor[b] = decode_factor[b] = first[b];
      } else {
        const int t = static_cast<int>(scales[b]) - 127 - p.fraction_bits;
        ordinary = ordinary && scales[b] != 0xFF && second[b] == 1.0f && t >= -126;
        encode_factor[b] = first[b];
        decode_factor[b] = std::bit_cast<float>(detail::pow2_bits(std::max(t, -126)));
      }
    }
    if (ordinary) {
      for (std::size_t b = 0; b < nb; ++b) {
        const auto ef = hn::Set(df, encode_factor[b]), factor = hn::Set(df, decode_factor[b]);
        for (std::size_t j = b * k; j < (b + 1) * k; j += lanes) {
          const auto x = hn::LoadU(df, group_in + j);
          hn::Vec<decltype(df)> r;
          if (p.nvfp4) {
            r = ElementValue<kStochastic, false>(df, p, Nvfp4Scaled(df, x, ef), random(j));
          } else {
            r = ElementValue<kStochastic, kInteger>(df, p, hn::Mul(x, ef), random(j));
          }
          hn::StoreU(hn::Mul(r, factor), df, group_out + j);
        }
      }
      continue;
    }
    for (std::size_t b = 0; b < nb; ++b) {
      const std::size_t at = b * k;
      const float* block = group_in + at;
      float* dst = group_out + at;
      auto fill = [&](hn::Vec<decltype(df)> v) HWY_ATTR {
        for (std::size_t j = 0; j < k; j += lanes) hn::StoreU(v, df, dst + j);
      };
      if (p.nvfp4) {
        if (scales[b] == 0x7F) {
          fill(nan);
        } else if (second[b] == 0.0f) {
          fill(hn::Zero(df));
        } else {
          const auto total = hn::Set(df, first[b]);
          for (std::size_t j = 0; j < k; j += lanes) {
            const auto y = Nvfp4Scaled(df, hn::LoadU(df, block + j), total);
            hn::StoreU(hn::Mul(ElementValue<kStochastic, false>(df, p, y, random(at + j)), total),
                       df, dst + j);
          }
        }
        continue;
      }
      if (scales[b] == 0xFF) {
        fill(nan);
        continue;
      }
      const int t = static_cast<int>(scales[b]) - 127 - p.fraction_bits;
      const int tb = std::max(t, -126);
      const auto efirst = hn::Set(df, first[b]), esecond = hn::Set(df, second[b]);
      const auto dfirst = hn::Set(df, std::bit_cast<float>(detail::pow2_bits(t - tb)));
      const auto dsecond = hn::Set(df, std::bit_cast<float>(detail::pow2_bits(tb)));
      for (std::size_t j = 0; j < k; j += lanes) {
        const auto y = hn::Mul(hn::Mul(hn::LoadU(df, block + j), efirst), esecond);
        const auto r = ElementValue<kStochastic, kInteger>(df, p, y, random(at + j));
        hn::StoreU(hn::Mul(hn::Mul(r, dfirst), dsecond), df, dst + j);
      }
    }
  }
}

template <bool kStochastic, bool kInteger>
HWY_INLINE void FakeQuantRowBlocksOf(const BlockQuantParams& p, const float* in, std::size_t blocks,
                                     float* out, std::uint32_t key, std::uint32_t first_low) {
  switch (p.block_size) {
    case 32:
      return FakeQuantRowBlocksImpl<kStochastic, kInteger, 32>(p, in, blocks, out, key, first_low);
    case 16:
      return FakeQuantRowBlocksImpl<kStochastic, kInteger, 16>(p, in, blocks, out, key, first_low);
    default:
      return FakeQuantRowBlocksImpl<kStochastic, kInteger, 0>(p, in, blocks, out, key, first_low);
  }
}

inline void FakeQuantRowBlocks(const BlockQuantParams& p, const float* in, std::size_t blocks,
                               float* out, std::uint32_t key, std::uint32_t first_low) {
  if (p.stochastic) {
    if (p.integer) return FakeQuantRowBlocksOf<true, true>(p, in, blocks, out, key, first_low);
    return FakeQuantRowBlocksOf<true, false>(p, in, blocks, out, key, first_low);
  }
  if (p.integer) return FakeQuantRowBlocksOf<false, true>(p, in, blocks, out, key, first_low);
  FakeQuantRowBlocksOf<false, false>(p, in, blocks, out, key, first_low);
}

// FakeQuantColumns' software prefetch distance along a row, in floats: two
// 16-column tiles ahead (measured on the Zen 4 VM of docs/torch.md: about 15%
// faster along axis 0 of a 2048 x 512 tensor; 1 and 3 tiles did no better).
constexpr std::size_t kColumnPrefetch = 32;

// `columns` (a multiple of 16) neighbouring columns of `count` rows (1 <= count
// <= k) `stride` floats apart: each column one block. Row j of column c draws
// stochastic bits at index first_low + c * column_step + j (key: their high
// half).
template <bool kStochastic, bool kInteger>
HWY_NOINLINE void FakeQuantColumnsImpl(const BlockQuantParams& params, const float* HWY_RESTRICT in,
                                       std::size_t stride, std::size_t count, std::size_t columns,
                                       float* HWY_RESTRICT out, std::uint32_t key,
                                       std::uint32_t first_low, std::uint32_t column_step) {
  const BlockQuantParams p = params;  // not aliased by the stores
  const BlockTagU du;
  const hn::RebindToSigned<decltype(du)> di;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t lanes = hn::Lanes(du);
  const auto nan = hn::BitCast(df, hn::Set(du, 0x7FC00000u));
  const auto lane_index = hn::Mul(hn::Iota(du, 0u), hn::Set(du, column_step));
  for (std::size_t c0 = 0; c0 < columns; c0 += lanes) {
    const float* from = in + c0;
    float* to = out + c0;
    // Step 1 per lane: the column's amax (fp32 bits without sign). The rows
    // are `count` streams far apart, more than the hardware prefetchers
    // follow: each row's line kColumnPrefetch floats ahead is fetched here.
    auto m = hn::Zero(di);
    for (std::size_t j = 0; j < count; ++j) {
      hwy::Prefetch(from + j * stride + kColumnPrefetch);
      m = hn::Max(
          m, hn::And(hn::BitCast(di, hn::LoadU(df, from + j * stride)), hn::Set(di, 0x7FFFFFFF)));
    }
    const auto column_index =
        hn::Add(lane_index, hn::Set(du, first_low + static_cast<std::uint32_t>(c0) * column_step));
    auto random = [&](std::size_t j) HWY_ATTR {
      if constexpr (kStochastic) {
        return StochasticBits(du, hn::Add(column_index, hn::Set(du, static_cast<std::uint32_t>(j))),
                              key);
      } else {
        (void)j;
        return hn::Zero(du);
      }
    };
    if (p.nvfp4) {
      const auto scale = Nvfp4ScaleOf(du, p, hn::BitCast(du, m));
      const auto nan_block = hn::RebindMask(df, hn::Eq(scale.code, hn::Set(du, 0x7Fu)));
      for (std::size_t j = 0; j < count; ++j) {
        const auto y = Nvfp4Scaled(df, hn::LoadU(df, from + j * stride), scale.total);
        auto v = hn::Mul(ElementValue<kStochastic, false>(df, p, y, random(j)), scale.total);
        v = hn::IfThenElse(nan_block, nan, hn::IfThenElseZero(scale.valid, v));
        hn::StoreU(v, df, to + j * stride);
      }
      continue;
    }
    const auto code = hn::BitCast(di, MxScaleCodes(du, p, hn::BitCast(du, m)));
    const auto nan_block = hn::RebindMask(df, hn::Eq(code, hn::Set(di, 0xFF)));
    // The factors of step 1 (MxEncodeFactors) and step 3, lane by lane.
    const auto f = hn::Sub(hn::Set(di, 127 + p.fraction_bits), code);
    const auto f1 = hn::Min(hn::Max(f, hn::Set(di, -126)), hn::Set(di, 127));
    const auto t = hn::Sub(code, hn::Set(di, 127 + p.fraction_bits));
    const auto tb = hn::Max(t, hn::Set(di, -126));
    const auto efirst = Pow2(df, f1), esecond = Pow2(df, hn::Sub(f, f1));
    const auto dfirst = Pow2(df, hn::Sub(t, tb)), dsecond = Pow2(df, tb);
    // (A NaN block's lanes compute garbage here, replaced by NaN below.)
    if constexpr (!kStochastic) {
      // Nearest-even with the scale folded in (ScaledRneValue), where every
      // lane but NaN blocks' allows it (ScaledRneRangeOf, lane by lane).
      const auto nan_lane = hn::RebindMask(di, nan_block);
      const int emin = static_cast<int>(p.min_normal_bits >> 23) - 127;
      const ScaledRneRange range = ScaledRneRangeOf(p);
      const auto valid =
          hn::And(hn::Gt(t, hn::Set(di, range.t_min - 1)), hn::Lt(t, hn::Set(di, range.t_max + 1)));
      if (hn::AllTrue(di, hn::Or(nan_lane, valid))) {
        const auto tv = hn::IfThenElse(nan_lane, hn::Zero(di), t);  // NaN lanes: any valid t
        const auto scale = Pow2(df, tv);
        hn::Vec<decltype(df)> low, lo, hi;
        if constexpr (kInteger) {
          low = hn::Mul(hn::Set(df, 12582912.0f), scale);
          lo = hn::Mul(hn::Set(df, static_cast<float>(p.int_min)), scale);
          hi = hn::Mul(hn::Set(df, static_cast<float>(p.int_max)), scale);
        } else {
          low = Pow2(df, hn::Add(tv, hn::Set(di, emin)));
          lo = hn::Zero(df);
          hi = hn::Mul(hn::Set(df, p.max_value), scale);
        }
        if (hn::AllFalse(di, nan_lane)) {  // the usual case: no NaN block to patch
          for (std::size_t j = 0; j < count; ++j) {
            hn::StoreU(
                ScaledRneValue<kInteger>(df, p, hn::LoadU(df, from + j * stride), low, lo, hi), df,
                to + j * stride);
          }
          continue;
        }
        for (std::size_t j = 0; j < count; ++j) {
          const auto v =
              ScaledRneValue<kInteger>(df, p, hn::LoadU(df, from + j * stride), low, lo, hi);
          hn::StoreU(hn::IfThenElse(nan_block, nan, v), df, to + j * stride);
        }
        continue;
      }
    }
    if (hn::AllTrue(di, hn::And(hn::Eq(f, f1), hn::Eq(t, tb)))) {
      for (std::size_t j = 0; j < count; ++j) {
        const auto y = hn::Mul(hn::LoadU(df, from + j * stride), efirst);
        const auto v = hn::Mul(ElementValue<kStochastic, kInteger>(df, p, y, random(j)), dsecond);
        hn::StoreU(hn::IfThenElse(nan_block, nan, v), df, to + j * stride);
      }
      continue;
    }
    for (std::size_t j = 0; j < count; ++j) {
      const auto y = hn::Mul(hn::Mul(hn::LoadU(df, from + j * stride), efirst), esecond);
      const auto r = ElementValue<kStochastic, kInteger>(df, p, y, random(j));
      const auto v = hn::Mul(hn::Mul(r, dfirst), dsecond);
      hn::StoreU(hn::IfThenElse(nan_block, nan, v), df, to + j * stride);
    }
  }
}

inline void FakeQuantColumns(const BlockQuantParams& p, const float* in, std::size_t stride,
                             std::size_t count, std::size_t columns, float* out, std::uint32_t key,
                             std::uint32_t first_low, std::uint32_t column_step) {
  if (p.stochastic) {
    if (p.integer) {
      return FakeQuantColumnsImpl<true, true>(p, in, stride, count, columns, out, key, first_low,
                                              column_step);
    }
    return FakeQuantColumnsImpl<true, false>(p, in, stride, count, columns, out, key, first_low,
                                             column_step);
  }
  if (p.integer) {
    return FakeQuantColumnsImpl<false, true>(p, in, stride, count, columns, out, key, first_low,
                                             column_step);
  }
  FakeQuantColumnsImpl<false, false>(p, in, stride, count, columns, out, key, first_low,
                                     column_step);
}

// The largest finite |x| of in[0, count) as fp32 bits (NVFP4's tensor amax).
std::uint32_t FiniteAmaxBits(const float* HWY_RESTRICT in, std::size_t count) {
  const hn::ScalableTag<std::int32_t> di;
  const hn::Rebind<float, decltype(di)> df;
  const std::size_t lanes = hn::Lanes(di);
  const auto inf = hn::Set(di, 0x7F800000);
  auto m0 = hn::Zero(di), m1 = hn::Zero(di);
  auto finite_abs = [&](const float* from) {
    const auto abs = hn::And(hn::BitCast(di, hn::LoadU(df, from)), hn::Set(di, 0x7FFFFFFF));
    return hn::IfThenElseZero(hn::Lt(abs, inf), abs);
  };
  std::size_t i = 0;
  for (; i + 2 * lanes <= count; i += 2 * lanes) {
    PrefetchAhead(in, i, count);
    m0 = hn::Max(m0, finite_abs(in + i));
    m1 = hn::Max(m1, finite_abs(in + i + lanes));
  }
  auto best = static_cast<std::uint32_t>(hn::GetLane(hn::MaxOfLanes(di, hn::Max(m0, m1))));
  for (; i < count; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, in + i, 4);
    bits &= 0x7FFFFFFFu;
    if (bits < 0x7F800000u) best = std::max(best, bits);
  }
  return best;
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
