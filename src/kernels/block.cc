// src/kernels/block.cc — dispatch for lowp/block_kernels.h: derives the block
// kernel parameters from a BlockFormat, walks the rows of the blocked view
// (full blocks to the best Highway target of block-inl.h, partial blocks and
// uncovered formats or options to the scalar reference), and splits the work
// across threads so that no two threads write the same byte.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/block.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/block-inl.h"

#if HWY_ONCE

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "kernels/block_params.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "lowp/thread_pool.h"

namespace lowp {
namespace kernels {

HWY_EXPORT(QuantizeBlocks);
HWY_EXPORT(QuantizeBlocksBF16);
HWY_EXPORT(QuantizeBlocksF16);
HWY_EXPORT(DequantizeBlocks);
HWY_EXPORT(DequantizeBlocksToBF16);
HWY_EXPORT(FiniteAmaxBits);
HWY_EXPORT(FakeQuantRowBlocks);
HWY_EXPORT(FakeQuantColumns);

namespace {

using detail::BlockDequantParams;
using detail::BlockQuantParams;

// The element formats of the registry's MX formats (the fast encoder's
// saturation and sign rules hold for them; block_params.h).
bool registry_mx_element(const Format& e) {
  for (const NamedBlockFormat& nb : block_registry()) {
    if (nb.format.scale == BlockScale::kUe8m0 && nb.format.element == e) return true;
  }
  return false;
}

bool vector_layout(const BlockFormat& f) {
  if (f.block_size < 16 || f.block_size % 16 != 0 || f.block_size > 512) return false;
  if (f.scale == BlockScale::kUe4m3) return f.element == kFp4E2m1;
  return registry_mx_element(f.element);
}

BlockQuantParams quant_params(const BlockFormat& f, const BlockOptions& opt, float tensor_scale) {
  const Format& e = f.element;
  BlockQuantParams p;
  p.nvfp4 = f.scale == BlockScale::kUe4m3;
  p.block_size = f.block_size;
  p.element_bits = e.bits;
  p.scale_rule = opt.scale_rule;
  p.emax_elem = mx_element_emax(e);
  p.element_mbits = e.kind == Kind::kInt ? mx_int_fraction_bits(e) : e.man_bits;
  p.rceil_reciprocal = static_cast<float>(1.0 / mx_element_max(e));
  p.fraction_bits = mx_int_fraction_bits(e);
  p.integer = e.kind == Kind::kInt;
  if (p.integer) {
    p.int_min = static_cast<std::int32_t>(int_min(e));
    p.int_max = static_cast<std::int32_t>(int_max(e));
    p.code_mask = code_mask(e);
  } else {
    p.man_bits = e.man_bits;
    p.min_normal_bits = detail::pow2_bits(emin(e));
    p.max_magnitude = max_magnitude_code(e);
    p.sign_shift = 32 - e.bits;
  }
  p.nan_code = encode(e, std::numeric_limits<double>::quiet_NaN());  // as the reference
  p.tensor_scale = tensor_scale;
  p.stochastic = opt.rounding == Rounding::kStochastic;
  p.max_value = static_cast<float>(mx_element_max(e));
  return p;
}

const float* e4m3_values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (std::uint32_t c = 0; c < 256; ++c) t[c] = decode_f32(kFp8E4m3, c);
    return t;
  }();
  return table.data();
}

BlockDequantParams dequant_params(const BlockFormat& f, float tensor_scale) {
  BlockDequantParams p;
  p.nvfp4 = f.scale == BlockScale::kUe4m3;
  p.block_size = f.block_size;
  p.element_bits = f.element.bits;
  p.integer = f.element.kind == Kind::kInt;
  p.fraction_bits = mx_int_fraction_bits(f.element);
  p.element = detail::decode_params(f.element);
  p.tensor_scale = tensor_scale;
  p.e4m3_values = e4m3_values();
  if (f.element.bits == 4 && f.element.kind == Kind::kFloat) {
    for (std::uint32_t c = 0; c < 16; ++c) p.nibble_values[c] = decode_f32(f.element, c);
  }
  return p;
}

unsigned resolve_threads(unsigned threads) {
  return threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : threads;
}

// Runs body(begin, end) over [0, count) in up to `threads` contiguous pieces
// whose boundaries are multiples of `align`, each at least `min_piece` long,
// on the current pool's threads.
void parallel_pieces(std::size_t count, unsigned threads, std::size_t align, std::size_t min_piece,
                     const std::function<void(std::size_t, std::size_t)>& body) {
  std::size_t pieces = std::min<std::size_t>(threads, count / std::max<std::size_t>(min_piece, 1));
  if (pieces <= 1) {
    if (count > 0) body(0, count);
    return;
  }
  const std::size_t step = (count / pieces + align - 1) / align * align;
  current_pool().run_pieces(count, pieces, step, body);
}

// ORs the low `bits` bits of codes[0, n) into the stream at bit `bit_offset`.
void or_codes_at(int bits, const std::uint32_t* codes, std::size_t n, std::uint8_t* stream,
                 std::size_t bit_offset) {
  const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t field = codes[i] & mask;
    std::size_t bit = bit_offset + static_cast<std::size_t>(bits) * i;
    for (int left = bits; left > 0;) {
      const int offset = static_cast<int>(bit % 8);
      const int take = std::min(left, 8 - offset);
      stream[bit / 8] =
          static_cast<std::uint8_t>(stream[bit / 8] | ((field & ((1u << take) - 1)) << offset));
      field >>= take;
      bit += static_cast<std::size_t>(take);
      left -= take;
    }
  }
}

// One block through the scalar reference: `count` values at stream position
// `position`, codes ORed into the stream, the scale returned.
std::uint8_t quantize_block_scalar(const BlockFormat& f, const float* values, std::size_t count,
                                   std::size_t position, float tensor_scale,
                                   const BlockOptions& opt, std::uint8_t* stream) {
  std::uint32_t codes[512];
  std::vector<std::uint32_t> big;
  std::uint32_t* out = codes;
  if (count > 512) {
    big.resize(count);
    out = big.data();
  }
  const std::span<const float> in(values, count);
  const std::span<std::uint32_t> code_span(out, count);
  const std::uint8_t scale = f.scale == BlockScale::kUe4m3
                                 ? nvfp4_quantize_block(in, tensor_scale, code_span, opt, position)
                                 : mx_quantize_block(f, in, code_span, opt, position);
  or_codes_at(f.element.bits, out, count, stream,
              position * static_cast<std::size_t>(f.element.bits));
  return scale;
}

// The input type of quantize_blocked_*: fp32, or bf16 / fp16 bit patterns
// (which pick the Highway entry point and the scalar widening).
enum class BlockInput { kF32, kBF16, kF16 };

float widen_scalar(BlockInput kind, std::uint16_t bits) {
  return decode_f32(kind == BlockInput::kBF16 ? kBf16 : kFp16, bits);
}

// quantize_block_scalar on 16-bit input: the values widened (exactly) first.
std::uint8_t quantize_block_scalar(const BlockFormat& f, BlockInput kind,
                                   const std::uint16_t* values, std::size_t count,
                                   std::size_t position, float tensor_scale,
                                   const BlockOptions& opt, std::uint8_t* stream) {
  float small[512];
  std::vector<float> big;
  float* wide = small;
  if (count > 512) {
    big.resize(count);
    wide = big.data();
  }
  for (std::size_t i = 0; i < count; ++i) wide[i] = widen_scalar(kind, values[i]);
  return quantize_block_scalar(f, wide, count, position, tensor_scale, opt, stream);
}
std::uint8_t quantize_block_scalar(const BlockFormat& f, BlockInput /*kind*/, const float* values,
                                   std::size_t count, std::size_t position, float tensor_scale,
                                   const BlockOptions& opt, std::uint8_t* stream) {
  return quantize_block_scalar(f, values, count, position, tensor_scale, opt, stream);
}

void quantize_blocks_vector(BlockInput /*kind*/, const BlockQuantParams& p, const float* in,
                            std::size_t blocks, std::uint8_t* elements, std::uint8_t* scales,
                            const float* in_end) {
  HWY_DYNAMIC_DISPATCH(QuantizeBlocks)(p, in, blocks, elements, scales, in_end);
}
void quantize_blocks_vector(BlockInput kind, const BlockQuantParams& p, const std::uint16_t* in,
                            std::size_t blocks, std::uint8_t* elements, std::uint8_t* scales,
                            const std::uint16_t* in_end) {
  if (kind == BlockInput::kBF16) {
    HWY_DYNAMIC_DISPATCH(QuantizeBlocksBF16)(p, in, blocks, elements, scales, in_end);
  } else {
    HWY_DYNAMIC_DISPATCH(QuantizeBlocksF16)(p, in, blocks, elements, scales, in_end);
  }
}

void dequantize_blocks_vector(const BlockDequantParams& p, const std::uint8_t* elements,
                              const std::uint8_t* scales, std::size_t blocks, float* out,
                              const std::uint8_t* elements_end) {
  HWY_DYNAMIC_DISPATCH(DequantizeBlocks)(p, elements, scales, blocks, out, elements_end);
}
void dequantize_blocks_vector(const BlockDequantParams& p, const std::uint8_t* elements,
                              const std::uint8_t* scales, std::size_t blocks, std::uint16_t* out,
                              const std::uint8_t* elements_end) {
  HWY_DYNAMIC_DISPATCH(DequantizeBlocksToBF16)(p, elements, scales, blocks, out, elements_end);
}

// An fp32 value as an output element: itself, or rounded to bf16 (as
// F32BitsToBF16 in convert-inl.h: nearest-even, NaN -> 0x7FC0 | sign).
void store_value(float v, float* to) { *to = v; }
void store_value(float v, std::uint16_t* to) {
  const auto bits = std::bit_cast<std::uint32_t>(v);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    *to = static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7FC0u);
    return;
  }
  *to = static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

float value_scalar(const BlockFormat& f, std::uint8_t scale, std::uint32_t code,
                   float tensor_scale) {
  return block_value(f, tensor_scale, scale, code);
}

constexpr std::size_t kMinPieceElements = std::size_t{1} << 16;

}  // namespace

bool block_quantize_is_vectorized(const BlockFormat& f, const BlockOptions& opt) {
  return vector_layout(f) && opt.rounding == Rounding::kNearestEven && !opt.flush_subnormals;
}
bool block_dequantize_is_vectorized(const BlockFormat& f) { return vector_layout(f); }
bool block_fake_quantize_is_vectorized(const BlockFormat& f, const BlockOptions& opt) {
  return vector_layout(f) && !opt.flush_subnormals &&
         (opt.rounding == Rounding::kNearestEven || opt.rounding == Rounding::kStochastic);
}

}  // namespace kernels

namespace {

template <typename InT>
void quantize_blocked_any(const BlockFormat& f, kernels::BlockInput kind, std::span<const InT> in,
                          std::size_t row_length, float tensor_scale, const BlockOptions& opt,
                          std::uint8_t* elements, std::uint8_t* scales) {
  if (in.empty() || row_length == 0) return;
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t rows = in.size() / row_length;
  const std::size_t per_row = (row_length + k - 1) / k;
  const std::size_t full = row_length / k;
  const auto bits = static_cast<std::size_t>(f.element.bits);
  const unsigned threads = kernels::resolve_threads(opt.threads);
  const bool vector = kernels::block_quantize_is_vectorized(f, opt);
  const kernels::detail::BlockQuantParams p = kernels::quant_params(f, opt, tensor_scale);

  // Blocks [b, e) of one row, at most to the row's end.
  auto row_blocks = [&](std::size_t row, std::size_t b, std::size_t e) {
    const std::size_t row_pos = row * row_length;
    if (vector && b < std::min(e, full)) {
      const std::size_t n = std::min(e, full) - b;
      const std::size_t bit = (row_pos + b * k) * bits;  // on a byte (see below)
      kernels::quantize_blocks_vector(kind, p, in.data() + row_pos + b * k, n, elements + bit / 8,
                                      scales + row * per_row + b, in.data() + in.size());
      b += n;
    }
    for (; b < e; ++b) {
      const std::size_t first = b * k;
      const std::size_t count = std::min(k, row_length - first);
      scales[row * per_row + b] =
          kernels::quantize_block_scalar(f, kind, in.data() + row_pos + first, count,
                                         row_pos + first, tensor_scale, opt, elements);
    }
  };

  if ((k * bits) % 8 == 0 && ((row_length * bits) % 8 == 0 || rows == 1)) {
    // Every row and every block starts on a byte: split the blocks of all rows.
    kernels::parallel_pieces(rows * per_row, threads, 1, kernels::kMinPieceElements / k,
                             [&](std::size_t begin, std::size_t end) {
                               for (std::size_t g = begin; g < end;) {
                                 const std::size_t row = g / per_row;
                                 const std::size_t b = g % per_row;
                                 const std::size_t e = std::min(per_row, b + (end - g));
                                 row_blocks(row, b, e);
                                 g += e - b;
                               }
                             });
    return;
  }
  // Rows or blocks that start inside a byte (e.g. FP6 with row_length % 4 != 0,
  // FP4 with an odd row_length): full blocks are quantized into an aligned
  // scratch row and shifted into place; threads take multiples of 8 rows
  // (which start on a byte).
  kernels::parallel_pieces(
      rows, threads, 8, std::max<std::size_t>(1, kernels::kMinPieceElements / row_length),
      [&](std::size_t begin, std::size_t end) {
        std::vector<std::uint8_t> scratch(full * k * bits / 8 + 1);
        for (std::size_t row = begin; row < end; ++row) {
          const std::size_t bit0 = row * row_length * bits;
          if (vector && full > 0) {
            kernels::quantize_blocks_vector(kind, p, in.data() + row * row_length, full,
                                            scratch.data(), scales + row * per_row,
                                            in.data() + in.size());
            const unsigned shift = bit0 % 8;
            std::uint8_t* to = elements + bit0 / 8;
            for (std::size_t i = 0; i < full * k * bits / 8; ++i) {
              to[i] = static_cast<std::uint8_t>(to[i] | (scratch[i] << shift));
              to[i + 1] = static_cast<std::uint8_t>(to[i + 1] | (scratch[i] >> (8 - shift)));
            }
            row_blocks(row, full, per_row);
          } else {
            row_blocks(row, 0, per_row);
          }
        }
      });
}

template <typename OutT>
void dequantize_blocked_any(const BlockFormat& f, const std::uint8_t* elements,
                            const std::uint8_t* scales, float tensor_scale, std::size_t row_length,
                            std::span<OutT> out, unsigned threads) {
  if (out.empty() || row_length == 0) return;
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t rows = out.size() / row_length;
  const std::size_t per_row = (row_length + k - 1) / k;
  const std::size_t full = row_length / k;
  const auto bits = static_cast<std::size_t>(f.element.bits);
  const bool vector = kernels::block_dequantize_is_vectorized(f);
  kernels::detail::BlockDequantParams p = kernels::dequant_params(f, tensor_scale);
  // fp32 output far larger than the caches, from 8-bit or 4-bit elements:
  // non-temporal stores. Measured (docs/performance.md): faster for MXFP8
  // and, since 4-bit codes go through a lane table, for MXFP4/NVFP4; slower
  // for the 6-bit elements, whose decoding keeps them regular. (The bf16
  // path goes through a buffer in L1 and stores on its own.)
  p.stream = std::is_same_v<OutT, float> && (f.element.bits == 8 || f.element.bits == 4) &&
             out.size() * sizeof(float) >= (std::size_t{32} << 20);
  const std::span<const std::uint8_t> stream(elements, packed_bytes(f.element.bits, out.size()));
  threads = kernels::resolve_threads(threads);

  auto scalar_blocks = [&](std::size_t row, std::size_t b, std::size_t e) {
    for (; b < e; ++b) {
      const std::size_t first = b * k;
      const std::size_t count = std::min(k, row_length - first);
      const std::uint8_t scale = scales[row * per_row + b];
      for (std::size_t j = first; j < first + count; ++j) {
        const std::size_t i = row * row_length + j;
        kernels::store_value(
            kernels::value_scalar(f, scale, unpack_code(f.element.bits, stream, i), tensor_scale),
            &out[i]);
      }
    }
  };
  const bool aligned = (row_length * bits) % 8 == 0 || rows == 1;
  kernels::parallel_pieces(
      rows * per_row, threads, 1, kernels::kMinPieceElements / k,
      [&](std::size_t begin, std::size_t end) {
        std::vector<std::uint8_t> scratch;
        for (std::size_t g = begin; g < end;) {
          const std::size_t row = g / per_row;
          std::size_t b = g % per_row;
          const std::size_t e = std::min(per_row, b + (end - g));
          g += e - b;
          if (vector && b < std::min(e, full)) {
            const std::size_t n = std::min(e, full) - b;
            const std::size_t bit = (row * row_length + b * k) * bits;
            const std::uint8_t* from = elements + bit / 8;
            if (!aligned && bit % 8 != 0) {  // shift the bits onto a byte
              const unsigned shift = bit % 8;
              scratch.resize(n * k * bits / 8);
              for (std::size_t i = 0; i < scratch.size(); ++i) {
                scratch[i] =
                    static_cast<std::uint8_t>((from[i] >> shift) | (from[i + 1] << (8 - shift)));
              }
              from = scratch.data();
            }
            kernels::dequantize_blocks_vector(
                p, from, scales + row * per_row + b, n, out.data() + row * row_length + b * k,
                from == scratch.data() ? scratch.data() + scratch.size()
                                       : stream.data() + stream.size());
            b += n;
          }
          scalar_blocks(row, b, e);
        }
      });
}

}  // namespace

void quantize_blocked(const BlockFormat& f, std::span<const float> in, std::size_t row_length,
                      float tensor_scale, const BlockOptions& opt, std::uint8_t* elements,
                      std::uint8_t* scales) {
  quantize_blocked_any(f, kernels::BlockInput::kF32, in, row_length, tensor_scale, opt, elements,
                       scales);
}
void quantize_blocked_bf16(const BlockFormat& f, std::span<const std::uint16_t> in,
                           std::size_t row_length, float tensor_scale, const BlockOptions& opt,
                           std::uint8_t* elements, std::uint8_t* scales) {
  quantize_blocked_any(f, kernels::BlockInput::kBF16, in, row_length, tensor_scale, opt, elements,
                       scales);
}
void quantize_blocked_f16(const BlockFormat& f, std::span<const std::uint16_t> in,
                          std::size_t row_length, float tensor_scale, const BlockOptions& opt,
                          std::uint8_t* elements, std::uint8_t* scales) {
  quantize_blocked_any(f, kernels::BlockInput::kF16, in, row_length, tensor_scale, opt, elements,
                       scales);
}

void dequantize_blocked(const BlockFormat& f, const std::uint8_t* elements,
                        const std::uint8_t* scales, float tensor_scale, std::size_t row_length,
                        std::span<float> out, unsigned threads) {
  dequantize_blocked_any(f, elements, scales, tensor_scale, row_length, out, threads);
}
void dequantize_blocked_to_bf16(const BlockFormat& f, const std::uint8_t* elements,
                                const std::uint8_t* scales, float tensor_scale,
                                std::size_t row_length, std::span<std::uint16_t> out,
                                unsigned threads) {
  dequantize_blocked_any(f, elements, scales, tensor_scale, row_length, out, threads);
}

float finite_amax(std::span<const float> in, unsigned threads) {
  std::mutex lock;
  std::uint32_t best = 0;
  kernels::parallel_pieces(in.size(), kernels::resolve_threads(threads), 64,
                           kernels::kMinPieceElements, [&](std::size_t begin, std::size_t end) {
                             const std::uint32_t piece = HWY_DYNAMIC_DISPATCH(
                                 kernels::FiniteAmaxBits)(in.data() + begin, end - begin);
                             const std::lock_guard<std::mutex> hold(lock);
                             best = std::max(best, piece);
                           });
  return std::bit_cast<float>(best);
}

void fake_quantize_blocked(const BlockFormat& f, const float* in, float* out, std::size_t length,
                           std::size_t inner, std::size_t row_begin, std::size_t row_end,
                           std::size_t block_begin, std::size_t block_end, float tensor_scale,
                           const BlockOptions& opt, std::uint64_t first_index) {
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  if (length == 0 || inner == 0 || k == 0) return;
  block_end = std::min(block_end, (length + k - 1) / k);
  if (row_begin >= row_end || block_begin >= block_end) return;
  const bool vector = kernels::block_fake_quantize_is_vectorized(f, opt);
  const kernels::detail::BlockQuantParams p = kernels::quant_params(f, opt, tensor_scale);
  // The position of element j of row r, and whether positions [a, b] share
  // their high 32 bits (the stochastic key; the kernels take one key a call).
  auto position = [&](std::size_t row, std::size_t j) {
    return first_index + static_cast<std::uint64_t>(row) * length + j;
  };
  auto one_key = [](std::uint64_t a, std::uint64_t b) { return (a >> 32) == (b >> 32); };
  auto key_of = [&](std::uint64_t pos) {
    return stochastic_key(opt.seed, static_cast<std::uint32_t>(pos >> 32));
  };
  // The scalar reference for `count` values of row `row` from j0.
  std::vector<float> values;
  std::vector<std::uint32_t> codes;
  auto scalar_block = [&](std::size_t row, std::size_t j0, std::size_t count) {
    values.resize(count);
    codes.resize(count);
    const std::size_t base = (row / inner) * length * inner + row % inner;
    for (std::size_t j = 0; j < count; ++j) values[j] = in[base + (j0 + j) * inner];
    const std::uint8_t scale =
        f.scale == BlockScale::kUe4m3
            ? nvfp4_quantize_block(values, tensor_scale, codes, opt, position(row, j0))
            : mx_quantize_block(f, values, codes, opt, position(row, j0));
    for (std::size_t j = 0; j < count; ++j) {
      out[base + (j0 + j) * inner] = block_value(f, tensor_scale, scale, codes[j]);
    }
  };

  if (inner == 1) {
    // Blocks of contiguous values. Rows that are whole blocks are one run.
    const std::size_t full = length / k;
    auto vector_run = [&](std::size_t row, std::size_t b, std::size_t blocks) {  // [b, blocks)
      while (b < blocks) {
        const std::uint64_t pos = position(row, b * k);
        if (!one_key(pos, pos + k - 1)) {  // a block across a multiple of 2^32
          scalar_block(row, b * k, k);
          ++b;
          continue;
        }
        const std::uint64_t to_wrap = (std::uint64_t{1} << 32) - (pos & 0xFFFFFFFFu);
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(blocks - b, to_wrap / k));
        HWY_DYNAMIC_DISPATCH(kernels::FakeQuantRowBlocks)
        (p, in + row * length + b * k, n, out + row * length + b * k, key_of(pos),
         static_cast<std::uint32_t>(pos));
        b += n;
      }
    };
    if (vector && full * k == length && block_begin == 0 && block_end == full) {
      vector_run(row_begin, 0, (row_end - row_begin) * full);
      return;
    }
    for (std::size_t row = row_begin; row < row_end; ++row) {
      std::size_t b = block_begin;
      if (vector && b < std::min(block_end, full)) {
        vector_run(row, b, std::min(block_end, full));
        b = std::min(block_end, full);
      }
      for (; b < block_end; ++b) scalar_block(row, b * k, std::min(k, length - b * k));
    }
    return;
  }

  // Another axis: blocks of k rows of the array, a column each, 16 columns
  // at a time (the rows of the blocked view that hold neighbouring i).
  constexpr std::size_t kColumns = 16;
  std::vector<float> tile_in, tile_out;  // for fewer than 16 columns
  for (std::size_t row = row_begin; row < row_end;) {
    const std::size_t o = row / inner, i0 = row % inner;
    const std::size_t i1 = std::min(inner, i0 + (row_end - row));
    const std::size_t row0 = o * inner;  // the blocked view's row of column 0
    const float* base_in = in + o * length * inner;
    float* base_out = out + o * length * inner;
    for (std::size_t j0 = block_begin * k; j0 < std::min(block_end * k, length); j0 += k) {
      const std::size_t count = std::min(k, length - j0);
      for (std::size_t i = i0; i < i1;) {
        const std::size_t columns = std::min(i1 - i, kColumns);
        const std::uint64_t first = position(row0 + i, j0);
        const std::uint64_t last = position(row0 + i + columns - 1, j0 + count - 1);
        if (!vector || !one_key(first, last)) {
          for (std::size_t c = 0; c < columns; ++c) scalar_block(row0 + i + c, j0, count);
          i += columns;
          continue;
        }
        const std::size_t run = columns == kColumns ? (i1 - i) / kColumns * kColumns : 0;
        if (run > 0 && one_key(first, position(row0 + i + run - 1, j0 + count - 1))) {
          HWY_DYNAMIC_DISPATCH(kernels::FakeQuantColumns)
          (p, base_in + j0 * inner + i, inner, count, run, base_out + j0 * inner + i, key_of(first),
           static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(length));
          i += run;
          continue;
        }
        // Fewer than 16 columns (or a run across a key): through a 16-wide tile.
        tile_in.assign(count * kColumns, 0.0f);
        tile_out.resize(count * kColumns);
        for (std::size_t j = 0; j < count; ++j) {
          for (std::size_t c = 0; c < columns; ++c) {
            tile_in[j * kColumns + c] = base_in[(j0 + j) * inner + i + c];
          }
        }
        HWY_DYNAMIC_DISPATCH(kernels::FakeQuantColumns)
        (p, tile_in.data(), kColumns, count, kColumns, tile_out.data(), key_of(first),
         static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(length));
        for (std::size_t j = 0; j < count; ++j) {
          for (std::size_t c = 0; c < columns; ++c) {
            base_out[(j0 + j) * inner + i + c] = tile_out[j * kColumns + c];
          }
        }
        i += columns;
      }
    }
    row += i1 - i0;
  }
}

}  // namespace lowp

#endif  // HWY_ONCE
