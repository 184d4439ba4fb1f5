// lowp.open_model and lowp.quantize_model: model files (safetensors, GGUF,
// ONNX, npy, npz) read lazily as named tensors, and quantized tensor by tensor
// into a new file, as `lowp inspect` and `lowp quantize` do.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/quant/model_quantize.h"

namespace lowp::python {
namespace {

// An open model file (lowp.Model). The reader keeps the file mapped.
class Model {
 public:
  explicit Model(const std::filesystem::path& path) : path_(path.string()) {
    py::gil_scoped_release release;
    reader_ = io::open_model(path);
  }

  const std::string& path() const { return path_; }
  std::string kind() const { return std::string(reader_->kind()); }

  const io::TensorInfo& info(const std::string& name) const {
    const io::TensorInfo* t = reader_->find(name);
    if (t == nullptr) throw py::key_error(path_ + ": no tensor named " + quoted(name));
    return *t;
  }

  py::list names() const {
    py::list out;
    for (const io::TensorInfo& t : reader_->tensors()) out.append(t.name);
    return out;
  }

  py::list tensors() const {
    py::list out;
    for (const io::TensorInfo& t : reader_->tensors()) out.append(info_dict(t));
    return out;
  }

  py::dict metadata() const {
    py::dict out;
    for (const auto& [key, value] : reader_->metadata()) out[py::str(key)] = value;
    return out;
  }

  py::array read(const std::string& name) const {
    const io::TensorInfo& t = info(name);
    std::vector<float> values;
    {
      py::gil_scoped_release release;
      values = reader_->read_f32(t);
    }
    std::vector<std::int64_t> shape = t.shape;
    if (values.size() != t.element_count()) shape = {static_cast<std::int64_t>(values.size())};
    return adopt(std::move(values), shape);
  }

  py::array raw(const std::string& name) const {
    const std::span<const std::byte> bytes = reader_->raw(info(name));
    py::array_t<std::uint8_t> out(static_cast<py::ssize_t>(bytes.size()));
    if (!bytes.empty()) std::memcpy(out.mutable_data(), bytes.data(), bytes.size());
    return out;
  }

  bool contains(const std::string& name) const { return reader_->find(name) != nullptr; }
  std::size_t size() const { return reader_->tensors().size(); }
  const io::ModelReader& reader() const { return *reader_; }

  static py::dict info_dict(const io::TensorInfo& t) {
    py::dict d;
    d["name"] = t.name;
    d["dtype"] = t.dtype;
    d["shape"] = py::tuple(py::cast(t.shape));
    d["nbytes"] = t.nbytes;
    d["offset"] = t.offset;
    d["is_float"] = t.is_float;
    return d;
  }

 private:
  std::string path_;
  std::unique_ptr<io::ModelReader> reader_;
};

py::dict quantize_model_file(const std::filesystem::path& input,
                             const std::filesystem::path& output, const std::string& format,
                             std::optional<int> block, int axis, const std::string& scale_rule,
                             const std::string& rounding, std::uint64_t seed, bool saturate,
                             const std::vector<std::string>& include,
                             const std::vector<std::string>& exclude, std::uint64_t min_elements,
                             bool fake, const std::string& to, unsigned threads,
                             const std::string& method) {
  QuantizeRequest req;
  req.method = parse_method(method);
  req.format = format;
  req.block_size = block;
  req.axis = axis;
  req.block.rounding = parse_rounding(rounding);
  req.block.scale_rule = parse_scale_rule(scale_rule);
  req.block.seed = seed;
  req.block.threads = threads;
  req.saturate = saturate;
  req.include = include;
  req.exclude = exclude;
  req.min_elements = min_elements;
  req.fake = fake;
  req.output_kind = output_kind_for(output, to);
  ModelReport report;
  {
    py::gil_scoped_release release;
    const std::unique_ptr<io::ModelReader> in = io::open_model(input);
    report = quantize_model(*in, output, req);
  }
  report.input = input.string();
  return from_json(report_json(report));  // the keys of `lowp quantize --report`
}

}  // namespace

void add_model(py::module_& m) {
  py::class_<Model>(m, "Model", R"doc(A model file opened by lowp.open_model(): its tensors by name.

The file is memory-mapped and only its index is parsed when it opens; a
tensor's bytes are read when asked for. Supports safetensors, GGUF, ONNX,
.npy and .npz (docs/model-files.md), including lowp's own packed block
tensors and gpt-oss-style MXFP4 pairs.

len(m), iter(m) (tensor names, in file order), name in m, m[name] (the
tensor as float32, like read()).)doc")
      .def_property_readonly("path", &Model::path, "The file's path.")
      .def_property_readonly("kind", &Model::kind, "'safetensors', 'gguf', 'onnx', 'npy' or 'npz'.")
      .def_property_readonly("tensors", &Model::tensors,
                             "One dict per tensor, in file order: name, dtype (in the file "
                             "format's own words, or a lowp format name for lowp's packed "
                             "tensors), shape (tuple), nbytes (stored), offset (in the file), "
                             "is_float (whether read() can decode it).")
      .def_property_readonly("metadata", &Model::metadata,
                             "The file's metadata as a dict of str to str (arrays rendered as "
                             "JSON-like text).")
      .def("names", &Model::names, "names() -> list[str]\n\nThe tensor names, in file order.")
      .def(
          "info",
          [](const Model& model, const std::string& name) {
            return Model::info_dict(model.info(name));
          },
          py::arg("name"),
          "info(name) -> dict\n\nThe dict of one tensor (see .tensors). KeyError if absent.")
      .def("read", &Model::read, py::arg("name"),
           R"doc(read(name) -> numpy.ndarray

The tensor's values as a new float32 array of its shape, decoded exactly as
its file format defines them (ggml's dequantization for GGUF block types,
lowp's for lowp's packed formats). KeyError if there is no such tensor;
lowp.Error if the tensor does not hold real numbers (e.g. integers).)doc")
      .def("raw", &Model::raw, py::arg("name"),
           "raw(name) -> numpy.ndarray\n\nThe tensor's stored bytes, as a new uint8 array.")
      .def("__getitem__", &Model::read, py::arg("name"))
      .def("__contains__", &Model::contains, py::arg("name"))
      .def("__len__", &Model::size)
      .def("__iter__", [](const Model& model) { return py::iter(model.names()); })
      .def("__repr__", [](const Model& model) {
        return "Model(" + std::string(py::repr(py::str(model.path()))) + ", kind='" + model.kind() +
               "', tensors=" + std::to_string(model.size()) + ")";
      });

  m.def(
      "open_model", [](const std::filesystem::path& path) { return Model(path); }, py::arg("path"),
      R"doc(open_model(path) -> lowp.Model

Opens a model file (.safetensors, .gguf, .onnx, .npy, .npz; the kind is found
from the magic bytes, then the extension) and returns a Model listing its
tensors. Raises lowp.Error naming the path if the file is missing,
unreadable, of an unknown kind or malformed.

>>> m = lowp.open_model("model.safetensors")
>>> [t["name"] for t in m.tensors][:3], m["wte.weight"].shape)doc");

  m.def(
      "quantize_model", &quantize_model_file, py::arg("input"), py::arg("output"),
      py::arg("format"), py::kw_only(), py::arg("block") = py::none(), py::arg("axis") = -1,
      py::arg("scale_rule") = "floor", py::arg("rounding") = "rne", py::arg("seed") = 0,
      py::arg("saturate") = false, py::arg("include") = std::vector<std::string>{},
      py::arg("exclude") = std::vector<std::string>{}, py::arg("min_elements") = 1,
      py::arg("fake") = false, py::arg("to") = "", py::arg("threads") = 0,
      py::arg("method") = "rtn",
      R"doc(quantize_model(input, output, format, *, block=None, axis=-1, scale_rule="floor", rounding="rne", seed=0, saturate=False, include=[], exclude=[], min_elements=1, fake=False, to="", threads=0, method="rtn") -> dict

Quantizes a model file tensor by tensor into a new file, as ``lowp quantize``,
and returns the report (the same keys as its --report JSON: "tensors", one
dict per tensor with bits_per_value, mse, sqnr_db, max_abs_error, ..., and
"totals").

By default the float tensors of rank 2 or more are quantized and the rest
(norms, biases, integers) copied. The output kind follows `output`'s
extension (or `to`): .safetensors (any format; block formats packed), .gguf
(fp32, fp16, bf16, mxfp4, q8_0) or .onnx (fake=True only). `include` and
`exclude` are lists of shell globs on tensor names; `axis` is the block axis
in each tensor's 2-D view (-1 for [out, in] weights, 0 for [in, out]).
method: "rtn" (the format's rule) or "mse" (data-free scale search; block
formats with fake=True, scaled matrix formats also packed in safetensors).
The output is written atomically. Raises lowp.Error on bad input.)doc");
}

}  // namespace lowp::python
