// The quire-exact dot product (lowp/format/quire.h) against an independent
// exact oracle: each product of two posit values (from tests/oracle's
// PositOracle, exact in double) is split exactly into hi + lo with an FMA,
// the terms are summed exactly in a fixed-point integer of base-2^32 digits
// (LSB 2^-320), and the sum is rounded to a posit by the oracle's rule (binary
// search over codes, then the bit-string midpoint), every comparison made
// exactly on the digit representation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/quire.h"
#include "lowp/format/registry.h"
#include "oracle/posit_oracle.h"

namespace {

using lowp_oracle::PositOracle;

std::uint32_t mask_of(int bits) {
  return static_cast<std::uint32_t>((std::uint64_t{1} << bits) - 1);
}

// An exact sum of doubles: sum of digits_[i] * 2^(32 i - kLsb).
class ExactSum {
 public:
  static constexpr int kLsb = 320;
  static constexpr int kDigits = 22;  // 2^-320 .. 2^384

  void add(double d) {
    if (d == 0) return;
    int e = 0;
    const double m = std::frexp(d, &e);  // d = m * 2^e
    const auto mant = static_cast<std::int64_t>(std::ldexp(m, 53));
    const int pos = e - 53 + kLsb;  // d = mant * 2^(pos - kLsb)
    const bool neg = mant < 0;
    std::uint64_t a = static_cast<std::uint64_t>(neg ? -mant : mant);
    // a * 2^(pos % 32) over digits pos / 32 .. + 2.
    int digit = pos / 32;
    const int shift = pos % 32;
    std::uint64_t lo = (a << shift) & 0xFFFFFFFFu;
    std::uint64_t rest = shift == 0 ? a >> 32 : a >> (32 - shift);
    for (std::uint64_t part : {lo, rest & 0xFFFFFFFFu, rest >> 32}) {
      digits_.at(static_cast<std::size_t>(digit++)) +=
          neg ? -static_cast<std::int64_t>(part) : static_cast<std::int64_t>(part);
    }
  }
  // -1, 0 or 1: the sign of the sum.
  int sign() const {
    std::vector<std::int64_t> d = digits_;
    std::int64_t carry = 0;
    bool nonzero = false;
    for (std::int64_t& x : d) {
      x += carry;
      carry = x >> 32;  // floor division
      x -= carry * (std::int64_t{1} << 32);
      nonzero |= x != 0;
    }
    if (carry < 0) return -1;
    return nonzero || carry > 0 ? 1 : 0;
  }
  // The sign of (this sum) - v.
  int compare(double v) const {
    ExactSum t = *this;
    t.add(-v);
    return t.sign();
  }
  void negate() {
    for (std::int64_t& x : digits_) x = -x;
  }

 private:
  std::vector<std::int64_t> digits_ = std::vector<std::int64_t>(kDigits, 0);
};

// The posit code nearest to the exact sum of a[i] * b[i] by the oracle's rule.
std::uint32_t oracle_dot(const PositOracle& o, const std::vector<std::uint32_t>& a,
                         const std::vector<std::uint32_t>& b) {
  ExactSum s;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = o.value(a[i]), y = o.value(b[i]);
    if (std::isnan(x) || std::isnan(y)) return o.nar();
    const double hi = x * y;
    s.add(hi);
    s.add(std::fma(x, y, -hi));  // the exact remainder
  }
  const int sg = s.sign();
  if (sg == 0) return 0;
  if (sg < 0) s.negate();
  std::uint32_t code;
  if (s.compare(o.value(o.maxpos_code())) >= 0) {
    code = o.maxpos_code();
  } else if (s.compare(o.value(1)) <= 0) {
    code = 1;
  } else {
    std::uint32_t lo = 1, hi = o.maxpos_code();
    while (hi - lo > 1) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      (s.compare(o.value(mid)) >= 0 ? lo : hi) = mid;
    }
    const int at_lo = s.compare(o.value(lo));
    const int vs_mid = s.compare(o.value_of_width(2 * std::uint64_t{lo} + 1, o.bits() + 1));
    code = at_lo == 0 ? lo : vs_mid < 0 ? lo : vs_mid > 0 ? hi : (lo % 2 == 0 ? lo : hi);
  }
  const std::uint32_t mask = mask_of(o.bits());
  return sg < 0 ? (0u - code) & mask : code;
}

class QuireTest : public ::testing::TestWithParam<std::string> {};

TEST_P(QuireTest, RandomVectorsMatchTheExactOracle) {
  const lowp::Format f = lowp::parse_format(GetParam());
  const PositOracle o(f.bits, f.exp_bits);
  const std::uint32_t mask = mask_of(f.bits);
  std::mt19937 gen(2022u + static_cast<std::uint32_t>(f.bits * 4 + f.exp_bits));
  const auto rng = [&gen] { return static_cast<std::uint32_t>(gen()); };
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t len = 1 + rng() % 300;
    std::vector<std::uint32_t> a(len), b(len);
    for (std::size_t i = 0; i < len; ++i) {
      a[i] = rng() & mask;
      b[i] = rng() & mask;
      if (a[i] == o.nar() && trial % 50 != 0) a[i] = 0;  // NaR in a few vectors only
      if (b[i] == o.nar()) b[i] = 1;
    }
    ASSERT_EQ(lowp::quire_dot(f, a, b), oracle_dot(o, a, b)) << "trial " << trial;
  }
}

// Sums that cancel: every product appears with both signs, plus a few small
// ones; the exact result is the sum of the small ones, which fp32 accumulation
// loses next to the large ones.
TEST_P(QuireTest, CatastrophicCancellation) {
  const lowp::Format f = lowp::parse_format(GetParam());
  const PositOracle o(f.bits, f.exp_bits);
  const std::uint32_t mask = mask_of(f.bits);
  std::mt19937 gen(7u + static_cast<std::uint32_t>(f.bits * 4 + f.exp_bits));
  const auto rng = [&gen] { return static_cast<std::uint32_t>(gen()); };
  int fp32_wrong = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::uint32_t> a, b;
    const std::size_t pairs = 1 + rng() % 40;
    for (std::size_t i = 0; i < pairs; ++i) {
      // Large products near maxpos^(1/2) squared.
      const std::uint32_t x = (o.maxpos_code() - rng() % 8) & mask,
                          y = (0x3u << (f.bits - 3)) + rng() % 4;
      a.push_back(x), b.push_back(y);
      a.push_back((0u - x) & mask), b.push_back(y);  // -x * y
    }
    for (int i = 0; i < 3; ++i) {
      a.push_back(1 + rng() % 16);                                  // near minpos
      b.push_back((std::uint32_t{1} << (f.bits - 2)) + rng() % 4);  // near 1
    }
    // Interleave so that a sequential fp32 sum sees the small terms beside the large.
    std::vector<std::size_t> order(a.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), gen);
    std::vector<std::uint32_t> as, bs;
    float fp32 = 0.0f;
    for (std::size_t i : order) {
      as.push_back(a[i]), bs.push_back(b[i]);
      fp32 += static_cast<float>(o.value(a[i])) * static_cast<float>(o.value(b[i]));
    }
    const std::uint32_t want = oracle_dot(o, as, bs);
    ASSERT_EQ(lowp::quire_dot(f, as, bs), want) << "trial " << trial;
    ASSERT_NE(want, 0u);  // the small terms survive
    lowp::Quire q(f);
    for (std::size_t i = 0; i < as.size(); ++i) q.add_product(as[i], bs[i]);
    if (static_cast<double>(fp32) != q.to_double()) ++fp32_wrong;
  }
  // fp32 accumulation is wrong in most of these (the point of the quire),
  // where the products span more than fp32's 24 bits (not posit8_es0's 2^-6 ..
  // 2^7).
  if (3 * lowp::posit_max_scale(f) > 30) {
    EXPECT_GT(fp32_wrong, 100) << GetParam();
  }
}

TEST_P(QuireTest, EdgeCases) {
  const lowp::Format f = lowp::parse_format(GetParam());
  const PositOracle o(f.bits, f.exp_bits);
  const std::uint32_t one = std::uint32_t{1} << (f.bits - 2);
  const std::uint32_t maxpos = o.maxpos_code(), nar = o.nar();
  const std::uint32_t mask = mask_of(f.bits);
  std::vector<std::uint32_t> empty;
  EXPECT_EQ(lowp::quire_dot(f, empty, empty), 0u);
  // minpos * minpos: below minpos, rounds up to minpos (never to zero).
  EXPECT_EQ(lowp::quire_dot(f, std::vector<std::uint32_t>{1}, std::vector<std::uint32_t>{1}), 1u);
  // maxpos^2 * 1000: saturates at maxpos (never NaR).
  const std::vector<std::uint32_t> big(1000, maxpos);
  EXPECT_EQ(lowp::quire_dot(f, big, big), maxpos);
  EXPECT_EQ(lowp::quire_dot(f, big, std::vector<std::uint32_t>(1000, (0u - maxpos) & mask)),
            (0u - maxpos) & mask);
  // maxpos^2 - maxpos^2 + 1 = 1 exactly.
  EXPECT_EQ(lowp::quire_dot(f, std::vector<std::uint32_t>{maxpos, (0u - maxpos) & mask, one},
                            std::vector<std::uint32_t>{maxpos, maxpos, one}),
            one);
  EXPECT_EQ(
      lowp::quire_dot(f, std::vector<std::uint32_t>{one, nar}, std::vector<std::uint32_t>{one, 0}),
      nar);
  lowp::Quire q(f);
  EXPECT_EQ(q.bits(), 16 * f.bits);
  q.add_product(nar, one);
  EXPECT_TRUE(q.is_nar());
  q.clear();
  q.add_product(one, one);
  EXPECT_EQ(q.to_posit(), one);
  EXPECT_THROW(lowp::Quire(lowp::parse_format("fp16")), lowp::Error);
  EXPECT_THROW(lowp::quire_dot(f, std::vector<std::uint32_t>{1}, empty), lowp::Error);
}

INSTANTIATE_TEST_SUITE_P(Posits, QuireTest,
                         ::testing::Values("posit8", "posit16", "posit8_es0", "posit16_es1",
                                           "posit32"));

}  // namespace
