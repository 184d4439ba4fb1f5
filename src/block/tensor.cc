// Packed block-quantized tensors: the layout (tensor.h) and the element bit
// stream. Quantizing along an axis is the kernels' (src/kernels/tensor_ops.cc).
#include "lowp/block/tensor.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowp/block/mx.h"
#include "lowp/error.h"

namespace lowp {

std::size_t element_count(std::span<const std::int64_t> shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in shape");
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

int normalize_axis(int axis, std::size_t rank) {
  const int r = static_cast<int>(rank);
  if (rank == 0 && (axis == 0 || axis == -1)) return 0;
  if (axis < -r || axis >= r) {
    throw Error("axis " + std::to_string(axis) + " is out of range for an array of rank " +
                std::to_string(rank));
  }
  return axis < 0 ? axis + r : axis;
}

std::size_t PackedTensor::element_count() const { return lowp::element_count(shape); }
std::size_t PackedTensor::row_length() const {
  return shape.empty() ? 1 : static_cast<std::size_t>(shape[static_cast<std::size_t>(axis)]);
}
std::size_t PackedTensor::rows() const {
  const std::size_t len = row_length();
  return len == 0 ? 0 : element_count() / len;
}
std::size_t PackedTensor::blocks_per_row() const {
  const auto k = static_cast<std::size_t>(format.block_size);
  return (row_length() + k - 1) / k;
}
std::uint32_t PackedTensor::code(std::size_t row, std::size_t j) const {
  return unpack_code(format.element.bits, elements, row * row_length() + j);
}
float PackedTensor::value(std::size_t row, std::size_t j) const {
  const std::uint8_t s = scale(row, j / static_cast<std::size_t>(format.block_size));
  const std::uint32_t c = code(row, j);
  return block_value(format, tensor_scale, s, c);
}

void pack_codes(int bits, std::span<const std::uint32_t> codes, std::span<std::uint8_t> out) {
  const std::uint32_t mask = bits >= 32 ? 0xFFFFFFFFu : (std::uint32_t{1} << bits) - 1;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    std::uint64_t field = codes[i] & mask;
    std::size_t bit = static_cast<std::size_t>(bits) * i;
    // Spread the field over the bytes it touches, low bits first.
    for (int left = bits; left > 0;) {
      const std::size_t byte = bit / 8;
      const int offset = static_cast<int>(bit % 8);
      const int take = std::min(left, 8 - offset);
      out[byte] = static_cast<std::uint8_t>(out[byte] | ((field & ((1u << take) - 1)) << offset));
      field >>= take;
      bit += static_cast<std::size_t>(take);
      left -= take;
    }
  }
}

std::uint32_t unpack_code(int bits, std::span<const std::uint8_t> stream, std::size_t index) {
  std::uint32_t value = 0;
  std::size_t bit = static_cast<std::size_t>(bits) * index;
  for (int got = 0; got < bits;) {
    const std::size_t byte = bit / 8;
    const int offset = static_cast<int>(bit % 8);
    const int take = std::min(bits - got, 8 - offset);
    const std::uint32_t piece =
        (static_cast<std::uint32_t>(stream[byte]) >> offset) & ((1u << take) - 1);
    value |= piece << got;
    got += take;
    bit += static_cast<std::size_t>(take);
  }
  return value;
}

}  // namespace lowp
