// Quantizing a tensor along any axis into lowp's packed layout (PackedTensor,
// lowp/block/tensor.h), and back: the blocked view's rows go through the bulk
// block kernels (block.cc); a block axis other than the last is gathered into
// rows first.
#include <algorithm>
#include <cmath>
#include <string>

#include "lowp/block/tensor.h"
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
      if (static_cast<int>(d) < axis)
        outer *= n;
      else if (static_cast<int>(d) == axis)
        length = n;
      else
        inner *= n;
    }
  }
  std::size_t rows() const { return outer * inner; }
};

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

namespace {

// The blocked view of `shape` along `axis`, once both arrays hold its values.
BlockedView checked_view(const char* what, std::size_t data, std::size_t rows,
                         std::span<const std::int64_t> shape, int axis) {
  const BlockedView view(shape, normalize_axis(axis, shape.size()));
  if (data != element_count(shape) || rows != data) {
    throw Error(std::string(what) + ": " + std::to_string(data) + " values and " +
                std::to_string(rows) + " rows' values for " + std::to_string(element_count(shape)));
  }
  return view;
}

}  // namespace

std::size_t gather_rows_along(std::span<const float> data, std::span<const std::int64_t> shape,
                              int axis, std::span<float> rows) {
  const BlockedView view = checked_view("gather_rows_along", data.size(), rows.size(), shape, axis);
  if (!data.empty()) transpose_blocked<true>(view, data.data(), rows.data());
  return view.length;
}

void scatter_rows_along(std::span<const float> rows, std::span<const std::int64_t> shape, int axis,
                        std::span<float> data) {
  const BlockedView view =
      checked_view("scatter_rows_along", data.size(), rows.size(), shape, axis);
  if (!data.empty()) transpose_blocked<false>(view, rows.data(), data.data());
}

float nvfp4_tensor_scale_of(std::span<const float> data, const BlockOptions& opt) {
  if (!opt.flush_subnormals) return nvfp4_tensor_scale(finite_amax(data, opt.threads));
  float amax = 0.0f;
  for (float v : data) {
    if (opt.flush_subnormals && std::fpclassify(v) == FP_SUBNORMAL) continue;
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  }
  return nvfp4_tensor_scale(amax);
}

PackedTensor quantize(const BlockFormat& f, std::span<const float> data,
                      std::span<const std::int64_t> shape, int axis, const BlockOptions& opt) {
  if (f.block_size < 1) throw Error("block size must be at least 1");
  PackedTensor t;
  t.format = f;
  t.shape.assign(shape.begin(), shape.end());
  t.axis = normalize_axis(axis, shape.size());
  const std::size_t n = element_count(shape);
  if (n != data.size()) {
    throw Error("data holds " + std::to_string(data.size()) + " values but the shape needs " +
                std::to_string(n));
  }
  const BlockedView view(shape, t.axis);
  const std::size_t rows = n == 0 ? 0 : view.rows();
  t.scales.assign(rows * t.blocks_per_row(), 0);
  t.elements.assign(packed_bytes(f.element.bits, n), 0);

  if (has_tensor_scale(f)) t.tensor_scale = nvfp4_tensor_scale_of(data, opt);
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
