// gemm_accumulate (lowp/accum_kernels.h) against an independent reference, bit
// for bit, on every SIMD target this machine supports.
//
// The kernel forms each sum in double (TwoSum, rounding to odd) and rounds by
// scaling to an integer in floating point. The reference here never does
// floating-point arithmetic on the values: it takes every fp32 input apart
// into an integer significand and an exponent, multiplies and adds those
// integers exactly in 128 bits, rounds with integer shifts and masks, and
// assembles the fp32 result from its bit fields. Hand-made cases pin what the
// rules say (ties, truncation, promotion, zeros, underflow, overflow), and
// mantissa_bits = 23 is checked against the fp32 fma loop it must equal.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/targets.h"
#include "lowp/accum_kernels.h"
#include "lowp/error.h"

namespace {

using lowp::Accumulator;
using lowp::Rounding;
using lowp_test::for_each_target;

__extension__ using u128 = unsigned __int128;

// ---- the reference ----

// An exact value (-1)^negative * mag * 2^exp.
struct Dyadic {
  bool negative = false;
  u128 mag = 0;
  int exp = 0;
};

Dyadic from_float(float f) {  // finite f, from its bit fields
  const auto bits = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t biased = (bits >> 23) & 0xFF, fraction = bits & 0x7FFFFF;
  Dyadic d;
  d.negative = (bits >> 31) != 0;
  d.mag = biased == 0 ? fraction : (fraction | 0x800000u);
  d.exp = biased == 0 ? -149 : static_cast<int>(biased) - 150;
  return d;
}

Dyadic times(const Dyadic& x, const Dyadic& y) {
  return {x.negative != y.negative, x.mag * y.mag, x.exp + y.exp};
}

int bit_length(u128 v) {
  int n = 0;
  while (v != 0) {
    v >>= 1;
    ++n;
  }
  return n;
}

// x + y, exact, except that an addend more than 75 binades below the other's
// last bit is replaced by one unit there, with its sign: with significands of
// at most 48 bits it is then far below a 24-bit result's rounding boundaries,
// and only its sign matters (as a sticky bit).
Dyadic plus(Dyadic x, Dyadic y) {
  if (x.mag == 0 && y.mag == 0) return {x.negative && y.negative, 0, 0};
  if (x.mag == 0) return y;
  if (y.mag == 0) return x;
  if (x.exp < y.exp) std::swap(x, y);
  u128 big = x.mag, small = y.mag;
  int exp = y.exp;
  const int gap = x.exp - y.exp;
  if (gap > 75) {
    big <<= 75;
    small = 1;
    exp = x.exp - 75;
  } else {
    big <<= gap;
  }
  if (x.negative == y.negative) return {x.negative, big + small, exp};
  if (big == small) return {false, 0, 0};  // an exact zero sum is +0
  return big > small ? Dyadic{x.negative, big - small, exp} : Dyadic{y.negative, small - big, exp};
}

// v rounded to the accumulator format, assembled from fp32 bit fields.
float to_accumulator(const Dyadic& v, int mantissa_bits, bool nearest_even) {
  const std::uint32_t sign = v.negative ? 0x80000000u : 0u;
  if (v.mag == 0) return std::bit_cast<float>(sign);
  const int lead = v.exp + bit_length(v.mag) - 1;  // v in [2^lead, 2^(lead+1))
  const std::uint32_t largest =                    // (2 - 2^-mantissa_bits) * 2^127
      (254u << 23) | (((1u << mantissa_bits) - 1) << (23 - mantissa_bits));
  if (lead > 127) return std::bit_cast<float>(sign | (nearest_even ? 0x7F800000u : largest));
  const int quantum = std::max(lead, -126) - mantissa_bits;
  const int shift = quantum - v.exp;
  u128 kept;
  if (shift <= 0) {
    kept = v.mag << -shift;
  } else if (shift >= 127) {
    kept = 0;  // below half a quantum: both modes give zero
  } else {
    kept = v.mag >> shift;
    const u128 rest = v.mag & ((u128{1} << shift) - 1), half = u128{1} << (shift - 1);
    if (nearest_even && (rest > half || (rest == half && (kept & 1) != 0))) ++kept;
  }
  // kept * 2^quantum, kept <= 2^(mantissa_bits + 1). A normal result has the
  // implicit bit at bit mantissa_bits of kept; a subnormal one (quantum =
  // -126 - mantissa_bits) is kept << (23 - mantissa_bits) units of 2^-149,
  // and a carry out of either lands on the next exponent.
  std::uint64_t field;
  if (kept >> mantissa_bits == 0) {
    field = static_cast<std::uint64_t>(kept) << (23 - mantissa_bits);  // subnormal (or zero)
  } else {
    const std::uint64_t biased = static_cast<std::uint64_t>(quantum + mantissa_bits + 127);
    field =
        (biased << 23) + ((static_cast<std::uint64_t>(kept) - (std::uint64_t{1} << mantissa_bits))
                          << (23 - mantissa_bits));
  }
  if (field >= 0x7F800000u) return std::bit_cast<float>(sign | 0x7F800000u);  // rounded up to 2^128
  return std::bit_cast<float>(sign | static_cast<std::uint32_t>(field));
}

float reference_dot(const float* a, const float* b, std::size_t k, const Accumulator& acc) {
  const bool nearest_even = acc.rounding == Rounding::kNearestEven;
  const std::size_t chunk = acc.promote_every == 0 ? k : acc.promote_every;
  float total = 0.0f;
  for (std::size_t p0 = 0; p0 < k; p0 += chunk) {
    float s = 0.0f;
    for (std::size_t p = p0; p < std::min(k, p0 + chunk); ++p) {
      s = to_accumulator(plus(from_float(s), times(from_float(a[p]), from_float(b[p]))),
                         acc.mantissa_bits, nearest_even);
    }
    total = p0 == 0 ? s : to_accumulator(plus(from_float(total), from_float(s)), 23, true);
  }
  return total;
}

std::vector<float> reference_gemm(const std::vector<float>& a, std::size_t m,
                                  const std::vector<float>& b, std::size_t n, std::size_t k,
                                  const Accumulator& acc) {
  std::vector<float> out(m * n);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j)
      out[i * n + j] = reference_dot(&a[i * k], &b[j * k], k, acc);
  }
  return out;
}

std::vector<float> kernel_gemm(const std::vector<float>& a, std::size_t m,
                               const std::vector<float>& b, std::size_t n, std::size_t k,
                               const Accumulator& acc, unsigned threads = 1) {
  std::vector<float> out(m * n, std::numeric_limits<float>::quiet_NaN());
  lowp::gemm_accumulate(a.data(), m, b.data(), n, k, out.data(), acc, threads);
  return out;
}

// One sum; computed as 37 equal outputs (every lane of a tile, and a partial
// tile) on every target, which must all agree.
float dot1(const std::vector<float>& a, const std::vector<float>& b, const Accumulator& acc) {
  constexpr std::size_t kCopies = 37;
  std::vector<float> bs;
  for (std::size_t j = 0; j < kCopies; ++j) bs.insert(bs.end(), b.begin(), b.end());
  const float first = kernel_gemm(a, 1, bs, kCopies, a.size(), acc)[0];
  for_each_target([&] {
    const auto all = kernel_gemm(a, 1, bs, kCopies, a.size(), acc);
    for (float x : all) {
      EXPECT_TRUE(std::bit_cast<std::uint32_t>(x) == std::bit_cast<std::uint32_t>(first) ||
                  (std::isnan(x) && std::isnan(first)))
          << x << " vs " << first;
    }
  });
  return first;
}

std::string describe(const Accumulator& acc) {
  return "mantissa_bits " + std::to_string(acc.mantissa_bits) + " " +
         std::string(lowp::rounding_name(acc.rounding)) + " promote_every " +
         std::to_string(acc.promote_every);
}

// ---- inputs ----

// An OCP E4M3 value (finite, not NaN) times 2^scale_exponent: what an MXFP8
// fake-quantized operand holds.
float fp8_like(std::mt19937_64& rng, int scale_exponent) {
  const auto code = static_cast<std::uint32_t>(rng() % 0x7F);  // 0x7F is NaN
  const std::uint32_t e = code >> 3, mant = code & 7;
  const float magnitude =
      e == 0 ? std::ldexp(static_cast<float>(mant), -9)
             : std::ldexp(8.0f + static_cast<float>(mant), static_cast<int>(e) - 10);
  return (rng() & 1 ? -magnitude : magnitude) * std::ldexp(1.0f, scale_exponent);
}

// Any fp32 with a biased exponent in [lo, hi] (0: subnormal), 24 random
// significand bits.
float any_float(std::mt19937_64& rng, std::uint32_t lo, std::uint32_t hi) {
  const auto biased = static_cast<std::uint32_t>(lo + rng() % (hi - lo + 1));
  const auto bits =
      static_cast<std::uint32_t>((rng() & 1) << 31 | biased << 23 | (rng() & 0x7FFFFF));
  return std::bit_cast<float>(bits);
}

void expect_same_bits(const std::vector<float>& want, const std::vector<float>& got,
                      const std::string& what) {
  ASSERT_EQ(want.size(), got.size());
  int shown = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::bit_cast<std::uint32_t>(want[i]) != std::bit_cast<std::uint32_t>(got[i]) &&
        shown++ < 5) {
      ADD_FAILURE() << what << ": output " << i << " is " << got[i] << " (" << std::hexfloat
                    << got[i] << "), the reference gives " << want[i] << std::defaultfloat;
    }
  }
}

constexpr Rounding kModes[] = {Rounding::kNearestEven, Rounding::kTowardZero};

// ---- against the reference ----

TEST(GemmAccumulate, Fp8ProductsMatchTheReference) {
  std::mt19937_64 rng(1);
  const int widths[] = {1, 2, 3, 4, 7, 10, 13, 16, 22, 23};
  // n from below one tile of outputs (8 to 32, by target) to several.
  const std::size_t shapes[][3] = {{3, 5, 1}, {2, 9, 33}, {4, 3, 130}, {2, 11, 300}, {2, 70, 45}};
  for (const auto& shape : shapes) {
    const std::size_t m = shape[0], n = shape[1], k = shape[2];
    std::vector<float> a(m * k), b(n * k);
    // Each row its own power-of-two scale per block of 32, as MX has.
    for (std::size_t i = 0; i < a.size(); ++i)
      a[i] = fp8_like(rng, static_cast<int>(rng() % 9) - 4);
    for (std::size_t i = 0; i < b.size(); ++i)
      b[i] = fp8_like(rng, static_cast<int>(rng() % 9) - 4);
    for (int width : widths) {
      for (Rounding mode : kModes) {
        for (std::size_t promote : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{32},
                                    std::size_t{128}, k, k + 1}) {
          const Accumulator acc{width, mode, promote};
          const auto want = reference_gemm(a, m, b, n, k, acc);
          for_each_target([&] {
            expect_same_bits(want, kernel_gemm(a, m, b, n, k, acc),
                             describe(acc) + " k " + std::to_string(k));
          });
        }
      }
    }
  }
}

// Products of full 24-bit significands spread over fp32's whole exponent range
// (subnormals included): sums whose double is inexact (the sticky path),
// accumulator underflow, cancellation.
TEST(GemmAccumulate, WideRangeProductsMatchTheReference) {
  std::mt19937_64 rng(2);
  for (int trial = 0; trial < 40; ++trial) {
    const std::size_t m = 2, n = trial % 2 ? 3 : 41, k = 1 + rng() % 200;
    std::vector<float> a(m * k), b(n * k);
    // Exponent ranges that keep every sum below 2^126 (no overflow here).
    const bool tiny = trial % 4 == 0;
    for (auto& x : a) x = tiny ? any_float(rng, 0, 40) : any_float(rng, 0, 150);
    for (auto& x : b) x = tiny ? any_float(rng, 60, 127) : any_float(rng, 0, 150);
    for (int width : {1, 5, 13, 23}) {
      for (Rounding mode : kModes) {
        for (std::size_t promote : {std::size_t{0}, std::size_t{7}}) {
          const Accumulator acc{width, mode, promote};
          const auto want = reference_gemm(a, m, b, n, k, acc);
          for_each_target([&] {
            expect_same_bits(want, kernel_gemm(a, m, b, n, k, acc),
                             describe(acc) + " trial " + std::to_string(trial));
          });
        }
      }
    }
  }
}

TEST(GemmAccumulate, ThreadsDoNotChangeTheResult) {
  std::mt19937_64 rng(3);
  const std::size_t m = 37, n = 77, k = 150;
  std::vector<float> a(m * k), b(n * k);
  for (auto& x : a) x = fp8_like(rng, 0);
  for (auto& x : b) x = fp8_like(rng, -3);
  const Accumulator acc{7, Rounding::kTowardZero, 32};
  const auto one = kernel_gemm(a, m, b, n, k, acc, 1);
  expect_same_bits(one, kernel_gemm(a, m, b, n, k, acc, 2), "2 threads");
  expect_same_bits(one, kernel_gemm(a, m, b, n, k, acc, 5), "5 threads");
}

// ---- mantissa_bits = 23 is fp32 ----

TEST(GemmAccumulate, Fp32AccumulatorIsTheFmaLoop) {
  std::mt19937_64 rng(4);
  const std::size_t m = 3, n = 37, k = 257;
  std::vector<float> a(m * k), b(n * k);
  for (auto& x : a) x = any_float(rng, 0, 180);  // products below 2^97: no overflow
  for (auto& x : b) x = any_float(rng, 0, 170);
  std::vector<float> want(m * n);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (std::size_t p = 0; p < k; ++p) s = std::fma(a[i * k + p], b[j * k + p], s);
      want[i * n + j] = s;
    }
  }
  for_each_target(
      [&] { expect_same_bits(want, kernel_gemm(a, m, b, n, k, Accumulator{}), "fp32 fma loop"); });
}

// When every product is exact in fp32 (FP8 values with power-of-two scales),
// the plain loop s += a * b is the same sum.
TEST(GemmAccumulate, Fp32AccumulatorIsThePlainLoopForFp8Products) {
  std::mt19937_64 rng(5);
  const std::size_t m = 4, n = 6, k = 512;
  std::vector<float> a(m * k), b(n * k);
  for (auto& x : a) x = fp8_like(rng, static_cast<int>(rng() % 11) - 5);
  for (auto& x : b) x = fp8_like(rng, static_cast<int>(rng() % 11) - 5);
  std::vector<float> want(m * n);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      volatile float s = 0.0f;  // one fp32 rounding per operation, in order
      for (std::size_t p = 0; p < k; ++p) {
        const float product = a[i * k + p] * b[j * k + p];
        s = s + product;
      }
      want[i * n + j] = s;
    }
  }
  for_each_target([&] {
    expect_same_bits(want, kernel_gemm(a, m, b, n, k, Accumulator{}), "fp32 plain loop");
  });
}

// ---- the rules, by hand ----

TEST(GemmAccumulate, NearestEvenTies) {
  // Three significand bits (mantissa_bits 2): 1, 1.25, 1.5, 1.75 in [1, 2).
  const Accumulator acc{2, Rounding::kNearestEven, 0};
  EXPECT_EQ(dot1({1.125f}, {1.0f}, acc), 1.0f);    // tie: to even 1.00
  EXPECT_EQ(dot1({1.375f}, {1.0f}, acc), 1.5f);    // tie: to even 1.10
  EXPECT_EQ(dot1({-1.125f}, {1.0f}, acc), -1.0f);  // the same for negatives
  EXPECT_EQ(dot1({-1.375f}, {1.0f}, acc), -1.5f);
  EXPECT_EQ(dot1({1.0f, 0.125f}, {1.0f, 1.0f}, acc), 1.0f);  // a tie reached by a sum
  // Just above a tie: 1.125 * (1 + 2^-23) rounds up.
  EXPECT_EQ(dot1({1.125f}, {1.0f + 0x1p-23f}, acc), 1.25f);
  // Products 1, 1, ... : 8 + 1 = 9 is the tie between 8 and 10 and goes to 8,
  // so the sum sticks at 8.
  EXPECT_EQ(dot1(std::vector<float>(12, 1.0f), std::vector<float>(12, 1.0f), acc), 8.0f);
}

// The tie decided by bits beyond double precision: 1 + 2^-23 (odd in fp32) plus
// 2^-24 - 2^-70. The double sum 1 + 2^-23 + 2^-24 is a tie at fp32 precision;
// the exact sum is below it and must round down. Rounding the double sum
// again would give 1 + 2^-22.
TEST(GemmAccumulate, TieBelowDoublePrecisionIsNotADoubleRounding) {
  const float a[] = {1.0f + 0x1p-23f, 0x1p-24f * (1.0f + 0x1p-23f)};
  const float b[] = {1.0f, 1.0f - 0x1p-23f};
  const Accumulator acc{};  // fp32
  EXPECT_EQ(dot1({a[0], a[1]}, {b[0], b[1]}, acc), 1.0f + 0x1p-23f);
  EXPECT_EQ(std::fma(a[1], b[1], a[0] * b[0]), 1.0f + 0x1p-23f);  // what fp32 hardware does
}

TEST(GemmAccumulate, TruncationTowardZero) {
  const Accumulator acc{2, Rounding::kTowardZero, 0};
  EXPECT_EQ(dot1({1.125f}, {1.0f}, acc), 1.0f);
  EXPECT_EQ(dot1({1.375f}, {1.0f}, acc), 1.25f);
  EXPECT_EQ(dot1({1.7f}, {1.0f}, acc), 1.5f);
  EXPECT_EQ(dot1({-1.0f, -0.375f}, {1.0f, 1.0f}, acc), -1.25f);  // magnitude down
  // Products 1, 1, ...: 8 + 1 = 9 truncates to 8; the sum sticks at 8.
  EXPECT_EQ(dot1(std::vector<float>(12, 1.0f), std::vector<float>(12, 1.0f), acc), 8.0f);
  // 1 - 2^-60 is below 1: truncation gives the largest value under 1,
  // 1.11b * 2^-1, although the double sum rounds to 1 exactly.
  EXPECT_EQ(dot1({1.0f, -0x1p-30f}, {1.0f, 0x1p-30f}, acc), 0.875f);
  EXPECT_EQ(dot1({-1.0f, 0x1p-30f}, {1.0f, 0x1p-30f}, acc), -0.875f);
  // fp32 width: 1 - 2^-60 truncates to 1 - 2^-24.
  EXPECT_EQ(dot1({1.0f, -0x1p-30f}, {1.0f, 0x1p-30f}, Accumulator{23, Rounding::kTowardZero, 0}),
            1.0f - 0x1p-24f);
}

TEST(GemmAccumulate, PromotionBoundaries) {
  // mantissa_bits 2 sticks at 8 on a run of ones (see above); promotion every
  // P products restarts the partial sum, and the fp32 total is exact.
  const std::vector<float> ones(10, 1.0f);
  auto sum = [&](std::size_t promote) {
    return dot1(ones, ones, Accumulator{2, Rounding::kNearestEven, promote});
  };
  EXPECT_EQ(sum(0), 8.0f);
  EXPECT_EQ(sum(4), 10.0f);  // 4 + 4 + 2: K not a multiple of P
  EXPECT_EQ(sum(3), 10.0f);  // 3 + 3 + 3 + 1
  EXPECT_EQ(sum(9), 9.0f);   // 8 (stuck) + 1
  EXPECT_EQ(sum(10), 8.0f);  // P = K: no promotion
  EXPECT_EQ(sum(11), 8.0f);  // P > K: the same
  EXPECT_EQ(sum(1), 10.0f);  // every product on its own
  // The fp32 total adds the partial sums with nearest-even: with fp32's own
  // width, 2^24 + 1 is a tie and goes to 2^24, so where the chunks start
  // decides whether two 1s are added to each other first.
  const std::vector<float> big_then_ones = {0x1p24f, 1.0f, 1.0f, 1.0f};
  const std::vector<float> unit(4, 1.0f);
  EXPECT_EQ(dot1(big_then_ones, unit, Accumulator{23, Rounding::kNearestEven, 0}), 0x1p24f);
  EXPECT_EQ(dot1(big_then_ones, unit, Accumulator{23, Rounding::kNearestEven, 1}), 0x1p24f);
  // [2^24, 1] -> 2^24 and [1, 1] -> 2, then 2^24 + 2 in fp32.
  EXPECT_EQ(dot1(big_then_ones, unit, Accumulator{23, Rounding::kNearestEven, 2}), 0x1p24f + 2.0f);
}

// Products are exact, not fp32-rounded: (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46,
// whose last term survives the cancellation (an fp32 product would lose it).
TEST(GemmAccumulate, ProductsAreExact) {
  const float x = 1.0f + 0x1p-23f;
  EXPECT_EQ(dot1({-(1.0f + 0x1p-22f), x}, {1.0f, x}, Accumulator{}), 0x1p-46f);
  // At 4 bits the first sum is already -1: -1 + 1 + 2^-22 + 2^-46 truncates
  // to 2^-22.
  EXPECT_EQ(dot1({-(1.0f + 0x1p-22f), x}, {1.0f, x}, Accumulator{4, Rounding::kTowardZero, 0}),
            0x1p-22f);
}

TEST(GemmAccumulate, ZerosAndSigns) {
  for (Rounding mode : kModes) {
    const Accumulator acc{7, mode, 0};
    // K = 0: +0.
    std::vector<float> out(6, 1.0f);
    lowp::gemm_accumulate(nullptr, 2, nullptr, 3, 0, out.data(), acc);
    for (float x : out) EXPECT_EQ(std::bit_cast<std::uint32_t>(x), 0u);
    // Zero products from -0: +0 + -0 = +0.
    EXPECT_EQ(std::bit_cast<std::uint32_t>(dot1({-0.0f, 0.0f}, {1.0f, -1.0f}, acc)), 0u);
    // Exact cancellation gives +0.
    EXPECT_EQ(std::bit_cast<std::uint32_t>(dot1({1.5f, -1.5f}, {2.0f, 2.0f}, acc)), 0u);
    // A negative sum that underflows to zero keeps its sign.
    EXPECT_EQ(std::bit_cast<std::uint32_t>(dot1({-0x1p-100f}, {0x1p-100f}, acc)), 0x80000000u);
    // Negative sums.
    EXPECT_EQ(dot1({-3.0f, -5.0f}, {2.0f, 1.0f}, acc), -11.0f);
  }
}

TEST(GemmAccumulate, UnderflowAndOverflow) {
  // Below 2^-126 the accumulator's steps are 2^(-126 - mantissa_bits).
  const Accumulator two_bits{2, Rounding::kNearestEven, 0};
  EXPECT_EQ(dot1({0x1.4p-127f}, {1.0f}, two_bits), 0x1p-127f);  // 2.5 steps of 2^-128: tie, even
  EXPECT_EQ(dot1({0x1.cp-127f}, {1.0f}, two_bits), 0x1p-126f);  // 3.5 steps: up to 4
  EXPECT_EQ(dot1({0x1p-129f}, {1.0f}, two_bits), 0.0f);         // half a step: tie, to 0
  EXPECT_EQ(dot1({0x1.2p-129f}, {1.0f}, two_bits), 0x1p-128f);  // above half a step
  EXPECT_EQ(dot1({0x1.cp-127f}, {1.0f}, Accumulator{2, Rounding::kTowardZero, 0}), 0x1.8p-127f);
  // Overflow: nearest-even gives Inf, truncation the largest finite value.
  const float big = 0x1p127f;
  EXPECT_EQ(dot1({big, big}, {1.0f, 1.0f}, Accumulator{}), std::numeric_limits<float>::infinity());
  EXPECT_EQ(dot1({-big, -big}, {1.0f, 1.0f}, Accumulator{23, Rounding::kTowardZero, 0}),
            -std::numeric_limits<float>::max());
  EXPECT_EQ(dot1({big, big}, {1.0f, 1.0f}, Accumulator{2, Rounding::kTowardZero, 0}), 0x1.cp127f);
  // Rounding up past the largest value: 1.875 * 2^127 at 2 bits is a tie
  // between 1.75 * 2^127 and 2^128, and 2^128 overflows.
  EXPECT_EQ(dot1({0x1.ep127f}, {1.0f}, two_bits), std::numeric_limits<float>::infinity());
}

TEST(GemmAccumulate, NonFiniteInputsFollowIeee) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Rounding mode : kModes) {
    for (std::size_t promote : {std::size_t{0}, std::size_t{1}}) {
      const Accumulator acc{5, mode, promote};
      EXPECT_EQ(dot1({1.0f, inf, 2.0f}, {1.0f, 1.0f, 1.0f}, acc), inf);
      EXPECT_EQ(dot1({1.0f, inf, 2.0f}, {1.0f, -1.0f, 1.0f}, acc), -inf);
      EXPECT_TRUE(std::isnan(dot1({inf, inf}, {1.0f, -1.0f}, acc)));
      EXPECT_TRUE(std::isnan(dot1({inf}, {0.0f}, acc)));
      EXPECT_TRUE(std::isnan(dot1({1.0f, nan, 2.0f}, {1.0f, 1.0f, 1.0f}, acc)));
    }
  }
}

TEST(GemmAccumulate, BadArgumentsAreRejected) {
  float out = 1.0f;
  const float one = 1.0f;
  auto message = [&](const Accumulator& acc) -> std::string {
    try {
      lowp::gemm_accumulate(&one, 1, &one, 1, 1, &out, acc);
    } catch (const lowp::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(Accumulator{0, Rounding::kNearestEven, 0}).find("mantissa_bits 0"),
            std::string::npos);
  EXPECT_NE(message(Accumulator{24, Rounding::kNearestEven, 0}).find("1..23"), std::string::npos);
  EXPECT_NE(message(Accumulator{-3, Rounding::kNearestEven, 0}).find("mantissa_bits -3"),
            std::string::npos);
  EXPECT_NE(message(Accumulator{10, Rounding::kNearestAway, 0}).find("rounding away"),
            std::string::npos);
  EXPECT_NE(message(Accumulator{10, Rounding::kStochastic, 0}).find("rounding stochastic"),
            std::string::npos);
  EXPECT_EQ(out, 1.0f);  // untouched
  EXPECT_NO_THROW(lowp::check_accumulator(Accumulator{1, Rounding::kTowardZero, 5}));
}

}  // namespace
