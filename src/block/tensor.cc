// Packed block-quantized tensors: quantize along an axis, dequantize, and the
// element bit stream. tensor.h documents the layout.
#include "lowp/block/tensor.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "lowp/error.h"

namespace lowp {
namespace {

// The blocked view of a C-order array: `outer` slabs, each `length` × `inner`;
// row r = o * inner + i holds the elements at o*length*inner + j*inner + i.
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
  std::size_t flat_index(std::size_t row, std::size_t j) const {
    const std::size_t o = row / inner;
    const std::size_t i = row % inner;
    return (o * length + j) * inner + i;
  }
};

std::size_t element_count_of(std::span<const std::int64_t> shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in shape");
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

// Runs body(begin, end) over [0, rows) split into contiguous ranges, one per
// thread; small jobs (under 64 Ki elements) stay on the calling thread.
template <typename Body>
void parallel_for_rows(std::size_t rows, std::size_t elements, unsigned threads, Body body) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (threads == 1 || rows < 2 || elements < (std::size_t{1} << 16)) {
    body(std::size_t{0}, rows);
    return;
  }
  const std::size_t parts = std::min<std::size_t>(threads, rows);
  std::vector<std::thread> pool;
  for (std::size_t p = 1; p < parts; ++p) {
    pool.emplace_back(body, rows * p / parts, rows * (p + 1) / parts);
  }
  body(std::size_t{0}, rows / parts);
  for (std::thread& th : pool) th.join();
}

}  // namespace

float nvfp4_tensor_scale_of(std::span<const float> data, const BlockOptions& opt) {
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
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t rows = n == 0 ? 0 : view.rows();
  const std::size_t blocks = t.blocks_per_row();
  t.scales.assign(rows * blocks, 0);
  t.elements.assign(packed_bytes(f.element.bits, n), 0);

  if (f.family == BlockFamily::kNvfp4) t.tensor_scale = nvfp4_tensor_scale_of(data, opt);
  std::vector<std::uint32_t> codes(n);
  // Rows are independent: split them between threads. Every block writes only
  // its own codes and scale, and stochastic rounding depends only on the
  // element's position, so the result is the same for any thread count.
  auto quantize_rows = [&](std::size_t row_begin, std::size_t row_end) {
    std::vector<float> block(k);
    for (std::size_t row = row_begin; row < row_end; ++row) {
      for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t first = b * k;
        const std::size_t count = std::min(k, view.length - first);
        for (std::size_t j = 0; j < count; ++j) block[j] = data[view.flat_index(row, first + j)];
        const std::size_t position = row * view.length + first;  // in the blocked view
        const std::span<const float> values(block.data(), count);
        const std::span<std::uint32_t> out(codes.data() + position, count);
        t.scales[row * blocks + b] =
            f.family == BlockFamily::kNvfp4
                ? nvfp4_quantize_block(values, t.tensor_scale, out, opt, position)
                : mx_quantize_block(f, values, out, opt, position);
      }
    }
  };
  parallel_for_rows(rows, n, opt.threads, quantize_rows);
  pack_codes(f.element.bits, codes, t.elements);
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
  for (std::size_t row = 0; row < view.rows(); ++row) {
    for (std::size_t j = 0; j < view.length; ++j) out[view.flat_index(row, j)] = t.value(row, j);
  }
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
