// Shared helpers of the lowp Python bindings: numpy arrays in and out (without
// copies where the layout allows), option names, thread counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional, std::vector arguments (in every file: one set of casters)
#include <pybind11/stl/filesystem.h>  // paths: str or os.PathLike

#include "lowp/block/block_format.h"
#include "lowp/format/convert.h"

namespace lowp::python {

namespace py = pybind11;

// A float array's values in C order: the caller's own buffer when it is a
// C-contiguous float32 (or float64) array, else a converted copy (float16 and
// float32 are exact in fp32; float64 stays float64 unless fp32 is asked for).
struct FloatInput {
  py::array array;  // owns (or references) the values for as long as they are used
  std::vector<std::int64_t> shape;
  bool is_f64 = false;

  std::size_t size() const { return static_cast<std::size_t>(array.size()); }
  std::span<const float> f32() const { return {static_cast<const float*>(array.data()), size()}; }
  std::span<const double> f64() const { return {static_cast<const double*>(array.data()), size()}; }
};

// Accepts any array-like of dtype float16, float32 or float64 (a Python list of
// floats is float64). With `want_f32`, float64 values are rounded to fp32 (as
// numpy's astype does, to nearest even). Throws lowp::Error naming `what` and
// the dtype otherwise.
FloatInput float_input(py::handle x, const char* what, bool want_f32 = false);

std::vector<std::int64_t> shape_of(const py::array& a);
std::vector<py::ssize_t> numpy_shape(std::span<const std::int64_t> shape);

// A new C-order array of `shape` and element type T.
template <typename T>
py::array_t<T> new_array(std::span<const std::int64_t> shape) {
  return py::array_t<T>(numpy_shape(shape));
}

// A numpy array that takes ownership of `values` (no copy), of the given shape.
template <typename T>
py::array_t<T> adopt(std::vector<T>&& values, std::span<const std::int64_t> shape) {
  auto owner = std::make_unique<std::vector<T>>(std::move(values));
  T* data = owner->data();
  py::capsule base(owner.get(), [](void* p) { delete static_cast<std::vector<T>*>(p); });
  owner.release();
  return py::array_t<T>(numpy_shape(shape), data, base);
}

// The numpy dtype that holds codes of `f`: uint8 up to 8 bits, uint16 up to 16,
// else uint32.
py::dtype code_dtype(const Format& f);

// Sets f.block_size from the user's `block` (if given), checked as the CLI's
// --block is: 1 <= block <= the length of `axis` (already normalized) of `shape`.
void apply_block_size(BlockFormat& f, std::optional<int> block, std::span<const std::int64_t> shape,
                      int axis);

// JSON text as Python objects (json.loads): the library's serializers
// (lowp::registry_json, lowp::report_json, ...) are the bindings' too.
py::object from_json(const std::string& text);

// Threads for a bulk kernel over n values (results never depend on it).
unsigned threads_for(std::size_t n);

// Registration of each part of the module (module.cc calls them in order).
void add_formats(py::module_& m);
void add_convert(py::module_& m);
void add_packed(py::module_& m);
void add_model(py::module_& m);
void add_numeracy(py::module_& m);  // numeracy.cc: FoNE, ARC sort

}  // namespace lowp::python
