// Block kernels (lowp/block_kernels.h) against the scalar reference
// (lowp/block/mx.h: mx_quantize_block, nvfp4_quantize_block, mx_value,
// nvfp4_value, packed with pack_codes as tensor.h lays it out), byte for byte,
// on every Highway target this machine supports: every registry block format
// (and a few mx:<element>:<k> spellings) x every scale rule, on random blocks
// spread over fp32's whole exponent range and on edge blocks (zeros, -0,
// fp32 subnormals, FP32 max, NaN/Inf, values at element rounding midpoints,
// random bit patterns), row lengths that are not multiples of k (partial
// blocks; FP6/FP4 rows that start inside a byte), and 1, 2 and 3 threads.
// Dequantization decodes random packed bytes and random scale codes (NaN,
// 0, 254, negative E4M3 included).
#include "lowp/block_kernels.h"
#include "kernels/targets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/kernels.h"

namespace {

using lowp::BlockFormat;
using lowp::BlockOptions;
using lowp::BlockScale;
using lowp::ScaleRule;

constexpr ScaleRule kRules[] = {ScaleRule::kFloor, ScaleRule::kRceil, ScaleRule::kCeil,
                                ScaleRule::kEven};

struct Packed {
  std::vector<std::uint8_t> elements, scales;
};

// tensor.cc's loop over the blocked view, on the scalar reference.
// Stochastic rounding draws element i from stream position first_index + i.
Packed reference_quantize(const BlockFormat& f, const std::vector<float>& data,
                          std::size_t row_length, float tensor_scale, const BlockOptions& opt,
                          std::uint64_t first_index = 0) {
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t rows = data.size() / row_length;
  const std::size_t per_row = (row_length + k - 1) / k;
  std::vector<std::uint32_t> codes(data.size());
  Packed out;
  out.scales.resize(rows * per_row);
  for (std::size_t row = 0; row < rows; ++row) {
    for (std::size_t b = 0; b < per_row; ++b) {
      const std::size_t pos = row * row_length + b * k;
      const std::size_t count = std::min(k, row_length - b * k);
      const std::span<const float> values(data.data() + pos, count);
      const std::span<std::uint32_t> c(codes.data() + pos, count);
      out.scales[row * per_row + b] =
          f.scale == BlockScale::kUe4m3
              ? lowp::nvfp4_quantize_block(values, tensor_scale, c, opt, first_index + pos)
              : lowp::mx_quantize_block(f, values, c, opt, first_index + pos);
    }
  }
  out.elements.assign(lowp::packed_bytes(f.element.bits, data.size()), 0);
  lowp::pack_codes(f.element.bits, codes, out.elements);
  return out;
}

std::vector<std::uint32_t> reference_dequantize(const BlockFormat& f, const Packed& p,
                                                std::size_t count, std::size_t row_length,
                                                float tensor_scale) {
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t per_row = (row_length + k - 1) / k;
  std::vector<std::uint32_t> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t row = i / row_length, j = i % row_length;
    const std::uint8_t s = p.scales[row * per_row + j / k];
    const std::uint32_t c = lowp::unpack_code(f.element.bits, p.elements, i);
    const float v = f.scale == BlockScale::kUe4m3
                        ? lowp::nvfp4_value(tensor_scale, s, c)
                        : static_cast<float>(lowp::mx_value(f.element, s, c));
    out[i] = std::bit_cast<std::uint32_t>(v);
  }
  return out;
}

template <typename T>
void expect_same(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      FAIL() << what << ": first difference at " << i << ": got 0x" << std::hex << +got[i]
             << ", want 0x" << +want[i];
    }
  }
}

// Blocks of k values: random magnitudes per block (2^-149 .. 2^127), with edge
// blocks mixed in. n values in all.
std::vector<float> test_data(std::size_t n, std::size_t k, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-150, 127);
  std::uniform_int_distribution<int> kind(0, 15);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t b0 = 0; b0 < n; b0 += k) {
    const std::size_t b1 = std::min(n, b0 + k);
    const int e = exponent(rng);
    const int which = kind(rng);
    for (std::size_t i = b0; i < b1; ++i) {
      float x = std::ldexp(normal(rng), e);
      switch (which) {
        case 0:
          x = 0.0f;
          break;
        case 1:
          x = (i % 3 == 0) ? -0.0f : 0.0f;
          break;
        case 2:
          x = std::bit_cast<float>(any_bits(rng) & 0x807FFFFFu);
          break;  // subnormals
        case 3:
          x = (i == b0) ? std::numeric_limits<float>::max() : x;
          break;
        case 4:
          x = (i == b1 - 1) ? -std::numeric_limits<float>::max() : std::ldexp(normal(rng), 126);
          break;
        case 5:
          x = (i == b0 + 1 || b1 - b0 == 1) ? nan : x;
          break;
        case 6:
          x = (i == b1 - 1) ? (i % 2 ? inf : -inf) : x;
          break;
        case 7:
          x = std::bit_cast<float>(any_bits(rng));
          break;   // NaNs and Infs too
        case 8: {  // element-grid midpoints: odd multiples of 2^-4 of a power of
                   // two
          const int m = static_cast<int>(any_bits(rng) % 255) - 127;
          x = std::ldexp(static_cast<float>(m) + 0.5f, e / 8);
          break;
        }
        case 9:
          x = std::ldexp(normal(rng), -135);
          break;  // tiny: the smallest scales
        default:
          break;
      }
      v[i] = x;
    }
  }
  return v;
}

std::vector<BlockFormat> test_formats() {
  std::vector<BlockFormat> out;
  for (const auto& nb : lowp::block_registry()) out.push_back(nb.format);
  for (const char* name : {"mx:fp8_e4m3:16", "mx:fp4_e2m1:64", "mx:int8:32", "mx:fp6_e3m2:20"}) {
    BlockFormat f;
    if (lowp::parse_block_format(name, f)) out.push_back(f);
  }
  return out;
}

using lowp_test::for_each_target;

void check_quantize(const BlockFormat& f, const std::vector<float>& data, std::size_t row_length,
                    const BlockOptions& opt, const std::string& what) {
  const float ts = f.scale == BlockScale::kUe4m3 ? lowp::nvfp4_tensor_scale_of(data, opt) : 1.0f;
  const Packed want = reference_quantize(f, data, row_length, ts, opt);
  Packed got;
  got.elements.assign(want.elements.size(), 0);
  got.scales.assign(want.scales.size(), 0xAA);
  lowp::quantize_blocked(f, data, row_length, ts, opt, got.elements.data(), got.scales.data());
  expect_same(got.scales, want.scales, what + " scales");
  expect_same(got.elements, want.elements, what + " elements");
  std::vector<float> back(data.size());
  lowp::dequantize_blocked(f, got.elements.data(), got.scales.data(), ts, row_length, back,
                           opt.threads);
  std::vector<std::uint32_t> back_bits(back.size());
  std::memcpy(back_bits.data(), back.data(), back.size() * 4);
  expect_same(back_bits, reference_dequantize(f, want, data.size(), row_length, ts),
              what + " dequantize");
}

TEST(BlockKernels, QuantizeMatchesReferenceOnEveryTarget) {
  for_each_target([] {
    for (const BlockFormat& f : test_formats()) {
      const auto k = static_cast<std::size_t>(f.block_size);
      for (ScaleRule rule : kRules) {
        if (f.scale == BlockScale::kUe4m3 && rule != ScaleRule::kFloor) continue;
        BlockOptions opt;
        opt.scale_rule = rule;
        opt.threads = 1;
        const std::string name =
            lowp::block_format_name(f) + " " + std::string(lowp::scale_rule_name(rule));
        // Whole blocks, then rows with a partial last block (and FP6/FP4 rows
        // that start inside a byte), then rows shorter than a block.
        const std::size_t lengths[] = {64 * k, 3 * k + 5, 2 * k + 1, 2 * k + 2, k - 3, 7};
        std::uint32_t seed = 1;
        for (std::size_t row_length : lengths) {
          const std::size_t rows = row_length >= 64 * k ? 8 : 9;
          const std::vector<float> data = test_data(rows * row_length, k, seed++);
          check_quantize(f, data, row_length, opt, name + " row " + std::to_string(row_length));
          if (HasFatalFailure()) return;
        }
      }
    }
  });
}

TEST(BlockKernels, ThreadCountsGiveTheSameBytes) {
  for (const BlockFormat& f : test_formats()) {
    const auto k = static_cast<std::size_t>(f.block_size);
    for (const std::size_t row_length : {std::size_t{1} << 18, 4096 * k + 3, 1001 * k + 1}) {
      const std::size_t rows = row_length > 100000 ? 1 : 3;
      const std::vector<float> data = test_data(rows * row_length, k, 77);
      for (unsigned threads : {1u, 2u, 3u}) {
        BlockOptions opt;
        opt.threads = threads;
        check_quantize(f, data, row_length, opt,
                       lowp::block_format_name(f) + " row " + std::to_string(row_length) +
                           " threads " + std::to_string(threads));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Hand-made packed data: every element code, every scale code.
TEST(BlockKernels, DequantizeAnyBytes) {
  for_each_target([] {
    for (const BlockFormat& f : test_formats()) {
      const auto k = static_cast<std::size_t>(f.block_size);
      std::mt19937 rng(99);
      for (const std::size_t row_length : {40 * k, 5 * k + 3}) {
        const std::size_t count = 7 * row_length;
        const std::size_t per_row = (row_length + k - 1) / k;
        Packed p;
        p.elements.resize(lowp::packed_bytes(f.element.bits, count));
        p.scales.resize(7 * per_row);
        for (auto& b : p.elements) b = static_cast<std::uint8_t>(rng());
        for (std::size_t i = 0; i < p.scales.size(); ++i) {
          p.scales[i] = static_cast<std::uint8_t>(i < 256 ? i : rng());
        }
        for (const float ts : {1.0f, 0x1p-20f, 3.5e-3f, 1e30f}) {
          std::vector<float> out(count);
          lowp::dequantize_blocked(f, p.elements.data(), p.scales.data(), ts, row_length, out, 1);
          std::vector<std::uint32_t> bits(count);
          std::memcpy(bits.data(), out.data(), count * 4);
          expect_same(bits, reference_dequantize(f, p, count, row_length, ts),
                      lowp::block_format_name(f) + " ts " + std::to_string(ts));
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  });
}

TEST(BlockKernels, FallbackOptionsMatchReference) {
  // Stochastic rounding and flush_subnormals take the scalar reference per
  // block.
  for (const char* name : {"mxfp8_e4m3", "mxfp4", "nvfp4"}) {
    BlockFormat f;
    ASSERT_TRUE(lowp::parse_block_format(name, f));
    BlockOptions opt;
    opt.rounding = lowp::Rounding::kStochastic;
    opt.seed = 5;
    EXPECT_FALSE(lowp::kernels::block_quantize_is_vectorized(f, opt));
    check_quantize(f, test_data(3 * 100, 32, 3), 100, opt, std::string(name) + " stochastic");
    opt = {};
    opt.flush_subnormals = true;
    check_quantize(f, test_data(3 * 100, 32, 4), 100, opt, std::string(name) + " flush");
    EXPECT_TRUE(lowp::kernels::block_quantize_is_vectorized(f, BlockOptions{}));
  }
}

// lowp::fake_quantize_blocked against the scalar reference: the blocked view of
// an outer x length x inner array quantized and dequantized by
// reference_quantize / reference_dequantize (stream positions from
// first_index), bit for bit at every element, with the work done in three
// pieces (as threads would): of the rows, then of the blocks along the axis.
void check_fake_quantize(const BlockFormat& f, const std::vector<float>& data, std::size_t outer,
                         std::size_t length, std::size_t inner, const BlockOptions& opt,
                         std::uint64_t first_index, const std::string& what) {
  ASSERT_EQ(data.size(), outer * length * inner) << what;
  std::vector<float> blocked(data.size());
  for (std::size_t flat = 0; flat < data.size(); ++flat) {
    const std::size_t i = flat % inner, j = flat / inner % length, o = flat / inner / length;
    blocked[(o * inner + i) * length + j] = data[flat];
  }
  const float ts = f.scale == BlockScale::kUe4m3 ? lowp::nvfp4_tensor_scale_of(data, opt) : 1.0f;
  const Packed want = reference_quantize(f, blocked, length, ts, opt, first_index);
  const std::vector<std::uint32_t> want_blocked =
      reference_dequantize(f, want, data.size(), length, ts);
  const std::size_t rows = outer * inner;
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t blocks = (length + k - 1) / k;
  // Row pieces (all blocks), then block pieces (all rows; the last one's end
  // past the last block).
  for (const bool by_rows : {true, false}) {
    std::vector<float> got(data.size(), -1.0f);
    const std::size_t n = by_rows ? rows : blocks;
    const std::size_t cut1 = n / 3, cut2 = n - n / 5;
    for (const auto& [begin, end] :
         {std::pair{std::size_t{0}, cut1}, std::pair{cut1, cut2}, std::pair{cut2, n + 2}}) {
      if (by_rows) {
        lowp::fake_quantize_blocked(f, data.data(), got.data(), length, inner, begin,
                                    std::min(end, rows), 0, blocks, ts, opt, first_index);
      } else {
        lowp::fake_quantize_blocked(f, data.data(), got.data(), length, inner, 0, rows, begin, end,
                                    ts, opt, first_index);
      }
    }
    for (std::size_t flat = 0; flat < data.size(); ++flat) {
      const std::size_t i = flat % inner, j = flat / inner % length, o = flat / inner / length;
      const std::uint32_t w = want_blocked[(o * inner + i) * length + j];
      if (std::bit_cast<std::uint32_t>(got[flat]) != w) {
        FAIL() << what << (by_rows ? " (row pieces)" : " (block pieces)")
               << ": first difference at " << flat << " (o " << o << ", j " << j << ", i " << i
               << ", input " << data[flat] << "): got " << got[flat] << " (0x" << std::hex
               << std::bit_cast<std::uint32_t>(got[flat]) << "), want " << std::bit_cast<float>(w)
               << " (0x" << w << ")";
      }
    }
  }
}

TEST(BlockKernels, FakeQuantizeBlockedMatchesReferenceOnEveryTarget) {
  for_each_target([] {
    for (const BlockFormat& f : test_formats()) {
      const auto k = static_cast<std::size_t>(f.block_size);
      for (ScaleRule rule : kRules) {
        if (f.scale == BlockScale::kUe4m3 && rule != ScaleRule::kFloor) continue;
        for (const lowp::Rounding rounding :
             {lowp::Rounding::kNearestEven, lowp::Rounding::kStochastic}) {
          BlockOptions opt;
          opt.scale_rule = rule;
          opt.rounding = rounding;
          opt.seed = 11;
          const std::string name = lowp::block_format_name(f) + " " +
                                   std::string(lowp::scale_rule_name(rule)) + " " +
                                   std::string(lowp::rounding_name(rounding));
          // {outer, length, inner}: the last axis (whole blocks, a partial
          // last block, rows shorter than a block), then other axes (16
          // columns and more, fewer, partial blocks along the axis).
          const std::size_t shapes[][3] = {{5, 8 * k, 1},  {3, 3 * k + 5, 1},  {4, k - 3, 1},
                                           {2, 4 * k, 16}, {1, 2 * k + 3, 37}, {3, k, 5},
                                           {2, 70, 9},     {1, 3 * k, 40}};
          std::uint32_t seed = 1;
          for (const auto& s : shapes) {
            const std::vector<float> data = test_data(s[0] * s[1] * s[2], k, seed++);
            const std::string what = name + " shape " + std::to_string(s[0]) + "x" +
                                     std::to_string(s[1]) + "x" + std::to_string(s[2]);
            check_fake_quantize(f, data, s[0], s[1], s[2], opt, 0, what);
            if (HasFatalFailure()) return;
            // Stream positions across 2^32 (the stochastic key changes).
            const std::uint64_t near_wrap = (std::uint64_t{1} << 32) - data.size() / 2 - 7;
            check_fake_quantize(f, data, s[0], s[1], s[2], opt, near_wrap, what + " near 2^32");
            if (HasFatalFailure()) return;
          }
        }
      }
    }
  });
}

TEST(BlockKernels, FakeQuantizeBlockedFallbackMatchesReference) {
  // Roundings without a vector path, and flush_subnormals: the scalar
  // reference block by block.
  for (const char* name : {"mxfp8_e4m3", "mxint8", "nvfp4"}) {
    BlockFormat f;
    ASSERT_TRUE(lowp::parse_block_format(name, f));
    for (const lowp::Rounding rounding : {lowp::Rounding::kNearestAway, lowp::Rounding::kTowardZero,
                                          lowp::Rounding::kNearestEven}) {
      BlockOptions opt;
      opt.rounding = rounding;
      opt.flush_subnormals = rounding == lowp::Rounding::kNearestEven;
      EXPECT_FALSE(lowp::kernels::block_fake_quantize_is_vectorized(f, opt));
      for (const std::size_t inner : {std::size_t{1}, std::size_t{19}}) {
        check_fake_quantize(f, test_data(2 * 100 * inner, 32, 5), 2, 100, inner, opt, 0,
                            std::string(name) + " " + std::string(lowp::rounding_name(rounding)) +
                                " inner " + std::to_string(inner));
      }
    }
  }
}

// lowp::quantize / dequantize on a block axis that is not the last (gathered
// into the blocked view by a tiled transpose) and on the last.
TEST(BlockKernels, TensorQuantizeAlongAnyAxis) {
  const std::vector<std::int64_t> shape = {5, 70, 9};
  const std::vector<float> data = test_data(5 * 70 * 9, 32, 21);
  for (const char* name : {"mxfp6_e2m3", "nvfp4", "mxint8"}) {
    BlockFormat f;
    ASSERT_TRUE(lowp::parse_block_format(name, f));
    for (int axis : {0, 1, 2}) {
      // The blocked view by hand.
      const std::size_t length = static_cast<std::size_t>(shape[static_cast<std::size_t>(axis)]);
      std::size_t inner = 1;
      for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < 3; ++d) {
        inner *= static_cast<std::size_t>(shape[d]);
      }
      std::vector<float> blocked(data.size());
      for (std::size_t flat = 0; flat < data.size(); ++flat) {
        const std::size_t i = flat % inner, j = flat / inner % length, o = flat / inner / length;
        blocked[(o * inner + i) * length + j] = data[flat];
      }
      const BlockOptions opt;
      const lowp::PackedTensor t = lowp::quantize(f, data, shape, axis, opt);
      const Packed want = reference_quantize(f, blocked, length, t.tensor_scale, opt);
      const std::string what = std::string(name) + " axis " + std::to_string(axis);
      expect_same(t.scales, want.scales, what + " scales");
      expect_same(t.elements, want.elements, what + " elements");
      std::vector<float> back(data.size());
      lowp::dequantize(t, back);
      const std::vector<std::uint32_t> want_blocked =
          reference_dequantize(f, want, data.size(), length, t.tensor_scale);
      for (std::size_t flat = 0; flat < data.size(); ++flat) {
        const std::size_t i = flat % inner, j = flat / inner % length, o = flat / inner / length;
        ASSERT_EQ(std::bit_cast<std::uint32_t>(back[flat]),
                  want_blocked[(o * inner + i) * length + j])
            << what << " at " << flat;
      }
    }
  }
}

TEST(BlockKernels, FiniteAmax) {
  std::vector<float> v = test_data(300001, 32, 8);
  float want = 0.0f;
  for (float x : v) {
    if (std::isfinite(x)) want = std::max(want, std::fabs(x));
  }
  for (unsigned threads : {1u, 2u, 3u}) {
    EXPECT_EQ(std::bit_cast<std::uint32_t>(lowp::finite_amax(v, threads)),
              std::bit_cast<std::uint32_t>(want));
  }
}

}  // namespace

namespace {

// The element rounding, densely: blocks whose first value pins the scale to
// 2^0 (floor rule: amax in [2^emax, 2^(emax+1))) and whose others sweep the
// element's range: every midpoint between neighbouring element values and
// the fp32 values one and two units beside it, both signs, and a stride
// through all fp32 patterns below 2^(emax+1) (subnormals of fp32 and of the
// element included), on every target.
TEST(BlockKernels, ElementRoundingSweep) {
  for (const char* name : {"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"}) {
    BlockFormat f;
    ASSERT_TRUE(lowp::parse_block_format(name, f)) << name;
    const auto k = static_cast<std::size_t>(f.block_size);
    // The element's values (positive codes), ascending.
    std::vector<double> values;
    const std::uint32_t codes = 1u << (f.element.bits - 1);
    for (std::uint32_t c = 0; c < codes; ++c) {
      const double v = lowp::mx_value(f.element, 127, c);
      if (std::isfinite(v)) values.push_back(v);
    }
    std::sort(values.begin(), values.end());
    const double top = values.back();
    const int emax = std::ilogb(top);
    std::vector<float> sweep;
    for (std::size_t i = 0; i + 1 < values.size(); ++i) {
      const auto mid = static_cast<float>((values[i] + values[i + 1]) / 2);
      const std::uint32_t bits = std::bit_cast<std::uint32_t>(mid);
      for (std::uint32_t d = 0; d <= 4; ++d) {
        if (bits + 2 >= d) sweep.push_back(std::bit_cast<float>(bits + 2 - d));
      }
    }
    const auto limit = std::bit_cast<std::uint32_t>(std::ldexp(1.0f, emax + 1));
    for (std::uint32_t b = 0; b < limit; b += 997) sweep.push_back(std::bit_cast<float>(b));
    std::vector<float> data;
    for (std::size_t i = 0; i < sweep.size(); ++i) {
      if (data.size() % k == 0) data.push_back(static_cast<float>(std::ldexp(1.0, emax)));
      data.push_back(i % 2 ? -sweep[i] : sweep[i]);
    }
    while (data.size() % k != 0) data.push_back(0.0f);
    BlockOptions opt;
    opt.threads = 1;
    for_each_target([&] {
      check_quantize(f, data, data.size(), opt, name);
      // Fake quantization along the last axis and along axis 0 of the same
      // values as a k x (size / k) array, nearest-even and stochastic.
      for (const lowp::Rounding rounding :
           {lowp::Rounding::kNearestEven, lowp::Rounding::kStochastic}) {
        BlockOptions fq = opt;
        fq.rounding = rounding;
        const std::string what =
            std::string(name) + " fake " + std::string(lowp::rounding_name(rounding));
        check_fake_quantize(f, data, 1, data.size(), 1, fq, 0, what);
        std::vector<float> columns(data.size());
        const std::size_t width = data.size() / k;
        for (std::size_t b = 0; b < width; ++b) {
          for (std::size_t j = 0; j < k; ++j) columns[j * width + b] = data[b * k + j];
        }
        check_fake_quantize(f, columns, 1, k, width, fq, 0, what + " axis 0");
      }
    });
  }
}

}  // namespace
