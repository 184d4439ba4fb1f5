// src/kernels/gemv-inl.h — per-target kernels for products with packed weights
// (gemv.h states the weight model and the column order; gemv.cc dispatches).
//
// Two paths:
//  * Fused (n <= 4 activation rows, i.e. GEMV and small batches): each chunk of
//    a weight row is loaded as codes, decoded in registers (widening, a byte
//    table lookup, or an 8-bit float placed into an IEEE half and converted),
//    multiplied by its segment's multiplier and FMA'd into two fp32
//    accumulators per activation row; the accumulators are summed across lanes
//    at the end of the row, then the scalar tail is added in column order.
//  * Tiled (n > 4): kTileRows weight rows are decoded once into an fp32 tile
//    (the same decoded values), then a register-blocked kernel multiplies the
//    tile with kTileRows x kTileCols blocks of activation rows, one accumulator
//    per (weight row, activation row) pair, so every decoded weight is reused
//    n times from cache.
// Both orders of summation depend only on the target and the path, never on
// which rows a thread was given.

#if defined(LOWP_KERNELS_GEMV_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWP_KERNELS_GEMV_INL_H_
#undef LOWP_KERNELS_GEMV_INL_H_
#else
#define LOWP_KERNELS_GEMV_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/gemv.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Weight rows decoded per tile, and activation rows per register block.
constexpr std::size_t kTileRows = 4;
constexpr std::size_t kTileCols = HWY_MAX_BYTES >= 64 ? 4 : 2;

// IEEE half -> float, exact (scalar, for the group scales and the tail).
HWY_INLINE float HalfToFloat(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else {
    // Subnormal (or zero): mantissa * 2^-24 is exact in fp32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    std::memcpy(&bits, &magnitude, sizeof(bits));
    bits |= sign;
  }
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

HWY_INLINE float Multiplier(const GemvParams& p, std::size_t r, std::size_t segment) {
  switch (p.scale) {
    case ScaleSource::kRow:
      return p.row_multiplier != nullptr ? p.row_multiplier[r] : 1.0f;
    case ScaleSource::kU8Table:
      return p.u8_table[p.u8_scales[r * p.segments_per_row + segment]];
    case ScaleSource::kF16:
      return HalfToFloat(p.f16_scales[r * p.segments_per_row + segment]) * p.f16_factor;
  }
  return 1.0f;
}

// The weight at (r, c), scalar (the tail of a row).
HWY_INLINE float ScalarWeight(const GemvParams& p, const std::uint8_t* row, std::size_t r,
                              std::size_t c) {
  float v = 0.0f;
  switch (p.decode) {
    case WeightDecode::kF32:
      std::memcpy(&v, row + 4 * c, sizeof(v));
      break;
    case WeightDecode::kBf16: {
      std::uint16_t h;
      std::memcpy(&h, row + 2 * c, sizeof(h));
      const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
      std::memcpy(&v, &bits, sizeof(v));
      break;
    }
    case WeightDecode::kF16: {
      std::uint16_t h;
      std::memcpy(&h, row + 2 * c, sizeof(h));
      v = HalfToFloat(h);
      break;
    }
    case WeightDecode::kViaF16:
    case WeightDecode::kInt8:
      v = p.fast_value[row[c]];
      break;
    case WeightDecode::kNibble:
      v = p.fast_value[(row[c / 2] >> (4 * (c & 1))) & 0xF];
      break;
  }
  return v * Multiplier(p, r, c >> p.segment_shift);
}

// Decodes the chunk of a row that starts at column c into kVecs vectors,
// multiplied by m.
template <WeightDecode K>
struct Decoder {
  static constexpr std::size_t kVecs = K == WeightDecode::kNibble ? 2 : 1;

  template <class D>
  static HWY_INLINE void Decode(D d, const GemvParams& p, const std::uint8_t* row, std::size_t c,
                                hn::Vec<D> m, hn::Vec<D>* w) {
    if constexpr (K == WeightDecode::kF32) {
      w[0] = hn::Mul(hn::LoadU(d, reinterpret_cast<const float*>(row) + c), m);
    } else if constexpr (K == WeightDecode::kBf16) {
      const hn::Rebind<std::uint16_t, D> d16;
      const hn::Rebind<std::uint32_t, D> d32;
      const auto u =
          hn::PromoteTo(d32, hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(row) + c));
      w[0] = hn::Mul(hn::BitCast(d, hn::ShiftLeft<16>(u)), m);
    } else if constexpr (K == WeightDecode::kF16) {
      const hn::Rebind<hwy::float16_t, D> dh;
      w[0] = hn::Mul(
          hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + c)), m);
    } else if constexpr (K == WeightDecode::kViaF16) {
      const hn::Rebind<std::uint8_t, D> d8;
      const hn::Rebind<std::uint16_t, D> d16;
      const hn::Rebind<hwy::float16_t, D> dh;
      const auto b = hn::PromoteTo(d16, hn::LoadU(d8, row + c));
      const auto bits = hn::Or(hn::ShiftLeft<8>(hn::And(b, hn::Set(d16, 0x80))),
                               hn::ShiftLeftSame(hn::And(b, hn::Set(d16, 0x7F)), p.f16_shift));
      w[0] = hn::Mul(hn::PromoteTo(d, hn::BitCast(dh, bits)), m);
    } else if constexpr (K == WeightDecode::kInt8) {
      const hn::Rebind<std::int8_t, D> d8;
      const hn::Rebind<std::int32_t, D> d32;
      const auto v =
          hn::PromoteTo(d32, hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(row) + c));
      w[0] = hn::Mul(hn::ConvertTo(d, v), m);
    } else {
      // Lanes(d) bytes hold the chunk's 2 * Lanes(d) nibbles: low nibbles are
      // the even columns, high nibbles the odd ones.
      const hn::Rebind<std::uint8_t, D> d8;
      const hn::Rebind<std::int8_t, D> di8;
      const hn::Rebind<std::int32_t, D> d32;
      const auto bytes = hn::LoadU(d8, row + c / 2);
      const auto lo = hn::And(bytes, hn::Set(d8, 0x0F));
      const auto hi = hn::ShiftRight<4>(bytes);
#if HWY_TARGET == HWY_SCALAR
      // One lane: the table lookup is a scalar load.
      const auto vlo = hn::Set(di8, p.nibble_table[hn::GetLane(lo)]);
      const auto vhi = hn::Set(di8, p.nibble_table[hn::GetLane(hi)]);
#else
      const hn::Full128<std::int8_t> dt;
      const auto table = hn::LoadU(dt, p.nibble_table);
      const auto vlo = hn::BitCast(di8, hn::TableLookupBytes(table, lo));
      const auto vhi = hn::BitCast(di8, hn::TableLookupBytes(table, hi));
#endif
      w[0] = hn::Mul(hn::ConvertTo(d, hn::PromoteTo(d32, vlo)), m);
      w[1] = hn::Mul(hn::ConvertTo(d, hn::PromoteTo(d32, vhi)), m);
    }
  }
};

// The vector tag of a decode: nibble chunks use at most 8 fp32 lanes, so that a
// chunk (16 columns) fits in an NVFP4 block.
template <WeightDecode K>
using TagFor =
    std::conditional_t<K == WeightDecode::kNibble, hn::CappedTag<float, 8>, hn::ScalableTag<float>>;

template <WeightDecode K>
HWY_INLINE std::size_t ChunkOf() {
  return Decoder<K>::kVecs * hn::Lanes(TagFor<K>());
}

// Fused path for NR activation rows.
template <WeightDecode K, std::size_t NR>
HWY_NOINLINE void FusedRows(const GemvParams& p, const float* x, std::size_t ldx, float* y,
                            std::size_t ldy, std::size_t r0, std::size_t r1) {
  const TagFor<K> d;
  using V = hn::Vec<decltype(d)>;
  constexpr std::size_t kVecs = Decoder<K>::kVecs;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t chunk = kVecs * lanes;
  const std::size_t vector_end = p.cols - p.cols % chunk;
  for (std::size_t r = r0; r < r1; ++r) {
    const std::uint8_t* row = p.codes + r * p.row_bytes;
    V acc[NR][2];
    for (std::size_t j = 0; j < NR; ++j) acc[j][0] = acc[j][1] = hn::Zero(d);
    auto step = [&](std::size_t c, std::size_t h) HWY_ATTR {
      V w[kVecs];
      Decoder<K>::Decode(d, p, row, c, hn::Set(d, Multiplier(p, r, c >> p.segment_shift)), w);
      for (std::size_t v = 0; v < kVecs; ++v) {
        for (std::size_t j = 0; j < NR; ++j) {
          V& a = acc[j][(h + v) & 1];
          a = hn::MulAdd(w[v], hn::LoadU(d, x + j * ldx + c + v * lanes), a);
        }
      }
    };
    std::size_t c = 0;
    for (; c + 2 * chunk <= vector_end; c += 2 * chunk) {
      step(c, 0);
      step(c + chunk, 1);
    }
    if (c < vector_end) step(c, 0);
    for (std::size_t j = 0; j < NR; ++j) {
      float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc[j][0], acc[j][1])));
      for (std::size_t t = vector_end; t < p.cols; ++t) {
        sum += ScalarWeight(p, row, r, t) * x[j * ldx + t];
      }
      y[j * ldy + r] = sum;
    }
  }
}

// Decodes rows [r, r + count) into tile (cols values per row, ld apart).
template <WeightDecode K>
HWY_NOINLINE void DecodeRows(const GemvParams& p, std::size_t r, std::size_t count, float* tile,
                             std::size_t ld) {
  const TagFor<K> d;
  using V = hn::Vec<decltype(d)>;
  constexpr std::size_t kVecs = Decoder<K>::kVecs;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t chunk = kVecs * lanes;
  const std::size_t vector_end = p.cols - p.cols % chunk;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint8_t* row = p.codes + (r + i) * p.row_bytes;
    float* out = tile + i * ld;
    for (std::size_t c = 0; c < vector_end; c += chunk) {
      V w[kVecs];
      Decoder<K>::Decode(d, p, row, c, hn::Set(d, Multiplier(p, r + i, c >> p.segment_shift)), w);
      for (std::size_t v = 0; v < kVecs; ++v) hn::StoreU(w[v], d, out + c + v * lanes);
    }
    for (std::size_t c = vector_end; c < p.cols; ++c) out[c] = ScalarWeight(p, row, r + i, c);
  }
}

// y[j * ldy + i] = tile row i . x row j for i < MR, j < NR.
template <std::size_t MR, std::size_t NR>
HWY_INLINE void TileBlock(const float* tile, std::size_t ld, std::size_t cols, const float* x,
                          std::size_t ldx, float* y, std::size_t ldy) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t vector_end = cols - cols % lanes;
  V acc[MR][NR];
  for (std::size_t i = 0; i < MR; ++i) {
    for (std::size_t j = 0; j < NR; ++j) acc[i][j] = hn::Zero(d);
  }
  for (std::size_t k = 0; k < vector_end; k += lanes) {
    V w[MR];
    for (std::size_t i = 0; i < MR; ++i) w[i] = hn::LoadU(d, tile + i * ld + k);
    for (std::size_t j = 0; j < NR; ++j) {
      const V xv = hn::LoadU(d, x + j * ldx + k);
      for (std::size_t i = 0; i < MR; ++i) acc[i][j] = hn::MulAdd(w[i], xv, acc[i][j]);
    }
  }
  for (std::size_t i = 0; i < MR; ++i) {
    for (std::size_t j = 0; j < NR; ++j) {
      float sum = hn::GetLane(hn::SumOfLanes(d, acc[i][j]));
      for (std::size_t c = vector_end; c < cols; ++c) sum += tile[i * ld + c] * x[j * ldx + c];
      y[j * ldy + i] = sum;
    }
  }
}

template <std::size_t MR>
HWY_NOINLINE void TileRowsTimesX(const float* tile, std::size_t ld, std::size_t cols,
                                 const float* x, std::size_t n, std::size_t ldx, float* y,
                                 std::size_t ldy) {
  std::size_t j = 0;
  for (; j + kTileCols <= n; j += kTileCols) {
    TileBlock<MR, kTileCols>(tile, ld, cols, x + j * ldx, ldx, y + j * ldy, ldy);
  }
  for (; j < n; ++j) TileBlock<MR, 1>(tile, ld, cols, x + j * ldx, ldx, y + j * ldy, ldy);
}

HWY_INLINE void TileTimesX(const float* tile, std::size_t ld, std::size_t count, std::size_t cols,
                           const float* x, std::size_t n, std::size_t ldx, float* y,
                           std::size_t ldy) {
  static_assert(kTileRows == 4);
  switch (count) {
    case 4:
      return TileRowsTimesX<4>(tile, ld, cols, x, n, ldx, y, ldy);
    case 3:
      return TileRowsTimesX<3>(tile, ld, cols, x, n, ldx, y, ldy);
    case 2:
      return TileRowsTimesX<2>(tile, ld, cols, x, n, ldx, y, ldy);
    default:
      return TileRowsTimesX<1>(tile, ld, cols, x, n, ldx, y, ldy);
  }
}

template <WeightDecode K>
void PackedGemmOf(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* y,
                  std::size_t ldy, std::size_t r0, std::size_t r1) {
  switch (n) {
    case 0:
      return;
    case 1:
      return FusedRows<K, 1>(p, x, ldx, y, ldy, r0, r1);
    case 2:
      return FusedRows<K, 2>(p, x, ldx, y, ldy, r0, r1);
    case 3:
      return FusedRows<K, 3>(p, x, ldx, y, ldy, r0, r1);
    case 4:
      return FusedRows<K, 4>(p, x, ldx, y, ldy, r0, r1);
    default:
      break;
  }
  std::vector<float> tile(kTileRows * p.cols);
  for (std::size_t r = r0; r < r1; r += kTileRows) {
    const std::size_t count = r1 - r < kTileRows ? r1 - r : kTileRows;
    DecodeRows<K>(p, r, count, tile.data(), p.cols);
    TileTimesX(tile.data(), p.cols, count, p.cols, x, n, ldx, y + r, ldy);
  }
}

void PackedGemm(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* y,
                std::size_t ldy, std::size_t r0, std::size_t r1) {
  switch (p.decode) {
    case WeightDecode::kF32:
      return PackedGemmOf<WeightDecode::kF32>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kBf16:
      return PackedGemmOf<WeightDecode::kBf16>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kF16:
      return PackedGemmOf<WeightDecode::kF16>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kViaF16:
      return PackedGemmOf<WeightDecode::kViaF16>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kInt8:
      return PackedGemmOf<WeightDecode::kInt8>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kNibble:
      return PackedGemmOf<WeightDecode::kNibble>(p, x, n, ldx, y, ldy, r0, r1);
  }
}

void DenseGemm(FillRow fill, const void* ctx, std::size_t cols, const float* x, std::size_t n,
               std::size_t ldx, float* y, std::size_t ldy, std::size_t r0, std::size_t r1) {
  std::vector<float> tile(kTileRows * cols);
  for (std::size_t r = r0; r < r1; r += kTileRows) {
    const std::size_t count = r1 - r < kTileRows ? r1 - r : kTileRows;
    for (std::size_t i = 0; i < count; ++i) fill(ctx, r + i, tile.data() + i * cols);
    TileTimesX(tile.data(), cols, count, cols, x, n, ldx, y + r, ldy);
  }
}

std::size_t GemvChunk(WeightDecode decode) {
  switch (decode) {
    case WeightDecode::kNibble:
      return ChunkOf<WeightDecode::kNibble>();
    default:
      return ChunkOf<WeightDecode::kF32>();
  }
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // LOWP_KERNELS_GEMV_INL_H_
