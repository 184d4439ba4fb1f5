// Fast tier: lowp::encode / lowp::decode against the independent oracle
// (tests/oracle) on every code and on the inputs where rounding can go wrong:
// the values themselves, the midpoints between neighbours and the doubles and
// floats on either side of them, the overflow threshold, infinities, NaNs,
// zeros, tiny values, and random fp32 and fp64 inputs; every deterministic
// rounding mode, with and without saturate.
//
// Sweeps: (a) every code of every registered format of <= 16 bits decodes to
// the oracle's value and encodes back to itself; (b) every minifloat spelling
// eXmY[fn|fnuz|fin] that lowp::parse_format accepts; (c) the registered formats
// of <= 16 bits, with random fp64 inputs too (rounded once, directly); (d) the
// oracle against published values and the harness against wrong encoders.
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

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "oracle/harness.h"
#include "oracle/oracle.h"

namespace {

using lowp_oracle::compare;
using lowp_oracle::kInf;
using lowp_oracle::kModes;
using lowp_oracle::Mode;
using lowp_oracle::mode_name;
using lowp_oracle::Oracle;
using lowp_oracle::probe_points;
using lowp_oracle::Report;
using lowp_oracle::Round;

lowp::EncodeOptions to_lowp(Mode m) {
  switch (m.round) {
    case Round::kNearestEven:
      return {lowp::Rounding::kNearestEven, m.saturate};
    case Round::kNearestAway:
      return {lowp::Rounding::kNearestAway, m.saturate};
    case Round::kTowardZero:
      return {lowp::Rounding::kTowardZero, m.saturate};
  }
  return {};
}

// The formats of <= 16 bits in the registry, but the code books and posits
// (the oracle derives sign, exponent and mantissa layouts; code_table_test.cc
// checks nf4, nf3 and dint4 against their own tables, posit_test.cc the posits
// against tests/oracle/posit_oracle.h).
std::vector<lowp::NamedFormat> registered_small() {
  std::vector<lowp::NamedFormat> out;
  for (const lowp::NamedFormat& nf : lowp::registry()) {
    if (nf.format.bits <= 16 && nf.format.kind != lowp::Kind::kTable &&
        nf.format.kind != lowp::Kind::kPosit) {
      out.push_back(nf);
    }
  }
  return out;
}

Report compare_lowp(const Oracle& o, const std::vector<double>& points, bool check_cursor = false) {
  const lowp::Format f = o.format();
  return compare(
      o, points, [f](double x, Mode m) { return lowp::encode(f, x, to_lowp(m)); }, check_cursor);
}

// ---- (a) decode every code, and encode it back ----

TEST(OracleTest, DecodeEveryRegisteredCode) {
  for (const lowp::NamedFormat& nf : registered_small()) {
    SCOPED_TRACE(std::string(nf.name));
    const Oracle o(nf.format);
    for (std::uint32_t c = 0; c < o.num_codes(); ++c) {
      const lowp_oracle::CodeInfo& ci = o.code(c);
      if (ci.unused) continue;  // int*_sym's most negative code is not a value
      const double d = lowp::decode(nf.format, c);
      if (ci.is_nan) {
        ASSERT_TRUE(std::isnan(d)) << "code 0x" << std::hex << c;
        ASSERT_EQ(std::signbit(d), std::signbit(ci.value)) << "NaN sign, code 0x" << std::hex << c;
      } else {
        ASSERT_EQ(std::bit_cast<std::uint64_t>(d), std::bit_cast<std::uint64_t>(ci.value))
            << "code 0x" << std::hex << c << ": decode " << d << ", oracle " << ci.value;
      }
      // Back again, in every rounding mode without saturate: a value is
      // exact, Inf stays Inf, a NaN becomes the canonical NaN.
      for (const Mode m : {kModes[0], kModes[1], kModes[2]}) {
        const std::uint32_t back = lowp::encode(nf.format, d, to_lowp(m));
        const std::uint32_t want = ci.is_nan ? o.nan_input_code(std::signbit(d)) : c;
        ASSERT_EQ(back, want) << "code 0x" << std::hex << c << " " << mode_name(m);
        ASSERT_EQ(o.encode(d, m), want) << "oracle, code 0x" << std::hex << c;
      }
    }
  }
}

// ---- (b) every minifloat spelling the parser accepts ----

// Formats with more magnitudes than this get the sampled probes in the fast
// tier (see probe_points); the slow tier's MinifloatSpellings test probes every
// code of every spelling.
constexpr std::size_t kFullLimit = 256;

TEST(OracleTest, EveryMinifloatSpelling) {
  std::uint64_t checked = 0;
  const auto spelled = lowp_oracle::minifloat_spellings();
  for (const auto& [name, f] : spelled) {
    const Oracle o(f);
    // Every code's value, by the oracle, decodes identically.
    for (std::uint32_t c = 0; c < o.num_codes(); ++c) {
      const double d = lowp::decode(f, c);
      const double v = o.code(c).value;
      if (std::isnan(v) ? !std::isnan(d)
                        : std::bit_cast<std::uint64_t>(d) != std::bit_cast<std::uint64_t>(v)) {
        ADD_FAILURE() << name << " code 0x" << std::hex << c << ": decode " << d << ", oracle "
                      << v;
        break;
      }
    }
    const Report r =
        compare_lowp(o, probe_points(o, std::hash<std::string>{}(name), false, kFullLimit));
    checked += r.checked;
    EXPECT_EQ(r.mismatches, 0u) << name << ":" << r.first;
  }
  std::printf("[ info ] %zu minifloat formats, %llu encodes compared\n", spelled.size(),
              static_cast<unsigned long long>(checked));
  EXPECT_GT(spelled.size(), 250u);
}

// ---- (c) the registered formats, with fp64 inputs too ----

TEST(OracleTest, RegisteredFormatsFp32AndFp64) {
  for (const lowp::NamedFormat& nf : registered_small()) {
    const Oracle o(nf.format);
    const Report r = compare_lowp(o, probe_points(o, 12345, true), /*check_cursor=*/true);
    EXPECT_EQ(r.mismatches, 0u) << nf.name << ":" << r.first;
    EXPECT_EQ(r.cursor_errors, 0u) << nf.name;
  }
}

// The fp32 segment table the exhaustive test walks agrees with the oracle.
TEST(OracleTest, Fp32SegmentsAgreeWithOracle) {
  std::mt19937 rng(7);
  for (const lowp::NamedFormat& nf : registered_small()) {
    if (nf.format.bits > 8) continue;
    const Oracle o(nf.format);
    for (const Mode m : kModes) {
      const auto segs = lowp_oracle::fp32_segments(o, m);
      ASSERT_EQ(segs.front().first, 0u);
      auto expect_at = [&](std::uint32_t p) {
        const auto it = std::upper_bound(
            segs.begin(), segs.end(), p,
            [](std::uint32_t q, const lowp_oracle::Segment& s) { return q < s.first; });
        const double x = static_cast<double>(std::bit_cast<float>(p));
        ASSERT_EQ((it - 1)->pos, o.encode(x, m)) << nf.name << " " << mode_name(m) << " " << x;
        ASSERT_EQ((it - 1)->neg, o.encode(-x, m)) << nf.name << " " << mode_name(m) << " " << -x;
      };
      for (std::size_t k = 0; k < segs.size(); ++k) {
        ASSERT_TRUE(k == 0 || segs[k].first > segs[k - 1].first);
        expect_at(segs[k].first);
        if (segs[k].first > 0) expect_at(segs[k].first - 1);
      }
      for (int i = 0; i < 2000; ++i) expect_at(static_cast<std::uint32_t>(rng()) & 0x7FFFFFFFu);
    }
  }
}

// ---- (d) the oracle against published values; the harness has teeth ----

std::uint32_t oracle_code(const char* name, double x, Mode m = {}) {
  return Oracle(lowp::parse_format(name)).encode(x, m);
}

TEST(OracleTest, PublishedValues) {
  // OFP8 v1.0 Table 1 / MX v1.0 Tables 2-3: max finite and smallest subnormal.
  struct Limit {
    const char* name;
    double max;
    double min_sub;
  };
  for (const Limit& l : {Limit{"fp8_e4m3", 448, 0x1p-9}, Limit{"fp8_e5m2", 57344, 0x1p-16},
                         Limit{"fp8_e4m3fnuz", 240, 0x1p-10}, Limit{"fp8_e5m2fnuz", 57344, 0x1p-17},
                         Limit{"fp6_e3m2", 28, 0x1p-4}, Limit{"fp6_e2m3", 7.5, 0x1p-3},
                         Limit{"fp4_e2m1", 6, 0.5}, Limit{"e8m0", 0x1p127, 0x1p-127}}) {
    const Oracle o(lowp::parse_format(l.name));
    EXPECT_EQ(o.max_finite(), l.max) << l.name;
    const double smallest = o.magnitudes()[0] > 0 ? o.magnitudes()[0] : o.magnitudes()[1];
    EXPECT_EQ(smallest, l.min_sub) << l.name;
  }
  // FP4 E2M1 has exactly these magnitudes (MX v1.0 §5.3.3).
  EXPECT_EQ(Oracle(lowp::kFp4E2m1).magnitudes(), (std::vector<double>{0, 0.5, 1, 1.5, 2, 3, 4, 6}));

  const Mode away{Round::kNearestAway, false}, zero{Round::kTowardZero, false};
  const Mode sat{Round::kNearestEven, true};
  // E4M3: 448 = 1.110b * 2^8 has an even significand, so the tie 464 between
  // 448 and the virtual 480 stays at 448; 465 is past it: NaN.
  EXPECT_EQ(oracle_code("fp8_e4m3", 464), 0x7Eu);
  EXPECT_EQ(oracle_code("fp8_e4m3", 465), 0x7Fu);
  EXPECT_EQ(oracle_code("fp8_e4m3", -465), 0xFFu);
  EXPECT_EQ(oracle_code("fp8_e4m3", 464, away), 0x7Fu);
  EXPECT_EQ(oracle_code("fp8_e4m3", 1e30, zero), 0x7Eu);
  EXPECT_EQ(oracle_code("fp8_e4m3", kInf, zero), 0x7Fu);
  EXPECT_EQ(oracle_code("fp8_e4m3", -kInf, sat), 0xFEu);
  EXPECT_EQ(oracle_code("fp8_e4m3", 0x1p-10), 0x00u);   // tie with 0: even
  EXPECT_EQ(oracle_code("fp8_e4m3", 0x1.8p-9), 0x02u);  // tie 1.5 ulp: even
  // E5M2: 57344 = 1.11b * 2^15 is odd: the tie 61440 overflows to Inf.
  EXPECT_EQ(oracle_code("fp8_e5m2", 61440), 0x7Cu);
  EXPECT_EQ(oracle_code("fp8_e5m2", 61439), 0x7Bu);
  EXPECT_EQ(oracle_code("fp8_e5m2", std::nan("")), 0x7Eu);  // quiet NaN
  // FNUZ: 240 odd, tie 248 overflows to the one NaN; -tiny rounds to +0.
  EXPECT_EQ(oracle_code("fp8_e4m3fnuz", 248), 0x80u);
  EXPECT_EQ(oracle_code("fp8_e4m3fnuz", -0x1p-20), 0x00u);
  EXPECT_EQ(oracle_code("fp8_e4m3fnuz", -0.0), 0x00u);
  // No NaN: NaN gives the negative-zero code; overflow saturates.
  EXPECT_EQ(oracle_code("fp4_e2m1", std::nan("")), 0x8u);
  EXPECT_EQ(oracle_code("fp4_e2m1", 1e9), 0x7u);
  EXPECT_EQ(oracle_code("fp4_e2m1", -5), 0xEu);  // tie 4|6: 6 = 1.1b*2^2 is odd, 4 even
  // E8M0: ties go up; no zero; nothing below 2^-127.
  EXPECT_EQ(oracle_code("e8m0", 1.5), 0x80u);
  EXPECT_EQ(oracle_code("e8m0", 0x1.8p127), 0xFFu);
  EXPECT_EQ(oracle_code("e8m0", 0x1.8p127, zero), 0xFEu);
  EXPECT_EQ(oracle_code("e8m0", 0x1p-140), 0x00u);
  EXPECT_EQ(oracle_code("e8m0", 0.0), 0xFFu);
  EXPECT_EQ(oracle_code("e8m0", -4.0, sat), 0x00u);
  // Integers: ties to even, then clamp.
  EXPECT_EQ(oracle_code("int8", 2.5), 2u);
  EXPECT_EQ(oracle_code("int8", 3.5), 4u);
  EXPECT_EQ(oracle_code("int8", -2.5, away), 0xFDu);
  EXPECT_EQ(oracle_code("int8", -128.5), 0x80u);
  EXPECT_EQ(oracle_code("int8_sym", -300), 0x81u);
  EXPECT_EQ(oracle_code("uint8", -0.6), 0u);
  EXPECT_EQ(oracle_code("uint8", 255.5), 255u);
  EXPECT_EQ(oracle_code("int4", std::nan("")), 0u);
  // eXm0 with a zero: the tie between 0 and the smallest normal goes to 0.
  EXPECT_EQ(oracle_code("e3m0fin", 0x1p-3), 0x0u);
}

// Each wrong encoder must be caught by the harness used above.
TEST(OracleTest, HarnessCatchesWrongEncoders) {
  const lowp::Format f = lowp::kFp8E4m3;
  const Oracle o(f);
  const std::vector<double> pts = probe_points(o, 99, true);
  // Each wrong encoder takes lowp's options; adapt it to the harness.
  auto caught = [&](auto wrong) {
    return compare(o, pts, [&](double x, Mode m) { return wrong(x, to_lowp(m)); }).mismatches > 0;
  };
  // Ties away instead of ties to even.
  EXPECT_TRUE(caught([&](double x, lowp::EncodeOptions opt) {
    if (opt.rounding == lowp::Rounding::kNearestEven) opt.rounding = lowp::Rounding::kNearestAway;
    return lowp::encode(f, x, opt);
  }));
  // Double rounding of fp64 inputs through fp32.
  EXPECT_TRUE(caught([&](double x, lowp::EncodeOptions opt) {
    return lowp::encode(f, static_cast<double>(static_cast<float>(x)), opt);
  }));
  // Double rounding through bf16 (a finer format) by truncating fp32 bits.
  EXPECT_TRUE(caught([&](double x, lowp::EncodeOptions opt) {
    const auto b = std::bit_cast<std::uint32_t>(static_cast<float>(x));
    const float bf = std::bit_cast<float>((b + 0x7FFFu + ((b >> 16) & 1)) & 0xFFFF0000u);
    return lowp::encode(f, std::isnan(x) ? x : static_cast<double>(bf), opt);
  }));
  // saturate ignored; overflow to NaN as soon as x exceeds max finite.
  EXPECT_TRUE(caught([&](double x, lowp::EncodeOptions opt) {
    opt.saturate = false;
    return lowp::encode(f, x, opt);
  }));
  EXPECT_TRUE(caught([&](double x, lowp::EncodeOptions opt) {
    return std::fabs(x) > 448 && !opt.saturate ? (std::signbit(x) ? 0xFFu : 0x7Fu)
                                               : lowp::encode(f, x, opt);
  }));
  // -0 lost.
  EXPECT_TRUE(caught([&](double x, lowp::EncodeOptions opt) {
    const std::uint32_t c = lowp::encode(f, x, opt);
    return c == 0x80u ? 0u : c;
  }));
  // The correct encoder passes the same harness.
  EXPECT_EQ(compare_lowp(o, pts).mismatches, 0u);
}

// Found by the oracle: IEEE-style eXm0 (X = 2..7) would hold only ±Inf in its
// top binade, leaving no NaN code, and NaN inputs became ±Inf. The parser now
// rejects those spellings; the fn and fin variants stay available.
TEST(OracleTest, IeeeWithoutMantissaIsRejected) {
  for (int e = 2; e <= 7; ++e) {
    const std::string name = "e" + std::to_string(e) + "m0";
    EXPECT_THROW(lowp::parse_format(name), lowp::Error) << name;
    EXPECT_NO_THROW(lowp::parse_format(name + "fn")) << name;
    EXPECT_NO_THROW(lowp::parse_format(name + "fin")) << name;
  }
  EXPECT_EQ(lowp::kE8m0.specials, lowp::Specials::kE8m0);  // the MX scale format
}

}  // namespace
