// Pinned conversions: the cases the specs spell out and the ones peers get
// wrong. The exhaustive comparison with the oracle lives in exhaustive_test.cc;
// these tests name the rules.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

constexpr EncodeOptions kRne{};
constexpr EncodeOptions kSat{Rounding::kNearestEven, true};
constexpr EncodeOptions kAway{Rounding::kNearestAway, false};
constexpr EncodeOptions kZero{Rounding::kTowardZero, false};
const double kInf = std::numeric_limits<double>::infinity();
const double kNan = std::numeric_limits<double>::quiet_NaN();

// Compile-time pins: the scalar reference is constexpr.
static_assert(encode(kFp8E4m3, 448.0) == 0x7E);
static_assert(encode(kFp8E4m3, -448.0) == 0xFE);
static_assert(decode(kFp8E4m3, 0x01) == 0x1p-9);

TEST(Fp8E4m3, OverflowAndTies) {
  const Format f = kFp8E4m3;
  EXPECT_EQ(encode(f, 464.0), 0x7Eu);      // tie between 448 and (virtual) 480: even is 448
  EXPECT_EQ(encode(f, 464.0001), 0x7Fu);   // past the tie: overflow -> NaN (non-saturating)
  EXPECT_EQ(encode(f, -500.0), 0xFFu);     // NaN keeps the sign
  EXPECT_EQ(encode(f, 1e9, kSat), 0x7Eu);  // saturate: max finite
  EXPECT_EQ(encode(f, -kInf, kSat), 0xFEu);
  EXPECT_EQ(encode(f, kInf), 0x7Fu);          // no Inf in E4M3: NaN
  EXPECT_EQ(encode(f, 1e9, kZero), 0x7Eu);    // toward zero never overflows (IEEE 754 7.4)
  EXPECT_EQ(encode(f, 464.0, kAway), 0x7Fu);  // ties away: 480 overflows
  EXPECT_EQ(encode(f, kNan), 0x7Fu);
  EXPECT_EQ(encode(f, -kNan), 0xFFu);
}

TEST(Fp8E4m3, Subnormals) {
  const Format f = kFp8E4m3;
  EXPECT_EQ(encode(f, 0x1p-9), 0x01u);
  EXPECT_EQ(encode(f, 0x1p-10), 0x00u);      // tie with 0: even is 0
  EXPECT_EQ(encode(f, 0x1.8p-10), 0x01u);    // 0.75 of the smallest subnormal
  EXPECT_EQ(encode(f, 3 * 0x1p-10), 0x02u);  // 1.5 units: tie to even 2
  EXPECT_EQ(encode(f, 0x1p-10, kAway), 0x01u);
  EXPECT_EQ(encode(f, -0x1p-11), 0x80u);  // rounds to -0
  EXPECT_EQ(encode(f, 0x1.Cp-7), 0x07u);  // largest subnormal 7 * 2^-9
  EXPECT_EQ(encode(f, 0x1.Fp-7), 0x08u);  // rounds up into the first normal
  // fp32 subnormal input: far below, rounds to zero; sign kept
  EXPECT_EQ(encode(f, static_cast<double>(std::numeric_limits<float>::denorm_min())), 0x00u);
  EXPECT_EQ(encode(f, -static_cast<double>(std::numeric_limits<float>::denorm_min())), 0x80u);
}

TEST(Fp8E5m2, InfAndOverflow) {
  const Format f = kFp8E5m2;
  EXPECT_EQ(encode(f, 57344.0), 0x7Bu);
  EXPECT_EQ(encode(f, 61439.0), 0x7Bu);
  EXPECT_EQ(encode(f, 61440.0), 0x7Cu);  // tie: 57344 (odd significand) vs 65536: even -> Inf
  EXPECT_EQ(encode(f, -kInf), 0xFCu);
  EXPECT_EQ(encode(f, kInf, kSat), 0x7Bu);
  EXPECT_EQ(encode(f, 1e6, kZero), 0x7Bu);
  EXPECT_EQ(encode(f, kInf, kZero), 0x7Cu);  // Inf is exact, not an overflow
  EXPECT_EQ(encode(f, kNan), 0x7Eu);
  EXPECT_TRUE(std::isinf(decode(f, 0xFC)) && decode(f, 0xFC) < 0);
  EXPECT_TRUE(std::isnan(decode(f, 0x7D)));
}

TEST(Fnuz, NoNegativeZero) {
  for (const char* name : {"fp8_e4m3fnuz", "fp8_e5m2fnuz"}) {
    const Format f = parse_format(name);
    EXPECT_EQ(encode(f, -0.0), 0x00u) << name;
    EXPECT_EQ(encode(f, -1e-30), 0x00u) << name;  // rounds to zero: +0, never the NaN 0x80
    EXPECT_EQ(encode(f, kNan), 0x80u) << name;
    EXPECT_EQ(encode(f, -kNan), 0x80u) << name;
    EXPECT_EQ(encode(f, kInf), 0x80u) << name;
    EXPECT_EQ(encode(f, -kInf, kSat), 0xFFu) << name;
    EXPECT_TRUE(std::isnan(decode(f, 0x80))) << name;
    EXPECT_EQ(decode(f, 0x7F), max_finite(f)) << name;
  }
  EXPECT_EQ(encode(kFp8E4m3Fnuz, 240.0), 0x7Fu);
  EXPECT_EQ(encode(kFp8E4m3Fnuz, 249.0), 0x80u);  // past the 248 tie: NaN
}

TEST(FiniteOnly, AlwaysClamps) {
  const Format fp4 = kFp4E2m1;
  // The eight magnitudes of E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6.
  const double values[] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  for (std::uint32_t c = 0; c < 8; ++c) {
    EXPECT_EQ(decode(fp4, c), values[c]);
    EXPECT_EQ(decode(fp4, c | 8), -values[c]);
    EXPECT_EQ(encode(fp4, values[c]), c);
  }
  EXPECT_EQ(encode(fp4, 5.0), 0x6u);   // tie between 4 (even) and 6
  EXPECT_EQ(encode(fp4, 2.5), 0x4u);   // tie between 2 (even) and 3
  EXPECT_EQ(encode(fp4, 0.25), 0x0u);  // tie between 0 and 0.5
  EXPECT_EQ(encode(fp4, 100.0), 0x7u);
  EXPECT_EQ(encode(fp4, -kInf), 0xFu);
  EXPECT_EQ(encode(fp4, kNan), 0x8u);  // no NaN: the negative-zero stand-in (as ml_dtypes)
  const Format e3m2 = kFp6E3m2;
  EXPECT_EQ(encode(e3m2, 28.0), 0x1Fu);
  EXPECT_EQ(encode(e3m2, 1e9), 0x1Fu);
  EXPECT_EQ(encode(e3m2, -1e9), 0x3Fu);
  EXPECT_EQ(decode(kFp6E2m3, 0x1F), 7.5);
}

TEST(E8m0, PowersOfTwo) {
  const Format f = kE8m0;
  EXPECT_EQ(decode(f, 0x00), 0x1p-127);
  EXPECT_EQ(decode(f, 0x7F), 1.0);
  EXPECT_EQ(decode(f, 0xFE), 0x1p127);
  EXPECT_TRUE(std::isnan(decode(f, 0xFF)));
  EXPECT_EQ(encode(f, 1.0), 0x7Fu);
  EXPECT_EQ(encode(f, 1.4), 0x7Fu);
  EXPECT_EQ(encode(f, 1.5), 0x80u);  // M = 0: ties go to the larger neighbour
  EXPECT_EQ(encode(f, 1.9, kZero), 0x7Fu);
  EXPECT_EQ(encode(f, 0.0), 0xFFu);        // no zero: NaN ...
  EXPECT_EQ(encode(f, 0.0, kSat), 0x00u);  // ... or the smallest value when saturating
  EXPECT_EQ(encode(f, -2.0), 0xFFu);
  EXPECT_EQ(encode(f, 1e-45), 0x00u);
  EXPECT_EQ(encode(f, 0x1p128), 0xFFu);
  EXPECT_EQ(encode(f, 0x1p128, kSat), 0xFEu);
  EXPECT_EQ(encode(f, 0x1.8p127), 0xFFu);  // rounds up past 2^127
  EXPECT_EQ(encode(f, 0x1.8p127, kZero), 0xFEu);
}

TEST(Integers, RoundAndClamp) {
  const Format i8 = kInt8;
  EXPECT_EQ(encode(i8, 2.5), 2u);
  EXPECT_EQ(encode(i8, 3.5), 4u);
  EXPECT_EQ(encode(i8, -2.5), 0xFEu);
  EXPECT_EQ(encode(i8, 2.5, kAway), 3u);
  EXPECT_EQ(encode(i8, -2.7, kZero), 0xFEu);
  EXPECT_EQ(encode(i8, -1000.0), 0x80u);
  EXPECT_EQ(encode(i8, 1e30), 0x7Fu);
  EXPECT_EQ(encode(i8, kNan), 0u);
  EXPECT_EQ(decode(i8, 0x80), -128.0);
  const Format s8 = kInt8Sym;
  EXPECT_EQ(encode(s8, -1000.0), 0x81u);  // -127: the most negative code is unused
  EXPECT_EQ(encode(s8, -kInf), 0x81u);
  const Format u4 = kUint4;
  EXPECT_EQ(encode(u4, -3.0), 0u);
  EXPECT_EQ(encode(u4, 15.4), 15u);
  EXPECT_EQ(encode(u4, 99.0), 15u);
  const Format i4 = kInt4;
  EXPECT_EQ(encode(i4, -8.0), 0x8u);
  EXPECT_EQ(decode(i4, 0xF), -1.0);
}

TEST(Fp64Input, RoundsOnce) {
  // 1 + 2^-4 + 2^-40 in E4M3: just above the tie between 1 and 1.125, so it
  // rounds up. Going through fp32 first would drop the 2^-40 and round to even (1).
  const Format f = kFp8E4m3;
  EXPECT_EQ(encode(f, 1.0 + 0x1p-4 + 0x1p-40), 0x39u);
  EXPECT_EQ(encode(f, static_cast<double>(static_cast<float>(1.0 + 0x1p-4 + 0x1p-40))), 0x38u);
  // fp32 itself as a target: correctly rounded from fp64.
  const Format f32 = kFp32;
  const double x = 1.0 + 0x1p-24 + 0x1p-60;
  EXPECT_EQ(encode(f32, x), std::bit_cast<std::uint32_t>(static_cast<float>(x)));
  EXPECT_EQ(encode(f32, 1e300), 0x7F800000u);
  EXPECT_EQ(encode(f32, 1e-300), 0u);
}

TEST(Fp16Bf16, MatchHardwareCasts) {
  // fp32 -> bf16 / fp16 nearest-even must agree with the compiler's own conversions.
  const Format bf = kBf16;
  const Format hf = kFp16;
  std::uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float x = std::bit_cast<float>(state);
    if (std::isnan(x)) continue;
    // bf16 RNE by the classic bit trick (valid for non-NaN inputs)
    const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
    const auto expect_bf = static_cast<std::uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
    ASSERT_EQ(encode(bf, x), expect_bf) << std::hexfloat << x;
#if defined(__FLT16_MAX__)
    const _Float16 h = static_cast<_Float16>(x);
    ASSERT_EQ(encode(hf, x), std::bit_cast<std::uint16_t>(h)) << std::hexfloat << x;
#endif
  }
  (void)hf;
}

// Stochastic rounding: E[decode(encode(x))] = x. With n draws the mean's standard
// deviation is ulp * sqrt(p(1-p)/n); we allow 5 of them. An implementation that
// biases by 1/64 ulp or rounds to nearest fails by far.
TEST(Stochastic, UnbiasedInExpectation) {
  const Format f = kFp8E4m3;
  const double ulp = 0.125;  // at [1, 2)
  const int n = 200000;
  for (double p : {0.01, 0.3, 0.5, 0.77, 0.99}) {
    for (double sign : {1.0, -1.0}) {
      const double x = sign * (1.25 + p * ulp);
      double sum = 0;
      for (int i = 0; i < n; ++i) {
        const std::uint32_t code = encode(f, x, {Rounding::kStochastic, false},
                                          stochastic_bits(42, static_cast<std::uint64_t>(i)));
        sum += decode(f, code);
      }
      const double mean = sum / n;
      const double sd = ulp * std::sqrt(p * (1 - p) / n);
      EXPECT_NEAR(mean, x, 5 * sd + 1e-12) << "p=" << p << " sign=" << sign;
    }
  }
}

TEST(Stochastic, OnlyNeighboursAndExactValuesStay) {
  const Format f = kFp6E2m3;
  for (int i = 0; i < 10000; ++i) {
    const std::uint32_t r = stochastic_bits(7, static_cast<std::uint64_t>(i));
    EXPECT_EQ(encode(f, 1.5, {Rounding::kStochastic, false}, r), encode(f, 1.5));
    const std::uint32_t c = encode(f, 1.3, {Rounding::kStochastic, false}, r);
    EXPECT_TRUE(decode(f, c) == 1.25 || decode(f, c) == 1.375);
  }
}

TEST(Stochastic, SameResultForAnyThreadSplit) {
  const Format f = kFp4E2m1;
  const std::size_t n = 100003;
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::sin(static_cast<double>(i)) * 5;
  auto run = [&](unsigned threads) {
    std::vector<std::uint32_t> out(n);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (std::size_t i = t * n / threads; i < (t + 1) * n / threads; ++i) {
          out[i] = encode(f, x[i], {Rounding::kStochastic, false}, stochastic_bits(99, i));
        }
      });
    }
    for (auto& th : pool) th.join();
    return out;
  };
  const auto one = run(1);
  EXPECT_EQ(one, run(2));
  EXPECT_EQ(one, run(7));
  // A different seed changes some results.
  std::size_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    differ += encode(f, x[i], {Rounding::kStochastic, false}, stochastic_bits(100, i)) != one[i];
  }
  EXPECT_GT(differ, n / 10);
}

TEST(Stochastic, BitsAreUniform) {
  // Each of the 32 bits is set about half the time over consecutive indices.
  const int n = 1 << 16;
  int counts[32] = {};
  for (int i = 0; i < n; ++i) {
    const std::uint32_t r = stochastic_bits(0, static_cast<std::uint64_t>(i));
    for (int b = 0; b < 32; ++b) counts[b] += (r >> b) & 1;
  }
  for (int b = 0; b < 32; ++b) EXPECT_NEAR(counts[b], n / 2, 5 * std::sqrt(n / 4.0)) << b;
  EXPECT_NE(stochastic_bits(0, 0), stochastic_bits(0, std::uint64_t{1} << 32));
}

}  // namespace
}  // namespace lowp
