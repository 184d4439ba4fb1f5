// lowp/format/convert.h — the scalar reference: encode a real number into a
// format's code, and decode a code back, exactly.
//
// Every other path in lowp (bulk kernels, block formats, file writers) must give
// the same bits as these functions. They are constexpr so that tests can pin
// values at compile time.
//
// Input is a double: every fp32, fp16 and bf16 value is exactly a double, so one
// encoder rounds each of those inputs correctly (no double rounding), and fp64
// inputs are rounded once, directly, too.
//
// Semantics (docs/formats.md has the full table):
//  * Rounding: nearest-even (default), nearest-ties-away, toward zero, or
//    stochastic. For a format without mantissa bits (E8M0, eXm0) every normal
//    significand is 1, so "even" can only pick the larger neighbour; lowp does,
//    as ml_dtypes does.
//  * Stochastic rounding rounds |x| up with probability equal to the fraction of
//    a unit in the last place that it drops (to 2^-32 resolution): with r the 32
//    random bits, it rounds up iff floor(fraction * 2^32) + r >= 2^32. The bits
//    come from stochastic_bits(seed, element index), so results do not depend on
//    how the work is split between threads.
//  * Overflow (a finite input whose rounded magnitude exceeds the largest finite
//    value, or an infinite input): with `saturate`, or for formats without Inf
//    and NaN, ±max finite. Otherwise IEEE formats give ±Inf, FN formats the NaN of
//    the input's sign, FNUZ formats their NaN (0x80), and E8M0 its NaN (0xFF). As
//    in IEEE 754, rounding toward zero carries finite overflow to ±max finite.
//    `saturate` also maps ±Inf inputs to ±max (as PTX's .satfinite does).
//  * NaN inputs give the format's NaN, keeping the sign where the format has a
//    signed NaN. Formats without NaN (fp6, fp4, eXmYfin) give the negative-zero
//    code, the stand-in ml_dtypes uses; integers give 0.
//  * Zero keeps its sign where the format has -0; FNUZ formats have no -0, so a
//    negative input that rounds to zero gives +0.
//  * E8M0 (no zero, no sign): zero and negative inputs give NaN, or with
//    `saturate` the smallest value 2^-127 (code 0x00); positive inputs below
//    2^-127 give 2^-127 in every rounding mode.
//  * Integers: round, then clamp to the format's range (always saturating); NaN
//    gives 0.
//  * Code books (nf4, nf3, dint4; lowp/format/code_table.h): x falls between
//    two neighbouring table values lo < x < hi (or equals one: its code).
//    Nearest-even takes the nearer; an exact tie (x the midpoint, exact in
//    double) takes the one of smaller magnitude. Nearest-away takes the nearer,
//    a tie the one of larger magnitude. Toward zero takes the one of smaller
//    magnitude. Stochastic takes hi with probability t = (x - lo) / (hi - lo)
//    (t computed in double, to 2^-32 resolution): hi iff floor(t * 2^32) + r >=
//    2^32. Code books always saturate: values beyond the ends and ±Inf give the
//    smallest or largest value's code. NaN gives the code of +0. A zero result
//    keeps the input's sign where the table has -0 (dint4's code 8).
//  * Posits (Posit Standard 2022 §4.1, §6.5): rounding is on the bit string.
//    |x| is written as its infinitely long posit string (regime, es exponent
//    bits, fraction) and cut after n bits; nearest-even rounds up iff the
//    dropped bits are above one half of the last kept bit, or exactly one half
//    and the kept string is odd. Equivalently x is compared with the (n+1)-bit
//    posit between its two n-bit neighbours, which in the regime-only region
//    is their geometric mean, not their arithmetic mean. Nearest-away rounds
//    up at one half, toward zero truncates the string, stochastic rounds up
//    with probability equal to the dropped fraction of the last kept bit.
//    Posits never round a nonzero value to 0 and never overflow to NaR: 0 <
//    |x| < minpos gives ±minpos and |x| > maxpos gives ±maxpos, in every mode
//    (`saturate` changes nothing). ±0 gives 0 (posits have one zero), NaN and
//    ±Inf give NaR.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <string_view>

#include "lowp/format/format.h"

namespace lowp {

enum class Rounding : std::uint8_t { kNearestEven, kNearestAway, kTowardZero, kStochastic };

// The names of the rounding modes as the CLI's --round and the Python and torch
// bindings' `rounding` spell them: "rne", "away", "zero", "stochastic".
std::string_view rounding_name(Rounding r);
// The inverse of rounding_name; throws lowp::Error naming `name` and the
// accepted names when it is none of them.
Rounding parse_rounding(std::string_view name);

struct EncodeOptions {
  Rounding rounding = Rounding::kNearestEven;
  bool saturate = false;
};

// murmur3's 32-bit finaliser: a bijection with full avalanche.
constexpr std::uint32_t mix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// The key that stochastic_bits uses for elements index with the same high 32
// bits. Kernels compute it once per 2^32 elements.
constexpr std::uint32_t stochastic_key(std::uint64_t seed, std::uint32_t index_high) {
  const auto seed_lo = static_cast<std::uint32_t>(seed);
  const auto seed_hi = static_cast<std::uint32_t>(seed >> 32);
  return mix32(seed_lo + mix32(seed_hi + mix32(index_high + 0x9E3779B9u)));
}
constexpr std::uint32_t stochastic_bits_keyed(std::uint32_t key, std::uint32_t index_low) {
  return mix32(mix32(index_low ^ key) + key);
}
// 32 random bits for element `index` of a stream seeded with `seed`.
constexpr std::uint32_t stochastic_bits(std::uint64_t seed, std::uint64_t index) {
  return stochastic_bits_keyed(stochastic_key(seed, static_cast<std::uint32_t>(index >> 32)),
                               static_cast<std::uint32_t>(index));
}

namespace detail {

// A double split into sign, class, and (for finite nonzero values) the exponent
// and a 64-bit significand normalised so that bit 63 is set:
//   |x| = significand * 2^(exponent - 63),  2^exponent <= |x| < 2^(exponent+1).
struct Unpacked {
  enum Class : std::uint8_t { kZero, kFinite, kInf, kNan };
  bool negative = false;
  Class cls = kZero;
  int exponent = 0;
  std::uint64_t significand = 0;
};

constexpr Unpacked unpack(double x) {
  const auto b = std::bit_cast<std::uint64_t>(x);
  const bool negative = (b >> 63) != 0;
  const auto exp_field = static_cast<int>((b >> 52) & 0x7FF);
  const std::uint64_t frac = b & ((std::uint64_t{1} << 52) - 1);
  if (exp_field == 0x7FF) return {negative, frac != 0 ? Unpacked::kNan : Unpacked::kInf, 0, 0};
  if (exp_field == 0) {
    if (frac == 0) return {negative, Unpacked::kZero, 0, 0};
    const int lz = std::countl_zero(frac);  // subnormal: frac * 2^-1074
    return {negative, Unpacked::kFinite, 63 - lz - 1074, frac << lz};
  }
  return {negative, Unpacked::kFinite, exp_field - 1023, ((std::uint64_t{1} << 52) | frac) << 11};
}

// |x| / 2^unit_exp rounded to an integer, where |x| = sig * 2^(exp - 63).
// Requires unit_exp > exp - 63 (at least one bit is dropped: every format here has
// far fewer significand bits than a double).
constexpr std::uint64_t round_to_unit(std::uint64_t sig, int exp, int unit_exp, Rounding mode,
                                      std::uint32_t random) {
  // Step 1: split into the integer part n and the dropped fraction, left-aligned
  // in 64 bits (0.64 fixed point). Past 64 dropped bits only the top of the
  // fraction matters: it is then below one half.
  const int shift = 63 - exp + unit_exp;  // >= 1
  std::uint64_t n = 0;
  std::uint64_t fraction = 0;
  if (shift < 64) {
    n = sig >> shift;
    fraction = sig << (64 - shift);
  } else if (shift < 128) {
    fraction = shift == 64 ? sig : sig >> (shift - 64);
  }
  // Step 2: decide whether to round the magnitude up.
  constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
  switch (mode) {
    case Rounding::kNearestEven:
      return n + ((fraction > kHalf || (fraction == kHalf && (n & 1) != 0)) ? 1 : 0);
    case Rounding::kNearestAway:
      return n + (fraction >= kHalf ? 1 : 0);
    case Rounding::kTowardZero:
      return n;
    case Rounding::kStochastic:
      return n + (((fraction >> 32) + random) >> 32);
  }
  return n;
}

constexpr std::uint32_t encode_int(const Format& f, const Unpacked& u, Rounding mode,
                                   std::uint32_t random) {
  const std::int64_t lo = int_min(f);
  const std::int64_t hi = int_max(f);
  auto code_of = [&](std::int64_t v) {
    v = v < lo ? lo : v > hi ? hi : v;
    return static_cast<std::uint32_t>(v) & code_mask(f);
  };
  switch (u.cls) {
    case Unpacked::kNan:
    case Unpacked::kZero:
      return 0;
    case Unpacked::kInf:
      return code_of(u.negative ? lo : hi);
    case Unpacked::kFinite:
      break;
  }
  if (u.exponent > 40) return code_of(u.negative ? lo : hi);  // far beyond any range
  const auto n =
      static_cast<std::int64_t>(round_to_unit(u.significand, u.exponent, 0, mode, random));
  return code_of(u.negative ? -n : n);
}

constexpr std::uint32_t encode_e8m0(const Format& f, const Unpacked& u, EncodeOptions opt,
                                    std::uint32_t random) {
  constexpr std::uint32_t kMin = 0x00;
  const std::uint32_t nan = nan_code(f);
  const std::uint32_t max = max_magnitude_code(f);
  if (u.cls == Unpacked::kNan) return nan;
  if (u.cls == Unpacked::kZero || u.negative) return opt.saturate ? kMin : nan;
  if (u.cls == Unpacked::kInf) return opt.saturate ? max : nan;
  const bool clamp_high = opt.saturate || opt.rounding == Rounding::kTowardZero;
  if (u.exponent > emax(f)) return clamp_high ? max : nan;
  if (u.exponent < emin(f)) return kMin;  // nothing below 2^-127 to round to
  // Significand 1 or 2 after rounding at the unit 2^exponent.
  const std::uint64_t n =
      round_to_unit(u.significand, u.exponent, u.exponent, opt.rounding, random);
  const auto code =
      static_cast<std::uint32_t>(u.exponent - emin(f)) + static_cast<std::uint32_t>(n - 1);
  if (code > max) return clamp_high ? max : nan;
  return code;
}

constexpr std::uint32_t encode_float(const Format& f, const Unpacked& u, EncodeOptions opt,
                                     std::uint32_t random) {
  const std::uint32_t sign = u.negative ? sign_mask(f) : 0;
  const bool clamps = opt.saturate || f.specials == Specials::kFinite;
  // The code for a magnitude beyond the largest finite value.
  auto overflow = [&](bool finite_input) -> std::uint32_t {
    if (clamps || (finite_input && opt.rounding == Rounding::kTowardZero)) {
      return max_magnitude_code(f) | sign;
    }
    switch (f.specials) {
      case Specials::kIeee:
        return inf_code(f) | sign;
      case Specials::kFn:
        return nan_code(f) | sign;
      default:
        return nan_code(f);  // FNUZ: the one NaN
    }
  };
  const std::uint32_t zero = has_negative_zero(f) ? sign : 0;
  switch (u.cls) {
    case Unpacked::kNan:
      // Formats without NaN: the negative-zero stand-in. FNUZ's NaN already has
      // the sign bit set.
      return has_nan(f) ? nan_code(f) | sign : sign_mask(f);
    case Unpacked::kInf:
      return overflow(false);
    case Unpacked::kZero:
      return zero;
    case Unpacked::kFinite:
      break;
  }
  if (u.exponent > emax(f)) return overflow(true);
  // Step 1: the unit in the last place at x's binade, never finer than the
  // subnormals' spacing 2^(emin - M).
  const int e_min = emin(f);
  const int binade = u.exponent > e_min ? u.exponent : e_min;
  const std::uint64_t n =
      round_to_unit(u.significand, u.exponent, binade - f.man_bits, opt.rounding, random);
  // Step 2: code = (binade - emin) * 2^M + n. For a normal binade n includes the
  // implicit bit, which adds the 1 of the biased exponent; a carry out of the
  // mantissa (n = 2^(M+1)) moves to the next binade by itself; in the subnormal
  // binade n is the mantissa.
  const std::uint64_t magnitude = (static_cast<std::uint64_t>(binade - e_min) << f.man_bits) + n;
  if (magnitude == 0) return zero;
  if (magnitude > max_magnitude_code(f)) return overflow(true);
  return static_cast<std::uint32_t>(magnitude) | sign;
}

// Step 1 finds the neighbours lo <= x <= hi among the table's values (every
// table has fewer than 2^8 codes, so a linear scan is the reference); step 2
// picks one by the rounding mode; step 3 gives a zero the input's sign.
constexpr std::uint32_t encode_table(const Format& f, double x, Rounding mode,
                                     std::uint32_t random) {
  const std::span<const double> v = table_values(f);
  const bool negative = std::bit_cast<std::uint64_t>(x) >> 63 != 0;
  // The code of value y: the first code holding it, but a zero takes the
  // sign of `negative` where the table has both zeros.
  auto code_of = [&](double y) -> std::uint32_t {
    std::uint32_t found = 0;
    bool have = false;
    for (std::uint32_t c = 0; c < v.size(); ++c) {
      if (v[c] != y) continue;
      if (!have) found = c, have = true;
      if (y == 0.0 && (std::bit_cast<std::uint64_t>(v[c]) >> 63 != 0) == negative) return c;
    }
    return found;
  };
  if (x != x) {  // NaN: the code of +0
    for (std::uint32_t c = 0; c < v.size(); ++c) {
      if (v[c] == 0.0 && std::bit_cast<std::uint64_t>(v[c]) >> 63 == 0) return c;
    }
    return code_of(0.0);
  }
  // Step 1.
  bool have_lo = false, have_hi = false;
  double lo = 0.0, hi = 0.0;
  for (double y : v) {
    if (y <= x && (!have_lo || y > lo)) lo = y, have_lo = true;
    if (y >= x && (!have_hi || y < hi)) hi = y, have_hi = true;
  }
  if (!have_lo) return code_of(hi);  // below the smallest value (or -Inf)
  if (!have_hi) return code_of(lo);  // above the largest value (or +Inf)
  if (lo == hi) return code_of(lo);  // exact
  // Step 2.
  const double small = (lo < 0.0 ? -lo : lo) < (hi < 0.0 ? -hi : hi) ? lo : hi;
  const double large = small == lo ? hi : lo;
  const double mid = (lo + hi) / 2;  // exact: both are fp32s of moderate exponent
  double q = small;
  switch (mode) {
    case Rounding::kNearestEven:
      q = x < mid ? lo : x > mid ? hi : small;
      break;
    case Rounding::kNearestAway:
      q = x < mid ? lo : x > mid ? hi : large;
      break;
    case Rounding::kTowardZero:
      q = small;
      break;
    case Rounding::kStochastic: {
      const double t = (x - lo) / (hi - lo);
      const auto threshold = static_cast<std::uint64_t>(t * 4294967296.0);
      q = threshold + random >= (std::uint64_t{1} << 32) ? hi : lo;
      break;
    }
  }
  // Step 3 (code_of gives a zero the input's sign).
  return code_of(q);
}

// A posit (Posit Standard 2022 §4.1): the magnitude's bit string is built
// left-aligned in 64 bits and rounded at bit n-1 (see the header comment).
constexpr std::uint32_t encode_posit(const Format& f, const Unpacked& u, Rounding mode,
                                     std::uint32_t random) {
  const int n = f.bits;
  const int es = f.exp_bits;
  switch (u.cls) {
    case Unpacked::kNan:
    case Unpacked::kInf:
      return posit_nar(f);
    case Unpacked::kZero:
      return 0;
    case Unpacked::kFinite:
      break;
  }
  const std::uint32_t maxpos = code_mask(f) >> 1;
  std::uint32_t magnitude;
  const int max_scale = posit_max_scale(f);
  if (u.exponent >= max_scale) {
    magnitude = maxpos;  // |x| >= maxpos
  } else if (u.exponent < -max_scale) {
    magnitude = 1;  // 0 < |x| < minpos
  } else {
    // Step 1: regime k and exponent e of the scale, k * 2^es + e = exponent
    // with 0 <= e < 2^es (C++20's >> on a negative int is floor division).
    const int k = u.exponent >> es;
    const auto e = static_cast<std::uint64_t>(u.exponent - k * (1 << es));
    // Step 2: the string after the sign bit, left-aligned: the regime (k + 1
    // ones and a zero, or -k zeros and a one; -(n-2) <= k <= n-3 here, so it is
    // at most n - 1 bits), e in es bits, then the fraction. free = bits left.
    const int regime_len = k >= 0 ? k + 2 : -k + 1;
    const std::uint64_t regime = k >= 0 ? ((std::uint64_t{1} << (k + 1)) - 1) << 1 : 1;
    std::uint64_t s = regime << (64 - regime_len);
    int free = 64 - regime_len;
    if (es > 0) {
      s |= e << (free - es);
      free -= es;
    }
    const std::uint64_t fraction = u.significand << 1;  // the bits after the leading 1
    s |= fraction >> (64 - free);
    const bool sticky = (fraction << free) != 0;  // fraction bits past the 64
    // Step 3: keep n - 1 bits; the rest is a 0.64 fixed-point fraction of the
    // last kept bit (the sticky bits only ever matter as "more than zero").
    const std::uint64_t kept = s >> (65 - n);
    const std::uint64_t dropped = (s << (n - 1)) | (sticky ? 1 : 0);
    constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
    bool up = false;
    switch (mode) {
      case Rounding::kNearestEven:
        up = dropped > kHalf || (dropped == kHalf && (kept & 1) != 0);
        break;
      case Rounding::kNearestAway:
        up = dropped >= kHalf;
        break;
      case Rounding::kTowardZero:
        break;
      case Rounding::kStochastic:
        up = (((dropped >> 32) + random) >> 32) != 0;
        break;
    }
    // minpos <= |x| < maxpos: kept is at least 1 and below maxpos (the regime
    // of a value below maxpos ends inside the n - 1 bits), so no carry leaves
    // the range.
    magnitude = static_cast<std::uint32_t>(kept + (up ? 1 : 0));
  }
  return u.negative ? (0u - magnitude) & code_mask(f) : magnitude;
}

// The exact value of a posit code that is neither 0 nor NaR (Posit Standard
// 2022 §3.2): |value| = 2^(k * 2^es + e) * (1 + f). Posits of at most 32 bits
// have at most 29 fraction bits, so the value is exact in double.
constexpr double decode_posit(const Format& f, std::uint32_t code) {
  const int n = f.bits;
  const bool negative = (code >> (n - 1)) != 0;
  const std::uint32_t magnitude = negative ? (0u - code) & code_mask(f) : code;
  // The n - 1 bits after the sign, left-aligned in 64 (zeros past the end).
  const std::uint64_t s = std::uint64_t{magnitude} << (65 - n);
  const bool ones = (s >> 63) != 0;
  const int run = ones ? std::countl_one(s) : std::countl_zero(s);  // <= n - 1
  const int k = ones ? run - 1 : -run;
  std::uint64_t rest = s << run << 1;  // past the regime's terminating bit
  int e = 0;
  if (f.exp_bits > 0) {
    e = static_cast<int>(rest >> (64 - f.exp_bits));
    rest <<= f.exp_bits;
  }
  // 1.f as a 64-bit integer with the point after bit 63 (its low bit, f's 64th
  // bit, is always 0: f has at most 29 bits).
  const std::uint64_t significand = (std::uint64_t{1} << 63) | (rest >> 1);
  const double v = static_cast<double>(significand) * exp2i(k * (1 << f.exp_bits) + e - 63);
  return negative ? -v : v;
}

}  // namespace detail

// Encode x into format f. `random` is used only by Rounding::kStochastic; pass
// stochastic_bits(seed, index).
constexpr std::uint32_t encode(const Format& f, double x, EncodeOptions opt = {},
                               std::uint32_t random = 0) {
  if (f.kind == Kind::kTable) return detail::encode_table(f, x, opt.rounding, random);
  const detail::Unpacked u = detail::unpack(x);
  if (f.kind == Kind::kPosit) return detail::encode_posit(f, u, opt.rounding, random);
  if (f.kind == Kind::kInt) return detail::encode_int(f, u, opt.rounding, random);
  if (f.specials == Specials::kE8m0) return detail::encode_e8m0(f, u, opt, random);
  return detail::encode_float(f, u, opt, random);
}

// encode() of element `index` of a stream seeded with `seed`: the random bits
// stochastic_bits(seed, index) are drawn only for Rounding::kStochastic. Scalar
// encode loops (lowp::encode_f64 of lowp/kernels.h, the block quantizers) go
// through here, so an element's code never depends on which path encoded it.
constexpr std::uint32_t encode_at(const Format& f, double x, const EncodeOptions& opt,
                                  std::uint64_t seed, std::uint64_t index) {
  return encode(f, x, opt,
                opt.rounding == Rounding::kStochastic ? stochastic_bits(seed, index) : 0);
}

// The exact value of a code (only its low f.bits bits are read). NaN codes give a
// quiet NaN (with the code's sign where the format's NaN is signed); a posit's
// NaR gives a positive quiet NaN.
constexpr double decode(const Format& f, std::uint32_t code) {
  code &= code_mask(f);
  if (f.kind == Kind::kPosit) {
    if (code == 0) return 0.0;
    if (code == posit_nar(f)) return std::numeric_limits<double>::quiet_NaN();
    return detail::decode_posit(f, code);
  }
  if (f.kind == Kind::kTable) {
    const std::span<const double> v = table_values(f);
    return code < v.size() ? v[code] : std::numeric_limits<double>::quiet_NaN();
  }
  if (f.kind == Kind::kInt) {
    if (is_signed(f) && (code >> (f.bits - 1)) != 0) {
      return static_cast<double>(static_cast<std::int64_t>(code) - (std::int64_t{1} << f.bits));
    }
    return static_cast<double>(code);
  }
  const bool negative = (code & sign_mask(f)) != 0;
  if (is_nan_code(f, code)) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return negative && f.specials != Specials::kFnuz ? -nan : nan;
  }
  if (is_inf_code(f, code)) {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  const double v = magnitude_value(f, code & magnitude_mask(f));
  return negative ? -v : v;
}

// Every code of a registered or parsed format of at most 16 bits decodes
// exactly into a float (the parser rejects formats whose range fp32 cannot
// hold). posit32 values need up to 28 significant bits: they are rounded to
// the nearest fp32, ties to even (their range, 2^-120 .. 2^120, fits fp32's).
constexpr float decode_f32(const Format& f, std::uint32_t code) {
  return static_cast<float>(decode(f, code));
}

}  // namespace lowp
