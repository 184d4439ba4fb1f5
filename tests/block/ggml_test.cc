// ggml's block layouts: block_mxfp4 (hand-built bytes, round trips, and
// ggml's decoding), block_nvfp4 (lowp's NVFP4 repacked, hand-built bytes
// decoded) and block_q8_0 (ggml's reference quantizer and decoder).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lowp/block/ggml.h"
#include "lowp/block/ggml_quants.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"

namespace lowp {
namespace {

BlockFormat mxfp4() {
  BlockFormat f;
  EXPECT_TRUE(parse_block_format("mxfp4", f));
  return f;
}

TEST(GgmlMxfp4, HandBuiltBytes) {
  // One block: element j = (j % 8) * 0.5 in E2M1 magnitudes {0,0.5,1,1.5,2,3,4,6},
  // i.e. codes j%8, all positive, amax 6 -> floor scale 2^(2-2) = 1, code 127.
  const double magnitudes[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j)
    x[static_cast<std::size_t>(j)] = static_cast<float>(magnitudes[j % 8]);
  const std::int64_t shape[] = {32};
  const PackedTensor t = quantize(mxfp4(), x, shape, -1, {});
  const std::vector<GgmlBlockMxfp4> g = to_ggml_mxfp4(t);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].e, 127);
  // qs[j] = code(j) | code(j+16) << 4; code(j) = j % 8 and (j+16) % 8 = j % 8.
  for (int j = 0; j < 16; ++j) EXPECT_EQ(g[0].qs[j], (j % 8) | ((j % 8) << 4)) << j;
  // lowp's dense layout: byte i = code(2i) | code(2i+1) << 4.
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(t.elements[i], ((2 * i) % 8) | (((2 * i + 1) % 8) << 4)) << i;
  }
}

TEST(GgmlNvfp4, RepacksLowpBlocksOfSixteen) {
  // Two rows of 64: element j of row r is magnitude (j % 8) of E2M1 with
  // sign (j / 8) % 2 and, for row 1, times 4 in the second 16; lowp's
  // tensor scale is amax / 2688.
  const double magnitudes[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  std::vector<float> x(128);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t r = i / 64, j = i % 64;
    const double sign = (j / 8) % 2 ? -1.0 : 1.0;
    x[i] = static_cast<float>(sign * magnitudes[j % 8] * (r == 1 && j / 16 == 1 ? 4.0 : 1.0));
  }
  BlockFormat nvfp4;
  ASSERT_TRUE(parse_block_format("nvfp4", nvfp4));
  const std::int64_t shape[] = {2, 64};
  const PackedTensor t = quantize(nvfp4, x, shape, -1, {});
  const std::vector<GgmlBlockNvfp4> g = to_ggml_nvfp4(t);
  ASSERT_EQ(g.size(), 2u);
  for (std::size_t r = 0; r < 2; ++r) {
    for (std::size_t s = 0; s < 4; ++s) {
      EXPECT_EQ(g[r].d[s], t.scale(r, s)) << r << " " << s;
      // qs[8s + j]: element 16s + j low (positive: code j), 16s + j + 8
      // high (negative: code 8 + j; -0 may be either zero code).
      for (std::size_t j = 0; j < 8; ++j) {
        const std::uint32_t high = t.code(r, 16 * s + j + 8);
        if (j > 0) {
          EXPECT_EQ(high, 8 + j);
        }
        EXPECT_EQ(g[r].qs[8 * s + j], j | (high << 4)) << r << " " << s << " " << j;
      }
    }
  }
  // ggml's decoding of the blocks is e2m1 * e4m3 (x over the tensor scale,
  // 1/112 here, which fp32 rounds), and -0 decodes as +0.
  std::vector<float> y(x.size());
  ggml_dequantize(GgmlQuantType::kNvfp4, std::as_bytes(std::span(g)), y);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_FLOAT_EQ(y[i] * t.tensor_scale, x[i]) << i;
    EXPECT_EQ(y[i], nvfp4_value(1.0f, t.scale(i / 64, (i % 64) / 16), t.code(i / 64, i % 64))) << i;
  }

  const std::int64_t odd[] = {2, 48};
  EXPECT_THROW(to_ggml_nvfp4(quantize(nvfp4, std::span(x).first(96), odd, -1, {})), Error);
  const std::int64_t transposed[] = {64, 2};
  EXPECT_THROW(to_ggml_nvfp4(quantize(nvfp4, x, transposed, 0, {})), Error);
}

// Scales 0x38 (1.0), 0x01 (2^-9), 0x7F (zero in ggml), 0xB8 (bit 7 ignored:
// 1.0); every sub-block holds codes 0..7 low and 8..15 high.
GgmlBlockNvfp4 hand_built_nvfp4_block() {
  GgmlBlockNvfp4 b;
  const std::uint8_t d[4] = {0x38, 0x01, 0x7F, 0xB8};
  std::memcpy(b.d, d, 4);
  for (std::size_t s = 0; s < 4; ++s)
    for (std::size_t j = 0; j < 8; ++j)
      b.qs[8 * s + j] = static_cast<std::uint8_t>(j | (j + 8) << 4);
  return b;
}

TEST(GgmlNvfp4, HandBuiltBlockDecodes) {
  const GgmlBlockNvfp4 b = hand_built_nvfp4_block();
  std::vector<float> y(64);
  ggml_dequantize(GgmlQuantType::kNvfp4, std::as_bytes(std::span(&b, 1)), y);
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (std::size_t j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], e2m1[j]) << j;
    EXPECT_EQ(y[16 + j], e2m1[j] * 0x1.0p-9f) << j;
    EXPECT_EQ(y[32 + j], 0.0f) << j;
    EXPECT_EQ(y[48 + j], e2m1[j]) << j;
  }
  EXPECT_FALSE(std::signbit(y[8]));  // code 0x8 is +0
}

TEST(GgmlNvfp4, FromGgmlInvertsToGgml) {
  // lowp -> ggml -> lowp gives the same codes, scales and tensor scale.
  BlockFormat nvfp4;
  ASSERT_TRUE(parse_block_format("nvfp4", nvfp4));
  std::vector<float> x(3 * 128);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) *
                              (1.0 + static_cast<double>(i % 29)));
  x[7] = 0x1.0p-20f;  // a tiny block scale
  const std::int64_t shape[] = {3, 128};
  const PackedTensor t = quantize(nvfp4, x, shape, -1, {});
  const PackedTensor back = from_ggml_nvfp4(to_ggml_nvfp4(t), shape, t.tensor_scale);
  EXPECT_EQ(back.format, t.format);
  EXPECT_EQ(back.shape, t.shape);
  EXPECT_EQ(back.axis, 1);
  EXPECT_EQ(back.tensor_scale, t.tensor_scale);
  EXPECT_EQ(back.scales, t.scales);
  EXPECT_EQ(back.elements, t.elements);
  EXPECT_THROW(from_ggml_nvfp4(to_ggml_nvfp4(t), std::vector<std::int64_t>{3, 64}, 1.0f), Error);
  EXPECT_THROW(from_ggml_nvfp4({}, std::vector<std::int64_t>{2, 48}, 1.0f), Error);
}

TEST(GgmlNvfp4, FromGgmlDecodesAsGgml) {
  // The hand-built block above: ggml's sign bit dropped (0xB8 -> 0x38) and its
  // zero scale 0x7F -> 0x00, so lowp decodes what ggml decodes (up to the sign
  // of zero: ggml's code 0x8 is +0, lowp's -0).
  const GgmlBlockNvfp4 b = hand_built_nvfp4_block();
  const std::int64_t shape[] = {1, 64};
  const PackedTensor t = from_ggml_nvfp4(std::span(&b, 1), shape, 0.5f);
  EXPECT_EQ(t.scales, (std::vector<std::uint8_t>{0x38, 0x01, 0x00, 0x38}));
  std::vector<float> ggml(64), lowp(64);
  ggml_dequantize(GgmlQuantType::kNvfp4, std::as_bytes(std::span(&b, 1)), ggml);
  dequantize(t, lowp);
  for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(lowp[i], ggml[i] * 0.5f) << i;
}

TEST(GgmlMxfp4, RoundTripAndDecodeMatchLowp) {
  std::mt19937 rng(3);
  std::vector<GgmlBlockMxfp4> blocks(64);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    // every scale code except NaN, including the fp32-subnormal ones 0 and 1
    blocks[b].e = static_cast<std::uint8_t>(b < 4 ? b : 2 + rng() % 253);
    for (auto& q : blocks[b].qs) q = static_cast<std::uint8_t>(rng());
  }
  const std::int64_t shape[] = {4, 16 * 32};
  const PackedTensor t = from_ggml_mxfp4(blocks, shape);
  const std::vector<GgmlBlockMxfp4> back = to_ggml_mxfp4(t);
  ASSERT_EQ(back.size(), blocks.size());
  EXPECT_EQ(std::memcmp(back.data(), blocks.data(), blocks.size() * sizeof(GgmlBlockMxfp4)), 0);

  std::vector<float> ours(t.element_count());
  std::vector<float> theirs(t.element_count());
  dequantize(t, ours);
  ggml_mxfp4_dequantize(blocks, theirs);
  for (std::size_t i = 0; i < ours.size(); ++i) {
    // Identical values; ggml has no -0 (its table maps code 8 to +0).
    ASSERT_EQ(ours[i], theirs[i]) << i;
    if (ours[i] != 0 && std::isfinite(ours[i])) {
      ASSERT_EQ(std::signbit(ours[i]), std::signbit(theirs[i])) << i;
    }
    if (ours[i] == 0) {
      ASSERT_FALSE(std::signbit(theirs[i])) << i;
    }
  }
}

TEST(GgmlMxfp4, NanScaleEdge) {
  // E8M0 0xFF is NaN for lowp and the OCP spec; ggml decodes it as 2^127.
  GgmlBlockMxfp4 b{};
  b.e = 0xFF;
  b.qs[0] = 0x1;  // element 0: E2M1 code 1 = 0.5, ggml's doubled value 1
  const std::int64_t shape[] = {32};
  const PackedTensor t = from_ggml_mxfp4({&b, 1}, shape);
  std::vector<float> ours(32), theirs(32);
  dequantize(t, ours);
  ggml_mxfp4_dequantize({&b, 1}, theirs);
  EXPECT_TRUE(std::isnan(ours[0]));
  EXPECT_EQ(theirs[0], 0x1p127f);
}

TEST(GgmlMxfp4, RejectsIncompatibleTensors) {
  std::vector<float> x(48, 1.0f);
  const std::int64_t shape[] = {48};
  EXPECT_THROW(to_ggml_mxfp4(quantize(mxfp4(), x, shape, 0, {})), Error);  // 48 % 32 != 0
  BlockFormat e4m3;
  ASSERT_TRUE(parse_block_format("mxfp8_e4m3", e4m3));
  const std::int64_t shape32[] = {32};
  std::vector<float> y(32, 1.0f);
  EXPECT_THROW(to_ggml_mxfp4(quantize(e4m3, y, shape32, 0, {})), Error);
  const std::int64_t shape2[] = {32, 2};
  std::vector<float> z(64, 1.0f);
  EXPECT_THROW(to_ggml_mxfp4(quantize(mxfp4(), z, shape2, 0, {})), Error);  // not the last axis
  std::vector<GgmlBlockMxfp4> blocks(2);
  const std::int64_t wrong[] = {96};
  EXPECT_THROW(from_ggml_mxfp4(blocks, wrong), Error);
  const std::int64_t odd[] = {40};
  EXPECT_THROW(from_ggml_mxfp4(blocks, odd), Error);
}

// ---- block_q8_0 ----

std::vector<std::int8_t> qs_of(const GgmlBlockQ8_0& blk) {
  return {std::begin(blk.qs), std::end(blk.qs)};
}

TEST(GgmlQ8_0, HandComputedWithTies) {
  // amax 127: d = 1 (fp16 0x3C00), q = roundf(x), ties away from zero.
  std::vector<float> x(32, 0.0f);
  const float in[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.4f, -1.6f, 126.5f, -127.0f, 3.49f};
  const std::int8_t out[] = {127, 3, -3, 1, -1, 1, -2, 127, -127, 3};
  std::copy(std::begin(in), std::end(in), x.begin());
  const std::vector<GgmlBlockQ8_0> q = ggml_q8_0_quantize(x);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].d, 0x3C00);
  std::vector<std::int8_t> want(32, 0);
  std::copy(std::begin(out), std::end(out), want.begin());
  EXPECT_EQ(qs_of(q[0]), want);
  std::vector<float> back(32);
  ggml_q8_0_dequantize(q, back);
  for (std::size_t j = 0; j < 32; ++j) EXPECT_EQ(back[j], static_cast<float>(want[j])) << j;
}

TEST(GgmlQ8_0, ScaleRoundsToNearestEvenInFp16) {
  // amax 1: d = 1/127 = 0.00787401..., the fp16 neighbours are 0x2008
  // (0.0078735) and 0x2009 (0.0078773): nearest is 0x2008.
  std::vector<float> x(32, 0.0f);
  x[5] = -1.0f;
  const std::vector<GgmlBlockQ8_0> q = ggml_q8_0_quantize(x);
  EXPECT_EQ(q[0].d, 0x2008);
  EXPECT_EQ(q[0].qs[5], -127);
}

TEST(GgmlQ8_0, ZeroBlockAndErrors) {
  const std::vector<GgmlBlockQ8_0> q = ggml_q8_0_quantize(std::vector<float>(64, 0.0f));
  ASSERT_EQ(q.size(), 2u);
  for (const GgmlBlockQ8_0& blk : q) {
    EXPECT_EQ(blk.d, 0);
    EXPECT_EQ(qs_of(blk), std::vector<std::int8_t>(32, 0));
  }
  EXPECT_TRUE(ggml_q8_0_quantize({}).empty());
  EXPECT_THROW(ggml_q8_0_quantize(std::vector<float>(33)), Error);
  std::vector<float> out(33);
  EXPECT_THROW(ggml_q8_0_dequantize(q, out), Error);
}

TEST(GgmlQ8_0, NanFollowsGgmlMax) {
  // MAX(amax, v) keeps v when the comparison is false: a NaN is replaced by
  // the next value, and a NaN at the end makes d NaN (fp16 0x7E00) and every
  // q roundf(NaN) -> 0.
  std::vector<float> x(64, 1.0f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[40] = 127.0f;
  x[63] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<GgmlBlockQ8_0> q = ggml_q8_0_quantize(x);
  EXPECT_EQ(q[0].d, 0x2008);  // amax 1 despite the NaN
  EXPECT_EQ(q[0].qs[3], 0);
  EXPECT_EQ(q[1].d, 0x7E00);
  EXPECT_EQ(qs_of(q[1]), std::vector<std::int8_t>(32, 0));
}

}  // namespace
}  // namespace lowp
