// Code-book elements (nf4, nf3, dint4) in matrix formats: a fixed small matrix
// quantized by PackedMatrix against a float64 reference written here from the
// rules of lowp/storage/matrix_format.h (its own tables, its own nearest
// search), the two-scale groups of AFPQ included, and the storage accounting.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/storage/matrix_format.h"
#include "lowp/storage/packed_matrix.h"
#include "lowp/storage/segment_quantizer.h"

namespace {

using lowp::MatrixFormat;
using lowp::PackedMatrix;

std::vector<double> table(const std::string& element) {
  std::vector<double> d;
  if (element == "nf4") {
    d = {-1.0,
         -0.6961928009986877,
         -0.5250730514526367,
         -0.39491748809814453,
         -0.28444138169288635,
         -0.18477343022823334,
         -0.09105003625154495,
         0.0,
         0.07958029955625534,
         0.16093020141124725,
         0.24611230194568634,
         0.33791524171829224,
         0.44070982933044434,
         0.5626170039176941,
         0.7229568362236023,
         1.0};
  } else if (element == "nf3") {
    d = {-1.0,
         -0.5350227355957031,
         -0.2469314038753510,
         0.0,
         0.1833375245332718,
         0.3819939494132996,
         0.6229856610298157,
         1.0};
  } else {
    d = {0, 0.5, 1, 2, 3, 4, 5, 6, -0.0, -0.5, -1, -2, -3, -4, -5, -6};
  }
  for (double& v : d) v = static_cast<double>(static_cast<float>(v));
  return d;
}

// The nearest table value to x (a tie: the smaller magnitude), saturating.
double nearest(const std::vector<double>& t, double x) {
  double best = t[0];
  for (double v : t) {
    const double d = std::fabs(x - v), db = std::fabs(x - best);
    if (d < db || (d == db && std::fabs(v) < std::fabs(best))) best = v;
  }
  return best;
}

// An FP16 scale as the format rounds it: nearest even (the values below are
// chosen so that the ratios are exact in fp16, except where noted).
float fp16(double x) {
  return lowp::decode_f32(lowp::kFp16,
                          lowp::encode(lowp::kFp16, x, {lowp::Rounding::kNearestEven, true}));
}

// Reference dequantization of one group: one scale (amax / max |value|) or, for
// :asym, two (max(w) / max value, max(-w) / -min value).
std::vector<float> reference(const std::string& element, const std::vector<float>& w,
                             std::size_t group, bool asym) {
  const std::vector<double> t = table(element);
  const double tmax = *std::max_element(t.begin(), t.end());
  const double tmin = *std::min_element(t.begin(), t.end());
  std::vector<float> out(w.size());
  for (std::size_t b = 0; b < w.size(); b += group) {
    double hi = 0, lo = 0, amax = 0;
    for (std::size_t i = b; i < b + group; ++i) {
      hi = std::max(hi, static_cast<double>(w[i]));
      lo = std::max(lo, -static_cast<double>(w[i]));
      amax = std::max(amax, std::fabs(static_cast<double>(w[i])));
    }
    const float s = fp16(static_cast<float>(amax) / static_cast<float>(std::max(tmax, -tmin)));
    const float sp = fp16(static_cast<float>(hi) / static_cast<float>(tmax));
    const float sn = fp16(static_cast<float>(lo) / static_cast<float>(-tmin));
    for (std::size_t i = b; i < b + group; ++i) {
      const float sc = asym ? (w[i] < 0.0f ? sn : sp) : s;
      const double q = sc > 0.0f ? nearest(t, static_cast<double>(w[i] / sc)) : 0.0;
      out[i] = static_cast<float>(q) * sc;
    }
  }
  return out;
}

const std::vector<float> kRow = {
    // group 0: both signs
    0.9f, -0.35f, 0.12f, -0.03f, 0.5f, -1.2f, 0.0f, 0.27f,
    // group 1: positive values only (its negative scale is 0)
    0.25f, 0.5f, 0.125f, 2.0f, 0.0f, 1.0f, 1.5f, 0.75f,
    // group 2: negative values only, and -0
    -0.25f, -3.0f, -0.0f, -1.75f, -0.5f, -2.0f, -0.0625f, -1.0f};

TEST(CodeBookMatrix, GroupsMatchTheFloat64Reference) {
  for (const std::string element : {"nf4", "nf3", "dint4"}) {
    for (const bool asym : {false, true}) {
      const std::string name = element + ":group8" + (asym ? ":asym" : "");
      SCOPED_TRACE(name);
      const MatrixFormat f = lowp::parse_matrix_format(name);
      EXPECT_EQ(f.name, name);
      EXPECT_EQ(f.two_scales(), asym);
      EXPECT_FALSE(f.zero_points());
      const PackedMatrix m = PackedMatrix::quantize(f, kRow, 1, kRow.size());
      std::vector<float> got(kRow.size());
      m.dequantize(got);
      const std::vector<float> want = reference(element, kRow, 8, asym);
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i], want[i]) << i << ": " << kRow[i];
      }
      std::vector<float> row(kRow.size());
      m.dequantize_row(0, row);
      EXPECT_EQ(row, got);
      // Accounting: 24 codes of 4 (3) bits, 3 groups of one or two FP16 scales.
      const std::size_t code_bytes = element == "nf3" ? 9 : 12;
      EXPECT_EQ(m.bytes(), code_bytes + 3 * 2 * (asym ? 2u : 1u));
      const double bits = (element == "nf3" ? 3.0 : 4.0) + (asym ? 32.0 : 16.0) / 8;
      EXPECT_DOUBLE_EQ(f.bits_per_value(kRow.size()), bits);
      EXPECT_DOUBLE_EQ(m.bits_per_weight(), bits);
      if (asym) {
        // Group 1 has no negative value: its negative scale is 0; group 2 no
        // positive one.
        EXPECT_EQ(m.scales().group.size(), 6u);
        EXPECT_EQ(m.scales().group[3], 0u);
        EXPECT_EQ(m.scales().group[4], 0u);
        EXPECT_NE(m.scales().group[2], 0u);
        EXPECT_NE(m.scales().group[5], 0u);
      }
      // from_codes of the same storage is the same matrix.
      const PackedMatrix again = PackedMatrix::from_codes(
          f, 1, kRow.size(), std::vector<std::uint8_t>(m.codes().begin(), m.codes().end()),
          m.scales());
      std::vector<float> back(kRow.size());
      again.dequantize(back);
      EXPECT_EQ(back, got);
    }
  }
}

// A worked example of dint4:group8:asym by hand: group 1's positive scale is
// fp16(2 / 6); 0.75 / s = 2.25 rounds to 2, 0.125 / s = 0.375 to 0.5.
TEST(CodeBookMatrix, Dint4TwoScalesByHand) {
  const PackedMatrix m =
      PackedMatrix::quantize(lowp::parse_matrix_format("dint4:group8:asym"), kRow, 1, kRow.size());
  std::vector<float> got(kRow.size());
  m.dequantize(got);
  const float s = fp16(2.0 / 6.0);
  EXPECT_EQ(got[15], 2.0f * s);
  EXPECT_EQ(got[10], 0.5f * s);
  EXPECT_EQ(got[11], 6.0f * s);
  // Group 2: s- = 3 / 6 = 0.5 exactly; -0.0625 / 0.5 = -0.125 rounds to -0
  // (dint4's code 8), which decodes to -0.
  EXPECT_EQ(got[17], -3.0f);
  EXPECT_EQ(got[22], 0.0f);
  EXPECT_TRUE(std::signbit(got[22]));
  EXPECT_EQ(got[19], -1.5f);  // -1.75 / 0.5 = -3.5, a tie: the smaller magnitude 3
}

TEST(CodeBookMatrix, ChannelAndTensor) {
  const std::vector<float> w = {0.3f, -0.6f, 0.1f, 0.0f, 2.0f, -1.0f, 0.5f, 0.25f};
  for (const std::string element : {"nf4", "nf3", "dint4"}) {
    for (const std::string how : {":channel", ""}) {
      const std::string name = element + how;
      SCOPED_TRACE(name);
      const MatrixFormat f = lowp::parse_matrix_format(name);
      const PackedMatrix m = PackedMatrix::quantize(f, w, 2, 4);
      std::vector<float> got(w.size());
      m.dequantize(got);
      const std::vector<double> t = table(element);
      const double tmax = element == "dint4" ? 6.0 : 1.0;
      for (std::size_t r = 0; r < 2; ++r) {
        float amax = 0.0f;
        for (std::size_t i = 0; i < (how.empty() ? 8u : 4u); ++i)
          amax = std::max(amax, std::fabs(w[(how.empty() ? 0 : r * 4) + i]));
        const float s = amax / static_cast<float>(tmax);
        for (std::size_t i = r * 4; i < r * 4 + 4; ++i) {
          EXPECT_EQ(got[i], static_cast<float>(nearest(t, static_cast<double>(w[i] / s))) * s) << i;
        }
      }
    }
  }
}

TEST(CodeBookMatrix, SpellingsAndErrors) {
  EXPECT_EQ(lowp::parse_matrix_format("nf4:group64:asym").name, "nf4:group64:asym");
  EXPECT_EQ(lowp::parse_matrix_format("nf4:tensor").name, "nf4");
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("nf4:group64").bits_per_value(128), 4.25);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("nf4:group64:asym").bits_per_value(128), 4.5);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("nf3:group32").bits_per_value(64), 3.5);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("nf3:group32:asym").bits_per_value(64), 4.0);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("dint4:channel").bits_per_value(64), 4.5);
  const auto message = [](const char* name) {
    try {
      lowp::parse_matrix_format(name);
    } catch (const lowp::Error& e) {
      return std::string(e.what());
    }
    return std::string("(parsed)");
  };
  EXPECT_NE(message("mx:nf4:32").find("code book"), std::string::npos) << message("mx:nf4:32");
  EXPECT_NE(message("nf4:channel:asym").find("asym"), std::string::npos);
  EXPECT_NE(message("nf5:group64").find("closest"), std::string::npos) << message("nf5:group64");
}

// GPTQ and the scale search take a matrix one segment at a time: rule() and
// encode() give PackedMatrix::quantize's bytes, and quantize() is
// decode(encode()) for code books too.
TEST(CodeBookMatrix, SegmentQuantizerAgrees) {
  for (const char* name : {"nf4:group8:asym", "nf3:group8", "dint4:group8:asym", "nf4:channel"}) {
    SCOPED_TRACE(name);
    const MatrixFormat f = lowp::parse_matrix_format(name);
    const lowp::SegmentQuantizer sq(f, kRow.size());
    std::vector<std::uint32_t> codes;
    std::vector<lowp::SegmentScale> scales;
    for (std::size_t b = 0; b < kRow.size(); b += sq.segment()) {
      const std::span<const float> v(kRow.data() + b, std::min(sq.segment(), kRow.size() - b));
      scales.push_back(sq.rule(v));
      for (float x : v) {
        codes.push_back(sq.encode(x, scales.back()));
        EXPECT_EQ(std::bit_cast<std::uint32_t>(sq.quantize(x, scales.back())),
                  std::bit_cast<std::uint32_t>(sq.decode(codes.back(), scales.back())));
      }
    }
    const PackedMatrix got = sq.pack(1, codes, scales);
    const PackedMatrix want = PackedMatrix::quantize(f, kRow, 1, kRow.size());
    EXPECT_EQ(std::vector<std::uint8_t>(got.codes().begin(), got.codes().end()),
              std::vector<std::uint8_t>(want.codes().begin(), want.codes().end()));
    EXPECT_EQ(got.scales().group, want.scales().group);
    EXPECT_EQ(got.scales().row, want.scales().row);
  }
}

}  // namespace
