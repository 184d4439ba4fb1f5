// lowp/block/tensor.h — a block-quantized tensor in packed storage: the real
// thing (bytes you can store and ship), not fake quantization.
//
// Layout (lowp's dense OCP-style layout):
//  * Blocks run along one axis of the N-d array (the last by default). Think of
//    the array with that axis moved to the end (the "blocked view", C order):
//    it has rows() rows of row_length() elements, and each row is cut into
//    blocks of k consecutive elements; when k does not divide the row length the
//    last block of each row is partial (its amax is taken over the elements
//    present).
//  * elements: the element codes of the blocked view in order, as one
//    little-endian bit stream of `element.bits`-bit fields: element i occupies
//    bits [b*i, b*i + b) counting from bit 0 of byte 0. So FP8/INT8 are one per
//    byte; FP4 is two per byte with element 2i in the low nibble; FP6 is four
//    elements in three bytes, element 4i+0 in bits 0-5 of the first byte, 4i+1
//    in bits 6-11, and so on. The stream is padded with zero bits to a byte.
//  * scales: one byte per block (E8M0 for MX, E4M3 for NVFP4), row-major over
//    (row, block within row).
//  * tensor_scale: NVFP4's FP32 per-tensor scale (1 for MX).
// Stochastic rounding draws element i of the blocked view from stream position i.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"

namespace lowp {

struct PackedTensor {
  BlockFormat format;
  std::vector<std::int64_t> shape;
  int axis = 0;  // the block axis, 0 <= axis < rank (0 for a 0-d tensor)
  std::vector<std::uint8_t> elements;
  std::vector<std::uint8_t> scales;
  float tensor_scale = 1.0f;

  std::size_t element_count() const;
  std::size_t row_length() const;      // shape[axis] (1 for a 0-d tensor)
  std::size_t rows() const;            // element_count() / row_length()
  std::size_t blocks_per_row() const;  // ceil(row_length / k)
  // Element code at (row, j) of the blocked view.
  std::uint32_t code(std::size_t row, std::size_t j) const;
  std::uint8_t scale(std::size_t row, std::size_t block) const {
    return scales[row * blocks_per_row() + block];
  }
  // Value at (row, j) of the blocked view, as the format decodes it.
  float value(std::size_t row, std::size_t j) const;
};

// Resolves a possibly negative axis against a rank; throws lowp::Error naming
// the axis if it is out of range.
int normalize_axis(int axis, std::size_t rank);

// Elements of a C-order array of this shape; throws lowp::Error for a
// negative dimension. (Quantizing into a PackedTensor and back:
// lowp/block_kernels.h.)
std::size_t element_count(std::span<const std::int64_t> shape);

// ---- the little-endian bit stream of element codes ----

constexpr std::size_t packed_bytes(int bits, std::size_t count) {
  return (static_cast<std::size_t>(bits) * count + 7) / 8;
}
// Writes codes[i] (low `bits` bits) at bit offset bits*i of `out`, which must
// hold packed_bytes(bits, codes.size()) zeroed bytes.
void pack_codes(int bits, std::span<const std::uint32_t> codes, std::span<std::uint8_t> out);
std::uint32_t unpack_code(int bits, std::span<const std::uint8_t> stream, std::size_t index);

}  // namespace lowp
