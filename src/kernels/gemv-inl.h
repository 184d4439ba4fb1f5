// src/kernels/gemv-inl.h — per-target kernels for products with packed weights
// (gemv.h states the weight model and the column order; gemv.cc dispatches).
//
// Two paths:
//  * Fused (n <= 4 activation rows, i.e. GEMV and small batches): each chunk of
//    a weight row is loaded as codes, decoded in registers (widening, a byte
//    table lookup, an 8-bit float placed into an IEEE half and converted or
//    straight into fp32 bits, or 6-bit codes unpacked from their bit stream
//    and looked up in a table),
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

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "lowp/gemv_kernels.h"

// On AVX-512 a 4-bit code is decoded by a lane permute of a 16-entry fp32
// table (vpermps); elsewhere by a byte shuffle to int8, widened.
#undef LOWP_GEMV_LANE_TABLE
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define LOWP_GEMV_LANE_TABLE 1
#else
#define LOWP_GEMV_LANE_TABLE 0
#endif

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Weight rows decoded per tile, and activation rows per register block.
constexpr std::size_t kTileRows = 4;
constexpr std::size_t kTileCols = HWY_MAX_BYTES >= 64 ? 6 : 2;

// IEEE half -> float by its bits, exact.
HWY_INLINE float HalfToFloatBits(std::uint16_t h) {
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

// IEEE half -> float, exact (scalar, for the group scales and the tail), with
// the target's conversion instruction where it has one.
HWY_INLINE float HalfToFloat(std::uint16_t h) {
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128 && HWY_TARGET != HWY_SSSE3 && \
    HWY_TARGET != HWY_SSE4
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<std::uint16_t, decltype(d1)> du1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::GetLane(hn::PromoteTo(d1, hn::BitCast(dh1, hn::Set(du1, h))));
#else
  return HalfToFloatBits(h);
#endif
}

// The multiplier of a segment, with the scale source known at compile time.
template <ScaleSource kScale>
HWY_INLINE float MultiplierOf(const GemvParams& p, std::size_t r, std::size_t segment) {
  if constexpr (kScale == ScaleSource::kRow) {
    return p.row_multiplier != nullptr ? p.row_multiplier[r] : 1.0f;
  } else if constexpr (kScale == ScaleSource::kU8Table) {
    return p.u8_table[p.u8_scales[r * p.segments_per_row + segment]];
  } else {
    return HalfToFloat(p.f16_scales[r * p.segments_per_row + segment]) * p.f16_factor;
  }
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
    case WeightDecode::kViaF32:
    case WeightDecode::kInt8:
      v = p.fast_value[row[c]];
      break;
    case WeightDecode::kNibble:
      v = p.fast_value[(row[c / 2] >> (4 * (c & 1))) & 0xF];
      break;
    case WeightDecode::kSixBit: {
      // Bits 6c..6c+5: in one byte, or reaching into the next (which then
      // exists, since the code ends there).
      const std::size_t bit = 6 * c, byte = bit / 8;
      const unsigned shift = static_cast<unsigned>(bit % 8);
      unsigned word = row[byte];
      if (shift > 2) word |= static_cast<unsigned>(row[byte + 1]) << 8;
      v = p.fast_value[(word >> shift) & 0x3Fu];
      break;
    }
  }
  return v * Multiplier(p, r, c >> p.segment_shift);
}

#if LOWP_GEMV_LANE_TABLE
// 4-bit codes through a 16-lane table (the fast values, or them times a
// multiplier): vpermps reads only the low 4 bits of each index, so the low
// nibble needs no mask.
template <class D>
HWY_INLINE void DecodeTable(D d, hn::Vec<D> table, const std::uint8_t* row, std::size_t c,
                            hn::Vec<D>* w) {
  const hn::Rebind<std::uint8_t, D> d8;
  const hn::RebindToUnsigned<D> du;
  const auto wide = hn::PromoteTo(du, hn::LoadU(d8, row + c / 2));
  w[0] = hn::Vec<D>{_mm512_permutexvar_ps(wide.raw, table.raw)};
  w[1] = hn::Vec<D>{_mm512_permutexvar_ps(hn::ShiftRight<4>(wide).raw, table.raw)};
}

// 32 6-bit codes, the 24 bytes at `bytes`, as 32 fp32 values in w[0] (the
// first 16 columns) and w[1]. Each 128-bit lane L gets (by a dword permute)
// the bytes of codes 4L..4L+3 and 16+4L..16+4L+3 (three bytes each, some
// bytes in); a byte shuffle puts the two bytes that hold each of those codes
// in a 16-bit lane, a shift by {0, 6, 4, 2}[k % 4] brings the code to bit 0,
// vpermt2w looks its six bits up in the 64 top halves of the fp32 values
// (lo: codes 0-31), and interleaving with zeros makes them fp32 again: the
// low four words of each lane are columns 4L.. (w[0]), the high four 16+4L..
HWY_INLINE void DecodeSix(__m512i lo, __m512i hi, const std::uint8_t* bytes, __m512* w) {
  alignas(64) static constexpr std::uint8_t kPick[64] = {
      0, 1, 0, 1, 1, 2, 2, 3, 8,  9,  8,  9,  9,  10, 10, 11,   // lane 0: groups at 0, 8
      3, 4, 3, 4, 4, 5, 5, 6, 11, 12, 11, 12, 12, 13, 13, 14,   // lane 1: at 3, 11
      2, 3, 2, 3, 3, 4, 4, 5, 10, 11, 10, 11, 11, 12, 12, 13,   // lane 2: at 2, 10
      1, 2, 1, 2, 2, 3, 3, 4, 9,  10, 9,  10, 10, 11, 11, 12};  // lane 3: at 1, 9
  alignas(64) static constexpr std::int32_t kDwords[16] = {0, 1, 3, 4, 0, 1, 3, 4,
                                                           1, 2, 4, 5, 2, 3, 5, 6};
  const __m512i pick = _mm512_load_si512(kPick);
  const __m512i dwords = _mm512_load_si512(kDwords);
  const __m512i shift = _mm512_set1_epi64(0x0002000400060000LL);  // words 0-3: 0, 6, 4, 2
  const __m512i packed = _mm512_maskz_loadu_epi8(0xFFFFFF, bytes);
  const __m512i spread = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(dwords, packed), pick);
  const __m512i top = _mm512_permutex2var_epi16(lo, _mm512_srlv_epi16(spread, shift), hi);
  const __m512i zero = _mm512_setzero_si512();
  w[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, top));
  w[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, top));
}
#endif

// Decodes the chunk of a row that starts at column c into kVecs vectors of
// fast values (not yet multiplied).
template <WeightDecode K>
struct Decoder {
  // A 6-bit chunk is whole groups of four codes (three bytes).
  static constexpr std::size_t kVecs = K == WeightDecode::kNibble                               ? 2
                                       : K == WeightDecode::kSixBit && LOWP_GEMV_LANE_TABLE     ? 2
                                       : K == WeightDecode::kSixBit && HWY_TARGET == HWY_SCALAR ? 4
                                                                                                : 1;

  template <class D>
  static HWY_INLINE void Decode(D d, const GemvParams& p, const std::uint8_t* row, std::size_t c,
                                hn::Vec<D>* w) {
    if constexpr (K == WeightDecode::kF32) {
      w[0] = hn::LoadU(d, reinterpret_cast<const float*>(row) + c);
    } else if constexpr (K == WeightDecode::kBf16) {
      const hn::Rebind<std::uint16_t, D> d16;
      const hn::Rebind<std::uint32_t, D> d32;
      const auto u =
          hn::PromoteTo(d32, hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(row) + c));
      w[0] = hn::BitCast(d, hn::ShiftLeft<16>(u));
    } else if constexpr (K == WeightDecode::kF16) {
      const hn::Rebind<hwy::float16_t, D> dh;
      w[0] = hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + c));
    } else if constexpr (K == WeightDecode::kViaF16) {
      const hn::Rebind<std::uint8_t, D> d8;
      const hn::Rebind<std::uint16_t, D> d16;
      const hn::Rebind<hwy::float16_t, D> dh;
      const hn::RebindToSigned<decltype(d16)> di16;
      // The code in the top byte, then an arithmetic shift right by
      // 8 - f16_shift, which leaves the sign in bit 15 and copies of it below,
      // removed by the mask.
      const auto top =
          hn::BitCast(di16, hn::ShiftLeft<8>(hn::PromoteTo(d16, hn::LoadU(d8, row + c))));
      const auto bits = hn::And(hn::ShiftRightSame(top, 8 - p.f16_shift),
                                hn::Set(di16, static_cast<std::int16_t>(p.f16_mask)));
      w[0] = hn::PromoteTo(d, hn::BitCast(dh, bits));
    } else if constexpr (K == WeightDecode::kViaF32) {
      // Sign-extended: the sign in bit 31 and copies of it down to bit 7,
      // which the shift and the mask remove.
      const hn::Rebind<std::int8_t, D> d8;
      const hn::RebindToSigned<D> di;
      const auto wide =
          hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(row) + c));
      w[0] = hn::BitCast(d, hn::And(hn::ShiftLeftSame(wide, p.f32_shift),
                                    hn::Set(di, static_cast<std::int32_t>(p.f32_mask))));
    } else if constexpr (K == WeightDecode::kInt8) {
      const hn::Rebind<std::int8_t, D> d8;
      const hn::Rebind<std::int32_t, D> d32;
      w[0] = hn::ConvertTo(
          d, hn::PromoteTo(d32, hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(row) + c)));
    } else if constexpr (K == WeightDecode::kSixBit) {
      // Columns c.. (c a multiple of 4) start at byte 3c / 4.
#if LOWP_GEMV_LANE_TABLE
      __m512 v[2];
      DecodeSix(_mm512_loadu_si512(p.top_half), _mm512_loadu_si512(p.top_half + 32),
                row + c / 4 * 3, v);
      w[0] = hn::Vec<D>{v[0]};
      w[1] = hn::Vec<D>{v[1]};
#else
      // Each group of three bytes as one word, its four codes through the
      // table into a buffer.
      const std::size_t lanes = hn::Lanes(d);
      alignas(64) float buf[64];
      const std::uint8_t* bytes = row + c / 4 * 3;
      for (std::size_t i = 0; i < kVecs * lanes; i += 4, bytes += 3) {
        const std::uint32_t word = bytes[0] | static_cast<std::uint32_t>(bytes[1]) << 8 |
                                   static_cast<std::uint32_t>(bytes[2]) << 16;
        for (std::size_t q = 0; q < 4; ++q) buf[i + q] = p.fast_value[(word >> (6 * q)) & 0x3Fu];
      }
      for (std::size_t v = 0; v < kVecs; ++v) w[v] = hn::Load(d, buf + v * lanes);
#endif
    } else {
      // Lanes(d) bytes hold the chunk's 2 * Lanes(d) nibbles: low nibbles are
      // the even columns, high nibbles the odd ones.
#if LOWP_GEMV_LANE_TABLE
      DecodeTable(d, hn::LoadU(d, p.fast_value), row, c, w);
#else
      const hn::Rebind<std::uint8_t, D> d8;
      const auto bytes = hn::LoadU(d8, row + c / 2);
      const hn::Rebind<std::int8_t, D> di8;
      const hn::Rebind<std::int32_t, D> d32;
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
      w[0] = hn::ConvertTo(d, hn::PromoteTo(d32, vlo));
      w[1] = hn::ConvertTo(d, hn::PromoteTo(d32, vhi));
#endif
    }
  }
};

// The vector tag of a decode. Byte-shuffle nibble chunks use at most 8 fp32
// lanes, so that a chunk (16 columns) fits in an NVFP4 block; lane-table
// chunks are 32 columns, whose two halves may have their own multipliers.
template <WeightDecode K>
using TagFor = std::conditional_t<K == WeightDecode::kNibble && !LOWP_GEMV_LANE_TABLE,
                                  hn::CappedTag<float, 8>, hn::ScalableTag<float>>;

template <WeightDecode K>
HWY_INLINE std::size_t ChunkOf() {
  return Decoder<K>::kVecs * hn::Lanes(TagFor<K>());
}

// Columns a segment must be a multiple of.
template <WeightDecode K>
HWY_INLINE std::size_t SegmentQuantumOf() {
  if constexpr (K == WeightDecode::kNibble && LOWP_GEMV_LANE_TABLE) {
    return ChunkOf<K>() / 2;
  }
  return ChunkOf<K>();
}

// The multipliers of the chunk at column c of row r, per lane.
template <WeightDecode K, ScaleSource kScale, class D>
HWY_INLINE hn::Vec<D> MultiplierVecOf(D d, const GemvParams& p, std::size_t r, std::size_t c) {
  if constexpr (K == WeightDecode::kNibble && LOWP_GEMV_LANE_TABLE) {
    // Lanes 0-7 (of both halves) are columns c..c+15, lanes 8-15 the next 16.
    const std::size_t half = ChunkOf<K>() / 2;
    if ((std::size_t{1} << p.segment_shift) == half) {
      const std::size_t s = c >> p.segment_shift;
      return hn::IfThenElse(hn::FirstN(d, hn::Lanes(d) / 2),
                            hn::Set(d, MultiplierOf<kScale>(p, r, s)),
                            hn::Set(d, MultiplierOf<kScale>(p, r, s + 1)));
    }
  }
  return hn::Set(d, MultiplierOf<kScale>(p, r, c >> p.segment_shift));
}

template <WeightDecode K, class D>
HWY_INLINE hn::Vec<D> MultiplierVec(D d, const GemvParams& p, std::size_t r, std::size_t c) {
  switch (p.scale) {
    case ScaleSource::kRow:
      return MultiplierVecOf<K, ScaleSource::kRow>(d, p, r, c);
    case ScaleSource::kU8Table:
      return MultiplierVecOf<K, ScaleSource::kU8Table>(d, p, r, c);
    default:
      return MultiplierVecOf<K, ScaleSource::kF16>(d, p, r, c);
  }
}

// The byte of a row where column c's code starts (c a multiple of 4; for
// prefetch addresses).
template <WeightDecode K>
constexpr std::size_t CodeByteOf(std::size_t c) {
  switch (K) {
    case WeightDecode::kF32:
      return 4 * c;
    case WeightDecode::kBf16:
    case WeightDecode::kF16:
      return 2 * c;
    case WeightDecode::kNibble:
      return c / 2;
    case WeightDecode::kSixBit:
      return c / 4 * 3;
    default:
      return c;
  }
}

// Fused path: MR weight rows from r times NR activation rows, each chunk of
// codes decoded once and each activation vector loaded once for all of them.
// kRowScale: one multiplier per row, applied to the row's vector sum instead
// of to every chunk. Every (row, activation) pair has two accumulators, for
// even and odd vectors, whatever MR is.
template <WeightDecode K, std::size_t MR, std::size_t NR, ScaleSource kScale>
HWY_INLINE void FusedBlock(const GemvParams& p, const float* x, std::size_t ldx, float* y,
                           std::size_t ldy, std::size_t r) {
  const TagFor<K> d;
  using V = hn::Vec<decltype(d)>;
  constexpr std::size_t kVecs = Decoder<K>::kVecs;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t chunk = kVecs * lanes;
  const std::size_t vector_end = p.cols - p.cols % chunk;
  constexpr bool kRowScale = kScale == ScaleSource::kRow;
  // Whether both chunks of a pair share one multiplier.
  const bool shared = (std::size_t{1} << p.segment_shift) >= 2 * chunk;
  // Whether a chunk has one multiplier.
  const bool single = (std::size_t{1} << p.segment_shift) >= chunk;
  (void)single;
  V acc[MR][NR][2];
  for (std::size_t i = 0; i < MR; ++i) {
    for (std::size_t j = 0; j < NR; ++j) acc[i][j][0] = acc[i][j][1] = hn::Zero(d);
  }
  // The block's rows are read side by side, MR short streams that the hardware
  // prefetchers pick up late: each chunk of row r + i prefetches the same
  // columns of row r + i + MR (the next block's), and the block prefetches
  // the scales of the block after next. Only with enough rows left.
  // fp32 rows are long enough streams for the hardware (and measured no
  // faster with it).
  const bool prefetch = K != WeightDecode::kF32 && r + 2 * MR < p.rows;
  if (prefetch) {
    for (std::size_t i = 0; i < MR; ++i) {
      if constexpr (kScale == ScaleSource::kF16) {
        hwy::Prefetch(p.f16_scales + (r + 2 * MR + i) * p.segments_per_row);
      } else if constexpr (kScale == ScaleSource::kU8Table) {
        hwy::Prefetch(p.u8_scales + (r + 2 * MR + i) * p.segments_per_row);
      }
    }
  }
  const std::size_t ahead = MR * p.row_bytes;
  // Columns [c, c + count * chunk), count = 1 or 2.
  auto chunks = [&](std::size_t c, auto count_tag) HWY_ATTR {
    constexpr std::size_t kCount = decltype(count_tag)::value;
    V xv[NR][kCount * kVecs];
    for (std::size_t j = 0; j < NR; ++j) {
      for (std::size_t v = 0; v < kCount * kVecs; ++v) {
        xv[j][v] = hn::LoadU(d, x + j * ldx + c + v * lanes);
      }
    }
    for (std::size_t i = 0; i < MR; ++i) {
      const std::uint8_t* row = p.codes + (r + i) * p.row_bytes;
      if (prefetch) hwy::Prefetch(row + ahead + CodeByteOf<K>(c));
      V w[kCount * kVecs];
      bool decoded = false;
#if LOWP_GEMV_LANE_TABLE
      if constexpr (K == WeightDecode::kNibble && !kRowScale) {
        // One multiplier per chunk: multiply the table instead of the weights.
        if (single) {
          const V base = hn::LoadU(d, p.fast_value);
          for (std::size_t k = 0; k < kCount; ++k) {
            const std::size_t at = c + k * chunk;
            const V table =
                hn::Mul(base, hn::Set(d, MultiplierOf<kScale>(p, r + i, at >> p.segment_shift)));
            DecodeTable(d, table, row, at, w + k * kVecs);
          }
          decoded = true;
        }
      }
#endif
      if (!decoded) {
        for (std::size_t k = 0; k < kCount; ++k) {
          Decoder<K>::Decode(d, p, row, c + k * chunk, w + k * kVecs);
        }
      }
      if (!kRowScale && !decoded) {
        V m[kCount];
        m[0] = MultiplierVecOf<K, kScale>(d, p, r + i, c);
        if constexpr (kCount == 2) {
          m[1] = shared ? m[0] : MultiplierVecOf<K, kScale>(d, p, r + i, c + chunk);
        }
        for (std::size_t v = 0; v < kCount * kVecs; ++v) w[v] = hn::Mul(w[v], m[v / kVecs]);
      }
      for (std::size_t v = 0; v < kCount * kVecs; ++v) {
        for (std::size_t j = 0; j < NR; ++j) {
          V& a = acc[i][j][v & 1];
          a = hn::MulAdd(w[v], xv[j][v], a);
        }
      }
    }
  };
  std::size_t c = 0;
  for (; c + 2 * chunk <= vector_end; c += 2 * chunk) {
    chunks(c, std::integral_constant<std::size_t, 2>());
  }
  if (c < vector_end) chunks(c, std::integral_constant<std::size_t, 1>());
  for (std::size_t i = 0; i < MR; ++i) {
    const std::uint8_t* row = p.codes + (r + i) * p.row_bytes;
    const float row_multiplier = kRowScale ? MultiplierOf<kScale>(p, r + i, 0) : 1.0f;
    for (std::size_t j = 0; j < NR; ++j) {
      float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc[i][j][0], acc[i][j][1])));
      if constexpr (kRowScale) sum *= row_multiplier;
      for (std::size_t t = vector_end; t < p.cols; ++t) {
        sum += ScalarWeight(p, row, r + i, t) * x[j * ldx + t];
      }
      y[j * ldy + r + i] = sum;
    }
  }
}

#if LOWP_GEMV_LANE_TABLE
// Four weight rows from r times one activation row in chunks of 32 columns,
// with named accumulators: the compiler keeps those in registers, where it
// stores the generic FusedBlock's array to the stack every chunk. `step(row,
// i, c, x0, x1, s0, s1)` decodes the 32 weights of row r + i at column c (the
// multiplier included) and adds their products with x0 (the first 16 x values
// of the chunk) into s0 and x1 into s1; `code_byte(c)` is the offset of
// column c's codes in a row. The order of summation is FusedBlock<K, 4, 1>'s
// (even and odd vectors in their own accumulators, then the scalar tail), so
// the bits are too.
template <ScaleSource kScale, class Step, class CodeByte>
HWY_INLINE void FourRowGemv(const GemvParams& p, const float* x, float* y, std::size_t r,
                            const Step& step, const CodeByte& code_byte) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  constexpr std::size_t kChunk = 32;
  const std::size_t vector_end = p.cols - p.cols % kChunk;
  const std::uint8_t* row0 = p.codes + r * p.row_bytes;
  const std::uint8_t* row1 = row0 + p.row_bytes;
  const std::uint8_t* row2 = row1 + p.row_bytes;
  const std::uint8_t* row3 = row2 + p.row_bytes;
  const std::size_t ahead = 4 * p.row_bytes;
  const bool prefetch = r + 8 < p.rows;
  if (prefetch) {
    for (std::size_t i = 0; i < 4; ++i) {
      if constexpr (kScale == ScaleSource::kF16) {
        hwy::Prefetch(p.f16_scales + (r + 8 + i) * p.segments_per_row);
      } else {
        hwy::Prefetch(p.u8_scales + (r + 8 + i) * p.segments_per_row);
      }
    }
  }
  V a0 = hn::Zero(d), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
  for (std::size_t c = 0; c < vector_end; c += kChunk) {
    if (prefetch && c % (2 * kChunk) == 0) {
      const std::size_t at = ahead + code_byte(c);
      hwy::Prefetch(row0 + at);
      hwy::Prefetch(row1 + at);
      hwy::Prefetch(row2 + at);
      hwy::Prefetch(row3 + at);
    }
    const V x0 = hn::LoadU(d, x + c), x1 = hn::LoadU(d, x + c + 16);
    step(row0, 0, c, x0, x1, a0, a1);
    step(row1, 1, c, x0, x1, b0, b1);
    step(row2, 2, c, x0, x1, c0, c1);
    step(row3, 3, c, x0, x1, e0, e1);
  }
  const V sums[4] = {hn::Add(a0, a1), hn::Add(b0, b1), hn::Add(c0, c1), hn::Add(e0, e1)};
  for (std::size_t i = 0; i < 4; ++i) {
    const std::uint8_t* row = p.codes + (r + i) * p.row_bytes;
    float sum = hn::GetLane(hn::SumOfLanes(d, sums[i]));
    for (std::size_t t = vector_end; t < p.cols; ++t) sum += ScalarWeight(p, row, r + i, t) * x[t];
    y[r + i] = sum;
  }
}

// FusedBlock<kSixBit, 4, 1, kScale> for a multiplier per segment.
template <ScaleSource kScale>
HWY_INLINE void SixBitGemv4(const GemvParams& p, const float* x, float* y, std::size_t r) {
  using V = hn::Vec<hn::ScalableTag<float>>;
  const hn::ScalableTag<float> d;
  const __m512i lo = _mm512_loadu_si512(p.top_half);
  const __m512i hi = _mm512_loadu_si512(p.top_half + 32);
  const auto step = [&](const std::uint8_t* row, std::size_t i, std::size_t c, V x0, V x1, V& s0,
                        V& s1) HWY_ATTR {
    __m512 w[2];
    DecodeSix(lo, hi, row + c / 4 * 3, w);
    const V m = hn::Set(d, MultiplierOf<kScale>(p, r + i, c >> p.segment_shift));
    s0 = hn::MulAdd(hn::Mul(V{w[0]}, m), x0, s0);
    s1 = hn::MulAdd(hn::Mul(V{w[1]}, m), x1, s1);
  };
  FourRowGemv<kScale>(p, x, y, r, step, [](std::size_t c) { return c / 4 * 3; });
}

// FusedBlock<kNibble, 4, 1, kScale> for a multiplier per 16 columns or more
// (MXFP4, NVFP4, int4 groups), with the same products. Each chunk's weights
// come from a table already multiplied by the multiplier; a chunk that spans
// two segments (kHalf: NVFP4's blocks of 16) picks, per lane, one of two such
// tables with vpermt2ps (index bit 4 set in lanes 8-15, the columns of the
// second segment).
template <ScaleSource kScale, bool kHalf>
HWY_INLINE void NibbleGemv4(const GemvParams& p, const float* x, float* y, std::size_t r) {
  using V = hn::Vec<hn::ScalableTag<float>>;
  const __m512 base = _mm512_loadu_ps(p.fast_value);
  const __m512i low4 = _mm512_set1_epi32(0xF);
  const __m512i second = _mm512_set_epi32(16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0);
  const auto step = [&](const std::uint8_t* row, std::size_t i, std::size_t c, V x0, V x1, V& s0,
                        V& s1) HWY_ATTR {
    const __m512i wide =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c / 2)));
    const std::size_t s = c >> p.segment_shift;
    __m512 lo, hi;
    if constexpr (kHalf) {
      const __m512 first = _mm512_mul_ps(base, _mm512_set1_ps(MultiplierOf<kScale>(p, r + i, s)));
      const __m512 next =
          _mm512_mul_ps(base, _mm512_set1_ps(MultiplierOf<kScale>(p, r + i, s + 1)));
      // (wide & 0xF) | second, and (wide >> 4) | second.
      const __m512i lo_index = _mm512_ternarylogic_epi32(wide, low4, second, 0xEA);
      const __m512i hi_index = _mm512_or_si512(_mm512_srli_epi32(wide, 4), second);
      lo = _mm512_permutex2var_ps(first, lo_index, next);
      hi = _mm512_permutex2var_ps(first, hi_index, next);
    } else {
      const __m512 table = _mm512_mul_ps(base, _mm512_set1_ps(MultiplierOf<kScale>(p, r + i, s)));
      lo = _mm512_permutexvar_ps(wide, table);
      hi = _mm512_permutexvar_ps(_mm512_srli_epi32(wide, 4), table);
    }
    s0 = hn::MulAdd(V{lo}, x0, s0);
    s1 = hn::MulAdd(V{hi}, x1, s1);
  };
  FourRowGemv<kScale>(p, x, y, r, step, [](std::size_t c) { return c / 2; });
}
#endif

// Rows [r0, r1) for NR activation rows: four weight rows at a time for GEMV.
template <WeightDecode K, std::size_t NR, ScaleSource kScale>
HWY_NOINLINE void FusedRows(const GemvParams& p, const float* x, std::size_t ldx, float* y,
                            std::size_t ldy, std::size_t r0, std::size_t r1) {
  constexpr std::size_t kRows = NR == 1 ? 4 : 1;
  std::size_t r = r0;
#if LOWP_GEMV_LANE_TABLE
  if constexpr (K == WeightDecode::kSixBit && NR == 1 && kScale != ScaleSource::kRow) {
    for (; r + 4 <= r1; r += 4) SixBitGemv4<kScale>(p, x, y, r);
  }
  if constexpr (K == WeightDecode::kNibble && NR == 1 && kScale != ScaleSource::kRow) {
    const std::size_t segment = std::size_t{1} << p.segment_shift;
    if (segment == 16) {
      for (; r + 4 <= r1; r += 4) NibbleGemv4<kScale, true>(p, x, y, r);
    } else if (segment >= 32) {
      for (; r + 4 <= r1; r += 4) NibbleGemv4<kScale, false>(p, x, y, r);
    }
  }
#endif
  for (; r + kRows <= r1; r += kRows) FusedBlock<K, kRows, NR, kScale>(p, x, ldx, y, ldy, r);
  for (; r < r1; ++r) FusedBlock<K, 1, NR, kScale>(p, x, ldx, y, ldy, r);
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
      Decoder<K>::Decode(d, p, row, c, w);
      const V m = MultiplierVec<K>(d, p, r + i, c);
      for (std::size_t v = 0; v < kVecs; ++v) hn::StoreU(hn::Mul(w[v], m), d, out + c + v * lanes);
    }
    for (std::size_t c = vector_end; c < p.cols; ++c) out[c] = ScalarWeight(p, row, r + i, c);
  }
}

// The distance between tile rows: cols plus 16 floats when cols is a multiple
// of 1024, so that the tile's rows (and the activation rows, 4 KiB apart in
// the same way) do not all fall in one set of the L1 cache (measured: the
// M=128 GEMM of 4096-column MXFP4 took 20% longer than FP8's without it).
inline std::size_t TileStride(std::size_t cols) { return cols % 1024 == 0 ? cols + 16 : cols; }

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

template <WeightDecode K, ScaleSource kScale>
void FusedOf(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* y,
             std::size_t ldy, std::size_t r0, std::size_t r1) {
  switch (n) {
    case 1:
      return FusedRows<K, 1, kScale>(p, x, ldx, y, ldy, r0, r1);
    case 2:
      return FusedRows<K, 2, kScale>(p, x, ldx, y, ldy, r0, r1);
    case 3:
      return FusedRows<K, 3, kScale>(p, x, ldx, y, ldy, r0, r1);
    case 4:
      return FusedRows<K, 4, kScale>(p, x, ldx, y, ldy, r0, r1);
    default:
      return;
  }
}

template <WeightDecode K>
void PackedGemmOf(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* y,
                  std::size_t ldy, std::size_t r0, std::size_t r1) {
  if (n <= 4) {
    switch (p.scale) {
      case ScaleSource::kRow:
        return FusedOf<K, ScaleSource::kRow>(p, x, n, ldx, y, ldy, r0, r1);
      case ScaleSource::kU8Table:
        return FusedOf<K, ScaleSource::kU8Table>(p, x, n, ldx, y, ldy, r0, r1);
      case ScaleSource::kF16:
        return FusedOf<K, ScaleSource::kF16>(p, x, n, ldx, y, ldy, r0, r1);
    }
  }
  const std::size_t ld = TileStride(p.cols);
  std::vector<float> tile(kTileRows * ld);
  for (std::size_t r = r0; r < r1; r += kTileRows) {
    const std::size_t count = r1 - r < kTileRows ? r1 - r : kTileRows;
    DecodeRows<K>(p, r, count, tile.data(), ld);
    TileTimesX(tile.data(), ld, count, p.cols, x, n, ldx, y + r, ldy);
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
    case WeightDecode::kViaF32:
      return PackedGemmOf<WeightDecode::kViaF32>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kInt8:
      return PackedGemmOf<WeightDecode::kInt8>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kNibble:
      return PackedGemmOf<WeightDecode::kNibble>(p, x, n, ldx, y, ldy, r0, r1);
    case WeightDecode::kSixBit:
      return PackedGemmOf<WeightDecode::kSixBit>(p, x, n, ldx, y, ldy, r0, r1);
  }
}

void DenseGemm(FillRow fill, const void* ctx, std::size_t cols, const float* x, std::size_t n,
               std::size_t ldx, float* y, std::size_t ldy, std::size_t r0, std::size_t r1) {
  const std::size_t ld = TileStride(cols);
  std::vector<float> tile(kTileRows * ld);
  for (std::size_t r = r0; r < r1; r += kTileRows) {
    const std::size_t count = r1 - r < kTileRows ? r1 - r : kTileRows;
    for (std::size_t i = 0; i < count; ++i) fill(ctx, r + i, tile.data() + i * ld);
    TileTimesX(tile.data(), ld, count, cols, x, n, ldx, y + r, ldy);
  }
}

std::size_t GemvChunk(WeightDecode decode) {
  switch (decode) {
    case WeightDecode::kNibble:
      return ChunkOf<WeightDecode::kNibble>();
    case WeightDecode::kSixBit:
      return ChunkOf<WeightDecode::kSixBit>();
    default:
      return ChunkOf<WeightDecode::kF32>();
  }
}

std::size_t GemvSegmentQuantum(WeightDecode decode) {
  switch (decode) {
    case WeightDecode::kNibble:
      return SegmentQuantumOf<WeightDecode::kNibble>();
    case WeightDecode::kSixBit:
      return SegmentQuantumOf<WeightDecode::kSixBit>();
    default:
      return SegmentQuantumOf<WeightDecode::kF32>();
  }
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // LOWP_KERNELS_GEMV_INL_H_
