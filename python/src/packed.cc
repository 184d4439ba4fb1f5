// lowp.quantize and lowp.PackedTensor: block-quantized tensors in packed
// storage (lowp/block/tensor.h), with their bytes as numpy arrays.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/registry.h"

namespace lowp::python {
namespace {

BlockFormat block_format_of(const std::string& format, std::optional<int> block) {
  BlockFormat f;
  if (!parse_block_format(format, f)) {
    parse_format(format);  // an unknown name: the parser's error names the closest ones
    throw Error(quoted(format) +
                " is a scalar format; quantize() packs block formats (mxfp8_e4m3, mxfp4, nvfp4, "
                "mx:<element>:<k>, ...); use encode() for scalar formats");
  }
  if (block) {
    if (*block < 1) throw Error("block " + std::to_string(*block) + " must be at least 1");
    f.block_size = *block;
  }
  return f;
}

PackedTensor quantize_array(py::handle x, const std::string& format, std::optional<int> block,
                            int axis, const std::string& scale_rule, const std::string& rounding,
                            std::uint64_t seed, bool flush_subnormals) {
  BlockFormat f = block_format_of(format, std::nullopt);
  BlockOptions opt;
  opt.rounding = parse_rounding(rounding);
  opt.scale_rule = parse_scale_rule(scale_rule);
  opt.seed = seed;
  opt.flush_subnormals = flush_subnormals;
  const FloatInput in = float_input(x, "x", /*want_f32=*/true);
  const int resolved_axis = normalize_axis(axis, in.shape.size());
  apply_block_size(f, block, in.shape, resolved_axis);
  py::gil_scoped_release release;
  return quantize(f, in.f32(), in.shape, resolved_axis, opt);
}

std::vector<std::uint8_t> bytes_of(py::handle a, const char* what) {
  if (py::isinstance<py::bytes>(a)) {
    const std::string text = a.cast<std::string>();
    return {text.begin(), text.end()};
  }
  py::array arr = py::array::ensure(a);
  if (!arr || arr.dtype().kind() != 'u' || arr.dtype().itemsize() != 1) {
    throw Error(std::string(what) + ": expected a uint8 array or bytes");
  }
  auto c = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(arr);
  return {c.data(), c.data() + c.size()};
}

// A PackedTensor from its parts (as a file or pickle stores them), checked for
// consistency so that decoding never reads out of bounds.
PackedTensor from_parts(const std::string& format, const std::vector<std::int64_t>& shape,
                        py::handle elements, py::handle scales, int axis, float tensor_scale,
                        std::optional<int> block) {
  PackedTensor t;
  t.format = block_format_of(format, block);
  // The element count must not overflow (the library multiplies the dimensions).
  std::size_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in shape");
    const auto size = static_cast<std::size_t>(d);
    if (size != 0 && count > std::numeric_limits<std::size_t>::max() / size) {
      throw Error("shape: too many elements");
    }
    count *= size;
  }
  t.shape = shape;
  t.axis = normalize_axis(axis, shape.size());
  t.elements = bytes_of(elements, "elements");
  t.scales = bytes_of(scales, "scales");
  t.tensor_scale = tensor_scale;
  const std::size_t n = t.element_count();
  const std::size_t want_elements = packed_bytes(t.format.element.bits, n);
  const std::size_t want_scales = n == 0 ? 0 : t.rows() * t.blocks_per_row();
  if (t.elements.size() != want_elements) {
    throw Error("elements: " + std::to_string(t.elements.size()) + " bytes, but " +
                block_format_name(t.format) + " needs " + std::to_string(want_elements) + " for " +
                std::to_string(n) + " values");
  }
  if (t.scales.size() != want_scales) {
    throw Error("scales: " + std::to_string(t.scales.size()) + " bytes, but the shape needs " +
                std::to_string(want_scales) + " (one per block)");
  }
  return t;
}

// A read-only uint8 view of bytes owned by the PackedTensor `self`.
py::array byte_view(const std::vector<std::uint8_t>& bytes, py::handle self) {
  py::array_t<std::uint8_t> view({static_cast<py::ssize_t>(bytes.size())}, {1}, bytes.data(), self);
  py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return view;
}

py::array dequantize_array(const PackedTensor& t) {
  std::vector<float> out(t.element_count());
  {
    py::gil_scoped_release release;
    dequantize(t, out);
  }
  return adopt(std::move(out), t.shape);
}

template <typename Code>
py::array unpacked_codes_as(const PackedTensor& t) {
  std::vector<Code> codes(t.element_count());
  for (std::size_t i = 0; i < codes.size(); ++i) {
    codes[i] = static_cast<Code>(unpack_code(t.format.element.bits, t.elements, i));
  }
  const std::int64_t shape[] = {static_cast<std::int64_t>(t.rows()),
                                static_cast<std::int64_t>(t.row_length())};
  return adopt(std::move(codes), shape);
}

// The element codes of the blocked view, code_bytes(element) wide.
py::array unpacked_codes(const PackedTensor& t) {
  switch (code_bytes(t.format.element)) {
    case 1:
      return unpacked_codes_as<std::uint8_t>(t);
    case 2:
      return unpacked_codes_as<std::uint16_t>(t);
    default:
      return unpacked_codes_as<std::uint32_t>(t);
  }
}

py::tuple shape_tuple(const PackedTensor& t) {
  py::tuple shape(t.shape.size());
  for (std::size_t i = 0; i < t.shape.size(); ++i) shape[i] = t.shape[i];
  return shape;
}

std::string repr(const PackedTensor& t) {
  std::string shape;
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    shape += (i ? ", " : "") + std::to_string(t.shape[i]);
  }
  if (t.shape.size() == 1) shape += ",";
  std::string text = "PackedTensor(format='" + block_format_name(t.format) + "', shape=(" + shape +
                     "), axis=" + std::to_string(t.axis) +
                     ", block_size=" + std::to_string(t.format.block_size) +
                     ", elements=" + std::to_string(t.elements.size()) +
                     " bytes, scales=" + std::to_string(t.scales.size()) + " bytes";
  if (t.format.scale == BlockScale::kUe4m3) {
    text += ", tensor_scale=" + std::string(py::str(py::float_(t.tensor_scale)));
  }
  return text + ")";
}

}  // namespace

void add_packed(py::module_& m) {
  py::class_<PackedTensor>(m, "PackedTensor", R"doc(A block-quantized tensor in packed storage.

Made by lowp.quantize(), or from its parts (as a file stores them) with
PackedTensor(format, shape, elements, scales, axis=-1, tensor_scale=1.0,
block=None), which checks that the byte counts fit the format and shape.

Layout (docs/block-formats.md): blocks of `block_size` consecutive elements
run along `axis`. Seen with that axis moved last (the "blocked view", C
order), `elements` is the element codes as one little-endian bit stream
(FP8/INT8 one per byte, FP4 two per byte with the first in the low nibble,
FP6 four per three bytes), and `scales` is one byte per block (E8M0 for MX,
E4M3 for NVFP4), row by row. NVFP4 also has an FP32 `tensor_scale`.

np.asarray(t) and t.dequantize() give the float32 values, in the original
shape and layout.)doc")
      .def(py::init(&from_parts), py::arg("format"), py::arg("shape"), py::arg("elements"),
           py::arg("scales"), py::kw_only(), py::arg("axis") = -1, py::arg("tensor_scale") = 1.0f,
           py::arg("block") = py::none(),
           "PackedTensor(format, shape, elements, scales, *, axis=-1, tensor_scale=1.0, "
           "block=None)\n\n"
           "Builds a PackedTensor from its parts (copied: uint8 arrays or bytes), checking "
           "that their sizes fit the format and shape.")
      .def_property_readonly(
          "format", [](const PackedTensor& t) { return block_format_name(t.format); },
          "The block format's name, e.g. 'mxfp4' or 'mx:int4:16'.")
      .def_property_readonly("shape", &shape_tuple, "The logical shape (a tuple).")
      .def_property_readonly(
          "axis", [](const PackedTensor& t) { return t.axis; },
          "The axis the blocks run along (0 <= axis < ndim; 0 for a 0-d tensor).")
      .def_property_readonly(
          "block_size", [](const PackedTensor& t) { return t.format.block_size; },
          "Elements per shared scale (the last block of a row may be partial).")
      .def_property_readonly(
          "elements",
          [](py::object self) {
            return byte_view(self.cast<const PackedTensor&>().elements, self);
          },
          "The packed element codes: a read-only uint8 array (a view, no copy).")
      .def_property_readonly(
          "scales",
          [](py::object self) { return byte_view(self.cast<const PackedTensor&>().scales, self); },
          "The block scales, one byte per block: a read-only uint8 array (a view).")
      .def_property_readonly(
          "tensor_scale", [](const PackedTensor& t) { return t.tensor_scale; },
          "NVFP4's FP32 per-tensor scale (1.0 for MX formats).")
      .def_property_readonly(
          "nbytes", [](const PackedTensor& t) { return t.elements.size() + t.scales.size(); },
          "Stored bytes: elements plus scales (NVFP4's 4-byte tensor scale not counted).")
      .def("codes", &unpacked_codes,
           "codes() -> numpy.ndarray\n\nThe element codes unpacked, as a [rows, row_length] array "
           "of the blocked view (the "
           "block axis last): uint8 for elements of up to 8 bits, uint16 up to 16, else uint32.")
      .def("dequantize", &dequantize_array,
           "dequantize() -> numpy.ndarray\n\nThe values as a new float32 array of the tensor's "
           "shape (NaN for blocks with a NaN "
           "scale).")
      .def(
          "__array__",
          [](const PackedTensor& t, py::object dtype, py::object /*copy*/) {
            py::array values = dequantize_array(t);
            return dtype.is_none()
                       ? values
                       : py::array(values.attr("astype")(dtype, py::arg("copy") = false));
          },
          py::arg("dtype") = py::none(), py::arg("copy") = py::none(),
          "__array__(dtype=None, copy=None) -> numpy.ndarray\n\nnp.asarray(t): the dequantized "
          "values.")
      .def("__repr__", &repr)
      .def(py::pickle(
          [](const PackedTensor& t) {
            return py::make_tuple(
                block_format_name(t.format), t.shape,
                py::bytes(reinterpret_cast<const char*>(t.elements.data()), t.elements.size()),
                py::bytes(reinterpret_cast<const char*>(t.scales.data()), t.scales.size()), t.axis,
                t.tensor_scale);
          },
          [](const py::tuple& s) {
            if (s.size() != 6) throw Error("PackedTensor: bad pickled state");
            return from_parts(s[0].cast<std::string>(), s[1].cast<std::vector<std::int64_t>>(),
                              s[2], s[3], s[4].cast<int>(), s[5].cast<float>(), std::nullopt);
          }));

  m.def(
      "quantize", &quantize_array, py::arg("x"), py::arg("format"), py::kw_only(),
      py::arg("block") = py::none(), py::arg("axis") = -1, py::arg("scale_rule") = "floor",
      py::arg("rounding") = "rne", py::arg("seed") = 0, py::arg("flush_subnormals") = false,
      R"doc(quantize(x, format, *, block=None, axis=-1, scale_rule="floor", rounding="rne", seed=0, flush_subnormals=False) -> PackedTensor

Quantizes an array into a block format in real packed storage: the element
codes and one scale per block, as bytes you can store and ship (see
PackedTensor for the layout). t.dequantize() (or np.asarray(t)) equals
lowp.fake_quant(x, format, ...) with the same options, bit for bit.

x                 array-like of float32, float64 (rounded to fp32 first) or
                  float16, any shape.
format            a block format: "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2",
                  "mxfp6_e2m3", "mxfp4", "mxint8", "nvfp4", or
                  "mx:<element>:<k>" (any scalar element, any k).
block             block size k (default: the format's); 1 <= k <= len(axis).
axis              the axis the blocks run along (negative counts from the end).
scale_rule        MX shared-scale rule: "floor" (OCP MX v1.0), "rceil"
                  (NVIDIA: no element saturates), "ceil", "even" (torchao).
rounding          element rounding: "rne", "away", "zero" or "stochastic".
seed              seed for stochastic rounding (element i of the blocked view
                  draws from (seed, i)).
flush_subnormals  flush fp32 subnormal inputs to zero first.

MX: a NaN or Inf in a block makes its scale NaN (0xFF) and the block decodes
to NaN; an all-zero block gets scale 0x00. Raises lowp.Error for a scalar or
unknown format, an unknown option, or an axis or block out of range.

>>> t = lowp.quantize(np.ones((4, 64), np.float32), "mxfp4")
>>> t
PackedTensor(format='mxfp4', shape=(4, 64), axis=1, block_size=32, elements=128 bytes, scales=8 bytes)
>>> t.scales[:2], t.elements[:2]
(array([125, 125], dtype=uint8), array([102, 102], dtype=uint8)))doc");
}

}  // namespace lowp::python
