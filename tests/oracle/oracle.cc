// tests/oracle/oracle.cc — see oracle.h. Only the raw fields of lowp::Format are
// read; every definition below is written from the specs, not from lowp.
#include "oracle/oracle.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace lowp_oracle {
namespace {

using lowp::IntRange;
using lowp::Kind;
using lowp::Specials;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// The value the float code formula gives to exponent field e and mantissa field
// m (IEEE 754 §3.4, OFP8 §5.1, MX §5.3): e == 0 is subnormal, m * 2^(1-bias-M);
// otherwise (2^M + m) * 2^(e-bias-M). `e` may be one past the field's range:
// that is how the virtual next value beyond max finite is formed.
double formula_value(std::uint32_t e, std::uint32_t m, int man_bits, int bias) {
  if (e == 0) return std::ldexp(static_cast<double>(m), 1 - bias - man_bits);
  const double significand = std::ldexp(1.0, man_bits) + static_cast<double>(m);
  return std::ldexp(significand, static_cast<int>(e) - bias - man_bits);
}
// The significand of the same value as an integer (its parity decides ties).
std::uint64_t formula_significand(std::uint32_t e, std::uint32_t m, int man_bits) {
  return e == 0 ? m : (std::uint64_t{1} << man_bits) + m;
}

}  // namespace

Oracle::Oracle(const lowp::Format& f) : f_(f) {
  if (f.bits < 1 || f.bits > 24) throw std::invalid_argument("oracle: bits must be 1..24");
  const std::uint32_t n = std::uint32_t{1} << f.bits;
  codes_.resize(n);

  if (f.kind == Kind::kInt) {
    // Two's complement (or unsigned) value of the low `bits` bits. The
    // symmetric range drops the most negative code.
    is_int_ = true;
    const bool is_unsigned = f.int_range == IntRange::kUnsigned;
    const std::int64_t half = std::int64_t{1} << (f.bits - 1);
    int_lo_ = is_unsigned ? 0 : f.int_range == IntRange::kSymmetric ? -half + 1 : -half;
    int_hi_ = is_unsigned ? 2 * half - 1 : half - 1;
    for (std::uint32_t c = 0; c < n; ++c) {
      const auto v = static_cast<std::int64_t>(c);
      codes_[c].value = static_cast<double>(!is_unsigned && v >= half ? v - 2 * half : v);
      codes_[c].unused = f.int_range == IntRange::kSymmetric && v == half;
    }
    for (std::int64_t v = int_lo_; v <= int_hi_; ++v) mag_.push_back(static_cast<double>(v));
    max_finite_ = static_cast<double>(int_hi_);
    return;
  }

  const int M = f.man_bits;
  const std::uint32_t man_mask = (std::uint32_t{1} << M) - 1;
  if (f.specials == Specials::kE8m0) {
    // MX §5.4: 8 exponent bits, no sign, no mantissa, value 2^(code - 127), no
    // zero, no Inf; 0xFF is NaN.
    e8m0_ = true;
    has_nan_ = true;
    nan_code_ = n - 1;
    for (std::uint32_t c = 0; c < n; ++c) {
      codes_[c].is_nan = c == nan_code_;
      codes_[c].value = codes_[c].is_nan ? kNan : std::ldexp(1.0, static_cast<int>(c) - f.bias);
    }
  } else {
    sign_bit_ = std::uint32_t{1} << (f.bits - 1);
    const std::uint32_t mag_mask = sign_bit_ - 1;
    const std::uint32_t e_all_ones = mag_mask >> M;
    has_inf_ = f.specials == Specials::kIeee;
    has_neg_zero_ = f.specials != Specials::kFnuz;
    switch (f.specials) {
      case Specials::kIeee:
        // Top exponent: mantissa 0 is Inf, the rest NaN; the canonical (quiet)
        // NaN has the mantissa MSB set. With no mantissa bits there is no NaN.
        has_nan_ = M > 0;
        nan_code_ = has_nan_ ? (e_all_ones << M) | (std::uint32_t{1} << (M - 1)) : 0;
        inf_code_ = e_all_ones << M;
        break;
      case Specials::kFn:  // OFP8 E4M3: only S.1111.111 is NaN
        has_nan_ = true;
        nan_code_ = mag_mask;
        break;
      case Specials::kFnuz:  // the negative-zero code is the one NaN
        has_nan_ = true;
        nan_code_ = sign_bit_;
        break;
      default:  // kFinite (MX FP6/FP4): every code is a number
        break;
    }
    for (std::uint32_t c = 0; c < n; ++c) {
      const std::uint32_t mag = c & mag_mask;
      const bool negative = (c & sign_bit_) != 0;
      CodeInfo& ci = codes_[c];
      const std::uint32_t e = mag >> M;
      switch (f.specials) {
        case Specials::kIeee:
          ci.is_nan = e == e_all_ones && (mag & man_mask) != 0;
          break;
        case Specials::kFn:
          ci.is_nan = mag == mag_mask;
          break;
        case Specials::kFnuz:
          ci.is_nan = c == sign_bit_;
          break;
        default:
          break;
      }
      ci.is_inf = has_inf_ && e == e_all_ones && (mag & man_mask) == 0;
      const double v = ci.is_nan   ? kNan
                       : ci.is_inf ? kInf
                                   : formula_value(e, mag & man_mask, M, f.bias);
      // FNUZ's NaN is unsigned, although its code has the sign bit set.
      ci.value = negative && !(ci.is_nan && f.specials == Specials::kFnuz) ? -v : v;
    }
  }

  // The finite magnitudes: codes with the sign clear that are numbers. In code
  // order they ascend; check that rather than assume it.
  const std::uint32_t mag_codes = e8m0_ ? n : sign_bit_;
  for (std::uint32_t c = 0; c < mag_codes; ++c) {
    if (codes_[c].is_nan || codes_[c].is_inf) continue;
    if (!mag_.empty() && !(codes_[c].value > mag_.back())) {
      throw std::logic_error("oracle: magnitudes not ascending in code order");
    }
    mag_.push_back(codes_[c].value);
    mag_code_.push_back(c);
    sig_.push_back(e8m0_ ? 1 : formula_significand(c >> M, c & man_mask, M));
    max_code_ = c;
  }
  if (mag_.empty()) throw std::invalid_argument("oracle: format has no finite value");
  max_finite_ = mag_.back();
  ladder_ = mag_;
  // The virtual next value: the code after max finite, read with the formula
  // (a carry out of the mantissa moves into the exponent, as in IEEE 754).
  const std::uint32_t next = max_code_ + 1;
  if (e8m0_) {
    ladder_.push_back(std::ldexp(1.0, static_cast<int>(next) - f.bias));
    sig_.push_back(1);
  } else {
    ladder_.push_back(formula_value(next >> M, next & man_mask, M, f.bias));
    sig_.push_back(formula_significand(next >> M, next & man_mask, M));
  }
}

std::uint32_t Oracle::nan_input_code(bool negative) const {
  if (is_int_) return 0;
  if (!has_nan_) return sign_bit_;  // the negative-zero stand-in
  if (e8m0_ || f_.specials == Specials::kFnuz) return nan_code_;
  return nan_code_ | (negative ? sign_bit_ : 0);
}

std::uint32_t Oracle::overflow_code(bool negative, bool finite_input, Mode m) const {
  const std::uint32_t sign = negative ? sign_bit_ : 0;
  // Saturation, formats without Inf and NaN, and (IEEE 754 §7.4) rounding
  // toward zero of a finite input all give max finite.
  if (m.saturate || f_.specials == Specials::kFinite ||
      (finite_input && m.round == Round::kTowardZero)) {
    return max_code_ | sign;
  }
  switch (f_.specials) {
    case Specials::kIeee:
      return inf_code_ | sign;
    case Specials::kFn:
      return nan_code_ | sign;
    default:
      return nan_code_;  // FNUZ and E8M0: the one unsigned NaN
  }
}

std::size_t Oracle::bracket(double a) const {
  // Largest i with ladder_[i] <= a (a >= ladder_[0] is the caller's business).
  const auto it = std::upper_bound(ladder_.begin(), ladder_.end(), a);
  return static_cast<std::size_t>(it - ladder_.begin()) - 1;
}

std::size_t Oracle::round_in_bracket(double a, std::size_t i, Round r) const {
  const std::size_t last = ladder_.size() - 1;  // the virtual next value: overflow
  if (i >= last || a == ladder_[i] || r == Round::kTowardZero) return i;
  const double lo = ladder_[i];
  const double hi = ladder_[i + 1];
  const double mid = (lo + hi) / 2;  // exact: both are short dyadic rationals
  if (a < mid) return i;
  if (a > mid || r == Round::kNearestAway) return i + 1;
  // An exact tie (IEEE 754 §4.3.1 roundTiesToEven): the neighbour whose
  // significand is even. With no mantissa bits every normal significand is 1
  // (both odd): convert.h then takes the larger neighbour. Zero's significand
  // is 0, which is even.
  const bool lo_even = sig_[i] % 2 == 0;
  const bool hi_even = sig_[i + 1] % 2 == 0;
  if (lo_even && hi_even) throw std::logic_error("oracle: two even neighbours");
  return lo_even ? i : i + 1;
}

std::uint32_t Oracle::finish_float(bool negative, std::size_t idx, Mode m) const {
  if (idx + 1 >= ladder_.size()) return overflow_code(negative, true, m);
  if (mag_[idx] == 0) return negative && has_neg_zero_ ? sign_bit_ : 0;
  return mag_code_[idx] | (negative ? sign_bit_ : 0);
}

std::uint32_t Oracle::encode_int(double x, Round r) const {
  // Round to an integer (ties to the even integer, or away), then clamp.
  const std::uint32_t mask = (std::uint32_t{1} << f_.bits) - 1;
  auto code_of = [&](double v) {
    v = std::clamp(v, static_cast<double>(int_lo_), static_cast<double>(int_hi_));
    return static_cast<std::uint32_t>(static_cast<std::int64_t>(v)) & mask;
  };
  if (std::isnan(x)) return 0;
  if (std::isinf(x)) return code_of(x);
  const double a = std::fabs(x);
  const double t = std::trunc(a);
  const double frac = a - t;  // exact
  double n = t;
  switch (r) {
    case Round::kNearestEven:
      if (frac > 0.5 || (frac == 0.5 && std::fmod(t, 2.0) == 1.0)) n = t + 1;
      break;
    case Round::kNearestAway:
      if (frac >= 0.5) n = t + 1;
      break;
    case Round::kTowardZero:
      break;
  }
  return code_of(std::signbit(x) ? -n : n);
}

std::uint32_t Oracle::encode(double x, Mode m) const {
  if (is_int_) return encode_int(x, m.round);
  if (std::isnan(x)) return nan_input_code(std::signbit(x));
  const bool negative = std::signbit(x);
  const double a = std::fabs(x);
  if (e8m0_) {
    // MX §5.4 has no zero and no sign: zero and negative inputs are NaN, or
    // with saturate the smallest value 2^-127 (code 0).
    if (a == 0 || negative) return m.saturate ? 0 : nan_code_;
    if (std::isinf(a)) return m.saturate ? max_code_ : nan_code_;
    if (a < ladder_[0]) return 0;  // below 2^-127: 2^-127 in every mode
    const std::size_t idx = round_in_bracket(a, bracket(a), m.round);
    if (idx + 1 >= ladder_.size()) {
      return m.saturate || m.round == Round::kTowardZero ? max_code_ : nan_code_;
    }
    return mag_code_[idx];
  }
  if (std::isinf(a)) return overflow_code(negative, false, m);
  if (a == 0) return negative && has_neg_zero_ ? sign_bit_ : 0;
  return finish_float(negative, round_in_bracket(a, bracket(a), m.round), m);
}

std::uint32_t Oracle::Cursor::encode(double x, Mode m) {
  const Oracle& o = *o_;
  const double a = std::fabs(x);
  // Specials and integers need no search.
  if (o.is_int_ || std::isnan(x) || std::isinf(a) || a == 0 ||
      (o.e8m0_ && (std::signbit(x) || a < o.ladder_[0]))) {
    return o.encode(x, m);
  }
  if (a < o.ladder_[i_]) throw std::logic_error("oracle cursor: input magnitude decreased");
  while (i_ + 1 < o.ladder_.size() && o.ladder_[i_ + 1] <= a) ++i_;
  const std::size_t idx = o.round_in_bracket(a, i_, m.round);
  if (o.e8m0_) {
    if (idx + 1 >= o.ladder_.size()) {
      return m.saturate || m.round == Round::kTowardZero ? o.max_code_ : o.nan_code_;
    }
    return o.mag_code_[idx];
  }
  return o.finish_float(std::signbit(x), idx, m);
}

std::vector<Segment> fp32_segments(const Oracle& o, Mode m) {
  constexpr std::uint32_t kInfBits = 0x7F800000u;
  auto key = [&](std::uint32_t p) {
    const double x = static_cast<double>(std::bit_cast<float>(p));
    return Segment{p, o.encode(x, m), o.encode(-x, m)};
  };
  auto same = [](const Segment& a, const Segment& b) { return a.pos == b.pos && a.neg == b.neg; };
  // Over the finite magnitudes and Inf, each of the two expected codes is a
  // monotone step function of |x| that never returns to an earlier code (the
  // rounded magnitude never decreases; the overflow codes come only at the top),
  // so the bit patterns with a given pair of codes are one contiguous run: find
  // its end by bisection.
  std::vector<Segment> out;
  std::uint32_t s = 0;
  while (s <= kInfBits) {
    const Segment k = key(s);
    std::uint32_t lo = s, hi = kInfBits;  // invariant: key(lo) == k
    while (lo < hi) {
      const std::uint32_t mid = lo + (hi - lo + 1) / 2;
      if (same(key(mid), k))
        lo = mid;
      else
        hi = mid - 1;
    }
    out.push_back(k);
    s = lo + 1;
  }
  // NaN payloads (sign handled by the -x code): one run, checked at both ends
  // and at the quiet-NaN pattern.
  const Segment nan = key(kInfBits + 1);
  if (!same(nan, key(0x7FFFFFFFu)) || !same(nan, key(0x7FC00000u))) {
    throw std::logic_error("oracle: NaN payloads disagree");
  }
  out.push_back(nan);
  return out;
}

}  // namespace lowp_oracle
