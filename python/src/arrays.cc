// numpy arrays in and out of the lowp Python bindings.
#include "arrays.h"

#include <algorithm>
#include <string>
#include <thread>

#include "lowp/error.h"

namespace lowp::python {

FloatInput float_input(py::handle x, const char* what, bool want_f32) {
  py::array a = py::array::ensure(x);
  if (!a) {
    throw Error(std::string(what) +
                ": not an array (expected a float16, float32 or float64 array)");
  }
  const py::dtype dt = a.dtype();
  const bool is_float =
      dt.kind() == 'f' && (dt.itemsize() == 2 || dt.itemsize() == 4 || dt.itemsize() == 8);
  if (!is_float) {
    throw Error(std::string(what) + ": dtype " + dt.attr("name").cast<std::string>() +
                " is not a float array; expected float32, float64 or float16");
  }
  FloatInput in;
  in.shape = shape_of(a);
  constexpr int kFlags = py::array::c_style | py::array::forcecast;
  // ensure() returns the very same array when it already has the dtype and
  // layout asked for (native float32, C-contiguous): no copy.
  if (dt.itemsize() == 8 && !want_f32) {
    in.array = py::array_t<double, kFlags>::ensure(a);
    in.is_f64 = true;
  } else {
    in.array = py::array_t<float, kFlags>::ensure(a);
  }
  if (!in.array) throw py::error_already_set();
  return in;
}

std::vector<std::int64_t> shape_of(const py::array& a) {
  std::vector<std::int64_t> shape(static_cast<std::size_t>(a.ndim()));
  for (std::size_t i = 0; i < shape.size(); ++i) {
    shape[i] = static_cast<std::int64_t>(a.shape(static_cast<py::ssize_t>(i)));
  }
  return shape;
}

std::vector<py::ssize_t> numpy_shape(std::span<const std::int64_t> shape) {
  return {shape.begin(), shape.end()};
}

py::dtype code_dtype(const Format& f) {
  switch (code_bytes(f)) {
    case 1:
      return py::dtype::of<std::uint8_t>();
    case 2:
      return py::dtype::of<std::uint16_t>();
    default:
      return py::dtype::of<std::uint32_t>();
  }
}

void apply_block_size(BlockFormat& f, std::optional<int> block, std::span<const std::int64_t> shape,
                      int axis) {
  if (!block) return;
  const std::int64_t length = shape.empty() ? 1 : shape[static_cast<std::size_t>(axis)];
  if (*block < 1 || *block > length) {
    throw Error("block " + std::to_string(*block) + " must be between 1 and the length of axis " +
                std::to_string(axis) + " (" + std::to_string(length) + ")");
  }
  f.block_size = *block;
}

py::object from_json(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

unsigned threads_for(std::size_t n) {
  constexpr std::size_t kValuesPerThread = std::size_t{1} << 16;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t wanted = std::max<std::size_t>(1, n / kValuesPerThread);
  return static_cast<unsigned>(std::min<std::size_t>(cores, wanted));
}

}  // namespace lowp::python
