// src/kernels/tile_params.h — what the tile kernels (tiles-inl.h) read: the
// element cast's constants (convert-inl.h's encoders and decoders) and the
// stochastic stream's layout, derived once per call in tiles.cc.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/params.h"

namespace lowp::kernels::detail {

// The element cast of convert-inl.h: EncodeAny then DecodeAny (the float,
// E8M0 or integer kernel, as encode.e8m0 / encode.integer say), or
// FakeQuantRneVec where `rne_fast` (nearest-even floats it covers: the same
// values in one pass).
struct TileQuantParams {
  // The matrix as stored: rows x cols in bands of band_rows rows, each
  // `tiles` tiles of tile_width columns (the last one partial).
  std::size_t rows = 0, cols = 0, band_rows = 1, tile_width = 1, tiles = 0;
  bool nvfp4 = false;      // NVFP4's total scale (else max / amax)
  float limit = 0;         // max scaling: the format's largest finite value
  float tensor_scale = 0;  // NVFP4's ts
  bool rne_fast = false;
  EncodeParams encode;
  DecodeParams decode;
  FakeQuantRneParams rne;
  // Stochastic rounding: element (i, j) of the matrix as stored is at stream
  // position i * row_step + j * col_step, below 2^32 (so one key for all).
  std::uint32_t key = 0;
  std::uint32_t row_step = 0, col_step = 0;
};

// A call's work space (tiles.cc allocates it; kMaxLanes = 64 covers every
// target's vector): column_max max(cols + 64, 64 * 64) int32 values; amax
// and tile_factor tiles + 64 floats; factor cols + 64 floats.
struct TileScratch {
  std::int32_t* column_max = nullptr;
  float* amax = nullptr;
  float* tile_factor = nullptr;
  float* factor = nullptr;
};

}  // namespace lowp::kernels::detail
