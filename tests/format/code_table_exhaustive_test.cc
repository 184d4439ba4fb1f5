// Exhaustive tier for the code books (nf4, nf3, dint4): every one of the 2^32
// fp32 bit patterns but the NaNs, encoded by the bulk kernel (lowp::encode_f32,
// the scalar reference for code books), against the expectation built here
// from the table alone: on each side of zero the table's values of that sign
// (and zero) sorted by magnitude, walked with a cursor as the magnitude bit
// pattern grows; |x| below the midpoint of its bracket takes the smaller
// magnitude, above it the larger, at it the rounding mode's choice; beyond the
// last value, the last value. Two threads take the two signs. Nearest-even
// only (see the test).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace {

constexpr std::uint32_t kChunk = 1u << 20;
constexpr std::uint32_t kInfBits = 0x7F800000u;

struct Side {
  std::vector<double> magnitude;  // ascending, the first is 0
  std::vector<std::uint32_t> code;
};

// The values of one sign, and the zero of that sign (dint4's -0 on the
// negative side), by magnitude.
Side side_of(const lowp::Format& f, bool negative) {
  const std::span<const double> v = lowp::table_values(f);
  std::vector<std::pair<double, std::uint32_t>> pick;
  for (std::uint32_t c = 0; c < v.size(); ++c) {
    if (v[c] == 0.0) continue;
    if ((v[c] < 0.0) == negative) pick.emplace_back(std::fabs(v[c]), c);
  }
  // The zero: the one whose sign matches, else the only one.
  std::uint32_t zero = 0;
  bool found = false;
  for (std::uint32_t c = 0; c < v.size(); ++c) {
    if (v[c] != 0.0) continue;
    if (!found || std::signbit(v[c]) == negative) zero = c;
    found = true;
  }
  pick.emplace_back(0.0, zero);
  std::sort(pick.begin(), pick.end());
  Side s;
  for (const auto& [m, c] : pick) {
    s.magnitude.push_back(m);
    s.code.push_back(c);
  }
  return s;
}

struct Tally {
  std::uint64_t bad = 0;
  std::string first;
};

void walk(const lowp::Format& f, lowp::Rounding r, bool negative, Tally& t) {
  const Side s = side_of(f, negative);
  std::vector<float> in(kChunk);
  std::vector<std::uint8_t> out(kChunk);
  std::size_t i = 0;  // bracket: magnitude[i] <= |x| < magnitude[i + 1]
  const std::uint32_t sign = negative ? 0x80000000u : 0u;
  for (std::uint64_t base = 0; base <= kInfBits; base += kChunk) {
    const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kChunk, kInfBits + 1 - base));
    for (std::uint32_t k = 0; k < n; ++k) {
      in[k] = std::bit_cast<float>(sign | static_cast<std::uint32_t>(base + k));
    }
    lowp::encode_f32(f, std::span<const float>(in.data(), n), out.data(), {r, true});
    for (std::uint32_t k = 0; k < n; ++k) {
      const double a = std::fabs(static_cast<double>(in[k]));
      while (i + 1 < s.magnitude.size() && s.magnitude[i + 1] <= a) ++i;
      std::uint32_t want;
      if (i + 1 == s.magnitude.size()) {
        want = s.code[i];  // at or beyond the end: saturate
      } else {
        const double lo = s.magnitude[i], hi = s.magnitude[i + 1], mid = (lo + hi) / 2;
        bool up;
        switch (r) {
          case lowp::Rounding::kTowardZero:
            up = false;
            break;
          case lowp::Rounding::kNearestAway:
            up = a >= mid;
            break;
          default:
            up = a > mid;
            break;
        }
        want = up ? s.code[i + 1] : s.code[i];
      }
      if (out[k] != want && ++t.bad <= 5) {
        char line[96];
        std::snprintf(line, sizeof line, "\n  input 0x%08X: expected %u, got %u",
                      static_cast<unsigned>(sign | (base + k)), want,
                      static_cast<unsigned>(out[k]));
        t.first += line;
      }
    }
  }
}

class CodeTableExhaustive : public ::testing::TestWithParam<std::string> {};

TEST_P(CodeTableExhaustive, AllFp32BitPatterns) {
  const lowp::Format f = lowp::parse_format(GetParam());
  // Nearest-even, the mode every quantizer uses; the other modes share the
  // bracket search and are checked at every midpoint and its neighbours, and
  // on random inputs, in code_table_test (a full sweep per mode would take
  // this tier minutes more on CI's two cores).
  for (const lowp::Rounding r : {lowp::Rounding::kNearestEven}) {
    Tally pos, neg;
    std::thread other([&] { walk(f, r, true, neg); });
    walk(f, r, false, pos);
    other.join();
    EXPECT_EQ(pos.bad + neg.bad, 0u)
        << GetParam() << " " << lowp::rounding_name(r) << pos.first << neg.first;
  }
}

INSTANTIATE_TEST_SUITE_P(CodeBooks, CodeTableExhaustive, ::testing::Values("nf4", "nf3", "dint4"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
