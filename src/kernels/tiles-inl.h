// src/kernels/tiles-inl.h — per-target kernels for lowp/tile_kernels.h: the
// tile amaxes of a band, and a band's elements scaled, cast and scaled back,
// bit-identical to the scalar reference (tiles.cc's
// fake_quantize_tiles_reference).
//
// Compiled once per Highway target (tiles.cc includes it through
// foreach_target.h). A band is h rows of `cols` contiguous fp32 values, its
// tiles `tw` columns wide; TileBands runs these steps band by band:
//  1. TileAmaxBand: each tile's amax as the largest |x| fp32 bits (an integer
//     max of the bits without sign; bits >= 0x7F800000 mean NaN or Inf).
//  2. TileFactors: one factor per tile, on vectors of tiles (max scaling: the
//     scale s; NVFP4: the total scale, 0 where it is not usable), spread
//     over the tile's columns.
//  3. TileRows: per element, y = x * s (NVFP4: clamp(x / total, -6, 6)), the
//     element cast of convert-inl.h (EncodeAny then DecodeAny, with the
//     stochastic bits of the element's position, or FakeQuantRneVec), then
//     value / s (NVFP4: value * total, or +0). Each step is the one fp32
//     operation of the definition (lowp/tile_kernels.h).

#if defined(LOWP_KERNELS_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWP_KERNELS_TILES_INL_H_
#undef LOWP_KERNELS_TILES_INL_H_
#else
#define LOWP_KERNELS_TILES_INL_H_
#endif

#include <hwy/highway.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/convert-inl.h"
#include "kernels/tile_params.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using detail::TileQuantParams;
using detail::TileScratch;

// The maxima of `count` vectors (count a multiple of the lanes; vector v at
// from + v * lanes), lane v of the result holding vector v's, stored at
// to[0, count): pairwise folds of odd and even lanes, so that after
// log2(lanes) rounds lane j of each group holds its vector j's maximum.
template <class DI>
HWY_INLINE void FoldMaxima(DI di, std::int32_t* HWY_RESTRICT from, std::size_t count,
                           std::int32_t* HWY_RESTRICT to) {
  const std::size_t lanes = hn::Lanes(di);
  for (std::size_t s = 0; s < count; s += lanes) {
    std::int32_t* set = from + s * lanes;
#if HWY_TARGET != HWY_SCALAR
    for (std::size_t n = lanes; n > 1; n /= 2) {
      for (std::size_t i = 0; i < n / 2; ++i) {
        const auto lo = hn::LoadU(di, set + 2 * i * lanes);
        const auto hi = hn::LoadU(di, set + (2 * i + 1) * lanes);
        hn::StoreU(hn::Max(hn::ConcatOdd(di, hi, lo), hn::ConcatEven(di, hi, lo)), di,
                   set + i * lanes);
      }
    }
#endif
    hn::StoreU(hn::LoadU(di, set), di, to + s);
  }
}

// Step 1 for one band: h rows of `cols` floats, tiles of tw columns (the last
// one partial when tw does not divide cols), into amax[t] (fp32). `scratch`
// holds max(cols, lanes * lanes) int32 values. Returns the largest |x| bits
// of the band.
inline HWY_NOINLINE std::uint32_t TileAmaxBand(const float* HWY_RESTRICT in, std::size_t h,
                                               std::size_t cols, std::size_t tw,
                                               std::int32_t* HWY_RESTRICT scratch,
                                               float* HWY_RESTRICT amax) {
  const hn::ScalableTag<std::int32_t> di;
  const hn::Rebind<float, decltype(di)> df;
  const std::size_t lanes = hn::Lanes(di);
  const auto magnitude = hn::Set(di, 0x7FFFFFFF);
  auto abs_bits = [&](const float* from)
                      HWY_ATTR { return hn::And(hn::BitCast(di, hn::LoadU(df, from)), magnitude); };
  auto scalar_abs_bits = [](const float* from) {
    std::int32_t bits;
    std::memcpy(&bits, from, 4);
    return bits & 0x7FFFFFFF;
  };
  const std::size_t tiles = (cols + tw - 1) / tw;
  const std::size_t whole = cols / tw;
  std::int32_t worst = 0;
  if (tw % lanes == 0) {
    // Whole tiles straight from the rows: the lane-wise maxima of tile t.
    auto tile_max = [&](std::size_t t) HWY_ATTR {
      auto m = hn::Zero(di);
      for (std::size_t i = 0; i < h; ++i) {
        const float* from = in + i * cols + t * tw;
        for (std::size_t j = 0; j < tw; j += lanes) m = hn::Max(m, abs_bits(from + j));
      }
      return m;
    };
    if (whole < lanes) {  // a few tiles: each reduced on its own
      for (std::size_t t = 0; t < whole; ++t) {
        const std::int32_t bits = hn::GetLane(hn::MaxOfLanes(di, tile_max(t)));
        amax[t] = std::bit_cast<float>(bits);
        worst = std::max(worst, bits);
      }
    } else {  // groups of lanes tiles (zero vectors past the last), folded
      HWY_ALIGN std::int32_t group[kMaxLanes32];
      auto all = hn::Zero(di);
      for (std::size_t t0 = 0; t0 < whole; t0 += lanes) {
        for (std::size_t t = t0; t < t0 + lanes; ++t) {
          const auto m = t < whole ? tile_max(t) : hn::Zero(di);
          hn::StoreU(m, di, scratch + (t - t0) * lanes);
          all = hn::Max(all, m);
        }
        FoldMaxima(di, scratch, lanes, group);
        std::memcpy(amax + t0, group, std::min(lanes, whole - t0) * sizeof(float));
      }
      worst = hn::GetLane(hn::MaxOfLanes(di, all));
    }
    if (whole < tiles) {  // the partial tile
      std::int32_t m = 0;
      for (std::size_t i = 0; i < h; ++i) {
        for (std::size_t j = whole * tw; j < cols; ++j) {
          m = std::max(m, scalar_abs_bits(in + i * cols + j));
        }
      }
      amax[whole] = std::bit_cast<float>(m);
      worst = std::max(worst, m);
    }
    return static_cast<std::uint32_t>(worst);
  }
  // Column maxima over the band's rows, then each tile's maximum of those.
  for (std::size_t i = 0; i < h; ++i) {
    const float* row = in + i * cols;
    std::size_t j = 0;
    for (; j + lanes <= cols; j += lanes) {
      auto v = abs_bits(row + j);
      if (i > 0) v = hn::Max(v, hn::LoadU(di, scratch + j));
      hn::StoreU(v, di, scratch + j);
    }
    for (; j < cols; ++j) {
      const std::int32_t v = scalar_abs_bits(row + j);
      scratch[j] = i > 0 ? std::max(scratch[j], v) : v;
    }
  }
  for (std::size_t t = 0; t < tiles; ++t) {
    const std::size_t end = std::min(cols, (t + 1) * tw);
    std::int32_t m = 0;
    for (std::size_t j = t * tw; j < end; ++j) m = std::max(m, scratch[j]);
    amax[t] = std::bit_cast<float>(m);
    worst = std::max(worst, m);
  }
  return static_cast<std::uint32_t>(worst);
}

// Step 2: each tile's factor from its amax (fp32 bits), lanes at a time.
// Max scaling: limit * (1 / amax), 1 for amax 0. NVFP4: rel = (amax / 6) /
// ts held to [2^-6, 448] (NaN to 2^-6), its E4M3 (nearest-even: in that
// range the fp32 rounded at mantissa bit 20), total = ts * e4m3, 0 where
// total is not > 0 and finite.
template <class DF>
HWY_INLINE hn::Vec<DF> TileFactor(DF df, const TileQuantParams& p,
                                  hn::Vec<hn::RebindToSigned<DF>> amax_bits) {
  const hn::RebindToUnsigned<DF> du;
  const auto amax = hn::BitCast(df, amax_bits);
  if (!p.nvfp4) {
    const auto s = hn::Mul(hn::Div(hn::Set(df, 1.0f), amax), hn::Set(df, p.limit));
    return hn::IfThenElse(hn::Gt(amax, hn::Zero(df)), s, hn::Set(df, 1.0f));
  }
  const auto ts = hn::Set(df, p.tensor_scale);
  auto relative = hn::Div(hn::Div(amax, hn::Set(df, 6.0f)), ts);
  const auto low = hn::Set(df, 0x1p-6f), high = hn::Set(df, 448.0f);
  relative = hn::IfThenElse(hn::Ge(relative, low), relative,
                            hn::IfThenElse(hn::Gt(relative, high), high, low));
  const auto r = hn::BitCast(du, hn::Min(relative, high));
  const auto rounded = hn::And(
      hn::Add(hn::Add(r, hn::Set(du, 0x7FFFFu)), hn::And(hn::ShiftRight<20>(r), hn::Set(du, 1u))),
      hn::Set(du, 0xFFF00000u));
  const auto total = hn::Mul(ts, hn::BitCast(df, rounded));
  const auto usable = hn::And(hn::Gt(total, hn::Zero(df)),
                              hn::Lt(total, hn::Set(df, std::numeric_limits<float>::infinity())));
  return hn::IfThenElseZero(usable, total);
}

// Step 2 for `tiles` tiles of tw columns: factor[j] for every column j of
// `cols` (whole vectors are stored: `factor` holds cols + lanes floats;
// `tile_factor` tiles + lanes).
inline void TileFactors(const TileQuantParams& p, const float* HWY_RESTRICT amax, std::size_t tiles,
                        std::size_t tw, std::size_t cols, float* HWY_RESTRICT tile_factor,
                        float* HWY_RESTRICT factor) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t t = 0;
  for (; t + lanes <= tiles; t += lanes) {
    hn::StoreU(TileFactor(df, p, hn::BitCast(di, hn::LoadU(df, amax + t))), df, tile_factor + t);
  }
  if (t < tiles) {
    HWY_ALIGN float rest[kMaxLanes32] = {};
    std::memcpy(rest, amax + t, (tiles - t) * sizeof(float));
    hn::StoreU(TileFactor(df, p, hn::BitCast(di, hn::Load(df, rest))), df, tile_factor + t);
  }
  // Each tile's factor over its columns, a vector at a time: a store past a
  // tile's end is overwritten by the next tile's (or lies past cols).
  for (t = 0; t < tiles; ++t) {
    const auto v = hn::Set(df, tile_factor[t]);
    const std::size_t end = std::min(cols, (t + 1) * tw);
    for (std::size_t j = t * tw; j < end; j += lanes) hn::StoreU(v, df, factor + j);
  }
}

// Step 3 for a vector x of neighbouring elements of a row with their
// columns' factors: `position` is the first lane's stream position and
// `lane_step` the lanes' offsets from it (lane * col_step).
template <bool kNvfp4, bool kRneFast, RoundKind R, int K, class DF>
HWY_INLINE hn::Vec<DF> TileValue(DF df, const TileQuantParams& p, hn::Vec<DF> x, hn::Vec<DF> factor,
                                 hn::Vec<hn::RebindToUnsigned<DF>> lane_step,
                                 std::uint32_t position) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  hn::Vec<DF> y, safe;
  hn::Mask<DF> usable;
  if constexpr (kNvfp4) {
    // clamp(x / total, -6, 6), total 1 where it is not usable (the value is
    // then +0 anyway).
    usable = hn::Gt(factor, hn::Zero(df));
    safe = hn::IfThenElse(usable, factor, hn::Set(df, 1.0f));
    y = hn::Min(hn::Max(hn::Div(x, safe), hn::Set(df, -6.0f)), hn::Set(df, 6.0f));
  } else {
    y = hn::Mul(x, factor);
  }
  hn::Vec<DF> value;
  if constexpr (kRneFast) {
    (void)lane_step;
    (void)position;
    value = FakeQuantRneVec(df, p.rne, y);
  } else {
    hn::Vec<decltype(du)> random = hn::Zero(du);
    if constexpr (R == RoundKind::kStochastic) {
      random = StochasticBits(du, hn::Add(lane_step, hn::Set(du, position)), p.key);
    } else {
      (void)lane_step;
      (void)position;
    }
    const auto code = EncodeAny<R, K>(du, p.encode, hn::BitCast(du, y), random);
    value = hn::BitCast(df, DecodeAny<K>(di, p.decode, code));
  }
  if constexpr (kNvfp4) {
    return hn::IfThenElseZero(usable, hn::Mul(value, safe));
  } else {
    return hn::Div(value, factor);
  }
}

// Step 3 for h rows of p.cols floats, the first at row `row0` of the matrix
// as stored; factor[j] for every column j (and 1 or 0 up to a whole vector
// beyond). `in` and `out` may be the same array.
template <bool kNvfp4, bool kRneFast, RoundKind R, int K>
HWY_INLINE void TileRows(const TileQuantParams& p, const float* in, float* out, std::size_t h,
                         std::size_t row0, const float* HWY_RESTRICT factor) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t cols = p.cols;
  const auto lane_step = hn::Mul(hn::Iota(du, 0u), hn::Set(du, p.col_step));
  for (std::size_t i = 0; i < h; ++i) {
    const float* from = in + i * cols;
    float* to = out + i * cols;
    // (Positions wrap modulo 2^32 as the stream's low halves do.)
    const std::uint32_t row_position = static_cast<std::uint32_t>(row0 + i) * p.row_step;
    auto position = [&](std::size_t j) {
      return row_position + static_cast<std::uint32_t>(j) * p.col_step;
    };
    std::size_t j = 0;
    for (; j + lanes <= cols; j += lanes) {
      const auto v = TileValue<kNvfp4, kRneFast, R, K>(
          df, p, hn::LoadU(df, from + j), hn::LoadU(df, factor + j), lane_step, position(j));
      hn::StoreU(v, df, to + j);
    }
    if (j == cols) continue;
    // The tail through the same vector code via a padded copy.
    HWY_ALIGN float tail[kMaxLanes32] = {};
    const std::size_t rest = cols - j;
    std::memcpy(tail, from + j, rest * sizeof(float));
    const auto v = TileValue<kNvfp4, kRneFast, R, K>(
        df, p, hn::Load(df, tail), hn::LoadU(df, factor + j), lane_step, position(j));
    hn::Store(v, df, tail);
    std::memcpy(to + j, tail, rest * sizeof(float));
  }
}

// Steps 1-3 for bands [band_begin, band_end), from the last to the first
// (after tile_amax over the same bands, the ones it read last are still in
// cache). `amax`: those bands' tile amaxes, or null to find each band's
// first (then false when one holds a NaN or an Inf).
template <bool kNvfp4, bool kRneFast, RoundKind R, int K>
HWY_NOINLINE bool TileBandsImpl(const TileQuantParams& params, const float* in, float* out,
                                std::size_t band_begin, std::size_t band_end, const float* amax,
                                const TileScratch& scratch) {
  const TileQuantParams p = params;  // not aliased by the stores
  for (std::size_t b = band_end; b-- > band_begin;) {
    const std::size_t row0 = b * p.band_rows;
    const std::size_t h = std::min(p.band_rows, p.rows - row0);
    const float* band_in = in + row0 * p.cols;
    const float* band_amax = amax + (b - band_begin) * p.tiles;
    if (amax == nullptr) {
      const std::uint32_t worst =
          TileAmaxBand(band_in, h, p.cols, p.tile_width, scratch.column_max, scratch.amax);
      if (worst >= 0x7F800000u) return false;
      band_amax = scratch.amax;
    }
    TileFactors(p, band_amax, p.tiles, p.tile_width, p.cols, scratch.tile_factor, scratch.factor);
    TileRows<kNvfp4, kRneFast, R, K>(p, band_in, out + row0 * p.cols, h, row0, scratch.factor);
  }
  return true;
}

template <bool kNvfp4, int K>
HWY_INLINE bool TileBandsOf(const TileQuantParams& p, const float* in, float* out,
                            std::size_t band_begin, std::size_t band_end, const float* amax,
                            const TileScratch& scratch) {
  switch (p.encode.round) {
    case RoundKind::kNearestEven:
      if constexpr (K == kFloatKernel) {
        if (p.rne_fast) {
          return TileBandsImpl<kNvfp4, true, RoundKind::kNearestEven, K>(p, in, out, band_begin,
                                                                         band_end, amax, scratch);
        }
      }
      return TileBandsImpl<kNvfp4, false, RoundKind::kNearestEven, K>(p, in, out, band_begin,
                                                                      band_end, amax, scratch);
    case RoundKind::kNearestAway:
      return TileBandsImpl<kNvfp4, false, RoundKind::kNearestAway, K>(p, in, out, band_begin,
                                                                      band_end, amax, scratch);
    case RoundKind::kTowardZero:
      return TileBandsImpl<kNvfp4, false, RoundKind::kTowardZero, K>(p, in, out, band_begin,
                                                                     band_end, amax, scratch);
    case RoundKind::kStochastic:
      return TileBandsImpl<kNvfp4, false, RoundKind::kStochastic, K>(p, in, out, band_begin,
                                                                     band_end, amax, scratch);
  }
  return true;
}

inline bool TileBands(const TileQuantParams& p, const float* in, float* out, std::size_t band_begin,
                      std::size_t band_end, const float* amax, const TileScratch& scratch) {
  if (p.nvfp4) {  // E2M1 elements: the float kernel
    return TileBandsOf<true, kFloatKernel>(p, in, out, band_begin, band_end, amax, scratch);
  }
  if (p.encode.e8m0) {
    return TileBandsOf<false, kE8m0Kernel>(p, in, out, band_begin, band_end, amax, scratch);
  }
  if (p.encode.integer) {
    return TileBandsOf<false, kIntKernel>(p, in, out, band_begin, band_end, amax, scratch);
  }
  return TileBandsOf<false, kFloatKernel>(p, in, out, band_begin, band_end, amax, scratch);
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
