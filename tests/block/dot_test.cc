// Tests of the MX dot products (dot.h): hand-computed block dots, the single
// rounding at the end, overflow/underflow, specials, DotGeneral's fp32 block
// order, and mx_matmul against references built from dequantized values.
#include "lowp/block/dot.h"
#include "lowp/block_kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

// The codes used below, checked against the scalar encoder.
static_assert(encode(kFp8E4m3, 1.0) == 0x38 && encode(kFp8E4m3, 1.25) == 0x3A &&
              encode(kFp8E4m3, 1.5) == 0x3C);
static_assert(encode(kFp8E4m3, 2.0) == 0x40 && encode(kFp8E4m3, 0.5) == 0x30 &&
              encode(kFp8E4m3, -3.0) == 0xC4);
static_assert(encode(kFp8E4m3, 448.0) == 0x7E && encode(kFp8E4m3, 0x1p-6) == 0x08);
static_assert(encode(kFp8E5m2, 0x1p15) == 0x78 && encode(kFp8E5m2, -0x1p15) == 0xF8);
static_assert(encode(kFp8E5m2, 0x1p12) == 0x6C && encode(kFp8E5m2, 1.0) == 0x3C &&
              encode(kFp8E5m2, 0x1p-16) == 0x01);
static_assert(encode(kFp8E5m2, 2.0) == 0x40 && inf_code(kFp8E5m2) == 0x7C &&
              nan_code(kFp8E5m2) == 0x7E);
static_assert(encode(kFp4E2m1, 6.0) == 0x7 && encode(kFp4E2m1, -0.5) == 0x9);
static_assert(encode(kFp16, 0x1p15) == 0x7800 && encode(kFp16, -0x1p15) == 0xF800 &&
              encode(kFp16, 0x1p-24) == 0x0001);
static_assert(encode(kFp16, 0x1p12) == 0x6C00 && encode(kFp16, 0x1p13) == 0x7000 &&
              encode(kFp16, 8.0) == 0x4800 && encode(kFp16, -1.0) == 0xBC00);

using Codes = std::vector<std::uint32_t>;

float dot(const Format& fa, int scale_a, const Codes& a, const Format& fb, int scale_b,
          const Codes& b) {
  return mx_dot(fa, static_cast<std::uint8_t>(scale_a), a, fb, static_cast<std::uint8_t>(scale_b),
                b);
}

// ---- Dot: hand-computed values ----

TEST(MxDot, E4m3HandComputed) {
  // P_A = [1, 1.5, -3, 448], X_A = 2^(130-127) = 8; P_B = [2, 0.5, 1, 2^-6], X_B = 2^-2.
  // sum = 2 + 0.75 - 3 + 7 = 6.75; times 8 * 0.25 = 13.5.
  EXPECT_EQ(dot(kFp8E4m3, 130, {0x38, 0x3C, 0xC4, 0x7E}, kFp8E4m3, 125, {0x40, 0x30, 0x38, 0x08}),
            13.5f);
}

TEST(MxDot, MixedElementFormats) {
  // E4M3 [1.5, 448] . E2M1 [6, -0.5] = 9 - 224 = -215, scales 1 and 2^1.
  EXPECT_EQ(dot(kFp8E4m3, 127, {0x3C, 0x7E}, kFp4E2m1, 128, {0x7, 0x9}), -430.0f);
}

TEST(MxDot, ExactAccumulationWhereFp32WouldCancel) {
  // E5M2 products 2^30, 1, -2^30 (2^15 * 2^15, 1 * 1, -2^15 * 2^15). In fp32 in
  // index order 2^30 + 1 rounds back to 2^30 (ulp 128) and the sum is 0; the
  // exact sum is 1.
  float naive = 0x1p30f;
  naive += 1.0f;
  naive -= 0x1p30f;
  EXPECT_EQ(naive, 0.0f);
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x78, 0x3C, 0xF8}, kFp8E5m2, 127, {0x78, 0x3C, 0x78}), 1.0f);
  // The same with scales 2^3 * 2^-5: 2^-2.
  EXPECT_EQ(dot(kFp8E5m2, 130, {0x78, 0x3C, 0xF8}, kFp8E5m2, 122, {0x78, 0x3C, 0x78}), 0.25f);
}

TEST(MxDot, WideElementsStayExact) {
  // fp16 elements (40-bit fixed point each, 82-bit sums): 2^30 + 2^-48 - 2^30.
  // A double accumulator in index order would give 0; the exact answer is 2^-48.
  EXPECT_EQ(dot(kFp16, 127, {0x7800, 0x0001, 0xF800}, kFp16, 127, {0x7800, 0x0001, 0x7800}),
            0x1p-48f);
}

TEST(MxDot, Int8IsExactFixedPoint) {
  // MXINT8 codes are code/64: [127, 127, -127] . [127, 1, 2] / 4096
  // = (16129 + 127 - 254) / 4096 = 16002 / 4096; times 2^3 = 16002/512 = 31.25390625.
  EXPECT_EQ(dot(kInt8Sym, 130, {127, 127, 0x81}, kInt8Sym, 127, {127, 1, 2}), 31.25390625f);
  // A full block of 127 * 127: 32 * 16129 / 4096 = 16129 / 128 = 126.0078125.
  EXPECT_EQ(dot(kInt8Sym, 127, Codes(32, 127), kInt8Sym, 127, Codes(32, 127)), 126.0078125f);
  // -128 (0x80, unused by symmetric MXINT8, but decodable) still multiplies exactly: -2 * -2 = 4.
  EXPECT_EQ(dot(kInt8Sym, 127, {0x80}, kInt8Sym, 127, {0x80}), 4.0f);
}

// ---- one rounding, at the end, to nearest-even ----

TEST(MxDot, RoundsTiesToEvenOnce) {
  // E5M2: 2^12 * 2^12 = 2^24 plus 1 * 1 terms. 2^24 + 1 is halfway between
  // 2^24 and 2^24 + 2 (fp32 ulp 2 there): even wins, 2^24.
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x6C, 0x3C}, kFp8E5m2, 127, {0x6C, 0x3C}), 16777216.0f);
  // 2^24 + 3: halfway between 2^24 + 2 (odd significand) and 2^24 + 4 (even).
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x6C, 0x3C, 0x3C, 0x3C}, kFp8E5m2, 127, {0x6C, 0x3C, 0x3C, 0x3C}),
            16777220.0f);
  // Negative ties: -(2^24 + 1) -> -2^24.
  EXPECT_EQ(dot(kFp8E5m2, 127, {0xEC, 0xBC}, kFp8E5m2, 127, {0x6C, 0x3C}), -16777216.0f);
  // 2^24 + 1 + 2^-32 (2^-16 * 2^-16) is just above the tie and rounds up to
  // 2^24 + 2. A double accumulator would first round it to the tie 2^24 + 1
  // (2^-32 is below half of double's ulp 2^-28 there) and then round to 2^24.
  const double in_double = 0x1p24 + 1.0 + 0x1p-32;
  EXPECT_EQ(static_cast<float>(in_double), 16777216.0f);
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x6C, 0x3C, 0x01}, kFp8E5m2, 127, {0x6C, 0x3C, 0x01}), 16777218.0f);
  // A sum wider than 64 bits (fp16: unit 2^-48): 2^30 + 2^6 + 2^-48 is just
  // above the tie between 2^30 and 2^30 + 2^7 and rounds up. Only the sticky
  // bit, 78 bits below the leading one, says so.
  EXPECT_EQ(dot(kFp16, 127, {0x7800, 0x4800, 0x0001}, kFp16, 127, {0x7800, 0x4800, 0x0001}),
            0x1p30f + 0x1p7f);
  EXPECT_EQ(dot(kFp16, 127, {0x7800, 0x4800}, kFp16, 127, {0x7800, 0x4800}),
            0x1p30f);  // the tie itself
}

TEST(MxDot, OverflowsToInfinity) {
  // 448 * 448 * 2^127 * 2^127 is far past FLT_MAX.
  EXPECT_EQ(dot(kFp8E4m3, 0xFE, {0x7E}, kFp8E4m3, 0xFE, {0x7E}),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(dot(kFp8E4m3, 0xFE, {0xFE}, kFp8E4m3, 0xFE, {0x7E}),
            -std::numeric_limits<float>::infinity());
  // 1 * 2^127 is finite.
  EXPECT_EQ(dot(kFp8E4m3, 0xFE, {0x38}, kFp8E4m3, 127, {0x38}), 0x1p127f);
  // At the boundary (fp16 elements, sum S = 2^25 - d, times 2^103):
  //   S = 2^25 - 2 = (2^24 - 1) * 2: exactly FLT_MAX;
  //   S = 2^25 - 1: halfway between FLT_MAX and 2^128 -> even -> 2^128 -> +Inf;
  //   S = 2^25 - 3: halfway between FLT_MAX - ulp and FLT_MAX -> even -> FLT_MAX - ulp.
  const Codes big{0x6C00, 0x3C00, 0x3C00, 0x3C00};  // 2^12, 1, 1, 1
  constexpr float kMax = std::numeric_limits<float>::max();
  EXPECT_EQ(dot(kFp16, 230, big, kFp16, 127, {0x7000, 0xBC00, 0xBC00, 0x0000}), kMax);
  EXPECT_EQ(dot(kFp16, 230, big, kFp16, 127, {0x7000, 0xBC00, 0x0000, 0x0000}),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(dot(kFp16, 230, big, kFp16, 127, {0x7000, 0xBC00, 0xBC00, 0xBC00}),
            std::nextafter(kMax, 0.0f));
}

TEST(MxDot, UnderflowsWithGradualRounding) {
  // Scales 2^-127 * 2^-23 = 2^-150, half of the smallest fp32 subnormal 2^-149.
  constexpr float kMin = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(dot(kFp8E4m3, 0, {0x38}, kFp8E4m3, 104, {0x38}), 0.0f);            // 0.5 ulp: tie -> 0
  EXPECT_TRUE(std::signbit(dot(kFp8E4m3, 0, {0xB8}, kFp8E4m3, 104, {0x38})));  // -0.5 ulp -> -0
  EXPECT_EQ(dot(kFp8E4m3, 0, {0x3A}, kFp8E4m3, 104, {0x38}), kMin);            // 0.625 ulp -> 1
  EXPECT_EQ(dot(kFp8E4m3, 0, {0xBA}, kFp8E4m3, 104, {0x38}), -kMin);
  EXPECT_EQ(dot(kFp8E4m3, 0, {0x3C}, kFp8E4m3, 104, {0x40}), 2 * kMin);   // 1.5 ulp: tie -> 2
  EXPECT_EQ(dot(kFp8E4m3, 0, {0x38}, kFp8E4m3, 127, {0x38}), 0x1p-127f);  // exact subnormal
  // 448 * 448 * 2^-254 is about 2^-236: zero.
  EXPECT_EQ(dot(kFp8E4m3, 0, {0x7E}, kFp8E4m3, 0, {0x7E}), 0.0f);
}

// ---- specials ----

TEST(MxDot, NanScaleOrNanElementGivesNan) {
  EXPECT_TRUE(std::isnan(dot(kFp8E4m3, 0xFF, {0x00}, kFp8E4m3, 127, {0x00})));
  EXPECT_TRUE(std::isnan(dot(kFp8E4m3, 127, {0x38}, kFp8E4m3, 0xFF, {0x38})));
  EXPECT_TRUE(std::isnan(dot(kInt8Sym, 0xFF, {1}, kInt8Sym, 127, {1})));
  EXPECT_TRUE(std::isnan(dot(kFp8E4m3, 127, {0x38, 0x7F}, kFp8E4m3, 127, {0x38, 0x00})));
  EXPECT_TRUE(std::isnan(dot(kFp8E5m2, 127, {0x7E}, kFp8E5m2, 127, {0x3C})));
}

TEST(MxDot, InfinitiesFollowIeee) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x7C, 0x3C}, kFp8E5m2, 127, {0x40, 0x3C}), inf);
  EXPECT_EQ(dot(kFp8E5m2, 127, {0xFC}, kFp8E5m2, 127, {0x3C}), -inf);
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x7C}, kFp8E5m2, 127, {0xC0}), -inf);
  EXPECT_EQ(dot(kFp8E5m2, 127, {0x7C}, kFp8E5m2, 127, {0xFC}), -inf);
  EXPECT_TRUE(std::isnan(dot(kFp8E5m2, 127, {0x7C}, kFp8E5m2, 127, {0x00})));  // Inf * 0
  EXPECT_TRUE(
      std::isnan(dot(kFp8E5m2, 127, {0x7C, 0xFC}, kFp8E5m2, 127, {0x3C, 0x3C})));  // Inf - Inf
  EXPECT_TRUE(std::isnan(dot(kFp8E5m2, 0xFF, {0x7C}, kFp8E5m2, 127, {0x3C})));
}

TEST(MxDot, SignedZeros) {
  EXPECT_TRUE(
      std::signbit(dot(kFp8E4m3, 127, {0x80, 0x80}, kFp8E4m3, 127, {0x38, 0x40})));  // -0 + -0
  EXPECT_FALSE(
      std::signbit(dot(kFp8E4m3, 127, {0x80, 0x00}, kFp8E4m3, 127, {0x38, 0x40})));  // -0 + +0
  EXPECT_FALSE(
      std::signbit(dot(kFp8E4m3, 127, {0x38, 0xB8}, kFp8E4m3, 127, {0x38, 0x38})));  // 1 - 1
}

TEST(MxDot, EmptyAndMismatchedBlocks) {
  EXPECT_EQ(dot(kFp8E4m3, 127, {}, kFp8E4m3, 127, {}), 0.0f);
  EXPECT_THROW(dot(kFp8E4m3, 127, {0x38}, kFp8E4m3, 127, {0x38, 0x38}), Error);
}

TEST(MxDot, Fp32ElementsUseTheDoubleFallback) {
  // fp32 elements are 277-bit fixed point: too wide; summed in double instead.
  auto c = [](float v) { return std::bit_cast<std::uint32_t>(v); };
  EXPECT_EQ(dot(kFp32, 127, {c(1.5f), c(0.25f)}, kFp32, 128, {c(2.0f), c(4.0f)}), 8.0f);
  EXPECT_TRUE(std::isnan(dot(kFp32, 127, {c(std::nanf(""))}, kFp32, 127, {c(1.0f)})));
}

// ---- DotGeneral ----

// A hand-made MX tensor from codes in blocked-view order and scale codes.
PackedTensor make_tensor(const Format& element, int k, std::vector<std::int64_t> shape, int axis,
                         const Codes& codes, std::vector<std::uint8_t> scales) {
  PackedTensor t;
  t.format = {BlockScale::kUe8m0, element, k};
  t.shape = std::move(shape);
  t.axis = axis;
  t.elements.assign(packed_bytes(element.bits, codes.size()), 0);
  pack_codes(element.bits, codes, t.elements);
  t.scales = std::move(scales);
  return t;
}

// Rows of 10 E4M3 elements in blocks of 4: blocks of 4, 4 and a partial 2.
// A row 0: block results 2^24, 1, 1 (against B row 0 of ones):
//   block 0 [1,0,0,0] * 2^24, block 1 [1,0,0,0], block 2 [0,1] (the tail).
// A row 1: ten ones. B row 0: ten ones; B row 1: ten ones with scales 2.
struct DotGeneralFixture : ::testing::Test {
  PackedTensor a = make_tensor(kFp8E4m3, 4, {2, 10}, 1,
                               {0x38, 0,    0,    0,    0x38, 0,    0,    0,    0,    0x38,  //
                                0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38},
                               {127 + 24, 127, 127, 127, 127, 127});
  PackedTensor b =
      make_tensor(kFp8E4m3, 4, {2, 10}, 1, Codes(20, 0x38), {127, 127, 127, 128, 128, 128});
};

TEST_F(DotGeneralFixture, AddsBlockResultsInFp32InBlockOrder) {
  // ((2^24 + 1) + 1) in fp32: 2^24 + 1 ties to 2^24, and again. The exact sum
  // 2^24 + 2 (or the reverse order 1 + 1 + 2^24) would be 16777218.
  EXPECT_EQ(mx_dot_general(a, 0, b, 0), 16777216.0f);
  EXPECT_EQ((1.0f + 1.0f) + 0x1p24f, 16777218.0f);
}

TEST_F(DotGeneralFixture, IncludesThePartialTailBlock) {
  EXPECT_EQ(mx_dot_general(a, 1, b, 0), 10.0f);  // 4 + 4 + 2
  EXPECT_EQ(mx_dot_general(a, 1, b, 1), 20.0f);
  EXPECT_EQ(mx_dot_general(b, 1, a, 1), 20.0f);
}

TEST_F(DotGeneralFixture, RejectsMismatches) {
  EXPECT_THROW(mx_dot_general(a, 2, b, 0), Error);  // row out of range
  EXPECT_THROW(mx_dot_general(a, 0, b, 5), Error);
  PackedTensor other_k = b;
  other_k.format.block_size = 5;
  other_k.scales.resize(4);
  EXPECT_THROW(mx_dot_general(a, 0, other_k, 0), Error);
  PackedTensor shorter = make_tensor(kFp8E4m3, 4, {1, 8}, 1, Codes(8, 0x38), {127, 127});
  EXPECT_THROW(mx_dot_general(a, 0, shorter, 0), Error);
  PackedTensor nvfp4 = b;
  nvfp4.format.scale = BlockScale::kUe4m3;
  EXPECT_THROW(mx_dot_general(a, 0, nvfp4, 0), Error);
}

// ---- mx_matmul against references from dequantized values ----

BlockFormat block_format(const std::string& name) {
  BlockFormat f;
  EXPECT_TRUE(parse_block_format(name, f)) << name;
  return f;
}

std::vector<float> random_matrix(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> binade(-4, 4);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(normal(gen), binade(gen));  // spread values over binades
  return v;
}

struct MatmulCase {
  std::string format;
  std::int64_t m, k, n;
};

void PrintTo(const MatmulCase& c, std::ostream* os) {
  *os << c.format << " " << c.m << "x" << c.k << "x" << c.n;
}

class MxMatmul : public ::testing::TestWithParam<MatmulCase> {};

// With A_q, B_q the dequantized matrices (exact fp32 values) and s_j the exact
// per-block sums, the contract gives C = fl32(...fl32(fl32(s_0) + fl32(s_1))...).
//  * Bit-exact check: for E4M3, E3M2, E2M3, E2M1 and INT8 the block products
//    are integers of at most 2*18 bits in the block's common unit, so a block of
//    32 sums exactly in double (36 + 6 <= 53 bits); casting s_j to float is then
//    the one correct rounding, and the fp32 additions in block order reproduce
//    C bit for bit.
//  * Error bound against S = sum_i a_i b_i (double), for every format: each
//    fl32(s_j) is off by at most u|s_j| (u = 2^-24, no underflow here) and
//    nb - 1 recursive fp32 additions add at most gamma_(nb-1) * sum|s_j|, so
//      |C - S| <= (nb * u * (1 + 2^-20) + K * 2^-52) * sum_i |a_i b_i|,
//    the last term covering the double reference's own rounding (E5M2 blocks
//    need up to 70 bits, so there s_j in double is not exact).
TEST_P(MxMatmul, MatchesDequantizedReference) {
  const MatmulCase& p = GetParam();
  const BlockFormat f = block_format(p.format);
  const auto M = static_cast<std::size_t>(p.m), K = static_cast<std::size_t>(p.k),
             N = static_cast<std::size_t>(p.n);
  const std::vector<float> a_data = random_matrix(M * K, 1);
  const std::vector<float> b_data = random_matrix(K * N, 2);
  const std::vector<std::int64_t> a_shape{p.m, p.k}, b_shape{p.k, p.n};
  const PackedTensor a = quantize(f, a_data, a_shape, 1, {});
  const PackedTensor b = quantize(f, b_data, b_shape, 0, {});
  std::vector<float> aq(M * K), bq(K * N);
  dequantize(a, aq);
  dequantize(b, bq);
  const std::vector<float> c = mx_matmul(a, b);
  ASSERT_EQ(c.size(), M * N);

  const bool exact_blocks = f.element.kind == Kind::kInt || f.element.exp_bits <= 4;  // not E5M2
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t nb = (K + k - 1) / k;
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t n = 0; n < N; ++n) {
      double total = 0.0, magnitude = 0.0;
      float emulated = 0.0f;
      for (std::size_t blk = 0; blk < nb; ++blk) {
        double s = 0.0;
        for (std::size_t i = blk * k; i < std::min(K, (blk + 1) * k); ++i) {
          const double prod = static_cast<double>(aq[m * K + i]) * bq[i * N + n];
          s += prod;
          magnitude += std::fabs(prod);
        }
        total += s;
        const auto d = static_cast<float>(s);
        emulated = blk == 0 ? d : emulated + d;
      }
      const float got = c[m * N + n];
      if (exact_blocks) {
        EXPECT_EQ(got, emulated) << "C[" << m << "," << n << "]";
      }
      const double bound =
          (static_cast<double>(nb) * 0x1p-24 * (1 + 0x1p-20) + static_cast<double>(K) * 0x1p-52) *
          magnitude;
      EXPECT_LE(std::fabs(static_cast<double>(got) - total), bound) << "C[" << m << "," << n << "]";
      // DotGeneral of the blocked rows is the same entry.
      if (m == 0 && n == N - 1) {
        EXPECT_EQ(got, mx_dot_general(a, m, b, n));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, MxMatmul,
    ::testing::Values(MatmulCase{"mxfp8_e4m3", 5, 96, 7}, MatmulCase{"mxfp6_e3m2", 5, 96, 7},
                      MatmulCase{"mxfp4", 5, 96, 7}, MatmulCase{"mxint8", 5, 96, 7},
                      MatmulCase{"mxfp6_e2m3", 3, 64, 4}, MatmulCase{"mxfp8_e5m2", 3, 64, 4},
                      MatmulCase{"mxfp8_e4m3", 4, 77, 6}, MatmulCase{"mxint8", 4, 77, 6},
                      MatmulCase{"mxfp4", 3, 13, 5}),
    [](const ::testing::TestParamInfo<MatmulCase>& c) {
      return c.param.format + "_" + std::to_string(c.param.m) + "x" + std::to_string(c.param.k) +
             "x" + std::to_string(c.param.n);
    });

TEST(MxMatmulErrors, NamesTheMismatch) {
  const BlockFormat f = block_format("mxfp8_e4m3");
  auto q = [&](std::vector<std::int64_t> shape, int axis) {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return quantize(f, std::vector<float>(n, 1.0f), shape, axis, {});
  };
  auto message = [](const PackedTensor& a, const PackedTensor& b) -> std::string {
    try {
      mx_matmul(a, b);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message(q({4, 64}, 1), q({32, 8}, 0)), "mx_matmul: A is 4x64 but B is 32x8");
  EXPECT_EQ(message(q({4, 64}, 1), q({64, 8}, 1)),
            "mx_matmul: B must be blocked along axis 0 (K), but its axis is 1");
  EXPECT_EQ(message(q({4, 64}, 0), q({64, 8}, 0)),
            "mx_matmul: A must be blocked along axis 1 (K), but its axis is 0");
  EXPECT_EQ(message(q({2, 4, 64}, 2), q({64, 8}, 0)), "mx_matmul: A must be 2-D, but it is 2x4x64");
  const PackedTensor b16 = quantize(block_format("mx:e4m3:16"), std::vector<float>(64 * 8, 1.0f),
                                    std::vector<std::int64_t>{64, 8}, 0, {});
  EXPECT_EQ(message(q({4, 64}, 1), b16), "mx_matmul: block sizes differ (A 32, B 16)");
  const PackedTensor nv = quantize(block_format("nvfp4"), std::vector<float>(4 * 64, 1.0f),
                                   std::vector<std::int64_t>{4, 64}, 1, {});
  EXPECT_EQ(message(nv, q({64, 8}, 0)), "mx_matmul: A is nvfp4, not an MX format");
}

TEST(MxMatmulErrors, EmptyInnerDimensionGivesZeros) {
  const BlockFormat f = block_format("mxfp8_e4m3");
  const PackedTensor a = quantize(f, {}, std::vector<std::int64_t>{2, 0}, 1, {});
  const PackedTensor b = quantize(f, {}, std::vector<std::int64_t>{0, 3}, 0, {});
  EXPECT_EQ(mx_matmul(a, b), std::vector<float>(6, 0.0f));
}

}  // namespace
}  // namespace lowp
