// Packed block-quantized tensors: quantize along an axis, dequantize, and the
// element bit stream. tensor.h documents the layout.
#include "lowp/block/tensor.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowp/block_kernels.h"
#include "lowp/error.h"

namespace lowp {
namespace {

// The blocked view of a C-order array: `outer` slabs, each `length` × `inner`;
// row r = o * inner + i holds the elements at (o * length + j) * inner + i.
struct BlockedView {
  std::size_t outer = 1, length = 1, inner = 1;

  BlockedView(std::span<const std::int64_t> shape, int axis) {
    for (std::size_t d = 0; d < shape.size(); ++d) {
      const auto n = static_cast<std::size_t>(shape[d]);
      if (static_cast<int>(d) < axis) outer *= n;
      else if (static_cast<int>(d) == axis) length = n;
      else inner *= n;
    }
  }
  std::size_t rows() const { return outer * inner; }
};

std::size_t element_count_of(std::span<const std::int64_t> shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in shape");
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

// The blocked view's rows gathered from (or scattered back to) the C-order
// array: blocked[(o * inner + i) * length + j] = data[(o * length + j) * inner + i],
// in 32 x 32 tiles so that both sides stream through whole cache lines.
template <bool kToBlocked>
void transpose_blocked(const BlockedView& v, const float* from, float* to) {
  constexpr std::size_t kTile = 32;
  for (std::size_t o = 0; o < v.outer; ++o) {
    const std::size_t base = o * v.length * v.inner;
    for (std::size_t j0 = 0; j0 < v.length; j0 += kTile) {
      const std::size_t j1 = std::min(v.length, j0 + kTile);
      for (std::size_t i0 = 0; i0 < v.inner; i0 += kTile) {
        const std::size_t i1 = std::min(v.inner, i0 + kTile);
        for (std::size_t j = j0; j < j1; ++j) {
          for (std::size_t i = i0; i < i1; ++i) {
            const std::size_t flat = base + j * v.inner + i;
            const std::size_t blocked = base + i * v.length + j;
            if constexpr (kToBlocked) {
              to[blocked] = from[flat];
            } else {
              to[flat] = from[blocked];
            }
          }
        }
      }
    }
  }
}

}  // namespace

float nvfp4_tensor_scale_of(std::span<const float> data, const BlockOptions& opt) {
  if (!opt.flush_subnormals) return nvfp4_tensor_scale(finite_amax(data, opt.threads));
  float amax = 0.0f;
  for (float v : data) {
    if (opt.flush_subnormals && std::fpclassify(v) == FP_SUBNORMAL) continue;
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  }
  return nvfp4_tensor_scale(amax);
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

std::size_t PackedTensor::element_count() const { return element_count_of(shape); }
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
  if (format.family == BlockFamily::kNvfp4) return nvfp4_value(tensor_scale, s, c);
  return static_cast<float>(mx_value(format.element, s, c));
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
    const std::uint32_t piece = (static_cast<std::uint32_t>(stream[byte]) >> offset) & ((1u << take) - 1);
    value |= piece << got;
    got += take;
    bit += static_cast<std::size_t>(take);
  }
  return value;
}

PackedTensor quantize(const BlockFormat& f, std::span<const float> data,
                      std::span<const std::int64_t> shape, int axis, const BlockOptions& opt) {
  if (f.block_size < 1) throw Error("block size must be at least 1");
  PackedTensor t;
  t.format = f;
  t.shape.assign(shape.begin(), shape.end());
  t.axis = normalize_axis(axis, shape.size());
  const std::size_t n = element_count_of(shape);
  if (n != data.size()) {
    throw Error("data holds " + std::to_string(data.size()) + " values but the shape needs " +
                std::to_string(n));
  }
  const BlockedView view(shape, t.axis);
  const std::size_t rows = n == 0 ? 0 : view.rows();
  t.scales.assign(rows * t.blocks_per_row(), 0);
  t.elements.assign(packed_bytes(f.element.bits, n), 0);

  if (f.family == BlockFamily::kNvfp4) t.tensor_scale = nvfp4_tensor_scale_of(data, opt);
  if (rows == 0) return t;
  // The bulk kernels (lowp/block_kernels.h) work on the blocked view's rows;
  // a block axis other than the last is gathered into them first. Each block
  // is the scalar reference's (mx_quantize_block / nvfp4_quantize_block), on
  // any thread count.
  if (view.inner == 1) {
    quantize_blocked(f, data, view.length, t.tensor_scale, opt, t.elements.data(), t.scales.data());
  } else {
    std::vector<float> blocked(n);
    transpose_blocked<true>(view, data.data(), blocked.data());
    quantize_blocked(f, blocked, view.length, t.tensor_scale, opt, t.elements.data(),
                     t.scales.data());
  }
  return t;
}

void dequantize(const PackedTensor& t, std::span<float> out) {
  const std::size_t n = t.element_count();
  if (out.size() != n) {
    throw Error("output holds " + std::to_string(out.size()) + " values but the tensor has " +
                std::to_string(n));
  }
  if (n == 0) return;
  const BlockedView view(t.shape, t.axis);
  if (view.inner == 1) {
    dequantize_blocked(t.format, t.elements.data(), t.scales.data(), t.tensor_scale, view.length,
                       out, 0);
    return;
  }
  std::vector<float> blocked(n);
  dequantize_blocked(t.format, t.elements.data(), t.scales.data(), t.tensor_scale, view.length,
                     blocked, 0);
  transpose_blocked<false>(view, blocked.data(), out.data());
}

std::vector<float> fake_quantize(const BlockFormat& f, std::span<const float> data,
                                 std::span<const std::int64_t> shape, int axis,
                                 const BlockOptions& opt) {
  const PackedTensor t = quantize(f, data, shape, axis, opt);
  std::vector<float> out(data.size());
  dequantize(t, out);
  return out;
}

}  // namespace lowp
