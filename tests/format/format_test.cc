// Derived properties of the registered formats, pinned to the numbers the specs
// print (OCP OFP8 v1.0 Table 1; OCP MX v1.0 Tables 2-4; IEEE 754 binary16/32).
#include <gtest/gtest.h>

#include <cmath>

#include "lowp/format/format.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

struct Expected {
  const char* name;
  int bits;
  double max_finite;
  double min_normal;
  double min_subnormal;
  int emax;
};

void PrintTo(const Expected& e, std::ostream* os) { *os << e.name; }

class FloatLimits : public ::testing::TestWithParam<Expected> {};

TEST_P(FloatLimits, MatchSpec) {
  const Expected& e = GetParam();
  const Format f = parse_format(e.name);
  EXPECT_EQ(f.bits, e.bits);
  EXPECT_EQ(max_finite(f), e.max_finite);
  EXPECT_EQ(min_normal(f), e.min_normal);
  EXPECT_EQ(min_positive(f), e.min_subnormal);
  EXPECT_EQ(emax(f), e.emax);
}

INSTANTIATE_TEST_SUITE_P(
    Registry, FloatLimits,
    ::testing::Values(Expected{"fp8_e4m3", 8, 448, 0x1p-6, 0x1p-9, 8},
                      Expected{"fp8_e5m2", 8, 57344, 0x1p-14, 0x1p-16, 15},
                      Expected{"fp8_e4m3fnuz", 8, 240, 0x1p-7, 0x1p-10, 7},
                      Expected{"fp8_e5m2fnuz", 8, 57344, 0x1p-15, 0x1p-17, 15},
                      Expected{"fp6_e3m2", 6, 28, 0.25, 0.0625, 4},
                      Expected{"fp6_e2m3", 6, 7.5, 1, 0.125, 2},
                      Expected{"fp4_e2m1", 4, 6, 1, 0.5, 2},
                      Expected{"e8m0", 8, 0x1p127, 0x1p-127, 0x1p-127, 127},
                      Expected{"fp16", 16, 65504, 0x1p-14, 0x1p-24, 15},
                      Expected{"bf16", 16, 0x1.FEp127, 0x1p-126, 0x1p-133, 127},
                      Expected{"fp32", 32, 0x1.FFFFFEp127, 0x1p-126, 0x1p-149, 127},
                      // ml_dtypes' float8_e4m3 (IEEE-style E4M3) and e4m3b11fnuz
                      Expected{"e4m3", 8, 240, 0x1p-6, 0x1p-9, 7},
                      Expected{"e4m3b11fnuz", 8, 30, 0x1p-10, 0x1p-13, 4},
                      Expected{"e3m4", 8, 15.5, 0.25, 0x1p-6, 3}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Specials, Encodings) {
  const Format e4m3 = kFp8E4m3;
  EXPECT_EQ(nan_code(e4m3), 0x7Fu);
  EXPECT_FALSE(has_inf(e4m3));
  EXPECT_TRUE(is_nan_code(e4m3, 0xFF));
  EXPECT_FALSE(is_nan_code(e4m3, 0xFE));
  const Format e5m2 = kFp8E5m2;
  EXPECT_EQ(inf_code(e5m2), 0x7Cu);
  EXPECT_EQ(nan_code(e5m2), 0x7Eu);
  for (std::uint32_t c : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu, 0xFEu, 0xFFu})
    EXPECT_TRUE(is_nan_code(e5m2, c));
  EXPECT_TRUE(is_inf_code(e5m2, 0xFC));
  const Format fnuz = kFp8E4m3Fnuz;
  EXPECT_EQ(nan_code(fnuz), 0x80u);
  EXPECT_FALSE(has_negative_zero(fnuz));
  EXPECT_FALSE(is_nan_code(fnuz, 0x7F));
  const Format fp4 = kFp4E2m1;
  EXPECT_FALSE(has_nan(fp4));
  EXPECT_FALSE(has_inf(fp4));
  const Format e8m0 = kE8m0;
  EXPECT_FALSE(is_signed(e8m0));
  EXPECT_EQ(nan_code(e8m0), 0xFFu);
  EXPECT_FALSE(has_subnormals(e8m0));
}

TEST(Integers, Ranges) {
  EXPECT_EQ(int_min(kInt8), -128);
  EXPECT_EQ(int_max(kInt8), 127);
  EXPECT_EQ(int_min(kInt8Sym), -127);
  EXPECT_EQ(int_min(kInt4), -8);
  EXPECT_EQ(int_min(kInt2Sym), -1);
  EXPECT_EQ(int_max(kUint4), 15);
  EXPECT_EQ(int_min(kUint4), 0);
}

TEST(CodeBytes, ByWidth) {
  EXPECT_EQ(code_bytes(kFp4E2m1), 1);
  EXPECT_EQ(code_bytes(parse_format("e8m10")), 4);  // 19 bits
  EXPECT_EQ(code_bytes(parse_format("e5m10")), 2);
  EXPECT_EQ(code_bytes(kFp32), 4);
}

}  // namespace
}  // namespace lowp
