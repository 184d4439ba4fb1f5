// lowp.quantize_matrix, lowp.PackedMatrix and lowp.fake_quantize_rows: weight
// matrices in the storage grammar of lowp/storage/matrix_format.h (fp32, bf16,
// fp8_e4m3:tensor, int8:channel, int4:group128:asym, mxfp4, nvfp4, ...), held
// as lowp/storage/packed_matrix.h stores them, with their products.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "arrays.h"
#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/quant/lowrank.h"
#include "lowp/quant/matryoshka.h"
#include "lowp/quant/methods.h"
#include "lowp/quant/power.h"
#include "lowp/quant/vq.h"
#include "lowp/storage/matrix_format.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::python {
namespace {

// The canonical spelling of a parsed matrix format. parse_matrix_format keeps
// the caller's spelling in MatrixFormat::name; this gives one name per format:
// the element's registry (or eXmY) name, without the ":tensor" that is the
// default, e.g. "float16" -> "fp16", "int4_sym:group32" -> "int4:group32",
// "uint4:group32:asym" -> "int4:group32:asym".

// Which scales a format stores (MatrixScales, by scheme).
struct ScaleKinds {
  bool tensor = false, row = false, group = false, zero = false, block = false;
};

ScaleKinds scale_kinds(const MatrixFormat& f) {
  ScaleKinds k;
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      break;
    case MatrixScheme::kTensor:
      k.tensor = true;
      break;
    case MatrixScheme::kChannel:
      k.row = true;
      break;
    case MatrixScheme::kGroup:
      k.group = true;
      k.zero = f.zero_points();
      break;
    case MatrixScheme::kBlock:
      k.block = true;
      k.tensor = has_tensor_scale(f.block);
      break;
  }
  return k;
}

std::size_t segments_per_row(const MatrixFormat& f, std::size_t cols) {
  const auto k =
      static_cast<std::size_t>(f.scheme == MatrixScheme::kBlock ? f.block.block_size : f.group);
  return (cols + k - 1) / k;
}

std::string shape_text(const py::array& a) { return py::str(a.attr("shape")).cast<std::string>(); }

std::string dtype_name(const py::array& a) { return a.dtype().attr("name").cast<std::string>(); }

// x as fp32, required to be 2-D.
FloatInput matrix_input(py::handle x, const char* what) {
  FloatInput in = float_input(x, what, /*want_f32=*/true);
  if (in.shape.size() != 2) {
    throw Error(std::string(what) + ": expected a 2-D array [rows, cols], got shape " +
                shape_text(in.array));
  }
  return in;
}

unsigned thread_count(int threads) {
  if (threads < 0) throw Error("threads " + std::to_string(threads) + " must be >= 0");
  if (threads == 0) return std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(threads);
}

// The `hessian` argument: X^T X of the layer's inputs, [cols, cols].
InputHessian hessian_input(py::handle hessian, std::size_t cols) {
  const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(hessian);
  if (!a || a.ndim() != 2 || static_cast<std::size_t>(a.shape(0)) != cols ||
      static_cast<std::size_t>(a.shape(1)) != cols) {
    throw Error("hessian must be a [cols, cols] = [" + std::to_string(cols) + ", " +
                std::to_string(cols) + "] float array");
  }
  return InputHessian::from_matrix(cols, std::span<const double>(a.data(), cols * cols), 1);
}

PackedMatrix quantize_matrix(py::handle w, const std::string& format, const std::string& method,
                             py::object hessian, double damp, bool act_order, bool static_groups,
                             bool mse_scales, int block, int search_radius,
                             const std::vector<int>& slices,
                             const std::vector<double>& slice_weights, int threads) {
  const MatrixFormat f = parse_matrix_format(format);
  const FloatInput in = matrix_input(w, "w");
  const auto rows = static_cast<std::size_t>(in.shape[0]);
  const auto cols = static_cast<std::size_t>(in.shape[1]);
  MethodOptions o;
  o.method = parse_method(method);
  o.gptq.damp = damp;
  o.gptq.act_order = act_order;
  o.gptq.static_groups = static_groups;
  o.gptq.mse_scales = mse_scales;
  if (block < 1) throw Error("block " + std::to_string(block) + " must be >= 1");
  o.gptq.block = static_cast<std::size_t>(block);
  o.search.exponent_radius = search_radius;
  o.matryoshka_bits = slices;
  o.matryoshka_weights = slice_weights;
  o.threads = thread_count(threads);
  std::optional<InputHessian> h;
  if (!hessian.is_none()) h = hessian_input(hessian, cols);
  py::gil_scoped_release release;
  return quantize_weight(f, in.f32(), rows, cols, o, h ? &*h : nullptr).matrix;
}

py::dict low_rank_compensation_dict(py::handle w, const PackedMatrix& q, std::size_t rank,
                                    const std::string& factor_format, int threads) {
  const FloatInput in = matrix_input(w, "w");
  if (static_cast<std::size_t>(in.shape[0]) != q.rows() ||
      static_cast<std::size_t>(in.shape[1]) != q.cols()) {
    throw Error("w and q differ in shape");
  }
  const MatrixFormat ff = parse_matrix_format(factor_format);
  LowRankCompensation c;
  {
    py::gil_scoped_release release;
    c = low_rank_compensation(in.f32(), q, rank, ff, thread_count(threads));
  }
  py::dict d;
  d["u"] = c.u;
  d["v"] = c.v;
  d["weights"] = adopt(std::move(c.weights), in.shape);
  d["bytes"] = c.bytes;
  return d;
}

py::dict vector_quantize_dict(py::handle w, const std::string& format, std::size_t dim,
                              py::object hessian, double damp, int update_steps, int threads) {
  const MatrixFormat f = parse_matrix_format(format);
  const FloatInput in = matrix_input(w, "w");
  const auto rows = static_cast<std::size_t>(in.shape[0]);
  const auto cols = static_cast<std::size_t>(in.shape[1]);
  const QuantMethod m = hessian.is_none() ? QuantMethod::kVq : QuantMethod::kGptvq;
  if (const std::string why = method_mismatch(m, f); !why.empty()) throw Error(why);
  VqOptions o;
  o.dim = dim;
  if (update_steps < 0) throw Error("update_steps must be >= 0");
  o.update_steps = update_steps;
  o.bits = static_cast<std::size_t>(f.element.bits);
  o.group_cols = f.scheme == MatrixScheme::kGroup ? static_cast<std::size_t>(f.group) : cols;
  std::optional<InputHessian> h;
  if (!hessian.is_none()) h = hessian_input(hessian, cols);
  VqResult r;
  {
    py::gil_scoped_release release;
    r = vector_quantize(in.f32(), rows, cols, o, h ? &*h : nullptr, damp, thread_count(threads));
  }
  py::dict d;
  d["weights"] = adopt(std::move(r.weights), in.shape);
  const std::int64_t ishape[] = {static_cast<std::int64_t>(rows),
                                 static_cast<std::int64_t>(cols / dim)};
  d["indices"] = adopt(std::move(r.indices), ishape);
  py::list books;
  for (std::vector<float>& cb : r.codebooks) {
    const std::int64_t cshape[] = {static_cast<std::int64_t>(cb.size() / dim),
                                   static_cast<std::int64_t>(dim)};
    books.append(adopt(std::move(cb), cshape));
  }
  d["codebooks"] = books;
  d["bytes"] = r.bytes;
  return d;
}

py::dict power_quantize_dict(py::handle w, const std::string& format, py::object hessian,
                             int threads) {
  const MatrixFormat f = parse_matrix_format(format);
  const FloatInput in = matrix_input(w, "w");
  const auto cols = static_cast<std::size_t>(in.shape[1]);
  std::optional<InputHessian> h;
  if (!hessian.is_none()) h = hessian_input(hessian, cols);
  PowerQuantization p;
  {
    py::gil_scoped_release release;
    p = power_quantize(f, in.f32(), static_cast<std::size_t>(in.shape[0]), cols, nullptr,
                       thread_count(threads), h ? &*h : nullptr);
  }
  py::dict d;
  d["exponent"] = p.exponent;
  d["bytes"] = p.stored.bytes() + sizeof(float);
  d["stored"] = std::move(p.stored);
  d["weights"] = adopt(std::move(p.weights), in.shape);
  d["errors"] = p.errors;
  d["error"] = p.error;
  return d;
}

py::array fake_quantize_rows_array(py::handle x, const std::string& format) {
  const MatrixFormat f = parse_matrix_format(format);
  const FloatInput in = matrix_input(x, "x");
  std::vector<float> out(in.f32().begin(), in.f32().end());
  {
    py::gil_scoped_release release;
    fake_quantize_rows(f, out.data(), static_cast<std::size_t>(in.shape[0]),
                       static_cast<std::size_t>(in.shape[1]));
  }
  return adopt(std::move(out), in.shape);
}

// ---- storage in and out ----

// An array whose dtype is T's (kind and size; any byte order), in C order;
// throws naming `what` and the dtype `want` otherwise.
template <typename T>
std::vector<T> exact_values(py::handle h, const char* what, const char* want) {
  py::array a = py::array::ensure(h);
  if (!a) throw Error(std::string(what) + ": not an array (expected " + want + ")");
  const py::dtype t = py::dtype::of<T>();
  if (a.dtype().kind() != t.kind() || a.dtype().itemsize() != t.itemsize()) {
    throw Error(std::string(what) + ": dtype " + dtype_name(a) + ", expected " + want);
  }
  auto c = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!c) throw py::error_already_set();
  return {c.data(), c.data() + c.size()};
}

std::vector<std::uint8_t> code_bytes_of(py::handle h) {
  if (py::isinstance<py::bytes>(h)) {
    const std::string text = h.cast<std::string>();
    return {text.begin(), text.end()};
  }
  return exact_values<std::uint8_t>(h, "codes", "uint8 (or bytes)");
}

// FP16 scales: float16 values, or their bits as uint16.
std::vector<std::uint16_t> fp16_bits_of(py::handle h) {
  py::array a = py::array::ensure(h);
  if (!a) throw Error("group: not an array (expected float16, or uint16 bit patterns)");
  const py::dtype dt = a.dtype();
  if (dt.kind() == 'f' && dt.itemsize() == 2) {
    // Native byte order first (a no-op for the usual arrays), then the bits.
    py::object native = a.attr("astype")(py::dtype("float16"), py::arg("copy") = false);
    return exact_values<std::uint16_t>(native.attr("view")(py::dtype::of<std::uint16_t>()), "group",
                                       "uint16");
  }
  if (dt.kind() == 'u' && dt.itemsize() == 2) {
    return exact_values<std::uint16_t>(a, "group", "float16 or uint16");
  }
  throw Error("group: dtype " + dtype_name(a) + ", expected float16 (or uint16 bit patterns)");
}

void check_count(const char* what, std::size_t got, std::size_t want, const std::string& per) {
  if (got != want) {
    throw Error(std::string(what) + ": " + std::to_string(got) + " values, expected " +
                std::to_string(want) + " (" + per + ")");
  }
}

std::pair<std::size_t, std::size_t> shape_pair(const std::vector<std::int64_t>& shape) {
  if (shape.size() != 2) {
    throw Error("shape: expected (rows, cols), got " + std::to_string(shape.size()) +
                " dimensions");
  }
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("shape: negative dimension " + std::to_string(d));
  }
  const auto rows = static_cast<std::size_t>(shape[0]);
  const auto cols = static_cast<std::size_t>(shape[1]);
  // Every size below (codes, scales, values) is at most 32 bytes a value.
  constexpr std::size_t kLimit = std::numeric_limits<std::size_t>::max() / 32;
  if (cols > kLimit || (cols != 0 && rows > kLimit / cols)) {
    throw Error("shape: too many values");
  }
  return {rows, cols};
}

// A PackedMatrix from stored parts, each checked against the format and shape
// (names of the arguments in the messages), so that nothing reads out of bounds.
PackedMatrix from_codes(const std::string& format, const std::vector<std::int64_t>& shape,
                        py::handle codes, std::optional<float> tensor, py::handle row,
                        py::handle group, py::handle zero, py::handle block) {
  const MatrixFormat f = parse_matrix_format(format);
  const auto [rows, cols] = shape_pair(shape);
  const ScaleKinds kinds = scale_kinds(f);
  const auto given = [](py::handle h) { return !h.is_none(); };
  const auto require = [&](const char* what, bool needed, bool present, const char* holds) {
    if (needed && !present) {
      throw Error(std::string(what) + ": " + f.name + " stores " + holds + "; pass " + what + "=");
    }
    if (!needed && present) throw Error(std::string(what) + ": " + f.name + " has no " + holds);
  };
  require("tensor", kinds.tensor, tensor.has_value(), "an FP32 tensor scale");
  require("row", kinds.row, given(row), "FP32 row scales");
  require("group", kinds.group, given(group), "FP16 group scales");
  require("zero", kinds.zero, given(zero), "zero points");
  require("block", kinds.block, given(block), "block scale bytes");

  std::vector<std::uint8_t> bytes = code_bytes_of(codes);
  const std::size_t row_bytes = PackedMatrix::row_bytes(f, cols);
  check_count("codes", bytes.size(), rows * row_bytes,
              std::to_string(rows) + " rows x " + std::to_string(row_bytes) + " bytes");
  MatrixScales scales;
  if (tensor) scales.tensor = *tensor;
  if (kinds.row) {
    scales.row = exact_values<float>(row, "row", "float32");
    check_count("row", scales.row.size(), rows, "one per row");
  }
  const std::size_t per_row = kinds.group || kinds.block ? segments_per_row(f, cols) : 0;
  const std::string segments = std::to_string(rows) + " rows x " + std::to_string(per_row);
  if (kinds.group) {
    scales.group = fp16_bits_of(group);
    if (f.two_scales()) {
      check_count("group", scales.group.size(), 2 * rows * per_row,
                  segments + " groups x 2 scales (positive, negative)");
    } else {
      check_count("group", scales.group.size(), rows * per_row, segments + " groups");
    }
  }
  if (kinds.zero) {
    scales.zero = exact_values<std::uint8_t>(zero, "zero", "uint8");
    check_count("zero", scales.zero.size(), rows * per_row, segments + " groups");
  }
  if (kinds.block) {
    scales.block = exact_values<std::uint8_t>(block, "block", "uint8");
    check_count("block", scales.block.size(), rows * per_row, segments + " blocks");
  }
  return PackedMatrix::from_codes(f, rows, cols, std::move(bytes), std::move(scales));
}

// A read-only view of the codes owned by the PackedMatrix `self`, [rows, row_bytes].
py::array codes_view(py::object self) {
  const auto& m = self.cast<const PackedMatrix&>();
  const std::size_t row_bytes = PackedMatrix::row_bytes(m.format(), m.cols());
  const auto r = static_cast<py::ssize_t>(m.rows()), b = static_cast<py::ssize_t>(row_bytes);
  py::array_t<std::uint8_t> view({r, b}, {b, py::ssize_t{1}}, m.codes().data(), self);
  py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return view;
}

template <typename T>
py::array copy_of(const std::vector<T>& v, std::size_t rows) {
  std::vector<T> values = v;
  const std::int64_t per_row = rows == 0 ? 0 : static_cast<std::int64_t>(v.size() / rows);
  const std::int64_t shape[] = {static_cast<std::int64_t>(rows), per_row};
  return adopt(std::move(values), shape);
}

py::dict scales_dict(const PackedMatrix& m) {
  const MatrixScales& s = m.scales();
  const ScaleKinds kinds = scale_kinds(m.format());
  py::dict d;
  if (kinds.tensor) d["tensor"] = py::float_(static_cast<double>(s.tensor));
  if (kinds.row) {
    std::vector<float> row = s.row;
    const std::int64_t shape[] = {static_cast<std::int64_t>(m.rows())};
    d["row"] = adopt(std::move(row), shape);
  }
  if (kinds.group) d["group"] = copy_of(s.group, m.rows()).attr("view")(py::dtype("float16"));
  if (kinds.zero) d["zero"] = copy_of(s.zero, m.rows());
  if (kinds.block) d["block"] = copy_of(s.block, m.rows());
  return d;
}

py::array dequantize_matrix(const PackedMatrix& m) {
  std::vector<float> out(m.rows() * m.cols());
  {
    py::gil_scoped_release release;
    m.dequantize(out);
  }
  const std::int64_t shape[] = {static_cast<std::int64_t>(m.rows()),
                                static_cast<std::int64_t>(m.cols())};
  return adopt(std::move(out), shape);
}

// x @ W.T for x of shape [cols] (gemv) or [n, cols] (gemm).
py::array matmul(const PackedMatrix& m, py::handle x, int threads) {
  const unsigned t = thread_count(threads);
  const FloatInput in = float_input(x, "x", /*want_f32=*/true);
  const std::size_t ndim = in.shape.size();
  if ((ndim != 1 && ndim != 2) || static_cast<std::size_t>(in.shape.back()) != m.cols()) {
    throw Error("x: shape " + shape_text(in.array) + " does not fit a matrix of " +
                std::to_string(m.cols()) + " columns; expected (" + std::to_string(m.cols()) +
                ",) or (n, " + std::to_string(m.cols()) + ")");
  }
  const std::size_t n = ndim == 1 ? 1 : static_cast<std::size_t>(in.shape[0]);
  std::vector<float> y(n * m.rows());
  {
    py::gil_scoped_release release;
    if (ndim == 1) {
      m.gemv(in.f32().data(), y.data(), t);
    } else {
      m.gemm(in.f32().data(), n, y.data(), t);
    }
  }
  std::vector<std::int64_t> shape;
  if (ndim == 2) shape.push_back(static_cast<std::int64_t>(n));
  shape.push_back(static_cast<std::int64_t>(m.rows()));
  return adopt(std::move(y), shape);
}

std::string repr(const PackedMatrix& m) {
  return "PackedMatrix(format='" + m.format().name + "', shape=(" + std::to_string(m.rows()) +
         ", " + std::to_string(m.cols()) + "), bytes=" + std::to_string(m.bytes()) +
         ", bits_per_weight=" + std::string(py::str(py::float_(m.bits_per_weight()))) + ")";
}

}  // namespace

void add_matrix(py::module_& m) {
  py::class_<PackedMatrix>(m, "PackedMatrix",
                           R"doc(A weight matrix in a storage format of the runtime.

Made by lowp.quantize_matrix(w, format), or from stored parts by
PackedMatrix.from_codes(format, shape, codes, ...). W has `rows` rows of `cols`
values (nn.Linear's [out, in] weight); every scale runs along a row.

Storage (lowp/storage/packed_matrix.h): codes() is [rows, row_bytes] uint8,
each row starting on a byte: the fp32/bf16/fp16 codes little-endian for the
plain formats, else a little-endian stream of element.bits-bit fields (FP4
and INT4 two per byte, the first in the low nibble). scales() holds what the
scheme needs: 'tensor' (one FP32; fp8_e4m3, int8, nvfp4), 'row' (FP32 per
row; <F>:channel), 'group' (FP16 per group; <F>:group<K>), 'zero' (uint8
zero points; :asym), 'block' (one scale byte per block, E8M0 for MX, E4M3
for NVFP4).

m.matmul(x) is x @ m.dequantize().T, computed from the packed storage.
PackedMatrix pickles.)doc")
      .def_static(
          "from_codes", &from_codes, py::arg("format"), py::arg("shape"), py::arg("codes"),
          py::kw_only(), py::arg("tensor") = py::none(), py::arg("row") = py::none(),
          py::arg("group") = py::none(), py::arg("zero") = py::none(),
          py::arg("block") = py::none(),
          R"doc(from_codes(format, shape, codes, *, tensor=None, row=None, group=None, zero=None, block=None) -> PackedMatrix

Rebuilds a PackedMatrix from its storage (copied), as codes() and scales()
give it: PackedMatrix.from_codes(m.format, m.shape, m.codes(), **m.scales())
equals m bit for bit.

format   any matrix format spelling (see quantize_matrix)
shape    (rows, cols)
codes    uint8 array (any shape) or bytes: rows x row_bytes bytes
tensor   float: the FP32 tensor scale (fp8_e4m3, int8, nvfp4, ...)
row      float32 [rows]: the row scales (<F>:channel)
group    float16 [rows, groups], or the same bits as uint16 (<F>:group<K>)
zero     uint8 [rows, groups]: zero points (<F>:group<K>:asym)
block    uint8 [rows, blocks]: the block scale bytes (MX, NVFP4)

Exactly the scales the format stores must be given. Raises lowp.Error (a
ValueError) naming the argument whose dtype or size does not fit, or a zero
point out of the element's range.)doc")
      .def_property_readonly(
          "format", [](const PackedMatrix& p) { return p.format().name; },
          "The canonical spelling of the format, e.g. 'int4:group128:asym', 'fp8_e4m3', 'mxfp4'.")
      .def_property_readonly(
          "shape", [](const PackedMatrix& p) { return py::make_tuple(p.rows(), p.cols()); },
          "(rows, cols).")
      .def_property_readonly("rows", &PackedMatrix::rows, "Rows (out_features).")
      .def_property_readonly("cols", &PackedMatrix::cols, "Columns (in_features).")
      .def_property_readonly("bytes", &PackedMatrix::bytes,
                             "Stored bytes: codes and scales (+4 for a tensor scale).")
      .def_property_readonly("bits_per_weight", &PackedMatrix::bits_per_weight,
                             "8 * bytes / (rows * cols) (0.0 for an empty matrix).")
      .def_property_readonly(
          "vectorized", &PackedMatrix::vectorized,
          "Whether matmul decodes the codes in vector registers on this machine (else it "
          "multiplies rows dequantized one tile at a time; the results are the same).")
      .def("dequantize", &dequantize_matrix,
           "dequantize() -> numpy.ndarray\n\nThe matrix as stored, a new float32 [rows, cols] "
           "array (exact).")
      .def("codes", &codes_view,
           "codes() -> numpy.ndarray\n\nThe raw storage: a read-only uint8 [rows, row_bytes] view "
           "(no copy).")
      .def("scales", &scales_dict,
           "scales() -> dict\n\nThe scales the format stores, copied: among 'tensor' (float), "
           "'row' (float32 [rows]), 'group' (float16 [rows, groups]), 'zero' (uint8 [rows, "
           "groups]) and 'block' (uint8 [rows, blocks]).")
      .def("matmul", &matmul, py::arg("x"), py::kw_only(), py::arg("threads") = 1,
           R"doc(matmul(x, *, threads=1) -> numpy.ndarray

x @ W.T as float32, from the packed storage: x of shape (cols,) gives
(rows,) (gemv), x of shape (n, cols) gives (n, rows) (gemm). x is any float
array (float64 is rounded to fp32 first). `threads` split the rows of W
(0: one per core); the result does not depend on their number.)doc")
      .def("__repr__", &repr)
      .def(py::pickle(
          [](py::object self) {
            const auto& p = self.cast<const PackedMatrix&>();
            return py::make_tuple(p.format().name, py::make_tuple(p.rows(), p.cols()),
                                  codes_view(self).attr("copy")(), scales_dict(p));
          },
          [](const py::tuple& s) {
            if (s.size() != 4) throw Error("PackedMatrix: bad pickled state");
            const py::dict scales = s[3].cast<py::dict>();
            const auto get = [&](const char* key) {
              return scales.contains(key) ? py::object(scales[key]) : py::object(py::none());
            };
            std::optional<float> tensor;
            if (scales.contains("tensor")) tensor = scales["tensor"].cast<float>();
            return from_codes(s[0].cast<std::string>(), s[1].cast<std::vector<std::int64_t>>(),
                              s[2], tensor, get("row"), get("group"), get("zero"), get("block"));
          }));

  m.def(
      "quantize_matrix", &quantize_matrix, py::arg("w"), py::arg("format"), py::kw_only(),
      py::arg("method") = "rtn", py::arg("hessian") = py::none(), py::arg("damp") = 0.01,
      py::arg("act_order") = false, py::arg("static_groups") = false, py::arg("mse_scales") = true,
      py::arg("block") = 128, py::arg("search_radius") = 1,
      py::arg("slices") = std::vector<int>{8, 4, 2},
      py::arg("slice_weights") = std::vector<double>{}, py::arg("threads") = 1,
      R"doc(quantize_matrix(w, format, *, method="rtn", hessian=None, damp=0.01, act_order=False, static_groups=False, mse_scales=True, block=128, search_radius=1, slices=[8, 4, 2], slice_weights=[], threads=1) -> PackedMatrix

Quantizes a 2-D weight matrix w [rows, cols] (float32; float64 is rounded to
fp32 first, float16 widened) into a storage format, as the runtime and
`lowp quantize` store weights (lowp/storage/matrix_format.h):

  fp32, bf16, fp16        plain casts (nearest even)
  <F>, <F>:tensor         one FP32 scale: s = amax / max(F), codes = F(w / s)
  <F>:channel             one FP32 scale per row
  <F>:group<K>            one FP16 scale per K values of a row
  <F>:group<K>:asym       integer F: FP16 scale and uint8 zero point per group;
                          float F: two FP16 scales (values >= 0, < 0; AFPQ)
  mxfp4, nvfp4, mx:<F>:<K>, ...   any block format, blocks along a row

with F any scalar format (intN means [-(2^(N-1)-1), 2^(N-1)-1]; scaled
elements saturate). Deterministic. Raises lowp.Error for an unknown format or
an array that is not 2-D float.

method (lowp/quant/methods.h): "rtn" rounds by the format's rule; "mse"
searches each block/group/channel scale for the least squared error
(weighted by diag(hessian) when one is given); "gptq" needs `hessian`
(X^T X of the layer's inputs, [cols, cols]) and runs GPTQ with `damp`
(relative to mean(diag H)), lazy blocks of `block` columns, optional
act-order and static groups, and scales chosen by the MSE search
(mse_scales) or the rule; "fpsearch" / "fpvote" choose a scaled float
format's exponent/mantissa split (the result's format names it);
"matgptq" (int8 formats, needs `hessian`) is GPTQ whose rounding minimizes
the weighted sum of the errors of the int8 code's Matryoshka slices to the
widths `slices` (weights `slice_weights`, default equal); see
matryoshka_slice.

>>> m = lowp.quantize_matrix(np.ones((4, 64), np.float32), "int4:group32")
>>> m
PackedMatrix(format='int4:group32', shape=(4, 64), bytes=144, bits_per_weight=4.5))doc");

  m.def(
      "matryoshka_slice",
      [](const PackedMatrix& q, int bits) { return matryoshka_slice(q, bits).matrix; },
      py::arg("m"), py::arg("bits"),
      R"doc(matryoshka_slice(m, bits) -> PackedMatrix

The `bits`-bit Matryoshka slice of an int8 matrix (int8, int8:channel,
int8:group<K>, int8:group<K>:asym): every code's `bits` most significant bits,
rounded to nearest even and clamped, kept as a code of the same int8 format
with the same scales (lowp/quant/matryoshka.h). Stored as a slice it takes
`bits` bits per code plus the scales. Raises lowp.Error for another format or
bits outside 1..8.)doc");

  m.def("low_rank_compensation", &low_rank_compensation_dict, py::arg("w"), py::arg("q"),
        py::arg("rank"), py::kw_only(), py::arg("factor_format") = "int8:channel",
        py::arg("threads") = 1,
        R"doc(low_rank_compensation(w, q, rank, *, factor_format="int8:channel", threads=1) -> dict

LoRC (ZeroQuant-V2/-FP): the error w - q of a quantized matrix q
(a PackedMatrix of w) approximated by its rank-`rank` SVD (seeded randomized
subspace iteration in float64), the factors U S^1/2 [rows, rank] and
V S^1/2 [cols, rank] stored in `factor_format`. Returns {"u": PackedMatrix,
"v": PackedMatrix, "weights": q + u v^T as float32 [rows, cols], "bytes":
q's bytes + both factors'}. Raises lowp.Error for a rank of 0 or above
min(rows, cols).)doc");

  m.def(
      "vector_quantize", &vector_quantize_dict, py::arg("w"), py::arg("format"), py::kw_only(),
      py::arg("dim") = 2, py::arg("hessian") = py::none(), py::arg("damp") = 0.01,
      py::arg("update_steps") = 0, py::arg("threads") = 1,
      R"doc(vector_quantize(w, format, *, dim=2, hessian=None, damp=0.01, update_steps=0, threads=1) -> dict

Vector quantization with per-group code books (lowp/quant/vq.h): `format`
int<b>:group<G> (or int<b>:channel) gives b index bits per weight and a code
book of 2^(b dim) int8 centroids per 256 rows x G columns. Without `hessian`
the data-free vq; with it (X^T X, [cols, cols]) GPTVQ, whose code books
`update_steps` conjugate-gradient steps then move toward the least output
error with the indices fixed (kept if better once rounded). Returns {"weights":
float32 [rows, cols], "indices": uint32 [rows, cols / dim], "codebooks": a
list of float32 [2^(b dim), dim] arrays (row block major), "bytes": indices +
code books + their FP16 scales}.)doc");

  m.def("power_quantize", &power_quantize_dict, py::arg("w"), py::arg("format"), py::kw_only(),
        py::arg("hessian") = py::none(), py::arg("threads") = 1,
        R"doc(power_quantize(w, format, *, hessian=None, threads=1) -> dict

PowerQuant / NUPES: t = sign(w)|w|^a stored in the scaled matrix format
`format` (scales by the mse search), the exponent a searched over 0.25, 0.30,
..., 1.00 for the least squared weight error (data-free). With `hessian`
(X^T X of the layer's inputs, [cols, cols]) the error is the layer's output
error tr(dW H dW^T) and the best a is refined by a golden-section search over
a +- 0.05 (the nupes method). Returns {"exponent": a, "stored": PackedMatrix
of t, "weights": sign(t')|t'|^(1/a) as float32 [rows, cols], "errors": the
error per grid exponent, "error": the chosen one's, "bytes": stored bytes + 4
for a}.)doc");

  m.def("fake_quantize_rows", &fake_quantize_rows_array, py::arg("x"), py::arg("format"),
        R"doc(fake_quantize_rows(x, format) -> numpy.ndarray

Each row of a 2-D array quantized and dequantized as a one-row PackedMatrix
of `format` stores it (so a per-tensor scale is each row's own): the
runtime's activation quantizer. Returns a new float32 array of x's shape;
takes the formats quantize_matrix takes.)doc");
}

}  // namespace lowp::python
