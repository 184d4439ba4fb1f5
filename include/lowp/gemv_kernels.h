// lowp/gemv_kernels.h — matrix products on packed weights (the kernels layer's
// interface to the storage layer): the per-target kernels of gemv-inl.h and
// their dispatch (gemv.cc), used by lowp::PackedMatrix
// (src/storage/packed_matrix.cc), which derives a GemvParams from its storage
// and checks that the decode below is exact for it. Not meant for other callers:
// PackedMatrix's gemv/gemm are the API.
//
// A weight row holds `cols` element codes, row_bytes apart, and is cut into
// segments of `segment` columns (a power of two, or the whole row) that share
// one fp32 multiplier. Weight (r, c) is
//     fast(code) * multiplier(r, c >> segment_shift)
// where fast(code) is the element as the kernel decodes it in registers
// (WeightDecode) and the multiplier folds in the scale and the power of two
// 2^k that turns fast() into the element's value. PackedMatrix only chooses a
// kernel path when fast(code) * 2^k is the element's exact value for every code
// the matrix holds, and scale * 2^k is exact, so every weight is the value
// dequantize() gives, bit for bit (but a -0 element may decode as +0).
//
// Columns are processed in chunks of gemv_chunk() columns; the full chunks
// cover [0, vector_end) with vector_end = cols - cols % chunk, the rest is a
// scalar tail. For kNibble a chunk of 2h columns is decoded as h low nibbles
// (even columns) and h high nibbles (odd columns), so the kernels read x in
// that order: permute_x() reorders each full chunk of an activation row as
// [x0 x2 x4 ... | x1 x3 x5 ...] (the tail stays in place).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowp::kernels {

enum class WeightDecode : std::uint8_t {
  kF32,     // fp32 bits
  kBf16,    // bf16 bits (fp32's top half)
  kF16,     // IEEE half
  kViaF16,  // an 8-bit sign-magnitude float: (code & 0x80) << 8 | (code & 0x7F)
            // << f16_shift is an IEEE half of the same significand
  kViaF32,  // an 8-bit sign-magnitude float: the code sign-extended to 32 bits,
            // shifted left by f32_shift and masked with f32_mask is an fp32 of
            // the same significand (the smallest ones subnormal). Only with a
            // multiplier per segment, which each weight is multiplied by
            // before its product with x (so no product underflows).
  kInt8,    // two's-complement int8 widened to int32
  kNibble,  // 4-bit codes (two per byte, low nibble first) mapped to the
            // int8 values of nibble_table
  kSixBit,  // 6-bit codes, a little-endian bit stream (four codes per three
            // bytes, code i at bits 6i..6i+5 of the row), mapped to
            // fast_value[code], whose low 16 bits must be zero
};

enum class ScaleSource : std::uint8_t {
  kRow,      // row_multiplier[r] for the whole row
  kU8Table,  // u8_table[u8_scales[r * segments_per_row + s]]
  kF16,      // f16 value of f16_scales[r * segments_per_row + s], times f16_factor
};

struct GemvParams {
  WeightDecode decode = WeightDecode::kF32;
  int f16_shift = 0;                  // kViaF16: 10 - mantissa bits (<= 8)
  std::uint16_t f16_mask = 0;         // kViaF16: 0x8000 | 0x7F << f16_shift
  int f32_shift = 0;                  // kViaF32: 23 - mantissa bits
  std::uint32_t f32_mask = 0;         // kViaF32: 0x80000000 | 0x7F << f32_shift
  std::int8_t nibble_table[16] = {};  // kNibble
  // fast(code) of each 8-, 6- or 4-bit code (the scalar tail; the AVX-512
  // nibble and 6-bit tables).
  float fast_value[256] = {};
  std::uint16_t top_half[64] = {};  // kSixBit: the top 16 bits of fast_value

  const std::uint8_t* codes = nullptr;
  std::size_t row_bytes = 0;
  std::size_t rows = 0, cols = 0;

  ScaleSource scale = ScaleSource::kRow;
  int segment_shift = 63;  // log2(segment); 63 when one multiplier per row
  std::size_t segments_per_row = 1;
  const float* row_multiplier = nullptr;  // kRow (nullptr: 1)
  const std::uint8_t* u8_scales = nullptr;
  const float* u8_table = nullptr;  // 256 entries
  const std::uint16_t* f16_scales = nullptr;
  float f16_factor = 1.0f;
};

// Columns per chunk of the vector path for this decode on the current target.
std::size_t gemv_chunk(WeightDecode decode);
// What a segment of several per row must be a multiple of, on the current
// target: the chunk, or half of it for 4-bit codes on AVX-512 (a chunk of 32
// columns there may straddle two 16-column NVFP4 blocks).
std::size_t gemv_segment_quantum(WeightDecode decode);

// Reorders the full chunks of each of the n rows of x (cols values, ldx apart)
// into out (same layout) for kNibble; see the file comment.
void permute_x(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* out);

// y[i * ldy + r] = sum_c W[r][c] x[i * ldx + c] for rows [r0, r1) and the n
// rows of x (already permuted for kNibble). Each (r, i) is summed in an order
// that depends only on the target and on n <= 4 vs n > 4, never on r0, r1.
void packed_gemm(const GemvParams& p, const float* x, std::size_t n, std::size_t ldx, float* y,
                 std::size_t ldy, std::size_t r0, std::size_t r1);

// The same product for a matrix given as fp32 rows: fill(r, out) writes row r
// (cols values); rows are decoded a few at a time into a small tile.
using FillRow = void (*)(const void* ctx, std::size_t r, float* out);
void dense_gemm(FillRow fill, const void* ctx, std::size_t cols, const float* x, std::size_t n,
                std::size_t ldx, float* y, std::size_t ldy, std::size_t r0, std::size_t r1);

}  // namespace lowp::kernels
