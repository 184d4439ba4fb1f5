// Posits (Posit Standard 2022): lowp::decode / lowp::encode and the bulk
// kernels (lowp/kernels.h) against the independent oracle of
// tests/oracle/posit_oracle.h.
//
//  * posit8 and posit16, every es in 0..2: every code decodes to the oracle's
//    value; encode(decode(c)) == c; every fp32 probe around every pair of
//    neighbours (each value, its bit-string midpoint — the (n+1)-bit posit
//    between them — and the arithmetic midpoint, with the fp32s one ulp either
//    side) encodes as the oracle rounds it, in nearest-even, nearest-away and
//    toward zero, by the scalar reference and by encode_f32.
//  * posit32, every es: every power of two 2^-150 .. 2^150 and its fp32 and
//    fp64 neighbours, the codes at each regime's edges, minpos, maxpos and
//    NaR, and a seeded sample of codes (values and midpoints, probed in fp64)
//    and of fp32 bit patterns: 1,000 of each here, 100,000 in the slow tier's
//    posit_sample_test.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "oracle/posit_oracle.h"

// Random posit32 codes and fp32 inputs per es: a quick sample in the fast
// tier; posit_sample_test (the slow tier) builds this file with 100,000.
#ifndef LOWP_POSIT32_SAMPLE
#define LOWP_POSIT32_SAMPLE 1000
#endif

namespace {

using lowp::Format;
using lowp::Rounding;
using lowp_oracle::PositOracle;

constexpr float kFInf = std::numeric_limits<float>::infinity();

struct ModePair {
  Rounding lowp;
  PositOracle::Round oracle;
  const char* name;
};
constexpr ModePair kModes[] = {
    {Rounding::kNearestEven, PositOracle::Round::kNearestEven, "rne"},
    {Rounding::kNearestAway, PositOracle::Round::kNearestAway, "away"},
    {Rounding::kTowardZero, PositOracle::Round::kTowardZero, "zero"},
};

std::vector<std::string> posit_names(int bits) {
  std::vector<std::string> out;
  for (const lowp::NamedFormat& nf : lowp::registry()) {
    if (nf.format.kind == lowp::Kind::kPosit && nf.format.bits == bits) out.emplace_back(nf.name);
  }
  return out;
}

bool same(double a, double b) {
  return std::isnan(a) ? std::isnan(b)
                       : std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// The fp32 probes around every pair of neighbouring positive values, with
// their negatives, and the special inputs.
std::vector<float> fp32_probes(const PositOracle& o) {
  std::vector<float> out;
  auto add = [&](double v) {
    const auto f = static_cast<float>(v);
    for (const float p : {f, std::nextafter(f, kFInf), std::nextafter(f, -kFInf)}) {
      out.push_back(p);
      out.push_back(-p);
    }
  };
  for (std::uint32_t c = 1; c <= o.maxpos_code(); ++c) {
    const double v = o.value(c);
    add(v);
    if (c < o.maxpos_code()) {
      add(o.value_of_width(2 * std::uint64_t{c} + 1, o.bits() + 1));  // bit-string midpoint
      add((v + o.value(c + 1)) / 2);                                  // arithmetic midpoint
    }
  }
  add(o.value(1) / 2);
  add(o.value(1) / 1024);
  add(o.value(o.maxpos_code()) * 2);
  add(o.value(o.maxpos_code()) * 1024);
  for (const float v : {0.0f, std::numeric_limits<float>::denorm_min(),
                        std::numeric_limits<float>::min(), std::numeric_limits<float>::max(), kFInf,
                        std::numeric_limits<float>::quiet_NaN(), 1.0f, 3.0f}) {
    out.push_back(v);
    out.push_back(-v);
  }
  return out;
}

TEST(Posit, RegistryAndNames) {
  EXPECT_EQ(lowp::parse_format("posit8"), lowp::posit_format(8, 2));
  EXPECT_EQ(lowp::parse_format("posit8_es2"), lowp::parse_format("posit8"));
  EXPECT_EQ(lowp::parse_format("posit16_es2"), lowp::kPosit16);
  EXPECT_EQ(lowp::parse_format("posit32_es0"), lowp::posit_format(32, 0));
  EXPECT_EQ(lowp::format_name(lowp::posit_format(16, 1)), "posit16_es1");
  EXPECT_EQ(lowp::format_name(lowp::posit_format(32, 2)), "posit32");
  for (int bits : {8, 16, 32}) EXPECT_EQ(posit_names(bits).size(), 3u) << bits;
  EXPECT_EQ(lowp::nan_codes_text(lowp::kPosit16), "0x8000");
  EXPECT_EQ(lowp::inf_codes_text(lowp::kPosit16), "none");
  EXPECT_EQ(lowp::max_finite(lowp::kPosit8), 16777216.0);
  EXPECT_EQ(lowp::min_positive(lowp::kPosit8Es0), 1.0 / 64);
}

// Values from the standard's definition worked by hand (posit8, es = 2):
// 0x40 = 1, 0x50 = 4 (regime 10, e = 10), 0x7D = 2^18 (regime 111110, e = 1
// and a missing 0), 0x01 = minpos 2^-24, 0xC0 = -1, 0x80 = NaR; and the
// rounding of 144179.2, between 2^16 and 2^18: above the 9-bit midpoint 2^17,
// so it rounds to 2^18 although 2^16 is nearer.
TEST(Posit, HandWorkedValues) {
  const Format p8 = lowp::kPosit8;
  EXPECT_EQ(lowp::decode(p8, 0x40), 1.0);
  EXPECT_EQ(lowp::decode(p8, 0x50), 4.0);
  EXPECT_EQ(lowp::decode(p8, 0x7D), 262144.0);
  EXPECT_EQ(lowp::decode(p8, 0x01), std::ldexp(1.0, -24));
  EXPECT_EQ(lowp::decode(p8, 0xC0), -1.0);
  EXPECT_TRUE(std::isnan(lowp::decode(p8, 0x80)));
  EXPECT_EQ(lowp::encode(p8, 144179.2), 0x7Du);
  EXPECT_EQ(lowp::encode(p8, -144179.2), 0x83u);
  EXPECT_EQ(lowp::encode(p8, 1e-30), 0x01u);  // never to zero
  EXPECT_EQ(lowp::encode(p8, -1e30), 0x81u);  // never to NaR
  EXPECT_EQ(lowp::encode(p8, -0.0), 0x00u);
  EXPECT_EQ(lowp::encode(p8, -std::numeric_limits<double>::infinity()), 0x80u);
  EXPECT_EQ(lowp::encode(p8, 1e-30, {Rounding::kTowardZero}), 0x01u);
  EXPECT_EQ(lowp::decode(lowp::kPosit16Es1, 0x4001), 1.0 + 1.0 / 4096);
}

class PositSmall : public ::testing::TestWithParam<std::string> {};

TEST_P(PositSmall, EveryCodeDecodesAndRoundTrips) {
  const Format f = lowp::parse_format(GetParam());
  const PositOracle o(f.bits, f.exp_bits);
  const std::uint32_t n = std::uint32_t{1} << f.bits;
  std::vector<std::uint16_t> codes(n);
  for (std::uint32_t c = 0; c < n; ++c) codes[c] = static_cast<std::uint16_t>(c);
  std::vector<std::uint8_t> codes8(codes.begin(), codes.end());
  std::vector<float> bulk(n);
  lowp::decode_to_f32(f, f.bits == 8 ? static_cast<const void*>(codes8.data()) : codes.data(), bulk,
                      2);
  for (std::uint32_t c = 0; c < n; ++c) {
    const double want = o.value(c);
    const double got = lowp::decode(f, c);
    ASSERT_TRUE(same(got, want)) << "code 0x" << std::hex << c << ": " << got << " vs " << want;
    ASSERT_TRUE(same(static_cast<double>(bulk[c]), want)) << "bulk, code 0x" << std::hex << c;
    ASSERT_TRUE(same(static_cast<double>(lowp::decode_f32(f, c)), want));
    for (const ModePair& m : kModes) {
      const std::uint32_t back = lowp::encode(f, got, {m.lowp});
      ASSERT_EQ(back, c) << "code 0x" << std::hex << c << " " << m.name;
    }
  }
}

TEST_P(PositSmall, EncodeEveryNeighbourhood) {
  const Format f = lowp::parse_format(GetParam());
  const PositOracle o(f.bits, f.exp_bits);
  const std::vector<float> in = fp32_probes(o);
  for (const ModePair& m : kModes) {
    std::vector<std::uint16_t> bulk16(in.size());
    std::vector<std::uint8_t> bulk8(in.size());
    void* out = f.bits == 8 ? static_cast<void*>(bulk8.data()) : bulk16.data();
    lowp::encode_f32(f, in, out, {m.lowp}, 0, 0, 2);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      const std::uint32_t want = o.encode(in[i], m.oracle);
      const std::uint32_t got = lowp::encode(f, in[i], {m.lowp});
      const std::uint32_t got_bulk = f.bits == 8 ? bulk8[i] : bulk16[i];
      if ((got != want || got_bulk != want) && ++bad <= 5) {
        ADD_FAILURE() << m.name << " input " << std::hexfloat << in[i] << ": oracle 0x" << std::hex
                      << want << ", encode 0x" << got << ", encode_f32 0x" << got_bulk;
      }
    }
    EXPECT_EQ(bad, 0u) << m.name << ", " << in.size() << " inputs";
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, PositSmall,
                         ::testing::Values("posit8_es0", "posit8_es1", "posit8", "posit16_es0",
                                           "posit16_es1", "posit16"));

class Posit32 : public ::testing::TestWithParam<std::string> {};

// The codes at the edges of every regime (the first and last code of each
// run length), minpos, maxpos, their neighbours, and a seeded sample.
std::vector<std::uint32_t> posit32_codes(std::uint32_t seed) {
  std::vector<std::uint32_t> out = {0x00000000u, 0x00000001u, 0x00000002u, 0x7FFFFFFFu,
                                    0x7FFFFFFEu, 0x80000000u, 0x80000001u, 0xFFFFFFFFu,
                                    0x40000000u, 0x3FFFFFFFu, 0x40000001u, 0xC0000000u};
  for (int run = 1; run <= 30; ++run) {
    // Positive codes whose regime is `run` ones / zeros: 0 1^run 0 x.. / 0 0^run 1 x..
    const std::uint32_t ones = ((std::uint32_t{1} << run) - 1) << (31 - run);
    const std::uint32_t zeros_first = std::uint32_t{1} << (30 - run);
    for (const std::uint32_t c : {ones, ones | ((std::uint32_t{1} << (30 - run)) - 1), zeros_first,
                                  (zeros_first << 1) - 1}) {
      for (const std::uint32_t d : {c - 1, c, c + 1}) {
        out.push_back(d);
        out.push_back(0u - d);
      }
    }
  }
  std::mt19937 rng(seed);
  for (int i = 0; i < LOWP_POSIT32_SAMPLE; ++i) out.push_back(static_cast<std::uint32_t>(rng()));
  return out;
}

TEST_P(Posit32, DecodeAndEncodeSample) {
  const Format f = lowp::parse_format(GetParam());
  const PositOracle o(32, f.exp_bits);
  const std::vector<std::uint32_t> codes =
      posit32_codes(12345u + static_cast<std::uint32_t>(f.exp_bits));
  std::vector<float> bulk(codes.size());
  lowp::decode_to_f32(f, codes.data(), bulk, 2);
  std::vector<double> probes;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const std::uint32_t c = codes[i];
    const double want = o.value(c);
    ASSERT_TRUE(same(lowp::decode(f, c), want)) << "code 0x" << std::hex << c;
    // fp32 decoding rounds the exact value to nearest even.
    ASSERT_TRUE(same(static_cast<double>(bulk[i]), static_cast<double>(static_cast<float>(want))))
        << "bulk, code 0x" << std::hex << c;
    if (want != want) continue;
    ASSERT_EQ(lowp::encode(f, want), c) << "round trip, code 0x" << std::hex << c;
    // fp64 probes: the value, the bit-string midpoint above it, the doubles
    // beside both.
    const double a = std::fabs(want);
    const std::uint32_t mag = want < 0 ? 0u - c : c;
    for (const double v :
         {a, mag < o.maxpos_code() ? o.value_of_width(2 * std::uint64_t{mag} + 1, 33) : a}) {
      for (const double p : {v, std::nextafter(v, 0.0), std::nextafter(v, 1e300)}) {
        probes.push_back(p);
        probes.push_back(-p);
      }
    }
  }
  for (int e = -150; e <= 150; ++e) {
    const double v = std::ldexp(1.0, e);
    for (const double p : {v, std::nextafter(v, 0.0), std::nextafter(v, 1e300),
                           static_cast<double>(std::nextafter(static_cast<float>(v), 0.0f)),
                           static_cast<double>(std::nextafter(static_cast<float>(v), kFInf))}) {
      probes.push_back(p);
      probes.push_back(-p);
    }
  }
  std::mt19937 rng(777);
  std::vector<float> fp32(LOWP_POSIT32_SAMPLE);
  for (float& x : fp32) x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
  for (const float x : fp32) probes.push_back(x);
  for (const ModePair& m : kModes) {
    std::size_t bad = 0;
    for (const double x : probes) {
      const std::uint32_t want = o.encode(x, m.oracle);
      const std::uint32_t got = lowp::encode(f, x, {m.lowp});
      if (got != want && ++bad <= 5) {
        ADD_FAILURE() << m.name << " input " << std::hexfloat << x << ": oracle 0x" << std::hex
                      << want << ", encode 0x" << got;
      }
    }
    EXPECT_EQ(bad, 0u) << m.name << ", " << probes.size() << " inputs";
    std::vector<std::uint32_t> bulk_codes(fp32.size());
    lowp::encode_f32(f, fp32, bulk_codes.data(), {m.lowp}, 0, 0, 2);
    for (std::size_t i = 0; i < fp32.size(); ++i) {
      ASSERT_EQ(bulk_codes[i], o.encode(fp32[i], m.oracle)) << m.name << " " << fp32[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, Posit32,
                         ::testing::Values("posit32_es0", "posit32_es1", "posit32"));

// The oracle itself against values published in the standard's tables:
// posit8 (es = 2) minpos 2^-24, maxpos 2^24; posit16 maxpos 2^56; posit32
// maxpos 2^120; and its bit-string midpoint rule on the 144179.2 example.
TEST(PositOracle, PublishedValues) {
  const PositOracle p8(8, 2), p16(16, 2), p32(32, 2);
  EXPECT_EQ(p8.value(0x7F), std::ldexp(1.0, 24));
  EXPECT_EQ(p8.value(0x01), std::ldexp(1.0, -24));
  EXPECT_EQ(p16.value(0x7FFF), std::ldexp(1.0, 56));
  EXPECT_EQ(p32.value(0x7FFFFFFF), std::ldexp(1.0, 120));
  EXPECT_EQ(p32.value(0x00000001), std::ldexp(1.0, -120));
  EXPECT_EQ(p8.encode(144179.2, PositOracle::Round::kNearestEven), 0x7Du);
  EXPECT_EQ(p8.encode(131072.0, PositOracle::Round::kNearestEven), 0x7Cu);  // tie: even
  EXPECT_TRUE(std::isnan(p16.value(0x8000)));
  EXPECT_EQ(p16.value(0xC000), -1.0);
}

}  // namespace
