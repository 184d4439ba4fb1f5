// lowp/block_kernels.h — bulk MX / NVFP4 quantization (from fp32, bf16 or
// fp16) into lowp's packed layout (lowp/block/tensor.h) and back (to fp32 or
// bf16), bit-identical to the scalar reference (lowp/block/mx.h) on every SIMD
// target and for any thread count.
//
// The arrays here are the "blocked view" of tensor.h: rows of row_length
// contiguous fp32 values, each row cut into blocks of k (the last one partial
// when k does not divide row_length). lowp::quantize / dequantize /
// fake_quantize call these, transposing first when the block axis is not the
// last.
//
// Vector path (Highway, runtime dispatch; the other cases run the scalar
// reference block by block, split across the same threads): the MX formats of
// the registry (mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8)
// with any block size that is a multiple of 16 up to 512, and NVFP4 with such
// a block size; quantization with nearest-even elements and no
// flush_subnormals (every scale rule). Partial blocks take the reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"

namespace lowp {

// Quantizes in (rows x row_length, rows = in.size() / row_length) into
// `elements` (packed_bytes(f.element.bits, in.size()) bytes, which must be
// zero on entry) and `scales` (rows * ceil(row_length / k) bytes). NVFP4 uses
// `tensor_scale` (see nvfp4_tensor_scale_of); MX ignores it. Threads:
// opt.threads (0: one per core). Stochastic rounding of element i uses stream
// position i, as lowp::quantize.
void quantize_blocked(const BlockFormat& f, std::span<const float> in, std::size_t row_length,
                      float tensor_scale, const BlockOptions& opt, std::uint8_t* elements,
                      std::uint8_t* scales);

// The same from bf16 or fp16 input (uint16 bit patterns): bit for bit
// quantize_blocked of the values widened to fp32 (exact). The vector path
// widens a group of blocks at a time in registers into an L1 buffer and runs
// the fp32 kernel on it.
void quantize_blocked_bf16(const BlockFormat& f, std::span<const std::uint16_t> in,
                           std::size_t row_length, float tensor_scale, const BlockOptions& opt,
                           std::uint8_t* elements, std::uint8_t* scales);
void quantize_blocked_f16(const BlockFormat& f, std::span<const std::uint16_t> in,
                          std::size_t row_length, float tensor_scale, const BlockOptions& opt,
                          std::uint8_t* elements, std::uint8_t* scales);

// The inverse: out[i] = the value of element i (PackedTensor::value).
void dequantize_blocked(const BlockFormat& f, const std::uint8_t* elements,
                        const std::uint8_t* scales, float tensor_scale, std::size_t row_length,
                        std::span<float> out, unsigned threads = 1);

// To bf16 bits: the fp32 value of dequantize_blocked rounded to the nearest
// bf16, ties to even (lowp::encode into bf16 of that value; overflow gives
// ±Inf); NaN gives 0x7FC0 with the NaN's sign.
void dequantize_blocked_to_bf16(const BlockFormat& f, const std::uint8_t* elements,
                                const std::uint8_t* scales, float tensor_scale,
                                std::size_t row_length, std::span<std::uint16_t> out,
                                unsigned threads = 1);

// The largest finite |x| of `in` (NVFP4's tensor amax; NaN and Inf skipped).
float finite_amax(std::span<const float> in, unsigned threads = 1);

// Fake quantization (quantize then dequantize) along the middle axis of a
// C-order array seen as outer x length x inner, without the packed arrays:
// out holds, bit for bit, what quantize_blocked then dequantize_blocked give
// on the blocked view (lowp::fake_quantize with that block axis), whose row
// r = o * inner + i holds the `length` values (o, j, i), j = 0 .. length - 1,
// and whose element j of row r is at stream position first_index + r *
// length + j. This call does the blocks [block_begin, block_end) along the
// axis (block b: j in [b * k, (b + 1) * k); block_end past the last means to
// the end) of the rows [row_begin, row_end), on the calling thread
// (opt.threads is not read), and writes only those elements of `out`;
// `in` and `out` are the whole array (outer * length * inner values) and
// must not overlap. NVFP4 uses `tensor_scale` (nvfp4_tensor_scale_of of the
// whole array); MX ignores it.
//
// Vector path: the formats and block sizes of quantize_blocked's, with
// nearest-even or stochastic elements and no flush_subnormals; blocks along
// the last axis (inner == 1) as quantize_blocked's, other axes a block per
// lane (neighbouring columns of the array). Partial blocks along the last
// axis and everything else take the scalar reference, block by block.
void fake_quantize_blocked(const BlockFormat& f, const float* in, float* out, std::size_t length,
                           std::size_t inner, std::size_t row_begin, std::size_t row_end,
                           std::size_t block_begin, std::size_t block_end, float tensor_scale,
                           const BlockOptions& opt, std::uint64_t first_index = 0);

namespace kernels {
// Whether quantize_blocked / dequantize_blocked take the vector path.
bool block_quantize_is_vectorized(const BlockFormat& f, const BlockOptions& opt);
bool block_dequantize_is_vectorized(const BlockFormat& f);
// Whether fake_quantize_blocked takes the vector path (for its whole blocks).
bool block_fake_quantize_is_vectorized(const BlockFormat& f, const BlockOptions& opt);

}  // namespace kernels

// ---- whole tensors along any axis (PackedTensor) ----

// Quantizes a C-order fp32 array. Throws lowp::Error for an axis out of range
// or data whose size does not match the shape.
PackedTensor quantize(const BlockFormat& f, std::span<const float> data,
                      std::span<const std::int64_t> shape, int axis, const BlockOptions& opt);

// The FP32 tensor scale quantize() gives an NVFP4 tensor holding `data`
// (from the largest finite magnitude), for writers that need it up front.
float nvfp4_tensor_scale_of(std::span<const float> data, const BlockOptions& opt);

// Decodes into a C-order fp32 array of the tensor's shape.
void dequantize(const PackedTensor& t, std::span<float> out);

// quantize then dequantize, in the input's layout.
std::vector<float> fake_quantize(const BlockFormat& f, std::span<const float> data,
                                 std::span<const std::int64_t> shape, int axis,
                                 const BlockOptions& opt);

// The array seen as rows along `axis` (every other axis runs over rows; the
// blocked view of tensor.h): rows[(o * inner + i) * length + j] =
// data[(o * length + j) * inner + i]. Returns the row length (shape[axis]).
// scatter_rows_along is the inverse. Throws lowp::Error on sizes that do not
// match the shape, or an axis out of range.
std::size_t gather_rows_along(std::span<const float> data, std::span<const std::int64_t> shape,
                              int axis, std::span<float> rows);
void scatter_rows_along(std::span<const float> rows, std::span<const std::int64_t> shape, int axis,
                        std::span<float> data);

}  // namespace lowp
