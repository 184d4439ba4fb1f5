// FoNE (lowp/numeracy/fone.h): decode(encode(x)) == x for a seeded sample of
// a million integers below 10^12 and their edges, for every 6-digit decimal
// 000.000-999.999, from fp64 and fp32 features; the features against the
// paper's formula cos/sin(2 pi x / 10^k) evaluated directly in long double;
// bad input.
#include "lowp/numeracy/fone.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"

namespace lowp::numeracy {
namespace {

// Encodes v, then decodes it from the fp64 features and from the fp32 ones
// (the fp64 ones rounded to nearest: checked against fone_encode's fp32 form
// for one call in `check_f32_every`).
void expect_round_trip(const FoneNumber& v, const FoneConfig& c, int check_f32_every = 1) {
  static int calls = 0;
  std::vector<double> f64(static_cast<std::size_t>(fone_width(c)));
  std::vector<float> f32(f64.size());
  fone_encode(v, c, std::span<double>(f64));
  for (std::size_t i = 0; i < f64.size(); ++i) f32[i] = static_cast<float>(f64[i]);
  if (++calls % check_f32_every == 0) {
    std::vector<float> direct(f64.size());
    fone_encode(v, c, std::span<float>(direct));
    ASSERT_EQ(direct, f32);
  }
  const FoneNumber from64 = fone_decode(std::span<const double>(f64), c);
  const FoneNumber from32 = fone_decode(std::span<const float>(f32), c);
  ASSERT_EQ(from64, v) << fone_to_string(v, c) << " decoded from fp64 as "
                       << fone_to_string(from64, c);
  ASSERT_EQ(from32, v) << fone_to_string(v, c) << " decoded from fp32 as "
                       << fone_to_string(from32, c);
}

std::uint64_t pow10(int k) {
  std::uint64_t p = 1;
  for (int i = 0; i < k; ++i) p *= 10;
  return p;
}

TEST(Fone, IntegersBelow1e12RoundTrip) {
  const FoneConfig c{12, 0, false};
  ASSERT_EQ(fone_width(c), 24);
  std::vector<std::int64_t> xs = {0};
  for (int k = 1; k <= 12; ++k) {
    xs.push_back(static_cast<std::int64_t>(pow10(k)) - 1);
    if (k < 12) xs.push_back(static_cast<std::int64_t>(pow10(k)));
    if (k < 12) xs.push_back(static_cast<std::int64_t>(pow10(k)) + 1);
  }
  std::mt19937_64 gen(20250214);
  std::uniform_int_distribution<std::int64_t> uniform(0, 999'999'999'999);
  for (int i = 0; i < 1'000'000; ++i) xs.push_back(uniform(gen));
  for (const std::int64_t x : xs) {
    const FoneNumber v = fone_from_integer(x, c);
    ASSERT_EQ(v.scaled, static_cast<std::uint64_t>(x));
    expect_round_trip(v, c, 64);
  }
}

TEST(Fone, EverySixDigitDecimalRoundTrips) {
  // int_digits 3, frac_digits 3: every value 000.000 ... 999.999, given as the
  // double nearest to it (what a parser gives for the text).
  const FoneConfig c{3, 3, false};
  for (std::uint64_t i = 0; i < 1'000'000; ++i) {
    const double x = static_cast<double>(i) / 1000.0;
    const FoneNumber v = fone_from_double(x, c);
    ASSERT_EQ(v.scaled, i) << x;
    expect_round_trip(v, c, 64);
    ASSERT_EQ(fone_to_double(v, c), x);
  }
}

TEST(Fone, DecimalText) {
  const FoneConfig c{3, 3, false};
  EXPECT_EQ(fone_parse("123.456", c).scaled, 123456u);
  EXPECT_EQ(fone_parse("007.5", c).scaled, 7500u);
  EXPECT_EQ(fone_parse("+0.25000", c).scaled, 250u);
  EXPECT_EQ(fone_parse(".5", c).scaled, 500u);
  EXPECT_EQ(fone_parse("12.", c).scaled, 12000u);
  EXPECT_EQ(fone_to_string(fone_parse("7.5", c), c), "7.500");
  EXPECT_EQ(fone_to_string(fone_parse("0", c), c), "0.000");
}

TEST(Fone, NineteenDigitsBeyondDoublePrecisionRoundTrip) {
  // Integers past 2^53 from text: the integer range reduction keeps every digit.
  const FoneConfig c{19, 0, false};
  expect_round_trip(fone_parse("9999999999999999999", c), c);
  expect_round_trip(fone_parse("1000000000000000000", c), c);
  const FoneConfig d{10, 9, true};
  expect_round_trip(fone_parse("-9876543210.123456789", d), d);
  std::mt19937_64 gen(7);
  for (int i = 0; i < 10'000; ++i) {
    const FoneNumber v{false, gen() % 10'000'000'000'000'000'000u};
    expect_round_trip(v, c);
  }
}

TEST(Fone, FeaturesMatchTheDefinitionInLongDouble) {
  // phi(x)[2p], [2p+1] = cos, sin(2 pi x / 10^k), k = p - frac + 1, evaluated
  // directly (no range reduction) in long double for values small enough that
  // it loses nothing.
  const FoneConfig c{4, 2, false};
  for (const char* text : {"0", "1", "9.99", "1234.56", "5000", "0.07", "8765.43", "3.14"}) {
    const FoneNumber v = fone_parse(text, c);
    std::vector<double> f(static_cast<std::size_t>(fone_width(c)));
    fone_encode(v, c, std::span<double>(f));
    const long double x = std::stold(text);
    for (int p = 0; p < fone_positions(c); ++p) {
      const int k = p - c.frac_digits + 1;
      ASSERT_EQ(fone_period_exponent(c, p), k);
      const long double angle = 2 * std::numbers::pi_v<long double> * x / std::pow(10.0L, k);
      // The reference itself is off by up to ~2 ulp of the unreduced angle.
      const double tolerance = 2e-15 + static_cast<double>(std::fabs(angle)) * 0x1p-61;
      EXPECT_NEAR(f[static_cast<std::size_t>(2 * p)], static_cast<double>(std::cos(angle)),
                  tolerance)
          << text << " period 10^" << k;
      EXPECT_NEAR(f[static_cast<std::size_t>(2 * p + 1)], static_cast<double>(std::sin(angle)),
                  tolerance)
          << text << " period 10^" << k;
    }
  }
  // One worked by hand: x = 25, int 2: T = 10 gives angle pi (cos -1, sin 0),
  // T = 100 gives pi / 2 (cos 0, sin 1).
  const FoneConfig two{2, 0, false};
  std::vector<double> f(4);
  fone_encode(fone_from_integer(25, two), two, std::span<double>(f));
  EXPECT_NEAR(f[0], -1, 1e-15);
  EXPECT_NEAR(f[1], 0, 1e-15);
  EXPECT_NEAR(f[2], 0, 1e-15);
  EXPECT_NEAR(f[3], 1, 1e-15);
}

TEST(Fone, SignFeature) {
  const FoneConfig c{3, 2, true};
  ASSERT_EQ(fone_width(c), 11);
  const FoneNumber v = fone_parse("-12.5", c);
  EXPECT_TRUE(v.negative);
  EXPECT_EQ(v.scaled, 1250u);
  std::vector<double> f(11);
  fone_encode(v, c, std::span<double>(f));
  EXPECT_EQ(f[10], -1.0);
  expect_round_trip(v, c);
  EXPECT_EQ(fone_to_string(v, c), "-12.50");
  EXPECT_EQ(fone_to_double(v, c), -12.5);
  EXPECT_EQ(fone_from_double(-12.5, c), v);
  EXPECT_EQ(fone_from_integer(-7, c).scaled, 700u);
  // Zero is unsigned.
  EXPECT_FALSE(fone_parse("-0.00", c).negative);
  EXPECT_FALSE(fone_from_double(-0.0, c).negative);
}

TEST(Fone, BadInput) {
  const FoneConfig c{3, 2, false};
  for (const char* text : {"", "-", ".", "abc", "1.2.3", "1e5", "12a", " 1", "0x10", "1,5"}) {
    EXPECT_THROW(fone_parse(text, c), Error) << text;
  }
  EXPECT_THROW(fone_parse("1000", c), Error);
  EXPECT_THROW(fone_parse("0.125", c), Error);
  EXPECT_THROW(fone_parse("-1", c), Error);
  try {
    fone_parse("12345", c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "fone: value '12345' has 5 integer digits, more than int_digits 3");
  }
  EXPECT_THROW(fone_from_double(std::numeric_limits<double>::quiet_NaN(), c), Error);
  EXPECT_THROW(fone_from_double(std::numeric_limits<double>::infinity(), c), Error);
  EXPECT_THROW(fone_from_double(1000.0, c), Error);
  EXPECT_THROW(fone_from_double(0.125, c), Error);
  EXPECT_THROW(fone_from_double(0.1, FoneConfig{3, 0, false}), Error);
  EXPECT_THROW(fone_from_double(-1.0, c), Error);
  EXPECT_THROW(fone_from_double(0.5, FoneConfig{1, 18, false}), Error);  // past 2^50 scaled
  EXPECT_THROW(fone_from_integer(1000, c), Error);
  EXPECT_THROW(fone_from_integer(-5, c), Error);
  for (const FoneConfig bad :
       {FoneConfig{0, 0, false}, FoneConfig{15, 5, false}, FoneConfig{-1, 3, false}}) {
    EXPECT_THROW(check_fone_config(bad), Error);
    EXPECT_THROW(fone_parse("1", bad), Error);
  }
  std::vector<double> f(9);
  EXPECT_THROW(fone_decode(std::span<const double>(f), c), Error);  // 10 expected
  f.resize(10);
  f[3] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(fone_decode(std::span<const double>(f), c), Error);
  EXPECT_THROW(fone_encode(FoneNumber{false, 100000}, c, std::span<double>(f)), Error);
}

}  // namespace
}  // namespace lowp::numeracy
