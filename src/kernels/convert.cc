// src/kernels/convert.cc — dispatch for lowp/kernels.h: derives the kernel
// parameters from a Format, splits arrays across threads (and at multiples of
// 2^32 elements, where the stochastic key changes), and calls the best Highway
// target of convert-inl.h; formats the vector path does not cover go through a
// scalar loop over the reference (lowp::encode / lowp::decode_f32), but posits
// of at most 16 bits, which decode through a table of every code.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/convert.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "kernels/convert-inl.h"

#if HWY_ONCE

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <hwy/targets.h>

#include "kernels/params.h"
#include "lowp/error.h"
#include "lowp/kernels.h"
#include "lowp/thread_pool.h"

namespace lowp {
namespace kernels {

HWY_EXPORT(EncodeF32);
HWY_EXPORT(EncodeBF16);
HWY_EXPORT(EncodeF16);
HWY_EXPORT(DecodeToF32);
HWY_EXPORT(DecodeToBF16);
HWY_EXPORT(FakeQuantRne);

namespace {

using detail::DecodeParams;
using detail::EncodeParams;
using detail::RoundKind;

// The formats the generic vector code handles: float (not E8M0), at most 16 bits, every
// binade's fp32 exponent representable as a normal (emin >= -126), and a
// mantissa that leaves >= 13 dropped bits of an fp32 significand (M <= 10).
bool vector_format(const Format& f) {
  return f.kind == Kind::kFloat && f.specials != Specials::kE8m0 && f.bits <= 16 &&
         emin(f) >= -126 && f.man_bits <= 10 && f.bits == 1 + f.exp_bits + f.man_bits;
}
// E8M0 with the OCP bias: its own kernels (convert-inl.h).
bool vector_e8m0(const Format& f) {
  return f.kind == Kind::kFloat && f.specials == Specials::kE8m0 && f.bits == 8 && f.bias == 127;
}
// Integers of at most 16 bits (their values are exact in int32 and fp32).
bool vector_int(const Format& f) { return f.kind == Kind::kInt && f.bits <= 16; }
bool vectorized(const Format& f) { return vector_format(f) || vector_e8m0(f) || vector_int(f); }

}  // namespace

EncodeParams detail::encode_params(const Format& f, const EncodeOptions& opt) {
  EncodeParams p;
  p.man_bits = f.man_bits;
  p.emin = emin(f);
  p.sign_mask = sign_mask(f);
  p.max_magnitude = max_magnitude_code(f);
  p.code_bytes = code_bytes(f);
  p.e8m0 = vector_e8m0(f);
  p.e8m0_negative = encode(f, -1.0, opt);
  p.integer = vector_int(f);
  if (p.integer) {
    p.int_min = static_cast<std::int32_t>(int_min(f));
    p.int_max = static_cast<std::int32_t>(int_max(f));
    p.code_mask = code_mask(f);
  }
  switch (opt.rounding) {
    case Rounding::kNearestEven:
      p.round = RoundKind::kNearestEven;
      break;
    case Rounding::kNearestAway:
      p.round = RoundKind::kNearestAway;
      break;
    case Rounding::kTowardZero:
      p.round = RoundKind::kTowardZero;
      break;
    case Rounding::kStochastic:
      p.round = RoundKind::kStochastic;
      break;
  }
  // The special cases are the reference's own answers, so no policy is restated
  // here: every value below is an encode() of a representative input.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (int neg = 0; neg < 2; ++neg) {
    const double s = neg ? -1.0 : 1.0;
    p.zero[neg] = encode(f, s * 0.0, opt);
    p.inf[neg] = encode(f, s * kInf, opt);
    // (copysign: the sign of s * NaN is not specified.)
    p.nan[neg] = encode(f, std::copysign(std::numeric_limits<double>::quiet_NaN(), s), opt);
    // Finite overflow: the reference's answer for a finite input above max.
    // (2 * max_finite is finite in double even where it is not in fp32.)
    p.overflow[neg] = encode(f, s * 2.0 * max_finite(f), opt);
  }
  return p;
}

bool detail::fake_quant_rne_params(const Format& f, const EncodeParams& encode,
                                   FakeQuantRneParams& p) {
  // One pass, no codes (FakeQuantRne), where the format's units stay normal
  // fp32 numbers up to its top binade.
  if (!vector_format(f)) return false;
  auto pow2_bits = [](int e) { return static_cast<std::uint32_t>(e + 127) << 23; };
  const int top = emin(f) + static_cast<int>(encode.max_magnitude >> f.man_bits);
  if (top + 23 - f.man_bits > 127) return false;
  p.man_bits = f.man_bits;
  p.min_normal_bits = pow2_bits(emin(f));
  p.top_bits = pow2_bits(top);
  p.max_value = static_cast<float>(max_finite(f));
  for (int neg = 0; neg < 2; ++neg) {
    auto value_bits = [&](std::uint32_t code) {
      return std::bit_cast<std::uint32_t>(decode_f32(f, code));
    };
    p.zero[neg] = value_bits(encode.zero[neg]);
    p.overflow[neg] = value_bits(encode.overflow[neg]);
    p.inf[neg] = value_bits(encode.inf[neg]);
    p.nan[neg] = value_bits(encode.nan[neg]);
  }
  return true;
}

DecodeParams detail::decode_params(const Format& f) {
  DecodeParams p;
  constexpr std::uint32_t kNone = 0x7FFFFFFF;  // above every magnitude and code
  p.man_bits = f.man_bits;
  p.sign_mask = sign_mask(f);
  p.magnitude_mask = magnitude_mask(f);
  p.exp_rebias = static_cast<std::uint32_t>(127 - f.bias);
  p.subnormal_scale = static_cast<float>(exp2i(emin(f) - f.man_bits));
  // Below 2^-125 an fp32's bits are value / 2^-149 (subnormals and the first
  // normal binade alike); the largest subnormal code is below 2^emin.
  if (emin(f) <= -125) p.subnormal_shift = emin(f) - f.man_bits + 149;
  p.inf_magnitude = has_inf(f) ? inf_code(f) : kNone;
  p.nan_above = kNone;
  p.nan_code = kNone;
  p.nan_signed = true;
  switch (f.specials) {
    case Specials::kIeee:
      p.nan_above = inf_code(f);
      break;
    case Specials::kFn:
      p.nan_above = magnitude_mask(f) - 1;
      break;
    case Specials::kFnuz:
      p.nan_code = nan_code(f);
      p.nan_signed = false;
      break;
    default:
      break;
  }
  p.code_bytes = code_bytes(f);
  p.e8m0 = vector_e8m0(f);
  p.integer = vector_int(f);
  p.code_mask = code_mask(f);
  p.int_bits = f.bits;
  p.int_signed = is_signed(f);
  p.bf16_exact = (vector_format(f) && f.man_bits <= 7) || p.e8m0 || (p.integer && f.bits <= 8);
  // The faster routes (see DecodeParams::Fast). Through an IEEE half: 8-bit
  // floats of at most 5 exponent bits; with 5, only where the top binade is
  // Inf/NaN as in the half (IEEE specials), else it would decode as Inf/NaN.
  if (vector_format(f) && f.kind == Kind::kFloat) {
    const bool half = f.bits == 16 && f.exp_bits == 5 && f.man_bits == 10 && f.bias == 15 &&
                      f.specials == Specials::kIeee;
    const bool bf16 = f.bits == 16 && f.exp_bits == 8 && f.man_bits == 7 && f.bias == 127 &&
                      f.specials == Specials::kIeee;
    const bool via = f.bits == 8 && f.exp_bits >= 1 && f.man_bits >= 2 &&
                     (f.exp_bits < 5 || (f.exp_bits == 5 && f.specials == Specials::kIeee));
    if (half || bf16) {
      p.fast = half ? DecodeParams::Fast::kF16 : DecodeParams::Fast::kBf16;
      p.fast_nan_above = 0x7F800000u;
    } else if (via) {
      p.fast = DecodeParams::Fast::kViaF16;
      p.f16_shift = 10 - f.man_bits;
      p.f16_scale = static_cast<float>(exp2i(15 - f.bias));
      // The fp32 bits this route gives for magnitude code m (positive sign).
      auto fake = [&](std::uint32_t m) {
        const std::uint32_t e = m >> f.man_bits, mant = m & ((1u << f.man_bits) - 1);
        const double half_value =
            e == 0 ? std::ldexp(static_cast<double>(mant << p.f16_shift), -24)
                   : std::ldexp(1.0 + std::ldexp(static_cast<double>(mant), -f.man_bits),
                                static_cast<int>(e) - 15);
        return std::bit_cast<std::uint32_t>(static_cast<float>(half_value * p.f16_scale));
      };
      if (f.exp_bits == 5) {
        p.fast_nan_above = 0x7F800000u;  // the half's own Inf and NaN
      } else if (f.specials == Specials::kIeee) {
        p.fast_inf_bits = fake(inf_code(f));
        p.fast_nan_above = p.fast_inf_bits;
      } else if (f.specials == Specials::kFn) {
        p.fast_nan_above = fake(magnitude_mask(f) - 1);
      } else if (f.specials == Specials::kFnuz) {
        p.fast_fnuz = true;
      } else if (f.specials != Specials::kFinite) {
        p.fast = DecodeParams::Fast::kNone;
      }
    }
  }
  return p;
}

namespace {

// Runs body(begin, end) over [0, count) in `threads` contiguous pieces (fewer
// for short arrays), on the current pool's threads.
void parallel_for(std::size_t count, unsigned threads,
                  const std::function<void(std::size_t, std::size_t)>& body) {
  constexpr std::size_t kMinPiece = 1 << 14;
  std::size_t pieces = std::max<std::size_t>(1, std::min<std::size_t>(threads, count / kMinPiece));
  if (pieces <= 1) {
    body(0, count);
    return;
  }
  // Piece boundaries on multiples of 64 elements (whole cache lines).
  const std::size_t step = (count / pieces + 63) / 64 * 64;
  current_pool().run_pieces(count, pieces, step, body);
}

// The exact value of an input element (fp32, or bf16 / fp16 bits).
struct WidenF32 {
  double operator()(float x) const { return x; }
};
struct WidenBits {
  Format from;  // bf16 or fp16
  double operator()(std::uint16_t bits) const { return decode(from, bits); }
};

struct WidenF64 {
  double operator()(double x) const { return x; }
};

// A code book (Kind::kTable) in a deterministic rounding mode: the answer of
// the reference (lowp::detail::encode_table) found by a binary search over the
// table's distinct values, sorted once, instead of its linear scans per input.
// Each value's code is the reference's own answer for that value.
class TableEncoder {
 public:
  TableEncoder(const Format& f, Rounding mode) : mode_(mode) {
    for (const double y : table_values(f)) {
      // (== treats the two zeros alike: one entry for zero.)
      if (std::find(values_.begin(), values_.end(), y) == values_.end()) values_.push_back(y);
    }
    std::sort(values_.begin(), values_.end());
    for (const double y : values_) codes_.push_back(::lowp::detail::encode_table(f, y, mode, 0));
    zero_pos_ = ::lowp::detail::encode_table(f, 0.0, mode, 0);
    zero_neg_ = ::lowp::detail::encode_table(f, -0.0, mode, 0);
    nan_ = ::lowp::detail::encode_table(f, std::numeric_limits<double>::quiet_NaN(), mode, 0);
  }
  std::uint32_t operator()(double x) const {
    if (x != x) return nan_;
    const bool negative = std::signbit(x);
    const auto code = [&](std::size_t j) {
      return values_[j] == 0.0 ? (negative ? zero_neg_ : zero_pos_) : codes_[j];
    };
    const std::size_t n = values_.size();
    // k: how many values are <= x.
    const auto k = static_cast<std::size_t>(std::upper_bound(values_.begin(), values_.end(), x) -
                                            values_.begin());
    if (k == 0) return code(0);                   // below the smallest value (or -Inf)
    if (values_[k - 1] == x) return code(k - 1);  // exact
    if (k == n) return code(n - 1);               // above the largest value (or +Inf)
    const double lo = values_[k - 1], hi = values_[k];
    const bool lo_small = (lo < 0.0 ? -lo : lo) < (hi < 0.0 ? -hi : hi);
    const double mid = (lo + hi) / 2;
    bool up;  // hi rather than lo
    switch (mode_) {
      case Rounding::kNearestAway:
        up = x < mid ? false : x > mid ? true : lo_small;
        break;
      case Rounding::kTowardZero:
        up = !lo_small;
        break;
      default:  // nearest, ties to the smaller magnitude
        up = x < mid ? false : x > mid ? true : !lo_small;
        break;
    }
    return code(up ? k : k - 1);
  }

 private:
  Rounding mode_;
  std::vector<double> values_;  // distinct, ascending
  std::vector<std::uint32_t> codes_;
  std::uint32_t zero_pos_ = 0, zero_neg_ = 0, nan_ = 0;
};

// The scalar loop over the reference: codes (code_bytes(f) wide) of in[0, count).
template <typename InT, typename Widen>
void encode_scalar(const Format& f, const InT* in, std::size_t count, const Widen& widen,
                   void* out_codes, const EncodeOptions& opt, std::uint64_t seed,
                   std::uint64_t first_index) {
  auto run = [&](auto* out) {
    using CodeT = std::remove_pointer_t<decltype(out)>;
    if (f.kind == Kind::kTable && opt.rounding != Rounding::kStochastic) {
      const TableEncoder table(f, opt.rounding);
      for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<CodeT>(table(widen(in[i])));
      return;
    }
    for (std::size_t i = 0; i < count; ++i) {
      out[i] = static_cast<CodeT>(encode_at(f, widen(in[i]), opt, seed, first_index + i));
    }
  };
  switch (code_bytes(f)) {
    case 1:
      return run(static_cast<std::uint8_t*>(out_codes));
    case 2:
      return run(static_cast<std::uint16_t*>(out_codes));
    default:
      return run(static_cast<std::uint32_t*>(out_codes));
  }
}

template <typename CodeT, typename OutT>
void decode_scalar(const Format& f, const CodeT* codes, std::size_t count, OutT* out) {
  for (std::size_t i = 0; i < count; ++i) {
    if constexpr (std::is_same_v<OutT, float>) {
      out[i] = decode_f32(f, codes[i]);
    } else {
      // lowp's own nearest-even encode into bf16 (NaN: 0x7FC0 | sign).
      out[i] = static_cast<std::uint16_t>(encode(kBf16, decode(f, codes[i])));
    }
  }
}

// encode_f32 / encode_bf16 / encode_f16: `vector_run(p, in, count, out, key,
// first_low)` is the Highway entry point for the input type, as chosen for
// this call (&HWY_DYNAMIC_DISPATCH(...)).
template <typename InT, typename Widen, typename VectorRun>
void encode_any(const Format& f, std::span<const InT> in, const Widen& widen,
                const VectorRun& vector_run, void* out_codes, const EncodeOptions& opt,
                std::uint64_t seed, std::uint64_t first_index, unsigned threads) {
  const int width = code_bytes(f);
  if (!vectorized(f)) {
    parallel_for(in.size(), threads, [&](std::size_t b, std::size_t e) {
      encode_scalar(f, in.data() + b, e - b, widen,
                    static_cast<unsigned char*>(out_codes) + b * static_cast<std::size_t>(width),
                    opt, seed, first_index + b);
    });
    return;
  }
  const detail::EncodeParams p = detail::encode_params(f, opt);
  auto* out_bytes = static_cast<unsigned char*>(out_codes);
  parallel_for(in.size(), threads, [&](std::size_t b, std::size_t e) {
    // Runs that do not cross a multiple of 2^32 in the stochastic index.
    while (b < e) {
      const std::uint64_t index = first_index + b;
      const std::uint64_t to_wrap = (std::uint64_t{1} << 32) - (index & 0xFFFFFFFFu);
      const std::size_t run = static_cast<std::size_t>(std::min<std::uint64_t>(e - b, to_wrap));
      const std::uint32_t key = stochastic_key(seed, static_cast<std::uint32_t>(index >> 32));
      vector_run(p, in.data() + b, run, out_bytes + b * static_cast<std::size_t>(width), key,
                 static_cast<std::uint32_t>(index));
      b += run;
    }
  });
}

// Outputs of at least this many bytes are written with non-temporal stores:
// far larger than the caches, they would only evict what is there, and the
// stores skip reading each line first.
constexpr std::size_t kDecodeStreamBytes = std::size_t{32} << 20;

// The fp32 value of every code of a posit of at most 16 bits (decode_f32 of
// each code: the reference's own answers), built on first use per format. A
// lookup in a 256- or 65536-entry table beats decoding the regime.
const std::vector<float>& posit_decode_table(const Format& f) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::vector<float>> tables;  // (bits, es)
  const std::lock_guard<std::mutex> lock(mu);
  std::vector<float>& t = tables[{f.bits, f.exp_bits}];
  if (t.empty()) {
    t.resize(std::size_t{1} << f.bits);
    for (std::uint32_t c = 0; c < t.size(); ++c) t[c] = decode_f32(f, c);
  }
  return t;
}

// decode_to_f32 / decode_to_bf16, as encode_any.
template <typename OutT, typename VectorRun>
void decode_any(const Format& f, const void* codes, std::span<OutT> out,
                const VectorRun& vector_run, unsigned threads) {
  const int width = code_bytes(f);
  if constexpr (std::is_same_v<OutT, float>) {
    if (is_posit(f) && f.bits <= 16) {
      const float* table = posit_decode_table(f).data();
      parallel_for(out.size(), threads, [&](std::size_t b, std::size_t e) {
        if (width == 1) {
          const auto* c = static_cast<const std::uint8_t*>(codes);
          for (std::size_t i = b; i < e; ++i) out[i] = table[c[i]];
        } else {
          const auto* c = static_cast<const std::uint16_t*>(codes);
          for (std::size_t i = b; i < e; ++i) out[i] = table[c[i] & code_mask(f)];
        }
      });
      return;
    }
  }
  if (!vectorized(f)) {
    parallel_for(out.size(), threads, [&](std::size_t b, std::size_t e) {
      OutT* to = out.data() + b;
      if (width == 1) {
        decode_scalar(f, static_cast<const std::uint8_t*>(codes) + b, e - b, to);
      } else if (width == 2) {
        decode_scalar(f, static_cast<const std::uint16_t*>(codes) + b, e - b, to);
      } else {
        decode_scalar(f, static_cast<const std::uint32_t*>(codes) + b, e - b, to);
      }
    });
    return;
  }
  detail::DecodeParams p = detail::decode_params(f);
  p.stream = out.size() * sizeof(OutT) >= kDecodeStreamBytes;
  const auto* bytes = static_cast<const unsigned char*>(codes);
  parallel_for(out.size(), threads, [&](std::size_t b, std::size_t e) {
    vector_run(p, bytes + b * static_cast<std::size_t>(width), e - b, out.data() + b);
  });
}

}  // namespace

bool encode_is_vectorized(const Format& f) { return vectorized(f); }
bool decode_is_vectorized(const Format& f) { return vectorized(f); }

std::vector<std::int64_t> available_targets() {
  std::vector<std::int64_t> out;
  const std::int64_t supported = hwy::SupportedTargets() & HWY_TARGETS;
  // Highway's bits are ordered best (lowest bit) first.
  for (std::int64_t t = supported; t != 0; t &= t - 1) out.push_back(t & -t);
  return out;
}

std::string target_name(std::int64_t target) { return hwy::TargetName(target); }

std::int64_t current_target() {
  const std::int64_t supported = hwy::SupportedTargets() & HWY_TARGETS;
  return supported & -supported;
}

void set_target_for_testing(std::int64_t target) { hwy::SetSupportedTargetsForTest(target); }

}  // namespace kernels

void encode_f32(const Format& f, std::span<const float> in, void* out_codes,
                const EncodeOptions& opt, std::uint64_t seed, std::uint64_t first_index,
                unsigned threads) {
  kernels::encode_any(f, in, kernels::WidenF32{}, &HWY_DYNAMIC_DISPATCH(kernels::EncodeF32),
                      out_codes, opt, seed, first_index, threads);
}

void encode_bf16(const Format& f, std::span<const std::uint16_t> in, void* out_codes,
                 const EncodeOptions& opt, std::uint64_t seed, std::uint64_t first_index,
                 unsigned threads) {
  kernels::encode_any(f, in, kernels::WidenBits{kBf16}, &HWY_DYNAMIC_DISPATCH(kernels::EncodeBF16),
                      out_codes, opt, seed, first_index, threads);
}

void encode_f16(const Format& f, std::span<const std::uint16_t> in, void* out_codes,
                const EncodeOptions& opt, std::uint64_t seed, std::uint64_t first_index,
                unsigned threads) {
  kernels::encode_any(f, in, kernels::WidenBits{kFp16}, &HWY_DYNAMIC_DISPATCH(kernels::EncodeF16),
                      out_codes, opt, seed, first_index, threads);
}

void encode_f64(const Format& f, std::span<const double> in, void* out_codes,
                const EncodeOptions& opt, std::uint64_t seed, std::uint64_t first_index) {
  kernels::encode_scalar(f, in.data(), in.size(), kernels::WidenF64{}, out_codes, opt, seed,
                         first_index);
}

void decode_to_f32(const Format& f, const void* codes, std::span<float> out, unsigned threads) {
  kernels::decode_any(f, codes, out, &HWY_DYNAMIC_DISPATCH(kernels::DecodeToF32), threads);
}

void decode_to_bf16(const Format& f, const void* codes, std::span<std::uint16_t> out,
                    unsigned threads) {
  kernels::decode_any(f, codes, out, &HWY_DYNAMIC_DISPATCH(kernels::DecodeToBF16), threads);
}

void fake_quantize_f32(const Format& f, std::span<const float> in, std::span<float> out,
                       const EncodeOptions& opt, std::uint64_t seed, std::uint64_t first_index,
                       unsigned threads) {
  if (out.size() != in.size()) {
    throw Error("fake_quantize_f32: output holds " + std::to_string(out.size()) +
                " values but the input " + std::to_string(in.size()));
  }
  // Chunks small enough for their codes to stay in L1 between the two steps.
  constexpr std::size_t kChunk = 4096;
  if (!kernels::vectorized(f)) {
    kernels::parallel_for(in.size(), threads, [&](std::size_t b, std::size_t e) {
      std::vector<std::uint32_t> codes(std::min(kChunk, e - b));
      for (std::size_t c = b; c < e; c += kChunk) {
        const std::size_t n = std::min(kChunk, e - c);
        encode_f32(f, in.subspan(c, n), codes.data(), opt, seed, first_index + c, 1);
        decode_to_f32(f, codes.data(), out.subspan(c, n), 1);
      }
    });
    return;
  }
  const kernels::detail::EncodeParams encode = kernels::detail::encode_params(f, opt);
  kernels::detail::FakeQuantRneParams p;
  if (opt.rounding == Rounding::kNearestEven &&
      kernels::detail::fake_quant_rne_params(f, encode, p)) {
    kernels::parallel_for(in.size(), threads, [&](std::size_t b, std::size_t e) {
      HWY_DYNAMIC_DISPATCH(kernels::FakeQuantRne)(p, in.data() + b, e - b, out.data() + b);
    });
    return;
  }
  kernels::detail::DecodeParams decode = kernels::detail::decode_params(f);
  decode.stream = out.size() * sizeof(float) >= kernels::kDecodeStreamBytes;
  kernels::parallel_for(in.size(), threads, [&](std::size_t b, std::size_t e) {
    alignas(64) std::uint8_t codes[kChunk * 2];
    for (std::size_t c = b; c < e;) {
      // A chunk, cut where the stochastic key changes (a multiple of 2^32).
      const std::uint64_t index = first_index + c;
      const std::uint64_t to_wrap = (std::uint64_t{1} << 32) - (index & 0xFFFFFFFFu);
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>({kChunk, e - c, to_wrap}));
      const std::uint32_t key = stochastic_key(seed, static_cast<std::uint32_t>(index >> 32));
      HWY_DYNAMIC_DISPATCH(kernels::EncodeF32)
      (encode, in.data() + c, n, codes, key, static_cast<std::uint32_t>(index));
      HWY_DYNAMIC_DISPATCH(kernels::DecodeToF32)(decode, codes, n, out.data() + c);
      c += n;
    }
  });
}

}  // namespace lowp

#endif  // HWY_ONCE
