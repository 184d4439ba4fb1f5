// src/kernels/ceiling.cc — the memory-bandwidth ceilings of `lowp bench`
// (lowp/kernels.h's stream_ceiling): read `in` bytes per element, write `out`
// bytes per element, with one XOR per input vector as the only work, so that
// the time is the memory system's. Each call runs one variant: regular or
// non-temporal stores (which skip the read-for-ownership of the output's
// cache lines), on the target's widest vectors or on half of them. The bench
// tries every variant and keeps the fastest (docs/performance.md).
//
// The work goes in units of 256 elements: 256 * bytes-per-element bytes of
// input, a whole number of 64-byte lines for every width the bench uses
// (4, 2, 1, 3/4 and 1/2 byte per element), likewise for the output.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ceiling.cc"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lowp/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace lowp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// kIn / kOut: 64-byte lines per unit of 256 elements read / written. Output
// line o is the XOR of the input lines i with i % kOut == o (or, when
// widening, input line o % kIn).
template <class D, std::size_t kIn, std::size_t kOut, bool kStream>
HWY_NOINLINE void StreamUnits(D d, const std::uint8_t* HWY_RESTRICT in, std::size_t units,
                              std::uint8_t* HWY_RESTRICT out) {
  // Vectors per 64-byte line (the caller checks that vectors are 16 to 64 bytes).
  constexpr std::size_t kBytes = hn::MaxLanes(D()) < 16 ? 16 : hn::MaxLanes(D());
  constexpr std::size_t kPerLine = 64 / kBytes;
  constexpr std::size_t kOutVectors = kOut * kPerLine, kInVectors = kIn * kPerLine;
  for (std::size_t u = 0; u < units; ++u) {
    const std::uint8_t* from = in + u * kIn * 64;
    std::uint8_t* to = out + u * kOut * 64;
    hn::Vec<D> acc[kOutVectors];
    for (std::size_t o = 0; o < kOutVectors; ++o) {
      acc[o] = hn::LoadU(d, from + (o % kInVectors) * kBytes);
    }
    for (std::size_t i = kOutVectors; i < kInVectors; ++i) {
      acc[i % kOutVectors] = hn::Xor(acc[i % kOutVectors], hn::LoadU(d, from + i * kBytes));
    }
    for (std::size_t o = 0; o < kOutVectors; ++o) {
      if constexpr (kStream) {
        hn::Stream(acc[o], d, to + o * kBytes);
      } else {
        hn::StoreU(acc[o], d, to + o * kBytes);
      }
    }
  }
}

template <std::size_t kIn, std::size_t kOut>
void Units(bool stream, bool half, const std::uint8_t* in, std::size_t units, std::uint8_t* out) {
  const hn::ScalableTag<std::uint8_t> full;
  // Half of the widest vector (the same vector where it is 16 bytes or less).
  const hn::CappedTag<std::uint8_t, (HWY_MAX_BYTES >= 32 ? HWY_MAX_BYTES / 2 : 16)> halved;
  if (half) {
    if (stream) {
      StreamUnits<decltype(halved), kIn, kOut, true>(halved, in, units, out);
    } else {
      StreamUnits<decltype(halved), kIn, kOut, false>(halved, in, units, out);
    }
  } else if (stream) {
    StreamUnits<decltype(full), kIn, kOut, true>(full, in, units, out);
  } else {
    StreamUnits<decltype(full), kIn, kOut, false>(full, in, units, out);
  }
}

// in_lines / out_lines: 64-byte lines per 256 elements (16: fp32, 8: 16-bit,
// 4: bytes, 3: 6-bit, 2: 4-bit). Returns false for a pair not instantiated.
bool StreamCeilingUnits(int in_lines, int out_lines, bool stream, bool half, const std::uint8_t* in,
                        std::size_t units, std::uint8_t* out) {
  // Fixed vectors of 16 to 64 bytes only (not the scalar target, nor
  // scalable vectors).
  const hn::ScalableTag<std::uint8_t> d;
  if (hn::Lanes(d) > 64 || hn::Lanes(d) < 16 || hn::Lanes(d) != hn::MaxLanes(d)) return false;
#define LOWP_CEILING_PAIR(I, O)                \
  if (in_lines == (I) && out_lines == (O)) {   \
    Units<I, O>(stream, half, in, units, out); \
    return true;                               \
  }
  LOWP_CEILING_PAIR(16, 4)
  LOWP_CEILING_PAIR(16, 8)
  LOWP_CEILING_PAIR(16, 3)
  LOWP_CEILING_PAIR(16, 2)
  LOWP_CEILING_PAIR(4, 16)
  LOWP_CEILING_PAIR(8, 16)
  LOWP_CEILING_PAIR(3, 16)
  LOWP_CEILING_PAIR(2, 16)
  LOWP_CEILING_PAIR(8, 4)
  LOWP_CEILING_PAIR(4, 8)
  LOWP_CEILING_PAIR(16, 16)
#undef LOWP_CEILING_PAIR
  return false;
}

}  // namespace lowp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include "lowp/error.h"
#include "lowp/thread_pool.h"

namespace lowp::kernels {

HWY_EXPORT(StreamCeilingUnits);

void stream_ceiling(const void* in, double in_bytes_per_element, void* out,
                    double out_bytes_per_element, std::size_t elements, StreamVariant variant,
                    unsigned threads) {
  const double in_lines = in_bytes_per_element * 256 / 64, out_lines = out_bytes_per_element * 4;
  const std::size_t units = elements / 256;
  const auto* from = static_cast<const std::uint8_t*>(in);
  auto* to = static_cast<std::uint8_t*>(out);
  const int il = static_cast<int>(in_lines), ol = static_cast<int>(out_lines);
  if (il != in_lines || ol != out_lines) {
    throw Error("stream_ceiling: bytes per element must be a multiple of 1/4");
  }
  if (variant.non_temporal && reinterpret_cast<std::uintptr_t>(out) % 64 != 0) {
    throw Error("stream_ceiling: non-temporal stores need 64-byte aligned output");
  }
  const auto in_unit = static_cast<std::size_t>(il) * 64,
             out_unit = static_cast<std::size_t>(ol) * 64;  // bytes per unit
  bool ok = true;
  parallel_for(units, threads, [&](std::size_t u0, std::size_t u1) {
    if (!HWY_DYNAMIC_DISPATCH(StreamCeilingUnits)(il, ol, variant.non_temporal, variant.half_width,
                                                  from + u0 * in_unit, u1 - u0,
                                                  to + u0 * out_unit)) {
      ok = false;
    }
    if (variant.non_temporal) hwy::FlushStream();  // this thread's streamed lines
  });
  if (!ok) throw Error("stream_ceiling: no kernel for this pair of widths on this target");
  // The elements past the last whole unit: their bytes, one by one.
  const std::size_t done_in = units * in_unit, done_out = units * out_unit;
  const auto total_in =
      static_cast<std::size_t>(static_cast<double>(elements) * in_bytes_per_element);
  const auto total_out =
      static_cast<std::size_t>(static_cast<double>(elements) * out_bytes_per_element);
  for (std::size_t b = done_out; b < total_out; ++b) {
    to[b] = total_in > done_in ? from[done_in + (b - done_out) % (total_in - done_in)] : 0;
  }
}

}  // namespace lowp::kernels

#endif  // HWY_ONCE
