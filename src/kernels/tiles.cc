// src/kernels/tiles.cc — dispatch for lowp/tile_kernels.h: derives the tile
// kernels' parameters, runs bands of a matrix through the best Highway target
// of tiles-inl.h (tile amaxes, tile scales, the scaled cast), the cases the
// vector path does not cover element by element through the scalar
// reference, and that reference itself (fake_quantize_tiles_reference).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/tiles.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/tiles-inl.h"

#if HWY_ONCE

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/tile_params.h"
#include "lowp/block/mx.h"
#include "lowp/error.h"
#include "lowp/kernels.h"
#include "lowp/tile_kernels.h"

namespace lowp {
namespace kernels {

HWY_EXPORT(TileAmaxBand);
HWY_EXPORT(TileBands);

namespace {

// The most 32-bit lanes of a vector on any target (HWY_MAX_BYTES / 4): room
// for the whole vectors the kernels store past an array's last element.
constexpr std::size_t kMaxLanes = 64;

// TileAmaxBand's scratch: a row's column maxima, or a group of lanes vectors.
std::size_t amax_scratch_size(std::size_t cols) {
  return std::max(cols + kMaxLanes, kMaxLanes * kMaxLanes);
}

// n rounded up to a multiple of m (m >= 1); false on overflow.
bool round_up(std::size_t n, std::size_t m, std::size_t& out) {
  const std::size_t r = n % m;
  if (r == 0) {
    out = n;
    return true;
  }
  return !__builtin_add_overflow(n, m - r, &out);
}

// The padded axis-last view's lengths: rows across the axis (padded to
// tile_rows) and along it (padded to tile_cols), and its element count;
// false when it does not fit a size_t.
struct PaddedView {
  std::size_t across = 0, along = 0, elements = 0;
};
bool padded_view(const TileQuant& q, std::size_t rows, std::size_t cols, PaddedView& v) {
  const bool last = q.axis == 1;
  return round_up(last ? rows : cols, q.tile_rows, v.across) &&
         round_up(last ? cols : rows, q.tile_cols, v.along) &&
         !__builtin_mul_overflow(v.across, v.along, &v.elements);
}

// Whether every stream position is below 2^32 (one stochastic key).
bool positions_fit(const TileQuant& q, std::size_t rows, std::size_t cols) {
  PaddedView v;
  return padded_view(q, rows, cols, v) && v.elements <= (std::uint64_t{1} << 32);
}

bool vector_path(const TileQuant& q, std::size_t rows, std::size_t cols) {
  return encode_is_vectorized(q.element) &&
         (q.rounding != Rounding::kStochastic || positions_fit(q, rows, cols));
}

// NVFP4's relative scale (amax / 6) / ts held to [2^-6, 448], NaN to 2^-6
// (as lowp::nvfp4_quantize_block).
float nvfp4_relative(float amax, float tensor_scale) {
  float relative = (amax / 6.0f) / tensor_scale;
  if (!(relative >= 0x1p-6f)) relative = relative > 448.0f ? 448.0f : 0x1p-6f;
  return std::min(relative, 448.0f);
}

// A tile's factor by the reference's steps: max scaling's s = limit * (1 /
// amax) (1 for amax 0); NVFP4's total scale ts * e4m3(relative), 0 where it
// is not > 0 and finite.
float tile_factor(const TileQuant& q, float limit, float amax, float tensor_scale) {
  if (q.nvfp4) {
    const float e4m3 = decode_f32(kFp8E4m3, encode(kFp8E4m3, nvfp4_relative(amax, tensor_scale),
                                                   {Rounding::kNearestEven, true}));
    const float total = tensor_scale * e4m3;
    return total > 0.0f && std::isfinite(total) ? total : 0.0f;
  }
  return amax > 0.0f ? (1.0f / amax) * limit : 1.0f;
}

// One element, scalar: x with its tile's factor, at stream position
// `position` (the reference's steps; formats the vector path does not cover).
float tile_value(const TileQuant& q, float x, float factor, std::uint64_t position) {
  const EncodeOptions opt{q.rounding, /*saturate=*/true};
  if (q.nvfp4) {
    if (!(factor > 0.0f)) return 0.0f;
    const float y = std::clamp(x / factor, -6.0f, 6.0f);
    return decode_f32(q.element, encode_at(q.element, y, opt, q.seed, position)) * factor;
  }
  const float y = x * factor;
  return decode_f32(q.element, encode_at(q.element, y, opt, q.seed, position)) / factor;
}

std::string nonfinite_message() {
  return "fake_quantize_tiles: the matrix holds NaN or Inf: no tile scales";
}

}  // namespace

bool tile_fake_quantize_is_vectorized(const TileQuant& q, std::size_t rows, std::size_t cols) {
  return vector_path(q, rows, cols);
}

}  // namespace kernels

TileGrid::TileGrid(const TileQuant& q, std::size_t rows_, std::size_t cols_)
    : rows(rows_), cols(cols_) {
  if (q.tile_rows == 0 || q.tile_cols == 0) {
    throw Error("fake_quantize_tiles: tile (" + std::to_string(q.tile_rows) + ", " +
                std::to_string(q.tile_cols) + ") must be positive");
  }
  if (q.axis != 0 && q.axis != 1) {
    throw Error("fake_quantize_tiles: axis " + std::to_string(q.axis) +
                " is out of range for a matrix (0 or 1)");
  }
  if (q.nvfp4 && !(q.element == kFp4E2m1)) {
    throw Error("fake_quantize_tiles: NVFP4 tiles take fp4_e2m1 elements");
  }
  kernels::PaddedView view;
  if (!kernels::padded_view(q, rows, cols, view)) {
    throw Error("fake_quantize_tiles: tile (" + std::to_string(q.tile_rows) + ", " +
                std::to_string(q.tile_cols) + ") is too large for a " + std::to_string(rows) +
                " x " + std::to_string(cols) + " matrix");
  }
  band_rows = q.axis == 1 ? q.tile_rows : q.tile_cols;
  tile_width = q.axis == 1 ? q.tile_cols : q.tile_rows;
  bands = (rows + band_rows - 1) / band_rows;
  tiles_per_band = (cols + tile_width - 1) / tile_width;
}

bool tile_amax(const TileQuant& /*q*/, const TileGrid& grid, const float* in,
               std::size_t band_begin, std::size_t band_end, float* amax) {
  std::vector<std::int32_t> scratch(kernels::amax_scratch_size(grid.cols));
  std::uint32_t worst = 0;
  for (std::size_t b = band_begin; b < band_end; ++b) {
    const std::size_t row0 = b * grid.band_rows;
    const std::size_t h = std::min(grid.band_rows, grid.rows - row0);
    worst = std::max(worst, HWY_DYNAMIC_DISPATCH(kernels::TileAmaxBand)(
                                in + row0 * grid.cols, h, grid.cols, grid.tile_width,
                                scratch.data(), amax + (b - band_begin) * grid.tiles_per_band));
  }
  return worst < 0x7F800000u;
}

bool fake_quantize_tiles(const TileQuant& q, const TileGrid& grid, const float* in, float* out,
                         std::size_t band_begin, std::size_t band_end, const float* amax,
                         float tensor_scale) {
  if (band_begin >= band_end || grid.cols == 0) return true;
  kernels::PaddedView view;
  kernels::padded_view(q, grid.rows, grid.cols, view);  // (checked by TileGrid)
  const std::uint64_t row_step = q.axis == 1 ? view.along : 1;
  const std::uint64_t col_step = q.axis == 1 ? 1 : view.along;
  const float limit = static_cast<float>(max_finite(q.element));
  const std::size_t tiles = grid.tiles_per_band;
  std::vector<std::int32_t> column_max(kernels::amax_scratch_size(grid.cols));
  std::vector<float> own_amax(tiles + kernels::kMaxLanes);
  std::vector<float> factor(grid.cols + kernels::kMaxLanes, 1.0f);
  if (kernels::vector_path(q, grid.rows, grid.cols)) {
    kernels::detail::TileQuantParams p;
    const EncodeOptions opt{q.rounding, /*saturate=*/true};
    p.rows = grid.rows;
    p.cols = grid.cols;
    p.band_rows = grid.band_rows;
    p.tile_width = grid.tile_width;
    p.tiles = tiles;
    p.nvfp4 = q.nvfp4;
    p.limit = limit;
    p.tensor_scale = tensor_scale;
    p.encode = kernels::detail::encode_params(q.element, opt);
    p.decode = kernels::detail::decode_params(q.element);
    p.rne_fast = q.rounding == Rounding::kNearestEven &&
                 kernels::detail::fake_quant_rne_params(q.element, p.encode, p.rne);
    p.key = stochastic_key(q.seed, 0);
    p.row_step = static_cast<std::uint32_t>(row_step);
    p.col_step = static_cast<std::uint32_t>(col_step);
    std::vector<float> tile_factor(tiles + kernels::kMaxLanes);
    const kernels::detail::TileScratch scratch{column_max.data(), own_amax.data(),
                                               tile_factor.data(), factor.data()};
    return HWY_DYNAMIC_DISPATCH(kernels::TileBands)(p, in, out, band_begin, band_end, amax,
                                                    scratch);
  }
  // The element cast by the scalar reference.
  for (std::size_t b = band_begin; b < band_end; ++b) {
    const std::size_t row0 = b * grid.band_rows;
    const std::size_t h = std::min(grid.band_rows, grid.rows - row0);
    const float* band_in = in + row0 * grid.cols;
    float* band_out = out + row0 * grid.cols;
    const float* band_amax = amax + (b - band_begin) * tiles;
    if (amax == nullptr) {
      const std::uint32_t worst = HWY_DYNAMIC_DISPATCH(kernels::TileAmaxBand)(
          band_in, h, grid.cols, grid.tile_width, column_max.data(), own_amax.data());
      if (worst >= 0x7F800000u) return false;
      band_amax = own_amax.data();
    }
    for (std::size_t t = 0; t < tiles; ++t) {
      const float f = kernels::tile_factor(q, limit, band_amax[t], tensor_scale);
      const std::size_t end = std::min(grid.cols, (t + 1) * grid.tile_width);
      std::fill(factor.begin() + static_cast<std::ptrdiff_t>(t * grid.tile_width),
                factor.begin() + static_cast<std::ptrdiff_t>(end), f);
    }
    for (std::size_t i = 0; i < h; ++i) {
      for (std::size_t j = 0; j < grid.cols; ++j) {
        const std::uint64_t position = (row0 + i) * row_step + j * col_step;
        band_out[i * grid.cols + j] =
            kernels::tile_value(q, band_in[i * grid.cols + j], factor[j], position);
      }
    }
  }
  return true;
}

namespace {
// A rows x cols input and an output of its size, or lowp::Error.
void check_sizes(std::size_t rows, std::size_t cols, std::span<const float> in,
                 std::span<float> out) {
  if (in.size() != rows * cols || out.size() != in.size()) {
    throw Error("fake_quantize_tiles: expected " + std::to_string(rows) + " x " +
                std::to_string(cols) + " values in and out, got " + std::to_string(in.size()) +
                " and " + std::to_string(out.size()));
  }
}
}  // namespace

void fake_quantize_tiles(const TileQuant& q, std::size_t rows, std::size_t cols,
                         std::span<const float> in, std::span<float> out) {
  const TileGrid grid(q, rows, cols);
  check_sizes(rows, cols, in, out);
  if (!q.nvfp4) {
    if (!fake_quantize_tiles(q, grid, in.data(), out.data(), 0, grid.bands, nullptr, 0.0f)) {
      throw Error(kernels::nonfinite_message());
    }
    return;
  }
  std::vector<float> amax(grid.bands * grid.tiles_per_band);
  if (!tile_amax(q, grid, in.data(), 0, grid.bands, amax.data())) {
    throw Error(kernels::nonfinite_message());
  }
  const float tensor_amax = amax.empty() ? 0.0f : *std::max_element(amax.begin(), amax.end());
  fake_quantize_tiles(q, grid, in.data(), out.data(), 0, grid.bands, amax.data(),
                      nvfp4_tensor_scale(tensor_amax));
}

void fake_quantize_tiles_reference(const TileQuant& q, std::size_t rows, std::size_t cols,
                                   std::span<const float> in, std::span<float> out) {
  const TileGrid grid(q, rows, cols);
  check_sizes(rows, cols, in, out);
  float tensor_amax = 0.0f;
  for (const float x : in) {
    if (!std::isfinite(x)) throw Error(kernels::nonfinite_message());
    tensor_amax = std::max(tensor_amax, std::fabs(x));
  }
  // The matrix turned so that the axis is last: across x along, element (r,
  // c) stored at at(r, c); the padded view's row length `along`.
  const bool last = q.axis == 1;
  const std::size_t across = last ? rows : cols, length = last ? cols : rows;
  auto at = [&](std::size_t r, std::size_t c) { return last ? r * cols + c : c * cols + r; };
  const std::size_t along = (length + q.tile_cols - 1) / q.tile_cols * q.tile_cols;
  const float ts = nvfp4_tensor_scale(tensor_amax);
  const float limit = static_cast<float>(max_finite(q.element));
  const EncodeOptions opt{q.rounding, /*saturate=*/true};
  for (std::size_t r0 = 0; r0 < across; r0 += q.tile_rows) {
    const std::size_t r1 = std::min(across, r0 + q.tile_rows);
    for (std::size_t c0 = 0; c0 < length; c0 += q.tile_cols) {
      const std::size_t c1 = std::min(length, c0 + q.tile_cols);
      float amax = 0.0f;
      for (std::size_t r = r0; r < r1; ++r) {
        for (std::size_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(in[at(r, c)]));
      }
      float scale = 1.0f, total = 0.0f;
      bool usable = false;
      if (q.nvfp4) {
        // The relative scale's E4M3 by the scalar reference itself.
        const float relative = kernels::nvfp4_relative(amax, ts);
        const float e4m3 =
            decode_f32(kFp8E4m3, encode(kFp8E4m3, relative, {Rounding::kNearestEven, true}));
        total = ts * e4m3;
        usable = total > 0.0f && std::isfinite(total);
      } else if (amax > 0.0f) {
        scale = (1.0f / amax) * limit;
      }
      for (std::size_t r = r0; r < r1; ++r) {
        for (std::size_t c = c0; c < c1; ++c) {
          const float x = in[at(r, c)];
          const std::uint64_t position = r * along + c;
          float value;
          if (q.nvfp4) {
            const float y = std::clamp(x / (usable ? total : 1.0f), -6.0f, 6.0f);
            const float e = decode_f32(q.element, encode_at(q.element, y, opt, q.seed, position));
            value = usable ? e * total : 0.0f;
          } else {
            value = decode_f32(q.element, encode_at(q.element, x * scale, opt, q.seed, position)) /
                    scale;
          }
          out[at(r, c)] = value;
        }
      }
    }
  }
}

}  // namespace lowp

#endif  // HWY_ONCE
