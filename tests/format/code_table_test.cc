// The code books nf4, nf3 and dint4 (lowp/format/code_table.h) against tables
// written here again from their sources, and a brute-force nearest search that
// never calls the code under test: every code decodes to its value, every
// value encodes to its code, every midpoint and its neighbours round by the
// documented rule, and a sweep of random doubles agrees in every mode.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace lowp {
namespace {

// The published decimals (bitsandbytes' NF4 code book; AFPQ's NF3 code book in
// github.com/zhangsichengsjtu/AFPQ, auto_gptq/quantization/quantizer_nf4.py),
// each rounded to fp32 here.
std::vector<double> fp32_of(const std::vector<double>& decimals) {
  std::vector<double> out;
  for (double d : decimals) out.push_back(static_cast<double>(static_cast<float>(d)));
  return out;
}

const std::vector<double>& expected_nf4() {
  static const std::vector<double> v =
      fp32_of({-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
               -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
               0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
               0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0});
  return v;
}

const std::vector<double>& expected_nf3() {
  static const std::vector<double> v =
      fp32_of({-1.0, -0.5350227355957031, -0.2469314038753510, 0.0, 0.1833375245332718,
               0.3819939494132996, 0.6229856610298157, 1.0});
  return v;
}

// dINT4 as lowp reads Lee et al. 2023: sign-magnitude, code = s << 3 | m,
// |value| = 0 for m = 0, the denormal step 0.5 for m = 1, m - 1 above.
const std::vector<double>& expected_dint4() {
  static const std::vector<double> v = [] {
    std::vector<double> out;
    for (int code = 0; code < 16; ++code) {
      const int m = code & 7;
      const double mag = m == 0 ? 0.0 : m == 1 ? 0.5 : static_cast<double>(m - 1);
      out.push_back((code & 8) != 0 ? -mag : mag);
    }
    return out;
  }();
  return v;
}

struct Case {
  const char* name;
  Format format;
  const std::vector<double>& values;
  std::uint32_t plus_zero_code;
};

std::vector<Case> cases() {
  return {{"nf4", kNf4, expected_nf4(), 7},
          {"nf3", kNf3, expected_nf3(), 3},
          {"dint4", kDint4, expected_dint4(), 0}};
}

bool negative(double x) { return std::signbit(x); }

// The code of value q, a zero taking the sign of `neg` where the table has -0.
std::uint32_t code_of(const Case& c, double q, bool neg) {
  std::uint32_t found = 99;
  for (std::uint32_t i = 0; i < c.values.size(); ++i) {
    if (c.values[i] != q) continue;
    if (found == 99) found = i;
    if (q == 0.0 && negative(c.values[i]) == neg) return i;
  }
  return found;
}

enum class Mode { kNearestSmaller, kNearestLarger, kTowardZero };

// Brute force: the table value nearest to x by long-double distances (exact
// for every input near a midpoint; see the encode rules in convert.h), ties
// to the smaller (or larger) magnitude; toward zero: the value of largest
// magnitude between 0 and x, or the nearest end beyond the table.
std::uint32_t brute(const Case& c, double x, Mode mode) {
  if (std::isnan(x)) return c.plus_zero_code;
  double lo = 1e300, hi = -1e300;
  for (double v : c.values) lo = std::min(lo, v), hi = std::max(hi, v);
  if (x >= hi) return code_of(c, hi, false);
  if (x <= lo) return code_of(c, lo, false);
  double best = 0.0;
  long double best_d = std::numeric_limits<long double>::infinity();
  for (double v : c.values) {
    const long double d = std::fabs(static_cast<long double>(x) - static_cast<long double>(v));
    if (mode == Mode::kTowardZero) {
      const bool between = (x >= 0 && v >= 0 && v <= x) || (x < 0 && v <= 0 && v >= x);
      if (between && std::fabs(v) >= std::fabs(best)) best = v;
      continue;
    }
    if (d < best_d) {
      best = v, best_d = d;
    } else if (d == best_d && v != best) {
      const bool smaller = std::fabs(v) < std::fabs(best);
      if ((mode == Mode::kNearestSmaller) == smaller) best = v;
    }
  }
  return code_of(c, best, negative(x));
}

Rounding rounding_of(Mode m) {
  switch (m) {
    case Mode::kNearestSmaller:
      return Rounding::kNearestEven;
    case Mode::kNearestLarger:
      return Rounding::kNearestAway;
    case Mode::kTowardZero:
      return Rounding::kTowardZero;
  }
  return Rounding::kNearestEven;
}

// The reference is constexpr for code books too.
static_assert(decode(kNf4, 7) == 0.0 && decode(kNf3, 0) == -1.0 && decode(kDint4, 15) == -6.0);
static_assert(encode(kNf4, 0.9) == 15 && encode(kNf3, -0.3) == 2 && encode(kDint4, -0.1) == 8);
static_assert(encode(kDint4, 2.5) == 3 && encode(kDint4, 2.5, {Rounding::kNearestAway, true}) == 4);

constexpr Mode kModes[] = {Mode::kNearestSmaller, Mode::kNearestLarger, Mode::kTowardZero};

TEST(CodeTable, FormatsAreRegistered) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const Format f = parse_format(c.name);
    EXPECT_EQ(f, c.format);
    EXPECT_EQ(f.kind, Kind::kTable);
    EXPECT_EQ(format_name(f), c.name);
    EXPECT_EQ(std::size_t{1} << f.bits, c.values.size());
    EXPECT_TRUE(is_signed(f));
  }
  EXPECT_EQ(kNf4.bits, 4);
  EXPECT_EQ(kNf3.bits, 3);
  EXPECT_EQ(kDint4.bits, 4);
  EXPECT_EQ(max_finite(kNf4), 1.0);
  EXPECT_EQ(max_finite(kDint4), 6.0);
  EXPECT_EQ(max_negative_magnitude(kNf3), 1.0);
  EXPECT_TRUE(has_negative_zero(kDint4));
  EXPECT_FALSE(has_negative_zero(kNf4));
}

TEST(CodeTable, EveryCodeDecodesToItsValue) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    for (std::uint32_t code = 0; code < c.values.size(); ++code) {
      const double want = c.values[code];
      EXPECT_EQ(std::bit_cast<std::uint64_t>(decode(c.format, code)),
                std::bit_cast<std::uint64_t>(want))
          << code;
      EXPECT_EQ(std::bit_cast<std::uint32_t>(decode_f32(c.format, code)),
                std::bit_cast<std::uint32_t>(static_cast<float>(want)))
          << code;
    }
  }
  EXPECT_TRUE(std::signbit(decode(kDint4, 8)));  // -0
}

TEST(CodeTable, EveryValueEncodesToItsCode) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    for (std::uint32_t code = 0; code < c.values.size(); ++code) {
      for (Mode m : kModes) {
        EXPECT_EQ(encode(c.format, c.values[code], {rounding_of(m), true}), code) << code;
      }
      EXPECT_EQ(encode(c.format, c.values[code], {Rounding::kStochastic, true}, 0xFFFFFFFFu), code);
    }
  }
}

TEST(CodeTable, MidpointsAndTheirNeighbours) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    std::vector<double> sorted = c.values;
    std::sort(sorted.begin(), sorted.end());
    int ties = 0;
    for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
      if (sorted[i] == sorted[i + 1]) continue;  // ±0
      const double mid = (sorted[i] + sorted[i + 1]) / 2;
      const double below = std::nextafter(mid, -1e9), above = std::nextafter(mid, 1e9);
      // fp32 inputs on both sides of the midpoint, too.
      const float midf = static_cast<float>(mid);
      for (double x :
           {mid, below, above, static_cast<double>(std::nextafter(midf, -1e9f)),
            static_cast<double>(midf), static_cast<double>(std::nextafter(midf, 1e9f))}) {
        for (Mode m : kModes) {
          EXPECT_EQ(encode(c.format, x, {rounding_of(m), true}), brute(c, x, m))
              << std::hexfloat << x << " mode " << static_cast<int>(m);
        }
      }
      // The rule itself, written out: a tie goes to the smaller magnitude,
      // and the neighbours of the midpoint go to their own side.
      const double small =
          std::fabs(sorted[i]) < std::fabs(sorted[i + 1]) ? sorted[i] : sorted[i + 1];
      EXPECT_EQ(decode(c.format, encode(c.format, mid)), small) << mid;
      EXPECT_EQ(decode(c.format, encode(c.format, below)), sorted[i]) << below;
      EXPECT_EQ(decode(c.format, encode(c.format, above)), sorted[i + 1]) << above;
      ++ties;
    }
    EXPECT_EQ(ties,
              c.format.table == CodeTable::kDint4 ? 14 : static_cast<int>(c.values.size()) - 1);
  }
}

TEST(CodeTable, SpecialInputs) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    for (Mode m : kModes) {
      const EncodeOptions opt{rounding_of(m), false};  // code books saturate regardless
      EXPECT_EQ(encode(c.format, kNan, opt), c.plus_zero_code);
      EXPECT_EQ(encode(c.format, -kNan, opt), c.plus_zero_code);
      EXPECT_EQ(encode(c.format, kInf, opt), brute(c, 1e300, m));
      EXPECT_EQ(encode(c.format, -kInf, opt), brute(c, -1e300, m));
      EXPECT_EQ(decode(c.format, encode(c.format, 1e30, opt)), max_positive_value(c.format));
      EXPECT_EQ(decode(c.format, encode(c.format, -1e30, opt)), -max_negative_magnitude(c.format));
      EXPECT_EQ(encode(c.format, 0.0, opt), c.plus_zero_code);
    }
  }
  // -0 and negative values that round to zero keep their sign where the
  // table has -0 (dint4's code 8), and give the one zero elsewhere.
  EXPECT_EQ(encode(kDint4, -0.0), 8u);
  EXPECT_EQ(encode(kDint4, -1e-30), 8u);
  EXPECT_EQ(encode(kDint4, -0.25), 8u);  // a tie: the smaller magnitude
  EXPECT_EQ(encode(kDint4, 0.25), 0u);
  EXPECT_EQ(encode(kDint4, -0.2500001), 9u);  // -0.5
  EXPECT_EQ(encode(kDint4, 0.75), 1u);        // tie 0.5 | 1: 0.5
  EXPECT_EQ(encode(kDint4, 0.75, {Rounding::kNearestAway, true}), 2u);
  EXPECT_EQ(encode(kNf4, -0.0), 7u);
  EXPECT_EQ(encode(kNf4, -1e-30), 7u);
  EXPECT_EQ(encode(kNf3, -1e-30), 3u);
  EXPECT_EQ(encode(kDint4, 7.0), 7u);
  EXPECT_EQ(encode(kDint4, -7.0), 15u);
}

TEST(CodeTable, RandomSweepAgreesWithBruteForce) {
  std::mt19937_64 rng(20231105);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::uniform_int_distribution<int> scale_exp(-12, 4);
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const double span = max_finite(c.format) * 1.25;
    int bad = 0;
    for (int i = 0; i < 200000 && bad < 10; ++i) {
      double x = unit(rng) * span;
      if (i % 4 == 3) x = std::ldexp(unit(rng), scale_exp(rng));  // near zero and far out
      if (i % 16 == 5) x = static_cast<double>(static_cast<float>(x));
      for (Mode m : kModes) {
        const std::uint32_t got = encode(c.format, x, {rounding_of(m), true});
        const std::uint32_t want = brute(c, x, m);
        if (got != want) {
          ++bad;
          ADD_FAILURE() << std::hexfloat << x << " mode " << static_cast<int>(m) << " got " << got
                        << " want " << want;
        }
      }
    }
  }
}

// Stochastic rounding picks one of the two neighbours, the upper one iff
// floor(t * 2^32) + r >= 2^32, and is unbiased on average.
TEST(CodeTable, StochasticRounding) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const EncodeOptions opt{Rounding::kStochastic, true};
    std::vector<double> sorted = c.values;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
      const double lo = sorted[i], hi = sorted[i + 1];
      if (lo == hi) continue;
      const double x = lo + (hi - lo) * 0.3;
      EXPECT_EQ(decode(c.format, encode(c.format, x, opt, 0)), lo);
      EXPECT_EQ(decode(c.format, encode(c.format, x, opt, 0xFFFFFFFFu)), hi);
      const auto threshold = static_cast<std::uint64_t>((x - lo) / (hi - lo) * 4294967296.0);
      const auto r = static_cast<std::uint32_t>((std::uint64_t{1} << 32) - threshold);
      EXPECT_EQ(decode(c.format, encode(c.format, x, opt, r)), hi);
      EXPECT_EQ(decode(c.format, encode(c.format, x, opt, r - 1)), lo);
      double sum = 0.0;
      constexpr int kDraws = 20000;
      for (int k = 0; k < kDraws; ++k) {
        sum += decode(c.format, encode_at(c.format, x, opt, 7, static_cast<std::uint64_t>(k)));
      }
      EXPECT_NEAR(sum / kDraws, x, 0.03 * (hi - lo)) << lo << " " << hi;
    }
  }
}

// The bulk kernels (a scalar loop over the reference for code books) give the
// reference's codes and values, in every mode, for fp32 and fp64 inputs.
TEST(CodeTable, BulkKernelsMatchTheReference) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  std::vector<float> x(4099);
  for (float& v : x) v = u(rng);
  x[0] = std::numeric_limits<float>::quiet_NaN();
  x[1] = -std::numeric_limits<float>::infinity();
  x[2] = -0.0f;
  x[3] = 0.25f;
  std::vector<double> xd(x.begin(), x.end());
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                       Rounding::kStochastic}) {
      const EncodeOptions opt{r, true};
      std::vector<std::uint8_t> codes(x.size()), codes64(x.size());
      encode_f32(c.format, x, codes.data(), opt, 42, 1000, 2);
      encode_f64(c.format, xd, codes64.data(), opt, 42, 1000);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const std::uint32_t want =
            encode_at(c.format, static_cast<double>(x[i]), opt, 42, 1000 + i);
        ASSERT_EQ(codes[i], want) << i;
        ASSERT_EQ(codes64[i], want) << i;
      }
      std::vector<float> back(x.size());
      decode_to_f32(c.format, codes.data(), back, 2);
      for (std::size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(back[i]),
                  std::bit_cast<std::uint32_t>(decode_f32(c.format, codes[i])));
      }
    }
  }
}

TEST(CodeTable, JsonAndBadNames) {
  const auto j = nlohmann::json::parse(format_json("nf3", kNf3, "s"));
  EXPECT_EQ(j["kind"], "table");
  EXPECT_EQ(j["bits"], 3);
  ASSERT_EQ(j["values"].size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(j["values"][i].get<double>(), expected_nf3()[i]);
  EXPECT_EQ(nlohmann::json::parse(format_json("int4", kInt4, "s"))["kind"], "int");
  try {
    parse_format("nf5");
    FAIL() << "nf5 parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("closest"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nf4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowp
