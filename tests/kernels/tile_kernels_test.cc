// Tile kernels (lowp/tile_kernels.h) against their scalar reference
// (fake_quantize_tiles_reference, element by element through lowp::encode_at
// and decode_f32), bit for bit, on every Highway target this machine
// supports: max scaling over the vector path's formats (FP8, FP6, FP4,
// integers, E8M0, fp16, bf16) and some the scalar path takes (fp32, posits,
// a code book), NVFP4 tiles, every rounding, both axes, the recipes' tile
// shapes and odd ones, matrices whose sides are and are not multiples of
// the tile, on data with all-zero tiles, -0, fp32 subnormals (tiles whose 1
// / amax overflows), FP32 max, and magnitudes over fp32's whole range; then
// any split into bands, NaN/Inf refusal, and bad tiles.
#include "lowp/tile_kernels.h"
#include "kernels/targets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/block/mx.h"
#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace {

using lowp::Rounding;
using lowp::TileQuant;

constexpr Rounding kRoundings[] = {Rounding::kNearestEven, Rounding::kNearestAway,
                                   Rounding::kTowardZero, Rounding::kStochastic};

struct Tile {
  std::size_t rows, cols;
};
constexpr Tile kTiles[] = {{1, 128}, {128, 128}, {1, 16}, {16, 16}, {4, 8}, {3, 5}, {1, 1}};

// rows x cols values: 8 x 8 patches of one magnitude each (2^-149 .. 2^127),
// some all zero (with -0), some fp32 subnormals, some at FP32 max.
std::vector<float> test_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-150, 126);
  std::uniform_int_distribution<int> kind(0, 11);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  const std::size_t pr = (rows + 7) / 8, pc = (cols + 7) / 8;
  std::vector<int> patch_exponent(pr * pc), patch_kind(pr * pc);
  for (std::size_t p = 0; p < pr * pc; ++p) {
    patch_exponent[p] = exponent(rng);
    patch_kind[p] = kind(rng);
  }
  std::vector<float> v(rows * cols);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const std::size_t p = (i / 8) * pc + j / 8;
      float x = std::ldexp(normal(rng), patch_exponent[p]);
      switch (patch_kind[p]) {
        case 0:
          x = (i + j) % 3 == 0 ? -0.0f : 0.0f;
          break;
        case 1:
          x = std::bit_cast<float>(any_bits(rng) & 0x807FFFFFu);  // subnormals
          break;
        case 2:
          x = (i + j) % 5 == 0 ? std::numeric_limits<float>::max() : std::ldexp(normal(rng), 126);
          break;
        case 3:
          x = std::ldexp(normal(rng), 0);  // ordinary magnitudes
          break;
        default:
          break;
      }
      v[i * cols + j] = x;
    }
  }
  return v;
}

std::vector<std::uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<std::uint32_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = std::bit_cast<std::uint32_t>(v[i]);
  return out;
}

void expect_same(const std::vector<float>& got, const std::vector<float>& want,
                 const std::vector<float>& in, std::size_t cols, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const auto g = bits_of(got), w = bits_of(want);
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (g[i] != w[i]) {
      FAIL() << what << ": first difference at (" << i / cols << ", " << i % cols
             << "), x = " << in[i] << ": got " << got[i] << " (0x" << std::hex << g[i] << "), want "
             << want[i] << " (0x" << w[i] << ")";
    }
  }
}

std::string describe(const std::string& format, const TileQuant& q, std::size_t rows,
                     std::size_t cols) {
  return format + " tile (" + std::to_string(q.tile_rows) + ", " + std::to_string(q.tile_cols) +
         ") axis " + std::to_string(q.axis) + " rounding " +
         std::to_string(static_cast<int>(q.rounding)) + " " + std::to_string(rows) + " x " +
         std::to_string(cols);
}

// fake_quantize_tiles against the reference on every target for each tile,
// axis and rounding, on matrices of the given shapes.
void check_format(const std::string& format, bool nvfp4,
                  const std::vector<std::pair<std::size_t, std::size_t>>& shapes) {
  TileQuant q;
  q.element = lowp::parse_format(format);
  q.nvfp4 = nvfp4;
  std::uint32_t seed = 1;
  for (const auto& [rows, cols] : shapes) {
    const std::vector<float> in = test_matrix(rows, cols, seed++);
    for (const Tile& tile : kTiles) {
      for (int axis = 0; axis < 2; ++axis) {
        for (const Rounding rounding : kRoundings) {
          q.tile_rows = tile.rows;
          q.tile_cols = tile.cols;
          q.axis = axis;
          q.rounding = rounding;
          q.seed = seed * 977;
          const std::string what = describe(format, q, rows, cols);
          std::vector<float> want(in.size()), got(in.size(), 7.0f);
          lowp::fake_quantize_tiles_reference(q, rows, cols, in, want);
          lowp_test::for_each_target([&] {
            lowp::fake_quantize_tiles(q, rows, cols, in, got);
            expect_same(got, want, in, cols, what);
          });
        }
      }
    }
  }
}

const std::vector<std::pair<std::size_t, std::size_t>> kShapes = {
    {37, 45}, {130, 200}, {16, 128}, {1, 1}, {2, 3}};

TEST(TileKernels, Fp8MatchesTheReference) {
  check_format("fp8_e4m3", false, kShapes);
  check_format("fp8_e5m2", false, kShapes);
}

TEST(TileKernels, NarrowFloatsMatchTheReference) {
  for (const char* f : {"fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "fp8_e4m3fnuz", "fp16", "bf16"}) {
    check_format(f, false, {{37, 45}, {16, 128}});
  }
}

TEST(TileKernels, IntegersAndE8m0MatchTheReference) {
  for (const char* f : {"int8", "int4_sym", "uint8", "e8m0"}) {
    check_format(f, false, {{37, 45}, {16, 128}});
  }
}

TEST(TileKernels, ScalarPathFormatsMatchTheReference) {
  for (const char* f : {"fp32", "posit8", "nf4"}) {
    TileQuant q;
    q.element = lowp::parse_format(f);
    EXPECT_FALSE(lowp::kernels::tile_fake_quantize_is_vectorized(q, 10, 10)) << f;
    check_format(f, false, {{37, 45}});
  }
}

TEST(TileKernels, Nvfp4MatchesTheReference) { check_format("fp4_e2m1", true, kShapes); }

// Tiles of one element: every value's own NVFP4 scale, so the E4M3 rounding
// of the relative scale meets amaxes all over fp32's range.
TEST(TileKernels, Nvfp4ScalesOfSingleElements) {
  TileQuant q;
  q.element = lowp::kFp4E2m1;
  q.nvfp4 = true;
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::vector<float> in(1 << 16);
  for (float& x : in) {
    do {
      x = std::bit_cast<float>(any_bits(rng));
    } while (!std::isfinite(x));
  }
  in[0] = 1e30f;  // a tensor scale that leaves small tiles at the 2^-6 floor
  std::vector<float> want(in.size()), got(in.size());
  lowp::fake_quantize_tiles_reference(q, 256, 256, in, want);
  lowp_test::for_each_target([&] {
    lowp::fake_quantize_tiles(q, 256, 256, in, got);
    expect_same(got, want, in, 256, "nvfp4 (1, 1) tiles");
  });
}

// An all-zero matrix (NVFP4: tensor scale 0, every total unusable), and
// one whose amax is an fp32 subnormal.
TEST(TileKernels, ZeroAndTinyMatrices) {
  for (const bool nvfp4 : {false, true}) {
    TileQuant q;
    q.element = nvfp4 ? lowp::kFp4E2m1 : lowp::kFp8E4m3;
    q.nvfp4 = nvfp4;
    q.tile_rows = 1;
    q.tile_cols = 16;
    std::vector<float> zeros(40 * 24, 0.0f);
    for (std::size_t i = 0; i < zeros.size(); i += 3) zeros[i] = -0.0f;
    std::vector<float> tiny(40 * 24);
    for (std::size_t i = 0; i < tiny.size(); ++i) {
      tiny[i] = std::bit_cast<float>(static_cast<std::uint32_t>(i * 7919 % 300) |
                                     (i % 2 ? 0x80000000u : 0u));
    }
    for (const auto* in : {&zeros, &tiny}) {
      std::vector<float> want(in->size()), got(in->size());
      lowp::fake_quantize_tiles_reference(q, 40, 24, *in, want);
      lowp_test::for_each_target([&] {
        lowp::fake_quantize_tiles(q, 40, 24, *in, got);
        expect_same(got, want, *in, 24, nvfp4 ? "nvfp4" : "fp8_e4m3");
      });
    }
  }
}

// Any split into band ranges gives the whole call's values (the stream
// positions are the matrix's, not the call's).
TEST(TileKernels, BandRangesGiveTheSameValues) {
  const std::size_t rows = 70, cols = 90;
  const std::vector<float> in = test_matrix(rows, cols, 11);
  for (const bool nvfp4 : {false, true}) {
    for (int axis = 0; axis < 2; ++axis) {
      TileQuant q;
      q.element = nvfp4 ? lowp::kFp4E2m1 : lowp::kFp8E4m3;
      q.nvfp4 = nvfp4;
      q.tile_rows = 4;
      q.tile_cols = 16;
      q.axis = axis;
      q.rounding = Rounding::kStochastic;
      q.seed = 3;
      std::vector<float> want(in.size()), got(in.size());
      lowp::fake_quantize_tiles(q, rows, cols, in, want);
      const lowp::TileGrid grid(q, rows, cols);
      std::vector<float> amax(grid.bands * grid.tiles_per_band);
      ASSERT_TRUE(lowp::tile_amax(q, grid, in.data(), 0, grid.bands, amax.data()));
      float tensor_amax = 0.0f;
      for (const float a : amax) tensor_amax = std::max(tensor_amax, a);
      const float ts = lowp::nvfp4_tensor_scale(tensor_amax);
      for (std::size_t b = 0; b < grid.bands; b += 3) {
        const std::size_t e = std::min(grid.bands, b + 3);
        const float* band_amax = nvfp4 ? amax.data() + b * grid.tiles_per_band : nullptr;
        ASSERT_TRUE(lowp::fake_quantize_tiles(q, grid, in.data(), got.data(), b, e, band_amax, ts));
      }
      expect_same(got, want, in, cols, "bands of 3, axis " + std::to_string(axis));
      // In place.
      std::vector<float> same = in;
      lowp::fake_quantize_tiles(q, rows, cols, same, same);
      expect_same(same, want, in, cols, "in place, axis " + std::to_string(axis));
    }
  }
}

TEST(TileKernels, RefuseNanInfAndBadTiles) {
  TileQuant q;
  q.element = lowp::kFp8E4m3;
  q.tile_rows = 1;
  q.tile_cols = 128;
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    std::vector<float> in(6 * 7, 1.0f), out(in.size());
    in[17] = bad;
    for (const bool nvfp4 : {false, true}) {
      q.nvfp4 = nvfp4;
      q.element = nvfp4 ? lowp::kFp4E2m1 : lowp::kFp8E4m3;
      EXPECT_THROW(lowp::fake_quantize_tiles(q, 6, 7, in, out), lowp::Error);
      EXPECT_THROW(lowp::fake_quantize_tiles_reference(q, 6, 7, in, out), lowp::Error);
    }
  }
  q.nvfp4 = false;
  q.element = lowp::kFp8E4m3;
  std::vector<float> in(4, 1.0f), out(4);
  q.tile_rows = 0;
  EXPECT_THROW(lowp::fake_quantize_tiles(q, 2, 2, in, out), lowp::Error);
  q.tile_rows = 1;
  q.axis = 2;
  EXPECT_THROW(lowp::fake_quantize_tiles(q, 2, 2, in, out), lowp::Error);
  q.axis = 1;
  q.nvfp4 = true;  // with an E4M3 element
  EXPECT_THROW(lowp::fake_quantize_tiles(q, 2, 2, in, out), lowp::Error);
  q.nvfp4 = false;
  EXPECT_THROW(lowp::fake_quantize_tiles(q, 2, 3, in, out), lowp::Error);  // sizes
}

}  // namespace
