// Packed block tensors (lowp/block/tensor.h): the element bit stream and its
// documented bit order, quantization along any axis (against the blocked view),
// partial blocks, 0-d and empty tensors, stochastic rounding, flush_subnormals,
// errors, and NVFP4 against an independent fp32 implementation of mx.h's order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

using Shape = std::vector<std::int64_t>;

BlockFormat named(const std::string& name) {
  BlockFormat f;
  EXPECT_TRUE(parse_block_format(name, f)) << name;
  return f;
}

// ---- the bit stream ----

// Bit j of the stream is bit (j mod b) of code (j / b): checked bit by bit.
void expect_layout(int bits, const std::vector<std::uint32_t>& codes,
                   const std::vector<std::uint8_t>& stream) {
  ASSERT_EQ(stream.size(), packed_bytes(bits, codes.size()));
  const std::size_t total = static_cast<std::size_t>(bits) * codes.size();
  for (std::size_t j = 0; j < stream.size() * 8; ++j) {
    const std::uint32_t got = (stream[j / 8] >> (j % 8)) & 1u;
    const std::uint32_t want =
        j < total
            ? (codes[j / static_cast<std::size_t>(bits)] >> (j % static_cast<std::size_t>(bits))) &
                  1u
            : 0u;
    ASSERT_EQ(got, want) << "bits " << bits << " stream bit " << j;
  }
}

// Every code of widths 4, 5, 6, 8 (and 19) at every bit alignment: the stream
// holds all codes after 0..7 leading fields, so code c lands at each offset.
TEST(PackedStream, RoundTripEveryCodeEveryAlignment) {
  for (int bits : {4, 5, 6, 8, 19}) {
    const std::uint32_t n = 1u << bits;
    for (std::uint32_t lead = 0; lead < (bits == 19 ? 2u : 8u); ++lead) {
      std::vector<std::uint32_t> codes(lead, (1u << bits) - 1);  // all-ones neighbours
      for (std::uint32_t c = 0; c < n; ++c) codes.push_back(c);
      codes.push_back(n - 1);
      std::vector<std::uint8_t> stream(packed_bytes(bits, codes.size()), 0);
      pack_codes(bits, codes, stream);
      if (bits != 19) expect_layout(bits, codes, stream);
      for (std::size_t i = 0; i < codes.size(); ++i) {
        ASSERT_EQ(unpack_code(bits, stream, i), codes[i]) << "bits " << bits << " index " << i;
      }
    }
  }
}

// Bits above `bits` in an input code are ignored, not spilled into neighbours.
TEST(PackedStream, HighBitsOfCodesAreMasked) {
  const std::vector<std::uint32_t> codes{0xFFFFFFF0u, 0x0u, 0xFFFFFFFFu};
  std::vector<std::uint8_t> stream(packed_bytes(4, 3), 0);
  pack_codes(4, codes, stream);
  EXPECT_EQ(stream, (std::vector<std::uint8_t>{0x00, 0x0F}));
}

// The documented bit order, pinned with hand-built bytes.
TEST(PackedStream, DocumentedBitOrder) {
  auto pack = [](int bits, std::vector<std::uint32_t> codes) {
    std::vector<std::uint8_t> s(packed_bytes(bits, codes.size()), 0);
    pack_codes(bits, codes, s);
    return s;
  };
  // FP4: element 2i in the low nibble; odd count pads the last high nibble with 0.
  EXPECT_EQ(pack(4, {0x1, 0x2, 0x3, 0xF, 0xA}), (std::vector<std::uint8_t>{0x21, 0xF3, 0x0A}));
  // FP6: 4 elements in 3 bytes, element 0 in bits 0-5 of byte 0, element 1 in bits 6-11:
  // 0x3F | 0x00<<6 | 0x15<<12 | 0x2A<<18 = 0xA9503F.
  EXPECT_EQ(pack(6, {0x3F, 0x00, 0x15, 0x2A}), (std::vector<std::uint8_t>{0x3F, 0x50, 0xA9}));
  // 0x01 | 0x02<<6 | 0x03<<12 | 0x04<<18 = 0x103081.
  EXPECT_EQ(pack(6, {0x01, 0x02, 0x03, 0x04}), (std::vector<std::uint8_t>{0x81, 0x30, 0x10}));
  EXPECT_EQ(pack(6, {0x3F}), (std::vector<std::uint8_t>{0x3F}));  // padded to a byte
  // FP8/INT8: one per byte.
  EXPECT_EQ(pack(8, {0x12, 0xFE}), (std::vector<std::uint8_t>{0x12, 0xFE}));
  // 5 bits: 0x1F | 0x01<<5 | 0x10<<10 = 0x403F.
  EXPECT_EQ(pack(5, {0x1F, 0x01, 0x10}), (std::vector<std::uint8_t>{0x3F, 0x40}));
}

// The same order inside a quantized MXFP4 tensor: amax 6 -> X = 1 (floor), codes
// 1 -> 0x2, 2 -> 0x4, 3 -> 0x5, -6 -> 0xF, 0.5 -> 0x1.
TEST(PackedStream, QuantizedMxfp4Bytes) {
  const std::vector<float> data{1, 2, 3, -6, 0.5f};
  const Shape shape{5};
  const PackedTensor t = quantize(named("mxfp4"), data, shape, -1, {});
  EXPECT_EQ(t.elements, (std::vector<std::uint8_t>{0x42, 0xF5, 0x01}));
  EXPECT_EQ(t.scales, (std::vector<std::uint8_t>{127}));
  std::vector<float> out(5);
  dequantize(t, out);
  EXPECT_EQ(out, data);
}

// ---- quantization along an axis ----

// Moves `axis` to the end (C order), returning the permuted data and shape.
std::vector<float> move_axis_last(const std::vector<float>& data, const Shape& shape, int axis,
                                  Shape& out_shape) {
  const auto a = static_cast<std::size_t>(axis);
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < a) outer *= static_cast<std::size_t>(shape[d]);
    if (d > a) inner *= static_cast<std::size_t>(shape[d]);
  }
  const auto len = static_cast<std::size_t>(shape[a]);
  out_shape = shape;
  out_shape.erase(out_shape.begin() + axis);
  out_shape.push_back(shape[a]);
  std::vector<float> out(data.size());
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t j = 0; j < len; ++j)
      for (std::size_t i = 0; i < inner; ++i)
        out[(o * inner + i) * len + j] = data[(o * len + j) * inner + i];
  return out;
}

std::vector<float> random_data(std::mt19937_64& rng, std::size_t n) {
  std::uniform_real_distribution<float> mant(-2.0f, 2.0f);
  std::uniform_int_distribution<int> ex(-12, 12);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(mant(rng), ex(rng));
  return v;
}

// Quantizing along `axis` equals quantizing the transposed array along the last
// axis (same scales, same element bytes, same values), and every block equals
// the scalar block function at its blocked-view stream position -- which pins
// partial tail blocks (amax over the present elements) and stochastic positions.
TEST(TensorAxis, EveryAxisMatchesTransposedLastAxis) {
  std::mt19937_64 rng(2024);
  const std::vector<Shape> shapes{{37},       {5, 37},   {37, 5},  {2, 3, 37},
                                  {3, 37, 2}, {4, 5, 6}, {1, 1, 1}};
  for (const char* cname : {"mxfp4", "mxfp6_e3m2", "mxfp8_e4m3", "mxint8", "mx:fp4_e2m1:1",
                            "mx:fp8_e4m3:64", "nvfp4"}) {
    const std::string name = cname;
    const BlockFormat f = named(name);
    for (const Shape& shape : shapes) {
      std::size_t n = 1;
      for (auto d : shape) n *= static_cast<std::size_t>(d);
      const std::vector<float> data = random_data(rng, n);
      const int rank = static_cast<int>(shape.size());
      for (int axis = -rank; axis < rank; ++axis) {
        SCOPED_TRACE(name + " rank " + std::to_string(rank) + " axis " + std::to_string(axis));
        const int a = axis < 0 ? axis + rank : axis;
        const BlockOptions opt{ScaleRule::kFloor, Rounding::kStochastic, 17, false};
        const PackedTensor t = quantize(f, data, shape, axis, opt);
        Shape tshape;
        const std::vector<float> moved = move_axis_last(data, shape, a, tshape);
        const PackedTensor u = quantize(f, moved, tshape, -1, opt);
        EXPECT_EQ(t.axis, a);
        EXPECT_EQ(t.scales, u.scales);
        EXPECT_EQ(t.elements, u.elements);
        EXPECT_EQ(t.tensor_scale, u.tensor_scale);
        std::vector<float> out(n), out_u(n);
        dequantize(t, out);
        dequantize(u, out_u);
        Shape unused;
        const std::vector<float> moved_out = move_axis_last(out, shape, a, unused);
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(moved_out[i], out_u[i]) << i;
        // Block by block against the scalar functions.
        const std::size_t len = t.row_length(), k = static_cast<std::size_t>(f.block_size);
        ASSERT_EQ(t.blocks_per_row(), (len + k - 1) / k);
        for (std::size_t row = 0; row < t.rows(); ++row) {
          for (std::size_t b = 0; b * k < len; ++b) {
            const std::size_t first = b * k, count = std::min(k, len - first);
            const std::vector<float> block(
                moved.begin() + static_cast<std::ptrdiff_t>(row * len + first),
                moved.begin() + static_cast<std::ptrdiff_t>(row * len + first + count));
            std::vector<std::uint32_t> codes(count);
            const std::uint64_t pos = row * len + first;
            const std::uint8_t s =
                f.scale == BlockScale::kUe4m3
                    ? nvfp4_quantize_block(block, t.tensor_scale, codes, opt, pos)
                    : mx_quantize_block(f, block, codes, opt, pos);
            ASSERT_EQ(t.scale(row, b), s) << "row " << row << " block " << b;
            for (std::size_t j = 0; j < count; ++j) ASSERT_EQ(t.code(row, first + j), codes[j]);
          }
        }
      }
    }
  }
}

// A partial tail block takes its amax from its own elements: row of 37 with k = 32,
// 32 x 96 then 5 x 1: block 0 X = 2^(6-8), block 1 X = 2^(0-8).
TEST(TensorAxis, PartialTailBlockHasItsOwnScale) {
  std::vector<float> data(37, 96.0f);
  std::fill(data.begin() + 32, data.end(), 1.0f);
  const Shape shape{37};
  const PackedTensor t = quantize(named("mxfp8_e4m3"), data, shape, 0, {});
  EXPECT_EQ(t.scales, (std::vector<std::uint8_t>{125, 119}));
  EXPECT_EQ(t.elements.size(), 37u);
  std::vector<float> out(37);
  dequantize(t, out);
  EXPECT_EQ(out, data);
  // k larger than the row: one partial block per row; k = 1: one scale per element.
  const PackedTensor big = quantize(named("mx:fp8_e4m3:64"), data, shape, 0, {});
  EXPECT_EQ(big.scales, (std::vector<std::uint8_t>{125}));
  const PackedTensor one = quantize(named("mx:fp4_e2m1:1"), data, shape, 0, {});
  ASSERT_EQ(one.scales.size(), 37u);
  EXPECT_EQ(one.scales[0], 127 + 6 - 2);
  EXPECT_EQ(one.scales[36], 127 - 2);
  EXPECT_EQ(one.elements.size(), 19u);  // 37 nibbles
}

// 0-d tensors are one row of one element; empty tensors have no scales or bytes.
TEST(TensorShapes, ZeroDimAndEmpty) {
  const std::vector<float> one{3.0f};
  for (int axis : {0, -1}) {
    const PackedTensor t = quantize(named("mxfp8_e4m3"), one, Shape{}, axis, {});
    EXPECT_EQ(t.element_count(), 1u);
    EXPECT_EQ(t.row_length(), 1u);
    EXPECT_EQ(t.rows(), 1u);
    EXPECT_EQ(t.scales.size(), 1u);
    std::vector<float> out(1);
    dequantize(t, out);
    EXPECT_EQ(out[0], 3.0f);
  }
  EXPECT_THROW(quantize(named("mxfp8_e4m3"), one, Shape{}, 1, {}), Error);
  for (const Shape& shape : {Shape{0}, Shape{3, 0}, Shape{0, 5}, Shape{2, 0, 4}}) {
    for (int axis = 0; axis < static_cast<int>(shape.size()); ++axis) {
      const PackedTensor t = quantize(named("mxfp4"), {}, shape, axis, {});
      EXPECT_EQ(t.element_count(), 0u);
      EXPECT_TRUE(t.elements.empty());
      EXPECT_TRUE(t.scales.empty());
      std::vector<float> out;
      EXPECT_NO_THROW(dequantize(t, out));
      EXPECT_TRUE(fake_quantize(named("nvfp4"), {}, shape, axis, {}).empty());
    }
  }
}

// ---- stochastic rounding ----

// Same seed: same bytes. Different seeds: different bytes. Unbiased: the mean of
// many roundings of 4.6 (between E2M1's 4 and 6, X = 1) and 0.3 (between 0 and
// 0.5) stays within 6 standard deviations of the input.
TEST(TensorStochastic, DeterministicUnbiasedSeedDependent) {
  const std::size_t blocks = 2000;
  std::vector<float> data;
  for (std::size_t b = 0; b < blocks; ++b) {
    data.push_back(6.0f);  // fixes X = 1 for mxfp4 under floor
    for (int i = 0; i < 31; ++i) data.push_back(i % 2 == 0 ? 4.6f : 0.3f);
  }
  const Shape shape{static_cast<std::int64_t>(blocks), 32};
  const BlockFormat f = named("mxfp4");
  const BlockOptions a{ScaleRule::kFloor, Rounding::kStochastic, 1, false};
  BlockOptions b = a;
  b.seed = 2;
  const PackedTensor ta = quantize(f, data, shape, -1, a);
  EXPECT_EQ(quantize(f, data, shape, -1, a).elements, ta.elements);
  EXPECT_NE(quantize(f, data, shape, -1, b).elements, ta.elements);
  std::vector<float> out(data.size());
  dequantize(ta, out);
  double sum46 = 0, sum03 = 0;
  std::size_t n46 = 0, n03 = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] == 4.6f) {
      sum46 += out[i];
      ++n46;
      EXPECT_TRUE(out[i] == 4.0f || out[i] == 6.0f);
    }
    if (data[i] == 0.3f) {
      sum03 += out[i];
      ++n03;
      EXPECT_TRUE(out[i] == 0.0f || out[i] == 0.5f);
    }
  }
  const double sd46 = 2.0 * std::sqrt(0.3 * 0.7 / static_cast<double>(n46));
  const double sd03 = 0.5 * std::sqrt(0.6 * 0.4 / static_cast<double>(n03));
  EXPECT_NEAR(sum46 / static_cast<double>(n46), 4.6, 6 * sd46);
  EXPECT_NEAR(sum03 / static_cast<double>(n03), 0.3, 6 * sd03);
}

// ---- flush_subnormals ----

// MXINT8 block of fp32 subnormals: kept, 2^-130 is exactly 8/64 * 2^-127; flushed,
// the block is all zero (scale 0x00, -0 -> 0). NVFP4: the tensor amax skips them.
TEST(TensorOptions, FlushSubnormals) {
  const std::vector<float> data{0x1p-130f, -0x1p-131f};
  const Shape shape{2};
  BlockOptions flush;
  flush.flush_subnormals = true;
  const PackedTensor kept = quantize(named("mxint8"), data, shape, 0, {});
  EXPECT_EQ(kept.scales[0], 0);
  EXPECT_EQ(kept.elements, (std::vector<std::uint8_t>{8, 0xFC}));  // 8 and -4
  const PackedTensor flushed = quantize(named("mxint8"), data, shape, 0, flush);
  EXPECT_EQ(flushed.scales[0], 0);
  EXPECT_EQ(flushed.elements, (std::vector<std::uint8_t>{0, 0}));
  // Normal values are untouched by the flag.
  const std::vector<float> mixed{1.0f, 0x1p-140f, -0.75f};
  EXPECT_EQ(quantize(named("mxfp8_e4m3"), mixed, Shape{3}, 0, flush).elements,
            quantize(named("mxfp8_e4m3"), mixed, Shape{3}, 0, {}).elements);
  const std::vector<float> tiny{0x1p-127f, 0.0f};
  const PackedTensor nv = quantize(named("nvfp4"), tiny, Shape{2}, 0, flush);
  EXPECT_EQ(nv.tensor_scale, 0.0f);
  EXPECT_EQ(quantize(named("nvfp4"), tiny, Shape{2}, 0, {}).tensor_scale, 0x1p-127f / 2688.0f);
  EXPECT_GT(0x1p-127f / 2688.0f, 0.0f);
}

// ---- errors ----
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TensorErrors, ClearMessages) {
  const std::vector<float> six(6, 1.0f);
  const Shape shape{2, 3};
  const BlockFormat f = named("mxfp8_e4m3");
  std::string m = error_of([&] { quantize(f, six, shape, 2, {}); });
  EXPECT_NE(m.find("axis 2"), std::string::npos) << m;
  EXPECT_NE(m.find("rank 2"), std::string::npos) << m;
  m = error_of([&] { quantize(f, six, shape, -3, {}); });
  EXPECT_NE(m.find("axis -3"), std::string::npos) << m;
  EXPECT_EQ(normalize_axis(-1, 2), 1);
  EXPECT_EQ(normalize_axis(-2, 2), 0);
  m = error_of([&] { quantize(f, std::vector<float>(5), shape, 0, {}); });
  EXPECT_NE(m.find("5 values"), std::string::npos) << m;
  EXPECT_NE(m.find("6"), std::string::npos) << m;
  BlockFormat zero = f;
  zero.block_size = 0;
  m = error_of([&] { quantize(zero, six, shape, 0, {}); });
  EXPECT_NE(m.find("block size"), std::string::npos) << m;
  const PackedTensor t = quantize(f, six, shape, 0, {});
  std::vector<float> small(5);
  m = error_of([&] { dequantize(t, small); });
  EXPECT_NE(m.find("5 values"), std::string::npos) << m;
  m = error_of([&] { quantize(f, {}, Shape{-1, 0}, 0, {}); });
  EXPECT_NE(m.find("negative"), std::string::npos) << m;
}

// ---- NVFP4 ----

// E4M3 and E2M1 magnitudes, built by hand.
std::vector<double> e4m3_grid() {
  std::vector<double> g;
  for (int m = 0; m <= 0x7E; ++m) {
    const int ef = m >> 3, man = m & 7;
    g.push_back(ef == 0 ? man * 0x1p-9 : std::ldexp(8 + man, ef - 10));
  }
  return g;
}
const std::vector<double> kE2m1Grid{0, 0.5, 1, 1.5, 2, 3, 4, 6};

// Index of |x| on a grid (x <= grid.back()) rounded by `mode`.
std::uint32_t grid_round(const std::vector<double>& g, double x, Rounding mode,
                         std::uint32_t random) {
  const double a = std::fabs(x);
  auto it = std::upper_bound(g.begin(), g.end(), a);
  const auto lo = static_cast<std::uint32_t>(it - g.begin() - 1);
  if (g[lo] == a || lo + 1 == g.size()) return lo;
  const double below = a - g[lo], above = g[lo + 1] - a;
  bool up = false;
  switch (mode) {
    case Rounding::kNearestEven:
      up = above < below || (above == below && (lo & 1) != 0);
      break;
    case Rounding::kNearestAway:
      up = above <= below;
      break;
    case Rounding::kTowardZero:
      break;
    case Rounding::kStochastic:
      up = std::floor(below / (g[lo + 1] - g[lo]) * 0x1p32) + static_cast<double>(random) >= 0x1p32;
      break;
  }
  return up ? lo + 1 : lo;
}

// mx.h's NVFP4 steps, all in fp32, for a 1-d tensor cut into blocks of 16.
void nvfp4_reference(const std::vector<float>& v, const BlockOptions& opt, float& ts,
                     std::vector<std::uint8_t>& scales, std::vector<std::uint32_t>& codes) {
  static const std::vector<double> e4m3 = e4m3_grid();
  float amax_t = 0;
  for (float x : v)
    if (std::isfinite(x)) amax_t = std::max(amax_t, std::fabs(x));
  ts = amax_t / 2688.0f;
  scales.clear();
  codes.assign(v.size(), 0);
  for (std::size_t first = 0; first < v.size(); first += 16) {
    const std::size_t end = std::min(v.size(), first + 16);
    float amax = 0;
    bool bad = false;
    for (std::size_t i = first; i < end; ++i) {
      bad = bad || !std::isfinite(v[i]);
      amax = std::max(amax, std::fabs(v[i]));
    }
    if (bad) {
      scales.push_back(0x7F);
      for (std::size_t i = first; i < end; ++i) codes[i] = 0x8;  // E2M1's -0 stand-in for NaN
      continue;
    }
    float rel = (amax / 6.0f) / ts;
    rel = std::isnan(rel) ? 0x1p-6f : std::clamp(rel, 0x1p-6f, 448.0f);
    const std::uint32_t s = grid_round(e4m3, rel, Rounding::kNearestEven, 0);
    scales.push_back(static_cast<std::uint8_t>(s));
    const float total = ts * static_cast<float>(e4m3[s]);
    for (std::size_t i = first; i < end; ++i) {
      if (total == 0.0f) continue;
      const float q = std::clamp(v[i] / total, -6.0f, 6.0f);
      const std::uint32_t r =
          opt.rounding == Rounding::kStochastic ? stochastic_bits(opt.seed, i) : 0;
      codes[i] = grid_round(kE2m1Grid, q, opt.rounding, r) | (std::signbit(q) ? 0x8u : 0u);
    }
  }
}

// Hand-computed: amax 2688 -> tensor_scale 1; a block of 1.5 * E2M1 values (amax
// 9 = 6 * 1.5) is exact with scale 1.5 (E4M3 0x3C); amax 0.01 clamps the block
// scale at 2^-6 (0x08) and 0.01 / 2^-6 = 0.64 rounds to 0.5.
TEST(Nvfp4, HandComputed) {
  std::vector<float> data(48, 0.0f);
  data[0] = 2688.0f;
  data[1] = -1344.0f;  // 2688 / 448 = 6 per unit: -1344 = -224 * 6 -> -3 * 448
  const float e2m1[] = {6, -4, 3, 2, 1.5f, 1, 0.5f, 0, -6, -0.5f};
  for (int i = 0; i < 10; ++i) data[static_cast<std::size_t>(16 + i)] = 1.5f * e2m1[i];
  data[32] = 0.01f;
  data[33] = -0.003f;
  const PackedTensor t = quantize(named("nvfp4"), data, Shape{48}, 0, {});
  EXPECT_EQ(t.tensor_scale, 1.0f);
  EXPECT_EQ(t.scales, (std::vector<std::uint8_t>{0x7E, 0x3C, 0x08}));
  std::vector<float> out(48);
  dequantize(t, out);
  EXPECT_EQ(out[0], 2688.0f);
  EXPECT_EQ(out[1], -1344.0f);
  for (int i = 16; i < 32; ++i)
    EXPECT_EQ(out[static_cast<std::size_t>(i)], data[static_cast<std::size_t>(i)]) << i;
  EXPECT_EQ(out[32], 0.0078125f);
  EXPECT_EQ(out[33], 0.0f);  // -0.192 -> -0
  EXPECT_TRUE(std::signbit(out[33]));
  EXPECT_EQ(t.code(0, 32), 0x1u);
}

// All zero: tensor_scale 0, every element +0 and decoded 0.
TEST(Nvfp4, AllZeroTensor) {
  const std::vector<float> data(40, 0.0f);
  const PackedTensor t = quantize(named("nvfp4"), data, Shape{40}, 0, {});
  EXPECT_EQ(t.tensor_scale, 0.0f);
  EXPECT_TRUE(
      std::all_of(t.elements.begin(), t.elements.end(), [](std::uint8_t b) { return b == 0; }));
  std::vector<float> out(40, 1.0f);
  dequantize(t, out);
  EXPECT_EQ(out, data);
}

// One NaN (or -Inf) poisons only its block: E4M3 NaN scale there, NaN outputs;
// the tensor amax and the other blocks are as without it.
TEST(Nvfp4, NanPoisonsOnlyItsBlock) {
  std::mt19937_64 rng(5);
  const std::vector<float> clean = random_data(rng, 48);
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    std::vector<float> data = clean;
    data[20] = bad;
    std::vector<float> ref = clean;
    ref[20] = 0.0f;
    const PackedTensor t = quantize(named("nvfp4"), data, Shape{48}, 0, {});
    const PackedTensor r = quantize(named("nvfp4"), ref, Shape{48}, 0, {});
    float amax = 0;
    for (std::size_t i = 0; i < 48; ++i)
      if (i != 20) amax = std::max(amax, std::fabs(clean[i]));
    EXPECT_EQ(t.tensor_scale, amax / 2688.0f);
    EXPECT_EQ(t.scales[1], 0x7F);
    EXPECT_EQ(t.scales[0], r.scales[0]);
    EXPECT_EQ(t.scales[2], r.scales[2]);
    std::vector<float> out(48), out_r(48);
    dequantize(t, out);
    dequantize(r, out_r);
    for (std::size_t i = 0; i < 48; ++i) {
      if (i >= 16 && i < 32) {
        EXPECT_TRUE(std::isnan(out[i])) << i;
      } else {
        EXPECT_EQ(out[i], out_r[i]) << i;
      }
    }
  }
}

// Random tensors (many magnitudes, partial last block, NaN blocks now and then)
// against the independent fp32 reference, for every rounding mode.
TEST(Nvfp4, RandomBlocksMatchIndependentReference) {
  std::mt19937_64 rng(31337);
  const std::vector<double> e4m3 = e4m3_grid();
  std::uniform_int_distribution<int> ex(-140, 120);
  std::uniform_real_distribution<float> mant(-2.0f, 2.0f);
  int blocks = 0;
  for (int trial = 0; trial < 80; ++trial) {
    const std::size_t n = 16 * (1 + rng() % 8) + rng() % 16;
    const int e0 = ex(rng);
    std::vector<float> v(n);
    for (float& x : v) x = std::ldexp(mant(rng), e0 - static_cast<int>(rng() % 24));
    if (trial % 2 == 1) {  // tensor_scale 2^j exactly and coarse values: many exact ties
      for (float& x : v)
        x = std::ldexp(static_cast<float>(static_cast<int>(rng() % 97) - 48) / 8, e0);
      v[0] = std::ldexp(2688.0f, e0);
    }
    if (trial % 7 == 3) v[rng() % n] = std::numeric_limits<float>::quiet_NaN();
    if (trial % 11 == 5) v[rng() % n] = 0x1p-149f;  // only subnormals matter in this block's amax
    for (Rounding mode : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                          Rounding::kStochastic}) {
      const BlockOptions opt{ScaleRule::kFloor, mode, rng(), false};
      float ts = 0;
      std::vector<std::uint8_t> scales;
      std::vector<std::uint32_t> codes;
      nvfp4_reference(v, opt, ts, scales, codes);
      const PackedTensor t =
          quantize(named("nvfp4"), v, Shape{static_cast<std::int64_t>(n)}, 0, opt);
      ASSERT_EQ(t.tensor_scale, ts) << "trial " << trial;
      ASSERT_EQ(t.scales, scales) << "trial " << trial << " e0 " << e0;
      std::vector<float> out(n);
      dequantize(t, out);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(t.code(0, i), codes[i]) << "trial " << trial << " i " << i << " v " << v[i];
        const std::uint8_t s = scales[i / 16];
        const float want = s == 0x7F ? std::numeric_limits<float>::quiet_NaN()
                                     : static_cast<float>(kE2m1Grid[codes[i] & 7]) *
                                           (codes[i] & 8 ? -1.0f : 1.0f) *
                                           (ts * static_cast<float>(e4m3[s]));
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(out[i]));
        } else {
          ASSERT_EQ(out[i], want) << i;
        }
      }
      blocks += static_cast<int>(scales.size());
    }
  }
  EXPECT_GT(blocks, 300);
}

}  // namespace
}  // namespace lowp
