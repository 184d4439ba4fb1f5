// lowp.encode, lowp.decode and lowp.fake_quant: the CLI's encode, decode and
// fake-quant verbs over numpy arrays, giving the same bits.
//
// float32 input (and float16, exact in fp32) goes through the bulk kernels
// (lowp/kernels.h), which are bit-identical to the scalar reference; float64
// input is rounded once, directly, by the scalar reference, as the CLI does.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace lowp::python {
namespace {

// Encodes `in` into `codes` (code_bytes(f) wide), without the GIL.
void encode_into(const Format& f, const FloatInput& in, void* codes, const EncodeOptions& opt,
                 std::uint64_t seed) {
  py::gil_scoped_release release;
  if (in.is_f64) {
    encode_f64(f, in.f64(), codes, opt, seed);
  } else {
    encode_f32(f, in.f32(), codes, opt, seed, 0, threads_for(in.size()));
  }
}

py::array encode_array(py::handle x, const std::string& format, const std::string& rounding,
                       std::uint64_t seed, bool saturate) {
  const Format f = parse_format(format);
  const EncodeOptions opt{parse_rounding(rounding), saturate};
  const FloatInput in = float_input(x, "x");
  py::array codes(code_dtype(f), numpy_shape(in.shape));
  encode_into(f, in, codes.mutable_data(), opt, seed);
  return codes;
}

// The codes as a C-contiguous array of the width code_bytes(f), every element
// checked to be a code of f (an integer in [0, 2^bits)), as the CLI checks.
template <typename Code>
py::array checked_codes(const py::array& a, const Format& f, const std::string& format) {
  const auto fail = [&](std::size_t i, auto v) {
    throw Error("codes: element " + std::to_string(i) + " holds " + std::to_string(v) +
                ", which is not a code of " + format + " (" + std::to_string(f.bits) + " bits)");
  };
  const std::uint32_t mask = code_mask(f);
  constexpr int kFlags = py::array::c_style | py::array::forcecast;
  const py::dtype dt = a.dtype();
  if (dt.kind() == 'u' && static_cast<std::size_t>(dt.itemsize()) == sizeof(Code)) {
    // The caller's array when it is C-contiguous: no copy, only the range check.
    auto same = py::array_t<Code, kFlags>::ensure(a);
    const Code* p = same.data();
    for (std::size_t i = 0; i < static_cast<std::size_t>(same.size()); ++i) {
      if (p[i] > mask) fail(i, p[i]);
    }
    return same;
  }
  const std::size_t n = static_cast<std::size_t>(a.size());
  py::array_t<Code> out(numpy_shape(shape_of(a)));
  Code* dst = out.mutable_data();
  if (dt.kind() == 'u') {
    auto wide = py::array_t<std::uint64_t, kFlags>::ensure(a);
    const std::uint64_t* p = wide.data();
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] > mask) fail(i, p[i]);
      dst[i] = static_cast<Code>(p[i]);
    }
  } else {
    auto wide = py::array_t<std::int64_t, kFlags>::ensure(a);
    const std::int64_t* p = wide.data();
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] < 0 || static_cast<std::uint64_t>(p[i]) > mask) fail(i, p[i]);
      dst[i] = static_cast<Code>(p[i]);
    }
  }
  return out;
}

py::array decode_array(py::handle codes, const std::string& format, const std::string& dtype) {
  const Format f = parse_format(format);
  if (dtype != "float32" && dtype != "float64") {
    throw Error("unknown output dtype " + quoted(dtype) + " (expected float32 or float64)");
  }
  py::array a = py::array::ensure(codes);
  if (!a) throw Error("codes: not an array (expected an unsigned integer array)");
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'u' && dt.kind() != 'i') {
    throw Error("codes: dtype " + dt.attr("name").cast<std::string>() +
                " does not hold codes; expected an unsigned integer array (uint8 for formats of "
                "up to 8 bits)");
  }
  py::array checked;
  switch (code_bytes(f)) {
    case 1:
      checked = checked_codes<std::uint8_t>(a, f, format);
      break;
    case 2:
      checked = checked_codes<std::uint16_t>(a, f, format);
      break;
    default:
      checked = checked_codes<std::uint32_t>(a, f, format);
      break;
  }
  const std::vector<std::int64_t> shape = shape_of(a);
  const std::size_t n = static_cast<std::size_t>(a.size());
  const void* src = checked.data();
  if (dtype == "float32") {
    py::array_t<float> out = new_array<float>(shape);
    float* dst = out.mutable_data();
    {
      py::gil_scoped_release release;
      decode_to_f32(f, src, std::span<float>(dst, n), threads_for(n));
    }
    return out;
  }
  py::array_t<double> out = new_array<double>(shape);
  double* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    const int width = code_bytes(f);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t code = width == 1   ? static_cast<const std::uint8_t*>(src)[i]
                                 : width == 2 ? static_cast<const std::uint16_t*>(src)[i]
                                              : static_cast<const std::uint32_t*>(src)[i];
      dst[i] = decode(f, code);
    }
  }
  return out;
}

py::array fake_quant_array(py::handle x, const std::string& format, std::optional<int> block,
                           int axis, const std::string& scale_rule, const std::string& rounding,
                           std::uint64_t seed, bool saturate, bool flush_subnormals) {
  BlockFormat block_format;
  const bool is_block = parse_block_format(format, block_format);
  const Format scalar_format = is_block ? Format{} : parse_format(format);
  if (!is_block && block) {
    throw Error("block applies to block formats; " + quoted(format) + " is a scalar format");
  }
  if (is_block && saturate) {
    throw Error("saturate applies to scalar formats; block formats always saturate their elements");
  }
  BlockOptions opt;
  opt.rounding = parse_rounding(rounding);
  opt.scale_rule = parse_scale_rule(scale_rule);
  opt.seed = seed;
  opt.flush_subnormals = flush_subnormals;

  if (!is_block) {
    // A plain cast: decode(encode(x)).
    const FloatInput in = float_input(x, "x");
    const std::size_t n = in.size();
    std::vector<std::uint32_t> codes(n);  // wide enough for any code width
    std::vector<float> out(n);
    {
      py::gil_scoped_release release;
      const EncodeOptions encode_opt{opt.rounding, saturate};
      const unsigned threads = threads_for(n);
      if (in.is_f64) {
        encode_f64(scalar_format, in.f64(), codes.data(), encode_opt, seed);
      } else {
        encode_f32(scalar_format, in.f32(), codes.data(), encode_opt, seed, 0, threads);
      }
      decode_to_f32(scalar_format, codes.data(), out, threads);
    }
    return adopt(std::move(out), in.shape);
  }
  // Block quantization reads fp32 values; float64 input is rounded to fp32 first.
  const FloatInput in = float_input(x, "x", /*want_f32=*/true);
  const int resolved_axis = normalize_axis(axis, in.shape.size());
  apply_block_size(block_format, block, in.shape, resolved_axis);
  std::vector<float> out;
  {
    py::gil_scoped_release release;
    out = fake_quantize(block_format, in.f32(), in.shape, resolved_axis, opt);
  }
  return adopt(std::move(out), in.shape);
}

// The address of the values the functions above read for `x`: the caller's
// buffer when no copy is made. For the tests.
std::uintptr_t input_address(py::handle x) {
  return reinterpret_cast<std::uintptr_t>(float_input(x, "x").array.data());
}

}  // namespace

void add_convert(py::module_& m) {
  m.def("encode", &encode_array, py::arg("x"), py::arg("format"), py::kw_only(),
        py::arg("rounding") = "rne", py::arg("seed") = 0, py::arg("saturate") = false,
        R"doc(encode(x, format, *, rounding="rne", seed=0, saturate=False) -> numpy.ndarray

Encodes real numbers into the codes of a scalar format, exactly as
``lowp encode``: the result has x's shape and holds each code in the low bits
of uint8 (formats of up to 8 bits), uint16 (up to 16) or uint32.

x         array-like of float32, float64 or float16 (any shape). A C-contiguous
          float32 array is read in place, without a copy; float64 values are
          rounded once, directly, into the format (not through fp32).
format    a scalar format name: "fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp4_e2m1",
          "bf16", "e8m0", "int4", any minifloat "eXmY[bB][fn|fnuz|fin]", ...
          (see lowp.formats()).
rounding  "rne" (nearest, ties to even), "away" (nearest, ties away from zero),
          "zero" (toward zero) or "stochastic".
seed      seed for stochastic rounding; element i (flat C-order index) gets
          random bits from (seed, i) only, so results are reproducible.
saturate  clamp overflow (and +-Inf) to +-max finite instead of giving Inf or
          NaN (formats without Inf/NaN, like fp6 and fp4, always clamp).

Raises lowp.Error (a ValueError) for an unknown format or rounding, or a
non-float dtype.

>>> lowp.encode(np.array([3.14159, 1000.0], np.float32), "fp8_e4m3")
array([ 69, 127], dtype=uint8)
>>> lowp.encode([1000.0], "fp8_e4m3", saturate=True)
array([126], dtype=uint8))doc");

  m.def("decode", &decode_array, py::arg("codes"), py::arg("format"), py::kw_only(),
        py::arg("dtype") = "float32",
        R"doc(decode(codes, format, *, dtype="float32") -> numpy.ndarray

Decodes codes of a scalar format into their exact values, as ``lowp decode``:
the result has the codes' shape. Every code is checked to fit the format's
bits (no silent masking).

codes   array-like of integers, any shape (uint8/uint16/uint32 as encode()
        returns them; a C-contiguous array of the format's code width is read
        in place).
format  a scalar format name (see encode()).
dtype   "float32" (every code of every format is exact in fp32) or "float64".

Raises lowp.Error for an unknown format, a non-integer dtype, or a value that
is not a code of the format.

>>> lowp.decode(np.array([0x45, 0x7F], np.uint8), "fp8_e4m3")
array([3.25,  nan], dtype=float32))doc");

  m.def(
      "fake_quant", &fake_quant_array, py::arg("x"), py::arg("format"), py::kw_only(),
      py::arg("block") = py::none(), py::arg("axis") = -1, py::arg("scale_rule") = "floor",
      py::arg("rounding") = "rne", py::arg("seed") = 0, py::arg("saturate") = false,
      py::arg("flush_subnormals") = false,
      R"doc(fake_quant(x, format, *, block=None, axis=-1, scale_rule="floor", rounding="rne", seed=0, saturate=False, flush_subnormals=False) -> numpy.ndarray

Quantizes then dequantizes: a float32 array of x's shape holding the values
the format can represent, as ``lowp fake-quant``. A scalar format is a plain
cast (decode(encode(x))); a block format (MX, NVFP4) quantizes blocks of
consecutive elements along `axis`, each with its shared scale.

x                 array-like of float32, float64 or float16, any shape.
                  Block formats read fp32: float64 is rounded to fp32 first.
format            scalar ("fp8_e4m3", ...) or block format: "mxfp8_e4m3",
                  "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8",
                  "nvfp4", or "mx:<element>:<k>" (e.g. "mx:int4:32").
block             block size k for block formats (default: the format's own);
                  1 <= block <= the length of `axis`.
axis              the axis the blocks run along (negative counts from the end).
scale_rule        MX shared-scale rule: "floor" (OCP), "rceil" (NVIDIA),
                  "ceil" or "even" (torchao).
rounding          "rne", "away", "zero" or "stochastic" (of the elements).
seed              seed for stochastic rounding.
saturate          scalar formats only: clamp overflow to +-max finite.
flush_subnormals  block formats only: flush fp32 subnormal inputs to zero.

Raises lowp.Error for an unknown format or option, an axis out of range, a
block size out of range, or an option that does not apply to the format.

>>> x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32)
>>> lowp.fake_quant(x, "mxfp4", scale_rule="rceil").shape
(2, 32))doc");

  m.def("_input_address", &input_address, py::arg("x"),
        "The address of the buffer encode/fake_quant read for x (for tests of the no-copy path).");
}

}  // namespace lowp::python
