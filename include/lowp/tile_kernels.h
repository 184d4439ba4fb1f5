// lowp/tile_kernels.h — fine-grained scaled fake quantization of a 2-D fp32
// matrix: one fp32 scale per tile of (tile_rows, tile_cols) elements,
// tile_cols along the reduction axis, as in DeepSeek-V3's FP8 training
// recipe (1 x 128 activation tiles, 128 x 128 weight tiles), or NVFP4's
// two-level scale per tile (NVIDIA's NVFP4 recipe: 16 x 16 weight tiles).
// lowp.torch's fake_quant_tiles (python/lowp/torch/ops.py) runs on this.
//
// The definition, in the matrix turned so that the axis is last (rows x K,
// K = the axis length) and zero-padded to whole tiles (Kp = K rounded up to
// a multiple of tile_cols); amax = the tile's largest |x|; every step one
// fp32 operation, rounded to nearest-even:
//   max scaling (any scalar format f): s = max_finite(f) * (1 / amax), two
//     roundings as torch's `max / amax` (1 / amax first), or 1 where amax is
//     0; value = fake(x * s) / s, `fake` the cast to f and back, saturating
//     (lowp::fake_quantize_f32 with saturate).
//   NVFP4 (f = fp4_e2m1): with the tensor scale ts = tensor amax / 2688
//     (lowp::nvfp4_tensor_scale), rel = (amax / 6) / ts, held to [2^-6, 448]
//     (NaN, from an all-zero tensor, gives 2^-6) and rounded to E4M3
//     (nearest-even); total = ts * rel; value = fake(clamp(x / total, -6, 6))
//     * total, or +0 where total is not > 0 and finite.
// Stochastic rounding of the element at (r, c) of the turned matrix uses
// stochastic_bits(seed, r * Kp + c): its C-order index in the padded view.
// (For axis 1 that is (i, j) -> i * Kp + j; for axis 0, (i, j) -> j * Kp + i.)
// Tiles at the matrix's edges are partial; the padding zeros change no amax.
//
// The work is in bands: a band is one tile's height of the matrix as stored
// (tile_rows rows for axis 1, tile_cols rows for axis 0), all its columns.
// Bands are independent (but NVFP4's tensor scale, from every band's amax),
// so callers split them across threads; every result is the same for any
// split.
//
// Vector path (Highway, runtime dispatch): every format of the bulk kernels'
// vector path (lowp::kernels::encode_is_vectorized), every rounding
// (stochastic where the padded view holds at most 2^32 elements: one
// stochastic key). Other cases cast element by element through the scalar
// reference. Both give the bits of fake_quantize_tiles_reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "lowp/format/convert.h"
#include "lowp/format/format.h"

namespace lowp {

// How tiles are scaled and cast.
struct TileQuant {
  Format element;             // the cast; fp4_e2m1 for NVFP4
  bool nvfp4 = false;         // NVFP4's two-level scale instead of max / amax
  std::size_t tile_rows = 1;  // across the axis
  std::size_t tile_cols = 1;  // along the axis
  int axis = 1;               // the reduction axis: 1 (along a row) or 0
  Rounding rounding = Rounding::kNearestEven;
  std::uint64_t seed = 0;
};

// A rows x cols C-order matrix under a TileQuant: its band and tile counts.
// Throws lowp::Error for a tile with a zero side, an axis other than 0 or 1,
// or NVFP4 with an element other than fp4_e2m1.
struct TileGrid {
  TileGrid(const TileQuant& q, std::size_t rows, std::size_t cols);
  std::size_t rows = 0, cols = 0;
  std::size_t band_rows = 1;       // a band's height (the tile's, as stored)
  std::size_t tile_width = 1;      // a tile's width as stored
  std::size_t bands = 0;           // ceil(rows / band_rows)
  std::size_t tiles_per_band = 0;  // ceil(cols / tile_width)
};

// The largest |x| of each tile of bands [band_begin, band_end), into
// amax[(b - band_begin) * tiles_per_band + t] (tile t of band b, left to
// right). Returns false when the bands hold a NaN or an Inf (the amaxes are
// then unspecified). On the calling thread.
bool tile_amax(const TileQuant& q, const TileGrid& grid, const float* in, std::size_t band_begin,
               std::size_t band_end, float* amax);

// Fake-quantizes bands [band_begin, band_end) of `in` into the same elements
// of `out` (the whole matrices; they may be the same array). `amax` holds
// those bands' tile amaxes (as tile_amax writes them), or is null: then each
// band's are found here first (max scaling only; NVFP4 needs the tensor's
// amax first). `tensor_scale`: NVFP4's ts (ignored by max scaling). Returns
// false, with the bands' output unspecified, when amax is null and a band
// holds a NaN or an Inf. On the calling thread.
bool fake_quantize_tiles(const TileQuant& q, const TileGrid& grid, const float* in, float* out,
                         std::size_t band_begin, std::size_t band_end, const float* amax,
                         float tensor_scale);

// The whole matrix on the calling thread (NVFP4's tensor scale from its
// amax). Throws lowp::Error when it holds a NaN or an Inf, or when the sizes
// differ from rows * cols.
void fake_quantize_tiles(const TileQuant& q, std::size_t rows, std::size_t cols,
                         std::span<const float> in, std::span<float> out);

// The scalar reference of the whole matrix, element by element from the
// definition above through lowp::encode_at / decode_f32 (the same checks).
void fake_quantize_tiles_reference(const TileQuant& q, std::size_t rows, std::size_t cols,
                                   std::span<const float> in, std::span<float> out);

namespace kernels {
// Whether fake_quantize_tiles takes the vector path for q on a rows x cols
// matrix.
bool tile_fake_quantize_is_vectorized(const TileQuant& q, std::size_t rows, std::size_t cols);
}  // namespace kernels

}  // namespace lowp
