// Independent verification of the MX block reference (OCP Microscaling v1.0 §6.3,
// lowp/block/mx.h). The reference below is written from the documented rules in
// double arithmetic (std::frexp / std::ldexp) and never calls mx_scale_code or
// mx_quantize_block; element rounding is done by searching a hand-built grid of
// every representable element value, not by lowp::encode.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

const float kFltMax = std::numeric_limits<float>::max();
const float kNanF = std::numeric_limits<float>::quiet_NaN();
const float kInfF = std::numeric_limits<float>::infinity();

// ---- the element formats, described by hand ----
struct Elem {
  const char* name;  // block format name
  bool is_int;
  int bits, exp_bits, man_bits, bias;
  std::uint32_t max_mag;  // largest finite magnitude code (int: largest integer)
  int emax;               // exponent of the largest binade
  double max;             // largest finite value
  enum Nan { kNone, kFn, kIeee } nan;
};
const Elem kElems[] = {
    {"mxfp8_e4m3", false, 8, 4, 3, 7, 0x7E, 8, 448.0, Elem::kFn},
    {"mxfp8_e5m2", false, 8, 5, 2, 15, 0x7B, 15, 57344.0, Elem::kIeee},
    {"mxfp6_e3m2", false, 6, 3, 2, 3, 0x1F, 4, 28.0, Elem::kNone},
    {"mxfp6_e2m3", false, 6, 2, 3, 1, 0x1F, 2, 7.5, Elem::kNone},
    {"mxfp4", false, 4, 2, 1, 1, 0x7, 2, 6.0, Elem::kNone},
    {"mxint8", true, 8, 0, 6, 0, 127, 0, 127.0 / 64, Elem::kNone},
    {"mx:int4:32", true, 4, 0, 2, 0, 7, 0, 7.0 / 4, Elem::kNone},
    {"mx:e3m4:16", false, 8, 3, 4, 3, 0x6F, 3, 15.5, Elem::kIeee},
};
// For integers man_bits holds the fraction bits (N - 2).

BlockFormat block_of(const Elem& e) {
  BlockFormat f;
  EXPECT_TRUE(parse_block_format(e.name, f)) << e.name;
  return f;
}

// Value of a magnitude code (floats) or of a non-negative integer (ints).
double mag_value(const Elem& e, std::uint32_t m) {
  if (e.is_int) return std::ldexp(static_cast<double>(m), -e.man_bits);
  const std::uint32_t ef = m >> e.man_bits, mant = m & ((1u << e.man_bits) - 1);
  if (ef == 0) return std::ldexp(static_cast<double>(mant), 1 - e.bias - e.man_bits);
  return std::ldexp(static_cast<double>((1u << e.man_bits) + mant),
                    static_cast<int>(ef) - e.bias - e.man_bits);
}
// Value of any element code: NaN / Inf where the layout says so.
double code_value(const Elem& e, std::uint32_t code) {
  const std::uint32_t sign = 1u << (e.bits - 1);
  if (e.is_int) {
    const auto v = (code & sign) != 0
                       ? static_cast<std::int64_t>(code) - (std::int64_t{1} << e.bits)
                       : static_cast<std::int64_t>(code);
    return std::ldexp(static_cast<double>(v), -e.man_bits);
  }
  const std::uint32_t mag = code & (sign - 1);
  const double s = (code & sign) != 0 ? -1.0 : 1.0;
  const std::uint32_t top = ((1u << e.exp_bits) - 1) << e.man_bits;  // all-ones exponent
  if (e.nan == Elem::kFn && mag == (sign - 1)) return std::numeric_limits<double>::quiet_NaN();
  if (e.nan == Elem::kIeee && mag > top) return std::numeric_limits<double>::quiet_NaN();
  if (e.nan == Elem::kIeee && mag == top) return s * std::numeric_limits<double>::infinity();
  return s * mag_value(e, mag);
}
std::uint32_t signed_code(const Elem& e, std::uint32_t mag, bool negative) {
  if (!negative) return mag;
  if (e.is_int) return mag == 0 ? 0 : ((1u << e.bits) - mag) & ((1u << e.bits) - 1);
  return mag | (1u << (e.bits - 1));  // floats keep -0
}

// Rounds |q| onto the element grid (saturating) by `mode`; returns the code.
std::uint32_t ref_round(const Elem& e, double q, Rounding mode, std::uint32_t random) {
  const bool negative = std::signbit(q);
  const double a = std::fabs(q);
  if (a >= e.max) return signed_code(e, e.max_mag, negative);
  // Largest magnitude code whose value is <= a (values increase with the code).
  std::uint32_t lo = 0, hi = e.max_mag;
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi + 1) / 2;
    if (mag_value(e, mid) <= a)
      lo = mid;
    else
      hi = mid - 1;
  }
  const double vlo = mag_value(e, lo), vhi = mag_value(e, lo + 1);
  if (vlo == a) return signed_code(e, lo, negative);
  const double below = a - vlo, above = vhi - a;  // exact: a has 24 significant bits
  bool up = false;
  switch (mode) {
    case Rounding::kNearestEven:
      up = above < below || (above == below && (lo & 1) != 0);
      break;
    case Rounding::kNearestAway:
      up = above <= below;
      break;
    case Rounding::kTowardZero:
      up = false;
      break;
    case Rounding::kStochastic: {
      const double frac = std::floor(below / (vhi - vlo) * 0x1p32);  // spacing: a power of two
      up = frac + static_cast<double>(random) >= 0x1p32;
      break;
    }
  }
  return signed_code(e, up ? lo + 1 : lo, negative);
}

// floor(log2(x)) for a positive finite double.
int floor_log2(double x) {
  int e = 0;
  std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
  return e - 1;
}

// The E8M0 code by the rule, written from block_format.h's definitions.
std::uint8_t ref_scale(const Elem& e, float amax, ScaleRule rule) {
  if (!std::isfinite(amax)) return 0xFF;
  const double a = amax;
  const bool subnormal = a > 0 && a < 0x1p-126;
  int x = -127;
  switch (rule) {
    case ScaleRule::kFloor:  // OCP: floor(log2 amax) - emax_elem (exact for subnormals)
      if (a > 0) x = floor_log2(a) - e.emax;
      break;
    case ScaleRule::kRceil: {  // t = amax * fp32(1/max) in fp32, up to a power of two >= 2^-127
      const float t = amax * static_cast<float>(1.0 / e.max);
      if (static_cast<double>(t) > 0x1p-127) {
        int p = 0;
        const double m = std::frexp(static_cast<double>(t), &p);
        x = m == 0.5 ? p - 1 : p;
      }
      break;
    }
    case ScaleRule::kCeil:  // torchao: exponent field (+1 if any mantissa bit) - bias - emax
      if (a == 0)
        x = -127 - e.emax;
      else if (subnormal)
        x = -126 - e.emax;  // field 0, mantissa != 0
      else
        x = floor_log2(a) + (a == std::ldexp(1.0, floor_log2(a)) ? 0 : 1) - e.emax;
      break;
    case ScaleRule::kEven: {  // torchao: add half a unit at the element's mantissa width, truncate
      const int mb = e.man_bits;
      if (a == 0) {
        x = -127 - e.emax;
      } else if (subnormal) {  // the carry reaches the exponent field iff a + half unit >= 2^-126
        x = (a + std::ldexp(1.0, -149 + 22 - mb) >= 0x1p-126 ? -126 : -127) - e.emax;
      } else {
        const int fl = floor_log2(a);
        const double units = std::ldexp(a, mb - fl);  // significand * 2^mb, in [2^mb, 2^(mb+1))
        const bool carry = std::floor(units + 0.5) >= std::ldexp(1.0, mb + 1);
        x = fl + (carry ? 1 : 0) - e.emax;
      }
      break;
    }
  }
  x = std::clamp(x, -127, 127);
  return static_cast<std::uint8_t>(x + 127);
}

bool is_nan_element(const Elem& e, std::uint32_t code) {
  switch (e.nan) {
    case Elem::kNone:
      return code == (e.is_int ? 0u : 1u << (e.bits - 1));  // the -0 stand-in / 0
    default:
      return std::isnan(code_value(e, code));
  }
}

// Reference quantization of one block: scale code and element codes.
std::uint8_t ref_block(const Elem& e, const std::vector<float>& v, ScaleRule rule, Rounding mode,
                       std::uint64_t seed, std::uint64_t first, std::vector<std::uint32_t>& codes) {
  float amax = 0;
  bool special = false;
  for (float x : v) {
    if (!std::isfinite(x))
      special = true;
    else
      amax = std::max(amax, std::fabs(x));
  }
  codes.assign(v.size(), 0);
  if (special) return 0xFF;
  const std::uint8_t s = ref_scale(e, amax, rule);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double q = std::ldexp(static_cast<double>(v[i]), 127 - s);
    const std::uint32_t r = mode == Rounding::kStochastic ? stochastic_bits(seed, first + i) : 0;
    codes[i] = ref_round(e, q, mode, r);
  }
  return s;
}

// ---- random blocks ----
float float_from(std::uint32_t exp_field, std::uint32_t mantissa, bool negative) {
  return std::bit_cast<float>((negative ? 0x80000000u : 0u) | (exp_field << 23) |
                              (mantissa & 0x7FFFFF));
}

// A block of k values of varied magnitude: anywhere in fp32's range, all subnormal,
// near FLT_MAX, or with an amax on a scale-rule boundary (power of two, max_elem * 2^j,
// a significand of all ones).
std::vector<float> random_block(std::mt19937_64& rng, const Elem& e, int k) {
  std::uniform_int_distribution<std::uint32_t> u32;
  const int kind = static_cast<int>(u32(rng) % 6);
  std::uint32_t top = 0;
  switch (kind) {
    case 0:
      top = u32(rng) % 255;
      break;  // anywhere (field 0 = subnormal)
    case 1:
      top = u32(rng) % 3;
      break;  // subnormal / smallest normals
    case 2:
      top = 250 + u32(rng) % 5;
      break;  // near FLT_MAX
    default:
      top = 1 + u32(rng) % 254;
      break;
  }
  const bool coarse = (u32(rng) & 1) != 0;
  std::vector<float> v(static_cast<std::size_t>(k));
  for (float& x : v) {
    const std::uint32_t spread = u32(rng) % 14;
    const std::uint32_t ef = top > spread ? top - spread : 0;
    // Half the blocks use short significands, so that many V/X are exact ties.
    const std::uint32_t mantissa = coarse ? u32(rng) & ~(0x7FFFFFu >> (u32(rng) % 7)) : u32(rng);
    x = u32(rng) % 8 == 0 ? 0.0f : float_from(ef, mantissa, (u32(rng) & 1) != 0);
  }
  const std::size_t at = u32(rng) % v.size();
  const bool neg = (u32(rng) & 1) != 0;
  float pinned = v[at];
  if (kind == 3) pinned = float_from(top, 0, neg);  // exact power of two
  if (kind == 4) {                                  // max_elem * 2^j, nudged by a few ulps
    const double m = std::ldexp(e.max, static_cast<int>(u32(rng) % 200) - 100);
    const auto b = std::bit_cast<std::uint32_t>(static_cast<float>(m));
    pinned = std::bit_cast<float>(b + (u32(rng) % 5) - 2);
  }
  if (kind == 5) pinned = float_from(top, 0x7FFFFF - (u32(rng) % (1u << (u32(rng) % 23))), neg);
  // The pinned value becomes the amax: shrink the others below it.
  for (float& x : v) {
    while (std::fabs(x) > std::fabs(pinned)) x = std::ldexp(x, -40);
  }
  v[at] = pinned;
  return v;
}

constexpr ScaleRule kRules[] = {ScaleRule::kFloor, ScaleRule::kRceil, ScaleRule::kCeil,
                                ScaleRule::kEven};

std::string describe(const std::vector<float>& v) {
  std::string s;
  char buf[40];
  for (float x : v) {
    std::snprintf(buf, sizeof buf, "%a ", static_cast<double>(x));
    s += buf;
  }
  return s;
}

// ---- 0. the hand-written constants agree with the library's ----
// Pins emax_elem, max_elem and the element decoding the reference builds on.
TEST(MxReference, ElementConstantsMatchLibrary) {
  for (const Elem& e : kElems) {
    SCOPED_TRACE(e.name);
    const BlockFormat f = block_of(e);
    EXPECT_EQ(f.element.bits, e.bits);
    EXPECT_EQ(mx_element_emax(f.element), e.emax);
    EXPECT_EQ(mx_element_max(f.element), e.max);
    EXPECT_EQ(mag_value(e, e.max_mag), e.max);
    EXPECT_EQ(floor_log2(e.max), e.emax);
  }
}

// ---- 1. scale codes and element codes against the reference ----
// Scale codes alone, on many amax values of every magnitude (cheap, so many).
TEST(MxReference, ScaleCodesMatchOnRandomAmax) {
  std::mt19937_64 rng(12345);
  for (const Elem& e : kElems) {
    const BlockFormat f = block_of(e);
    for (ScaleRule rule : kRules) {
      int failures = 0;
      for (int i = 0; i < 20000 && failures < 5; ++i) {
        const float amax = std::fabs(random_block(rng, e, 1)[0]);
        const std::uint8_t want = ref_scale(e, amax, rule),
                           got = mx_scale_code(f.element, amax, rule);
        if (want != got) {
          ++failures;
          ADD_FAILURE() << e.name << " " << scale_rule_name(rule) << " amax " << std::hexfloat
                        << amax << ": want " << int{want} << " got " << int{got};
        }
      }
    }
  }
}

// Whole blocks: every format x rule x rounding (rne, away, zero, stochastic).
TEST(MxReference, BlocksMatchForEveryFormatRuleAndRounding) {
  std::mt19937_64 rng(777);
  for (const Elem& e : kElems) {
    const BlockFormat f = block_of(e);
    for (ScaleRule rule : kRules) {
      for (Rounding mode : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                            Rounding::kStochastic}) {
        int failures = 0;
        for (int b = 0; b < 150 && failures < 3; ++b) {
          const std::vector<float> v = random_block(rng, e, f.block_size);
          const BlockOptions opt{rule, mode, rng(), false};
          const std::uint64_t first = rng() % 100000;
          std::vector<std::uint32_t> want, got(v.size());
          const std::uint8_t ws = ref_block(e, v, rule, mode, opt.seed, first, want);
          const std::uint8_t gs = mx_quantize_block(f, v, got, opt, first);
          if (ws != gs || want != got) {
            ++failures;
            std::size_t i = 0;
            while (i + 1 < v.size() && want[i] == got[i]) ++i;
            ADD_FAILURE() << e.name << " " << scale_rule_name(rule) << " rounding "
                          << static_cast<int>(mode) << ": scale want " << int{ws} << " got "
                          << int{gs} << "; element " << i << " (" << v[i] << ") want " << want[i]
                          << " got " << got[i] << "\nblock: " << describe(v);
          }
        }
      }
    }
  }
}

// ---- 2. hand-computed cases ----
std::uint8_t quant(const char* name, std::vector<float> v, ScaleRule rule,
                   std::vector<std::uint32_t>& codes, std::vector<double>& values) {
  BlockFormat f;
  EXPECT_TRUE(parse_block_format(name, f));
  codes.assign(v.size(), 0);
  const std::uint8_t s =
      mx_quantize_block(f, v, codes, {rule, Rounding::kNearestEven, 0, false}, 0);
  values.clear();
  for (std::uint32_t c : codes) values.push_back(mx_value(f.element, s, c));
  return s;
}

// The spec discussion's example: amax 957 in MXFP8-E4M3.
TEST(MxHandComputed, Amax957InE4m3) {
  std::vector<std::uint32_t> c;
  std::vector<double> d;
  // floor: floor(log2 957) = 9, minus emax 8: X = 2; 478.5 saturates to 448 -> 896.
  EXPECT_EQ(quant("mxfp8_e4m3", {957.0f, 1.0f}, ScaleRule::kFloor, c, d), 128);
  EXPECT_EQ(c[0], 0x7Eu);
  EXPECT_EQ(d[0], 896.0);
  // rceil: t = 957/448 = 2.14 -> X = 4; 239.25 rounds to 240 -> 960.
  EXPECT_EQ(quant("mxfp8_e4m3", {957.0f, 1.0f}, ScaleRule::kRceil, c, d), 129);
  EXPECT_EQ(c[0], 0x77u);
  EXPECT_EQ(d[0], 960.0);
  // ceil: ceil(log2 957) = 10 -> X = 4, like rceil here.
  EXPECT_EQ(quant("mxfp8_e4m3", {957.0f}, ScaleRule::kCeil, c, d), 129);
  EXPECT_EQ(d[0], 960.0);
  // even: 957 = 1.869 * 2^9 rounds to 1.875 at 3 mantissa bits: no carry -> X = 2.
  EXPECT_EQ(quant("mxfp8_e4m3", {957.0f}, ScaleRule::kEven, c, d), 128);
  EXPECT_EQ(d[0], 896.0);
}

// An amax that is exactly a power of two: floor, ceil and even agree; rceil too.
TEST(MxHandComputed, PowerOfTwoAmax) {
  const Format e4m3 = block_of(kElems[0]).element;
  const Format e2m1 = block_of(kElems[4]).element;
  for (ScaleRule r : kRules) {
    EXPECT_EQ(mx_scale_code(e4m3, 256.0f, r), 127) << scale_rule_name(r);  // 2^8 / 2^8
    EXPECT_EQ(mx_scale_code(e2m1, 4.0f, r), 127) << scale_rule_name(r);    // 2^2 / 2^2
    EXPECT_EQ(mx_scale_code(e2m1, 0x1p-20f, r), 127 - 22) << scale_rule_name(r);
  }
  // Just above a power of two: ceil moves up, floor and even (no carry) do not.
  const float above = std::nextafter(4.0f, 8.0f);
  EXPECT_EQ(mx_scale_code(e2m1, above, ScaleRule::kFloor), 127);
  EXPECT_EQ(mx_scale_code(e2m1, above, ScaleRule::kCeil), 128);
  EXPECT_EQ(mx_scale_code(e2m1, above, ScaleRule::kEven), 127);
  EXPECT_EQ(mx_scale_code(e2m1, above, ScaleRule::kRceil), 127);  // 4.0000005/6 < 1
}

// E2M1 "even": 7.9 = 1.975 * 4 rounds (1 mantissa bit) to 2.0 -> exponent + 1.
TEST(MxHandComputed, EvenRuleCarriesIntoNextBinade) {
  const Format e2m1 = block_of(kElems[4]).element;
  EXPECT_EQ(mx_scale_code(e2m1, 7.9f, ScaleRule::kEven), 128);
  EXPECT_EQ(mx_scale_code(e2m1, 7.9f, ScaleRule::kFloor), 127);
  EXPECT_EQ(mx_scale_code(e2m1, 7.0f, ScaleRule::kEven), 128);   // 1.75: half up carries
  EXPECT_EQ(mx_scale_code(e2m1, 6.99f, ScaleRule::kEven), 127);  // below the half
  std::vector<std::uint32_t> c;
  std::vector<double> d;
  // With X = 2: 7.9 / 2 = 3.95 -> 4 (code 6), decoded 8; floor would saturate to 6.
  EXPECT_EQ(quant("mxfp4", {7.9f, -1.0f}, ScaleRule::kEven, c, d), 128);
  EXPECT_EQ(d[0], 8.0);
  EXPECT_EQ(quant("mxfp4", {7.9f, -1.0f}, ScaleRule::kFloor, c, d), 127);
  EXPECT_EQ(d[0], 6.0);
  // MXINT8 (6 fraction bits): 1.9921875 = 2 - 2^-7 rounds to 2.0.
  const Format i8 = block_of(kElems[5]).element;
  EXPECT_EQ(mx_scale_code(i8, 1.9921875f, ScaleRule::kEven), 128);
  EXPECT_EQ(mx_scale_code(i8, 1.99f, ScaleRule::kEven), 127);
}

// fp32-subnormal amax: floor uses the exact floor(log2) (clamped), ceil reads the
// zero exponent field (+1 for the mantissa), rceil rounds t up to >= 2^-127.
TEST(MxHandComputed, SubnormalAmax) {
  const Format e4m3 = block_of(kElems[0]).element;
  const Format i8 = block_of(kElems[5]).element;
  for (ScaleRule r : kRules) EXPECT_EQ(mx_scale_code(e4m3, 0x1p-140f, r), 0) << scale_rule_name(r);
  EXPECT_EQ(mx_scale_code(i8, 0x1p-140f, ScaleRule::kFloor), 0);
  EXPECT_EQ(mx_scale_code(i8, 0x1p-140f, ScaleRule::kCeil), 1);  // bit-level: field 0 + 1 - 127
  EXPECT_EQ(mx_scale_code(i8, 0x1p-140f, ScaleRule::kEven), 0);
  EXPECT_EQ(mx_scale_code(i8, 0x1p-140f, ScaleRule::kRceil), 0);
  EXPECT_EQ(mx_scale_code(i8, 0x1.FFp-127f, ScaleRule::kEven), 1);  // carries to 2^-126
  // MXINT8, floor, amax 2^-130: X = 2^-127, 2^-3 = 8/64 exactly -> code 8, exact.
  std::vector<std::uint32_t> c;
  std::vector<double> d;
  EXPECT_EQ(quant("mxint8", {0x1p-130f, -0x1p-135f, 0x1p-149f}, ScaleRule::kFloor, c, d), 0);
  EXPECT_EQ(c[0], 8u);
  EXPECT_EQ(d[0], 0x1p-130);
  EXPECT_EQ(c[1], 0u);  // -2^-8 * 64 = -0.25 -> 0
  EXPECT_EQ(c[2], 0u);
  // E4M3 with X = 2^-127: 2^-13 is below the smallest subnormal 2^-9 -> zeros, sign kept.
  EXPECT_EQ(quant("mxfp8_e4m3", {0x1p-140f, -0x1p-141f}, ScaleRule::kFloor, c, d), 0);
  EXPECT_EQ(c[0], 0x00u);
  EXPECT_EQ(c[1], 0x80u);
}

// FLT_MAX amax: no overflow, scale code <= 254, decoded values finite in fp32.
TEST(MxHandComputed, FltMaxAmaxEveryFormat) {
  for (const Elem& e : kElems) {
    SCOPED_TRACE(e.name);
    const BlockFormat f = block_of(e);
    EXPECT_EQ(mx_scale_code(f.element, kFltMax, ScaleRule::kFloor), 254 - e.emax);
    // ceil and even: (2 - 2^-23) * 2^127 goes up to 2^128 before clamping.
    EXPECT_EQ(mx_scale_code(f.element, kFltMax, ScaleRule::kCeil), std::min(255 - e.emax, 254));
    EXPECT_EQ(mx_scale_code(f.element, kFltMax, ScaleRule::kEven), std::min(255 - e.emax, 254));
    for (ScaleRule r : kRules) {
      std::vector<float> v{kFltMax, -kFltMax, 1.0f};
      std::vector<std::uint32_t> codes(v.size());
      const std::uint8_t s =
          mx_quantize_block(f, v, codes, {r, Rounding::kNearestEven, 0, false}, 0);
      EXPECT_LE(s, 254) << scale_rule_name(r);
      for (std::uint32_t c : codes) {
        const double x = mx_value(f.element, s, c);
        EXPECT_LE(std::fabs(x), 0x1p128) << scale_rule_name(r) << " code " << c;
        // floor never overflows fp32 on decode. (ceil/even/rceil can: FLT_MAX in
        // E4M3 gets X = 2^120 and element 256, i.e. 2^128 -- see the report; the
        // value is a valid MX value but not an fp32, contrary to mx_value's comment.)
        if (r == ScaleRule::kFloor) {
          EXPECT_TRUE(std::isfinite(static_cast<float>(x))) << c;
        }
      }
      EXPECT_LE(std::fabs(code_value(e, codes[0])), e.max);
    }
  }
}

// rceil's fp32 product can round t down onto a power of two: MXINT8 amax
// 0x1.fc0002p+52 (one fp32 ulp above 127/64 * 2^52) gets X = 2^52 (code 179), and
// V/X = 1.98437512 saturates to 127/64. The documented computation says so (and
// NVIDIA's amax * max_reciprocal does the same); block_format.h's "so no element
// saturates" holds only up to this fp32 rounding.
TEST(MxHandComputed, RceilSaturatesByUlpsThroughFp32Reciprocal) {
  std::vector<std::uint32_t> c;
  std::vector<double> d;
  EXPECT_EQ(quant("mxint8", {0x1.fc0002p+52f}, ScaleRule::kRceil, c, d), 179);
  EXPECT_EQ(c[0], 127u);
  EXPECT_EQ(d[0], 0x1.fcp+52);
  // Exactly 127/64 * 2^52: t rounds to 2^52 too, and nothing saturates.
  EXPECT_EQ(quant("mxint8", {0x1.fcp+52f}, ScaleRule::kRceil, c, d), 179);
  EXPECT_EQ(d[0], 0x1.fcp+52);
}

// rceil at the bottom of E8M0: with mx:int2 (max_elem 1, so t = amax exactly) t is
// rounded up to a power of two no smaller than 2^-127 = code 0, which is the fp32
// subnormal 0x00400000: t <= 2^-127 -> 0x00, just above -> 0x01. torchao's bit-level
// ceil instead reads exponent field 0 + 1 for any nonzero subnormal: code 0x01.
TEST(MxHandComputed, RceilAndCeilAtTheSmallestScale) {
  BlockFormat f;
  ASSERT_TRUE(parse_block_format("mx:int2:32", f));
  EXPECT_EQ(mx_element_max(f.element), 1.0);
  const float p127 = 0x1p-127f;
  EXPECT_EQ(mx_scale_code(f.element, 0x1p-149f, ScaleRule::kRceil), 0);
  EXPECT_EQ(mx_scale_code(f.element, p127, ScaleRule::kRceil), 0);
  EXPECT_EQ(mx_scale_code(f.element, std::nextafter(p127, 1.0f), ScaleRule::kRceil), 1);
  EXPECT_EQ(mx_scale_code(f.element, 0x1p-126f, ScaleRule::kRceil), 1);
  EXPECT_EQ(mx_scale_code(f.element, std::nextafter(0x1p-126f, 1.0f), ScaleRule::kRceil), 2);
  EXPECT_EQ(mx_scale_code(f.element, 0x1p-149f, ScaleRule::kCeil), 1);
  EXPECT_EQ(mx_scale_code(f.element, p127, ScaleRule::kCeil), 1);
  EXPECT_EQ(mx_scale_code(f.element, p127, ScaleRule::kFloor), 0);
  EXPECT_EQ(mx_scale_code(f.element, 0.0f, ScaleRule::kCeil), 0);
}

// All-zero block: scale 0x00 under every rule, elements +0 (-0 for -0.0 inputs).
TEST(MxHandComputed, AllZeroBlock) {
  for (const Elem& e : kElems) {
    const BlockFormat f = block_of(e);
    for (ScaleRule r : kRules) {
      std::vector<float> v(static_cast<std::size_t>(f.block_size), 0.0f);
      v[1] = -0.0f;
      std::vector<std::uint32_t> codes(v.size(), 99);
      EXPECT_EQ(mx_quantize_block(f, v, codes, {r, Rounding::kNearestEven, 0, false}, 0), 0x00)
          << e.name << " " << scale_rule_name(r);
      EXPECT_EQ(codes[0], 0u) << e.name;
      EXPECT_EQ(codes[1], e.is_int ? 0u : 1u << (e.bits - 1)) << e.name;
      EXPECT_EQ(mx_value(f.element, 0x00, codes[0]), 0.0);
    }
  }
}

// A NaN or -Inf anywhere: scale 0xFF, element NaN encodings, all decode to NaN.
TEST(MxHandComputed, NanAndInfBlocks) {
  for (const Elem& e : kElems) {
    const BlockFormat f = block_of(e);
    for (float bad : {kNanF, -kInfF, kInfF}) {
      for (ScaleRule r : kRules) {
        std::vector<float> v{1.0f, bad, -3.0f, 0.0f};
        std::vector<std::uint32_t> codes(v.size());
        EXPECT_EQ(mx_quantize_block(f, v, codes, {r, Rounding::kNearestEven, 0, false}, 0), 0xFF);
        for (std::uint32_t c : codes) {
          EXPECT_TRUE(is_nan_element(e, c)) << e.name << " code " << c;
          EXPECT_TRUE(std::isnan(mx_value(f.element, 0xFF, c)));
        }
      }
    }
    for (ScaleRule r : kRules) {
      EXPECT_EQ(mx_scale_code(f.element, kNanF, r), 0xFF);
      EXPECT_EQ(mx_scale_code(f.element, kInfF, r), 0xFF);
    }
  }
}

// ---- 3. properties on random blocks ----
// floor/rceil, RNE and ties-away: |deq - V| <= X * ulp/2 unless |V|/X > max_elem;
// toward zero: |deq| <= |V| and within one ulp. No element exceeds max_elem; rceil
// never saturates (unless the scale clamped at 2^127); MXINT8 never emits 0x80.
TEST(MxProperties, ErrorBoundsAndSaturation) {
  std::mt19937_64 rng(4242);
  for (const Elem& e : kElems) {
    const BlockFormat f = block_of(e);
    const int emin = e.is_int ? 0 : 1 - e.bias;
    for (ScaleRule rule : {ScaleRule::kFloor, ScaleRule::kRceil}) {
      for (Rounding mode :
           {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero}) {
        int failures = 0;
        for (int b = 0; b < 200 && failures < 3; ++b) {
          const std::vector<float> v = random_block(rng, e, f.block_size);
          std::vector<std::uint32_t> codes(v.size());
          const std::uint8_t s = mx_quantize_block(f, v, codes, {rule, mode, 0, false}, 0);
          ASSERT_NE(s, 0xFF);
          for (std::size_t i = 0; i < v.size(); ++i) {
            const double q = std::ldexp(static_cast<double>(v[i]), 127 - s);  // V / X
            const double p = code_value(e, codes[i]);
            const double ulp =
                e.is_int
                    ? std::ldexp(1.0, -e.man_bits)
                    : std::ldexp(1.0, (q == 0 ? emin : std::max(floor_log2(std::fabs(q)), emin)) -
                                          e.man_bits);
            const bool saturated = std::fabs(q) > e.max;
            bool ok = std::fabs(p) <= e.max && std::isfinite(p);
            if (e.bits == 8 && e.is_int) ok = ok && codes[i] != 0x80;
            // rceil: t = amax * fp32(1/max) is rounded in fp32, so an amax 1-2 fp32 ulps
            // above max_elem * 2^j can get X = 2^j and saturate by < 2^-22 relative
            // (MXINT8, E3M4; see RceilSaturatesByUlpsThroughFp32Reciprocal).
            if (rule == ScaleRule::kRceil && s < 254)
              ok = ok && std::fabs(q) <= e.max * (1 + 0x1p-22);
            if (!saturated) {
              const double err = std::fabs(p - q);
              ok = ok && (mode == Rounding::kTowardZero ? err < ulp && std::fabs(p) <= std::fabs(q)
                                                        : err <= ulp / 2);
              ok = ok && std::ldexp(p, s - 127) == mx_value(f.element, s, codes[i]);
            } else {
              ok = ok && std::fabs(p) == e.max && std::signbit(p) == std::signbit(q);
            }
            if (!ok && failures++ < 3) {
              ADD_FAILURE() << e.name << " " << scale_rule_name(rule) << " mode "
                            << static_cast<int>(mode) << " V " << std::hexfloat << v[i] << " scale "
                            << std::dec << int{s} << " code " << codes[i];
            }
          }
        }
      }
    }
  }
}

// ---- 4. decoding: every element code x a sweep of scale codes ----
TEST(MxDecode, EveryCodeTimesScaleSweep) {
  std::mt19937_64 rng(99);
  std::vector<std::uint8_t> scales{0x00, 0x01, 0x7F, 0xFE, 0xFF};
  for (int i = 0; i < 6; ++i) scales.push_back(static_cast<std::uint8_t>(rng() % 255));
  for (const Elem& e : kElems) {
    const BlockFormat f = block_of(e);
    for (std::uint32_t code = 0; code < (1u << e.bits); ++code) {
      const double p = code_value(e, code);
      if (!std::isnan(p)) {
        EXPECT_EQ(mx_element_value(f.element, code), p) << e.name << " " << code;
      }
      for (std::uint8_t s : scales) {
        const double got = mx_value(f.element, s, code);
        if (s == 0xFF || std::isnan(p)) {
          EXPECT_TRUE(std::isnan(got)) << e.name << " code " << code << " scale " << int{s};
        } else {
          EXPECT_EQ(got, std::ldexp(p, s - 127))
              << e.name << " code " << code << " scale " << int{s};
        }
      }
    }
  }
}

}  // namespace
}  // namespace lowp
