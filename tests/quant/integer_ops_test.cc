// The integer-only kernels against their definitions (exact where the
// definition is an integer formula) and against the float functions they
// approximate (the maximum error printed and bounded).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "lowp/error.h"
#include "lowp/quant/integer_ops.h"

namespace lowp::integer {
namespace {

__extension__ using i128 = __int128;
__extension__ using u128 = unsigned __int128;

TEST(Dyadic, RepresentsTheMultiplierTo31Bits) {
  for (double m : {1.0, 0.5, 0.75, 1e-9, 3.0e-5, 0.123456789, 7.5, 1000.25, 4.0e9}) {
    const Dyadic d = Dyadic::of(m);
    EXPECT_GE(d.m, std::int64_t{1} << 30) << m;
    EXPECT_LT(d.m, std::int64_t{1} << 31) << m;
    EXPECT_LE(std::fabs(d.value() - m), m * 0x1p-31) << m;
  }
  EXPECT_THROW(Dyadic::of(0.0), Error);
  EXPECT_THROW(Dyadic::of(-1.0), Error);
  EXPECT_THROW(Dyadic::of(std::nan("")), Error);
  EXPECT_THROW(Dyadic::of(0x1p33), Error);
  EXPECT_EQ(Dyadic::of(0x1p-100).apply(std::numeric_limits<std::int64_t>::max()), 0);
}

// apply(v) is the integer nearest v m / 2^shift, ties away from zero:
// |apply(v) 2^shift - v m| <= 2^(shift-1), with equality only away from zero.
TEST(Dyadic, RoundsToNearestTiesAwayFromZero) {
  std::mt19937_64 rng(1);
  for (double mult : {1.0 / 3.0, 0.7071, 1e-6, 1.5, 123.456}) {
    const Dyadic d = Dyadic::of(mult);
    for (int i = 0; i < 20000; ++i) {
      std::int64_t v = static_cast<std::int64_t>(rng() >> (1 + rng() % 40));
      if (i & 1) v = -v;
      const std::int64_t r = d.apply(v);
      if (r == std::numeric_limits<std::int64_t>::max() ||
          r == -std::numeric_limits<std::int64_t>::max()) {
        continue;  // saturated (checked below)
      }
      const i128 exact = static_cast<i128>(v) * d.m;
      const i128 back = static_cast<i128>(r) << d.shift;
      const i128 diff = back - exact;
      const i128 half = static_cast<i128>(1) << (d.shift - 1);
      ASSERT_LE(diff < 0 ? -diff : diff, half) << v << " " << mult;
      if (diff == half) {
        ASSERT_GT(v, 0);
      }
      if (diff == -half) {
        ASSERT_LT(v, 0);
      }
    }
  }
  EXPECT_EQ(Dyadic::of(0.5).apply(3), 2);    // 1.5 -> 2
  EXPECT_EQ(Dyadic::of(0.5).apply(-3), -2);  // -1.5 -> -2
  EXPECT_EQ(Dyadic::of(2.0).apply(-5), -10);
  EXPECT_EQ(Dyadic::of(1.5).apply(std::numeric_limits<std::int64_t>::max()),
            std::numeric_limits<std::int64_t>::max());  // saturates
  EXPECT_EQ(Dyadic::of(1.5).apply(-std::numeric_limits<std::int64_t>::max()),
            -std::numeric_limits<std::int64_t>::max());
}

TEST(Integer, SaturateAndRoundDiv) {
  EXPECT_EQ(saturate(300, 8), 127);
  EXPECT_EQ(saturate(-300, 8), -127);
  EXPECT_EQ(saturate(-5, 8), -5);
  EXPECT_EQ(saturate(std::int64_t{1} << 40, 32), 2147483647);
  for (std::int64_t a = -1000; a <= 1000; ++a) {
    for (std::int64_t b = 1; b <= 37; b += 3) {
      const double q = static_cast<double>(a) / static_cast<double>(b);
      const double want = q < 0 ? -std::floor(-q + 0.5) : std::floor(q + 0.5);
      ASSERT_EQ(round_div(a, b), static_cast<std::int64_t>(want)) << a << "/" << b;
    }
  }
}

TEST(Integer, IsqrtIsTheFloorOfTheSquareRoot) {
  const auto check = [](std::uint64_t n) {
    const std::uint64_t r = isqrt(n);
    const u128 r2 = static_cast<u128>(r) * r;
    const u128 r1 = static_cast<u128>(r + 1) * (r + 1);
    return r2 <= n && n < r1;
  };
  for (std::uint64_t n = 0; n < (1u << 20); ++n) ASSERT_TRUE(check(n)) << n;
  std::mt19937_64 rng(2);
  for (int i = 0; i < 200000; ++i) {
    const std::uint64_t n = rng() >> (rng() % 64);
    ASSERT_TRUE(check(n)) << n;
  }
  for (std::uint64_t s :
       {std::uint64_t{3037000499}, std::uint64_t{4294967295}, std::uint64_t{65536}}) {
    ASSERT_TRUE(check(s * s));
    ASSERT_TRUE(check(s * s - 1));
    ASSERT_TRUE(check(s * s + 1));
  }
  ASSERT_TRUE(check(std::numeric_limits<std::uint64_t>::max()));
  EXPECT_EQ(isqrt(std::numeric_limits<std::uint64_t>::max()), 4294967295u);
}

double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// i-GELU against I-BERT's polynomial (its definition: only the constants'
// floors differ) and against GELU with the exact erf.
TEST(IGelu, MatchesItsPolynomialAndApproximatesGelu) {
  for (double scale : {1.0 / 2048, 1e-3, 1.0 / 64}) {
    const IGelu g(scale);
    double def_err = 0, gelu_err = 0;
    const auto lim = static_cast<std::int64_t>(8.0 / scale);
    for (std::int64_t q = -lim; q <= lim; ++q) {
      const double x = static_cast<double>(q) * scale;
      const double y = static_cast<double>(g(q)) * g.out_scale();
      def_err = std::max(def_err, std::fabs(y - IGelu::reference(x)) / (1.0 + std::fabs(x)));
      gelu_err = std::max(gelu_err, std::fabs(y - gelu(x)));
    }
    std::printf(
        "i-GELU scale %g: max |err| vs its polynomial %.2e (relative to 1+|x|), vs GELU %.4f\n",
        scale, def_err, gelu_err);
    EXPECT_LE(def_err, 40 * scale) << scale;
    EXPECT_LE(gelu_err, 0.025) << scale;  // the polynomial's own error is about 0.02
  }
  EXPECT_THROW(IGelu(0.0), Error);
  EXPECT_THROW(IGelu(-1.0), Error);
  EXPECT_THROW(IGelu(std::numeric_limits<double>::infinity()), Error);
}

TEST(IExp, MatchesItsPolynomialAndApproximatesExp) {
  const IExp e(kExpInputScale);
  double def_err = 0, exp_err = 0;
  for (std::int64_t q = -(std::int64_t{1} << 18); q <= 0; ++q) {
    const double x = static_cast<double>(q) * kExpInputScale;
    const double y = static_cast<double>(e(q)) * e.out_scale();
    def_err = std::max(def_err, std::fabs(y - IExp::reference(x)));
    exp_err = std::max(exp_err, std::fabs(y - std::exp(x)));
  }
  std::printf("i-exp: max |err| vs its polynomial %.2e, vs exp %.2e\n", def_err, exp_err);
  EXPECT_LE(def_err, kExpInputScale / 2);  // the constants' floors: within half an input step
  EXPECT_LE(exp_err, 3e-3);
  EXPECT_EQ(e(1000), e(0));  // positive inputs count as 0
  EXPECT_EQ(e(std::numeric_limits<std::int64_t>::min()), 0);
  EXPECT_NEAR(static_cast<double>(e(0)), static_cast<double>(e.one()),
              0.01 * static_cast<double>(e.one()));
  EXPECT_THROW(IExp(1.0), Error);
}

TEST(Integer, SoftmaxApproximatesTheFloatSoftmax) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g(0.0, 3.0);
  for (int bits : {8, 15}) {
    double worst = 0, def_worst = 0;
    for (std::size_t n : {1u, 2u, 7u, 128u, 1000u}) {
      std::vector<std::int64_t> s(n);
      std::vector<double> x(n);
      for (std::size_t j = 0; j < n; ++j) {
        x[j] = g(rng);
        s[j] = std::llround(x[j] / kExpInputScale);
      }
      std::vector<std::int32_t> p(n);
      softmax(s.data(), n, bits, p.data());
      double max = -1e300, sum = 0, def_sum = 0;
      for (double v : x) max = std::max(max, v);
      const std::int64_t smax = *std::max_element(s.begin(), s.end());
      for (std::size_t j = 0; j < n; ++j) {
        sum += std::exp(x[j] - max);
        def_sum += IExp::reference(static_cast<double>(s[j] - smax) * kExpInputScale);
      }
      std::int64_t total = 0;
      for (std::size_t j = 0; j < n; ++j) {
        total += p[j];
        const double got = std::ldexp(static_cast<double>(p[j]), -bits);
        // Its definition: i-exp's polynomial normalized, on the integer scores.
        const double def =
            IExp::reference(static_cast<double>(s[j] - smax) * kExpInputScale) / def_sum;
        def_worst = std::max(def_worst, std::fabs(got - def));
        ASSERT_LE(std::fabs(got - def), 1e-4 + std::ldexp(1.0, -bits)) << n << " " << bits;
        const double want = std::exp(x[j] - max) / sum;
        const double err = std::fabs(got - want);
        worst = std::max(worst, err);
        ASSERT_LE(err, 0.004 + std::ldexp(1.0, -bits)) << n << " " << bits;
      }
      // Each probability rounds by at most half a unit.
      ASSERT_LE(std::llabs(total - (std::int64_t{1} << bits)),
                static_cast<std::int64_t>(n / 2 + 1));
    }
    std::printf("integer softmax, %d bits: max |p - its definition| %.2e, |p - softmax| %.2e\n",
                bits, def_worst, worst);
  }
}

TEST(Integer, SigmoidApproximatesTheLogistic) {
  double worst = 0, def_worst = 0;
  const double e0 = IExp::reference(0.0);
  for (std::int64_t q = -200000; q <= 200000; q += 7) {
    const double x = static_cast<double>(q) * kExpInputScale;
    const double y = std::ldexp(static_cast<double>(sigmoid(q, 15)), -15);
    worst = std::max(worst, std::fabs(y - 1.0 / (1.0 + std::exp(-x))));
    // Its definition: e(0) / (e(0) + e(-|x|)) with i-exp's polynomial e.
    const double pos = e0 / (e0 + IExp::reference(-std::fabs(x)));
    def_worst = std::max(def_worst, std::fabs(y - (x >= 0 ? pos : 1.0 - pos)));
  }
  std::printf("integer sigmoid: max |err| vs its definition %.2e, vs the logistic %.2e\n",
              def_worst, worst);
  EXPECT_LE(def_worst, 1e-4);
  EXPECT_LE(worst, 2e-3);
  EXPECT_EQ(sigmoid(0, 15), 1 << 14);
  EXPECT_EQ(sigmoid(std::numeric_limits<std::int64_t>::max(), 15), 1 << 15);
  EXPECT_EQ(sigmoid(std::numeric_limits<std::int64_t>::min(), 15), 0);
}

// The integer norms give the int8 code of the float norm, off by at most one.
TEST(IntNorm, LayerNormAndRmsNormWithinOneCode) {
  std::mt19937_64 rng(4);
  for (bool rms : {false, true}) {
    for (std::size_t d : {4u, 96u, 768u}) {
      std::normal_distribution<double> g(0.3, 2.0);
      std::vector<float> w(d), b(d);
      for (std::size_t i = 0; i < d; ++i) {
        w[i] = static_cast<float>(1.0 + 0.3 * g(rng));
        b[i] = static_cast<float>(0.1 * g(rng));
      }
      const double scale = 1.0 / 65536, out_scale = 6.0 / 127;
      const IntNorm norm(rms, d, w.data(), rms ? nullptr : b.data(), 1e-5f, scale, out_scale, 8);
      int off = 0;
      for (int row = 0; row < 50; ++row) {
        std::vector<std::int32_t> x(d), y(d);
        double mean = 0, var = 0;
        for (auto& v : x) v = static_cast<std::int32_t>(std::llround(g(rng) / scale));
        if (!rms) {
          for (auto v : x) mean += v * scale;
          mean /= static_cast<double>(d);
        }
        for (auto v : x) var += (v * scale - mean) * (v * scale - mean);
        var /= static_cast<double>(d);
        norm(x.data(), y.data());
        for (std::size_t i = 0; i < d; ++i) {
          double want = (x[i] * scale - mean) / std::sqrt(var + 1e-5) * w[i] + (rms ? 0.0 : b[i]);
          want = std::clamp(std::round(want / out_scale), -127.0, 127.0);
          const int diff = std::abs(y[i] - static_cast<int>(want));
          ASSERT_LE(diff, 1) << rms << " d " << d << " i " << i;
          off += diff;
        }
      }
      std::printf("%s d=%zu: %d of %zu codes off by one\n", rms ? "RMSNorm" : "LayerNorm", d, off,
                  50 * d);
    }
  }
  // A constant row normalizes to the bias (variance 0: eps alone).
  std::vector<float> w(8, 1.0f), b(8, 0.5f);
  const IntNorm ln(false, 8, w.data(), b.data(), 1e-5f, 1e-3, 1.0 / 127, 8);
  std::vector<std::int32_t> x(8, 1234), y(8);
  ln(x.data(), y.data());
  for (auto v : y) EXPECT_EQ(v, 64);  // 0.5 * 127 rounded
}

}  // namespace
}  // namespace lowp::integer
