// The registry and the format-name parser.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "lowp/format/convert.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

TEST(Registry, NamesAreUniqueAndRoundTrip) {
  std::set<std::string> names;
  for (const NamedFormat& nf : registry()) {
    EXPECT_TRUE(names.insert(std::string(nf.name)).second) << nf.name;
    EXPECT_EQ(parse_format(nf.name), nf.format) << nf.name;
    EXPECT_EQ(format_name(nf.format), nf.name);
    EXPECT_FALSE(nf.summary.empty());
  }
  // Issue #2's list: every one of these is registered.
  for (const char* n :
       {"fp32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fp8_e4m3fnuz", "fp8_e5m2fnuz", "fp6_e3m2",
        "fp6_e2m3", "fp4_e2m1", "e8m0", "int2", "int8", "uint2", "uint8", "int4_sym"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
}

TEST(Registry, EveryCodeDecodesIntoFp32Exactly) {
  for (const NamedFormat& nf : registry()) {
    if (nf.format.bits > 16) continue;
    for (std::uint32_t c = 0; c <= code_mask(nf.format); ++c) {
      const double v = decode(nf.format, c);
      if (v == v) {
        ASSERT_EQ(static_cast<double>(decode_f32(nf.format, c)), v) << nf.name << " " << c;
      }
    }
  }
}

TEST(Parse, Minifloats) {
  EXPECT_EQ(parse_format("e4m3fn"), kFp8E4m3);
  EXPECT_EQ(parse_format("e5m2"), kFp8E5m2);
  EXPECT_EQ(parse_format("e4m3fnuz"), kFp8E4m3Fnuz);
  EXPECT_EQ(parse_format("e2m1fin"), kFp4E2m1);
  EXPECT_EQ(parse_format("e5m10"), kFp16);
  EXPECT_EQ(parse_format("e8m7"), kBf16);
  const Format b11 = parse_format("e4m3b11fnuz");
  EXPECT_EQ(b11.bias, 11);
  EXPECT_EQ(format_name(b11), "e4m3b11fnuz");
  EXPECT_EQ(format_name(parse_format("e3m4")), "e3m4");
  EXPECT_EQ(parse_format("e1m6fin").bits, 8);
  EXPECT_EQ(parse_format("e8m10").bits, 19);
  EXPECT_EQ(parse_format("e8m3b128fn").bias, 128);
}

TEST(Parse, Aliases) {
  EXPECT_EQ(parse_format("float8_e4m3fn"), kFp8E4m3);
  EXPECT_EQ(parse_format("bfloat16"), kBf16);
  EXPECT_EQ(parse_format("float4_e2m1fn"), kFp4E2m1);
  EXPECT_EQ(parse_format("float8_e8m0fnu"), kE8m0);
}

std::string error_of(const char* name) {
  try {
    parse_format(name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Parse, ErrorsNameTheProblem) {
  EXPECT_NE(error_of("fp8_e4m2").find("closest: fp8_e4m3"), std::string::npos)
      << error_of("fp8_e4m2");
  EXPECT_NE(error_of("mxfp9").find("unknown format 'mxfp9'"), std::string::npos);
  EXPECT_NE(error_of("e9m2").find("exponent bits must be 1..8"), std::string::npos);
  EXPECT_NE(error_of("e4m11").find("mantissa bits must be 0..10"), std::string::npos);
  EXPECT_NE(error_of("e1m3").find("at least 2 exponent bits"), std::string::npos);
  EXPECT_NE(error_of("e8m3fn").find("fp32's range"), std::string::npos);
  EXPECT_NE(error_of("e1m0fn").find("no nonzero finite value"), std::string::npos);
  EXPECT_NE(error_of("e4m3xyz").find("unknown format"), std::string::npos);
  EXPECT_NE(error_of("").find("unknown format ''"), std::string::npos);
}

// Found by fuzz/format_name_fuzz: a name holding a newline made a two-line error.
TEST(Parse, ErrorQuotesControlCharacters) {
  const std::string e = error_of("2\x01\nfin");
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_NE(e.find("'2\\x01\\x0afin'"), std::string::npos) << e;
  const std::string long_name(100, 'x');
  EXPECT_NE(error_of(long_name.c_str()).find("xxx...'"), std::string::npos);
}

}  // namespace
}  // namespace lowp
