// lowp.fone_encode, lowp.fone_decode, lowp.arc_sort and lowp.radix_sort: the
// numeracy layer (lowp/numeracy/fone.h, lowp/numeracy/sort.h) over numpy
// arrays.
#include <cstdint>
#include <string>
#include <vector>

#include "arrays.h"
#include "lowp/error.h"
#include "lowp/numeracy/fone.h"
#include "lowp/numeracy/sort.h"

namespace lowp::python {
namespace {

using numeracy::FoneConfig;
using numeracy::FoneNumber;

constexpr int kFlags = py::array::c_style | py::array::forcecast;

// The numbers of `values` (a 1-D array-like of integers, floats or str):
// integers exactly, floats as the decimals they are the nearest doubles of,
// str as decimal text.
std::vector<FoneNumber> fone_numbers(py::handle values, const FoneConfig& c) {
  std::vector<FoneNumber> out;
  if (py::isinstance<py::str>(values)) {
    throw Error("fone_encode: values must be a sequence or array of numbers, not one str");
  }
  py::array a = py::array::ensure(values);
  if (!a) throw Error("fone_encode: values is not an array of numbers");
  if (a.ndim() > 1) {
    throw Error("fone_encode: values must be 1-D, not " + std::to_string(a.ndim()) + "-D");
  }
  const char kind = a.dtype().kind();
  if (kind == 'i' || kind == 'u' || kind == 'b') {
    if (kind == 'u' && a.dtype().itemsize() == 8) {
      const auto u = py::array_t<std::uint64_t, kFlags>::ensure(a);
      for (py::ssize_t i = 0; i < u.size(); ++i) {
        const std::uint64_t x = u.data()[i];
        if (x > static_cast<std::uint64_t>(INT64_MAX)) {
          out.push_back(numeracy::fone_parse(std::to_string(x), c));
        } else {
          out.push_back(numeracy::fone_from_integer(static_cast<std::int64_t>(x), c));
        }
      }
      return out;
    }
    const auto v = py::array_t<std::int64_t, kFlags>::ensure(a);
    for (py::ssize_t i = 0; i < v.size(); ++i) {
      out.push_back(numeracy::fone_from_integer(v.data()[i], c));
    }
  } else if (kind == 'f') {
    const auto v = py::array_t<double, kFlags>::ensure(a);
    for (py::ssize_t i = 0; i < v.size(); ++i) {
      out.push_back(numeracy::fone_from_double(v.data()[i], c));
    }
  } else if (kind == 'U' || kind == 'O') {
    for (const py::handle item : a.attr("ravel")()) {
      out.push_back(numeracy::fone_parse(py::str(item).cast<std::string>(), c));
    }
  } else {
    throw Error("fone_encode: dtype " + a.dtype().attr("name").cast<std::string>() +
                " is not a number type");
  }
  return out;
}

bool want_f32(const py::object& dtype) {
  const py::dtype dt = py::dtype::from_args(dtype);
  if (dt.is(py::dtype::of<float>()) || (dt.kind() == 'f' && dt.itemsize() == 4)) return true;
  if (dt.kind() == 'f' && dt.itemsize() == 8) return false;
  throw Error("fone_encode: dtype must be float32 or float64");
}

py::array fone_encode(py::handle values, int int_digits, int frac_digits, bool sign,
                      const py::object& dtype) {
  const FoneConfig c{int_digits, frac_digits, sign};
  numeracy::check_fone_config(c);
  const bool f32 = want_f32(dtype);
  const std::vector<FoneNumber> numbers = fone_numbers(values, c);
  const auto width = static_cast<std::size_t>(numeracy::fone_width(c));
  const std::int64_t shape[2] = {static_cast<std::int64_t>(numbers.size()),
                                 static_cast<std::int64_t>(width)};
  if (f32) {
    py::array_t<float> out = new_array<float>(shape);
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      numeracy::fone_encode(numbers[i], c, std::span<float>(out.mutable_data() + i * width, width));
    }
    return out;
  }
  py::array_t<double> out = new_array<double>(shape);
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    numeracy::fone_encode(numbers[i], c, std::span<double>(out.mutable_data() + i * width, width));
  }
  return out;
}

py::array fone_decode(py::handle features, int int_digits, int frac_digits, bool sign) {
  const FoneConfig c{int_digits, frac_digits, sign};
  numeracy::check_fone_config(c);
  const FloatInput in = float_input(features, "features");
  const auto width = static_cast<std::size_t>(numeracy::fone_width(c));
  if (in.shape.empty() || in.shape.back() != static_cast<std::int64_t>(width)) {
    throw Error("fone_decode: features must have a last axis of " + std::to_string(width) +
                " (int_digits " + std::to_string(int_digits) + ", frac_digits " +
                std::to_string(frac_digits) + (sign ? ", sign" : "") + ")");
  }
  const std::size_t n = in.size() / width;
  std::vector<std::int64_t> out_shape(in.shape.begin(), in.shape.end() - 1);
  py::array_t<double> out = new_array<double>(out_shape);
  for (std::size_t i = 0; i < n; ++i) {
    const FoneNumber v = in.is_f64 ? numeracy::fone_decode(in.f64().subspan(i * width, width), c)
                                   : numeracy::fone_decode(in.f32().subspan(i * width, width), c);
    out.mutable_data()[i] = numeracy::fone_to_double(v, c);
  }
  return out;
}

template <typename T, typename Sort>
py::array sorted_copy(const py::array& a, Sort sort) {
  auto copy = py::array_t<T, kFlags>(py::array_t<T, kFlags>::ensure(a)).attr("copy")();
  auto out = copy.template cast<py::array_t<T, kFlags>>();
  {
    py::gil_scoped_release release;
    sort(std::span<T>(out.mutable_data(), static_cast<std::size_t>(out.size())));
  }
  return out;
}

template <bool kArc>
py::array sort_array(py::handle x) {
  const char* name = kArc ? "arc_sort" : "radix_sort";
  py::array a = py::array::ensure(x);
  if (!a) throw Error(std::string(name) + ": not an array");
  if (a.ndim() != 1) {
    throw Error(std::string(name) + ": the array must be 1-D, not " + std::to_string(a.ndim()) +
                "-D");
  }
  const py::dtype dt = a.dtype();
  const auto sort = [](auto span) {
    if constexpr (kArc) {
      numeracy::arc_sort(span);
    } else {
      numeracy::radix_sort(span);
    }
  };
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'i' && size == 4) return sorted_copy<std::int32_t>(a, sort);
  if (kind == 'i' && size == 8) return sorted_copy<std::int64_t>(a, sort);
  if (kind == 'u' && size == 4) return sorted_copy<std::uint32_t>(a, sort);
  if (kind == 'u' && size == 8) return sorted_copy<std::uint64_t>(a, sort);
  if (kind == 'f' && size == 4) return sorted_copy<float>(a, sort);
  if (kind == 'f' && size == 8) return sorted_copy<double>(a, sort);
  throw Error(std::string(name) + ": dtype " + dt.attr("name").cast<std::string>() +
              " is not int32, int64, uint32, uint64, float32 or float64");
}

}  // namespace

void add_numeracy(py::module_& m) {
  m.def(
      "fone_encode", &fone_encode, py::arg("values"), py::kw_only(), py::arg("int_digits") = 12,
      py::arg("frac_digits") = 0, py::arg("sign") = false,
      py::arg("dtype") = py::dtype::of<double>(),
      R"doc(fone_encode(values, *, int_digits=12, frac_digits=0, sign=False, dtype=numpy.float64) -> numpy.ndarray

FoNE (Fourier Number Embedding) features of each number: an array
[len(values), 2 * (int_digits + frac_digits) (+ 1 with sign)], the pair
[cos, sin](2 pi x / 10^k) for k = -frac_digits + 1 ... int_digits, smallest
period first, then the sign feature (+1 / -1). values: a 1-D sequence or array
of integers (exact), floats (each must be the nearest double of a decimal with
at most frac_digits fractional digits) or decimal strings. Computed in fp64
with exact integer range reduction; dtype=numpy.float32 rounds the features.
Negative values need sign=True. docs/numeracy.md.)doc");
  m.def("fone_decode", &fone_decode, py::arg("features"), py::kw_only(), py::arg("int_digits") = 12,
        py::arg("frac_digits") = 0, py::arg("sign") = false,
        R"doc(fone_decode(features, *, int_digits=12, frac_digits=0, sign=False) -> numpy.ndarray

The numbers (float64) whose FoNE features these are (last axis: the features of
one number), read digit by digit from the pairs' angles; exact for fone_encode's
float64 and float32 output alike.)doc");
  m.def("arc_sort", &sort_array<true>, py::arg("x"),
        R"doc(arc_sort(x) -> numpy.ndarray

A sorted copy of the 1-D array x (int32, int64, uint32, uint64, float32 or
float64) by ARC sort: buckets by decimal digit count, then each bucket sorted.
Floats in IEEE totalOrder (-NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN).)doc");
  m.def("radix_sort", &sort_array<false>, py::arg("x"),
        R"doc(radix_sort(x) -> numpy.ndarray

A sorted copy of the 1-D array x by lowp's LSD radix sort (same dtypes and order
as arc_sort).)doc");
}

}  // namespace lowp::python
