// Whole-model quantization (model_quantize.h): select tensors, quantize them
// one at a time, write the output file in streaming fashion, report errors.
#include "lowp/quant/model_quantize.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "lowp/block/ggml.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/io/gguf.h"
#include "lowp/io/onnx.h"
#include "lowp/kernels.h"
#include "lowp/quant/budget.h"
#include "lowp/storage/packed_matrix.h"
#include "model_quantize_internal.h"

namespace lowp {
namespace detail {

ResolvedFormat resolve_format(const QuantizeRequest& req) {
  if (method_needs_data(req.method)) {
    const std::string m(method_name(req.method));
    throw Error(m + " needs calibration through the runtime: use lowp report --methods " + m +
                " --calib FILE on a model the runtime runs");
  }
  ResolvedFormat r = resolve_format_rtn(req);
  if (req.method == QuantMethod::kFpVote && (!req.fake || !r.matrix)) {
    throw Error(
        "--method fpvote chooses each tensor's exponent/mantissa split: give a scaled float "
        "matrix format (e.g. fp8_e4m3:channel) and --fake");
  }
  if (req.method == QuantMethod::kPower && (!req.fake || !r.matrix)) {
    throw Error(
        "--method power stores sign(w)|w|^a: give a scaled matrix format (e.g. int4:group32) "
        "and --fake (the values written are the weights the stored matrix stands for)");
  }
  if (req.method == QuantMethod::kVq && (!req.fake || !r.matrix)) {
    throw Error(
        "--method vq stores indices and code books: give int<b>:group<G> and --fake (the "
        "values written are the centroids)");
  }
  if (req.method == QuantMethod::kMse) {
    if (!r.is_block && !r.matrix) {
      throw Error(
          "--method mse chooses scales: it applies to block formats and scaled matrix "
          "formats (e.g. int4:group32), not to " +
          quoted(r.name));
    }
    if (!req.fake && (r.is_block || req.output_kind != "safetensors")) {
      throw Error("--method mse writes " + quoted(r.name) +
                  (r.is_block ? std::string(" (a block format)") : " to " + req.output_kind) +
                  " only as fake-quantized values: add --fake");
    }
  }
  return r;
}

ResolvedFormat resolve_format_rtn(const QuantizeRequest& req) {
  ResolvedFormat r;
  r.name = req.format;
  if (req.format == "q8_0" && req.output_kind == "gguf") {  // ggml's own blocks in ggml's file
    if (req.block_size && *req.block_size != 32) throw Error("q8_0 blocks hold 32 values");
    r.is_ggml_q8_0 = true;
    return r;
  }
  if (parse_block_format(req.format, r.block)) {
    r.is_block = true;
    if (req.block_size) {
      if (*req.block_size < 1) throw Error("--block must be at least 1");
      r.block.block_size = *req.block_size;
    }
    r.name = block_format_name(r.block);
    return r;
  }
  if (req.block_size)
    throw Error("--block applies to block formats; " + quoted(req.format) + " is a scalar format");
  if (req.format.find(':') != std::string::npos ||
      req.format == "q8_0") {  // a scaled matrix format
    r.matrix = parse_matrix_format(req.format);
    if (req.axis != -1 && req.axis != 1) {
      throw Error(quoted(req.format) +
                  " scales along each row of a tensor's 2-D view [d0, the rest]; --axis " +
                  std::to_string(req.axis) + " does not apply");
    }
    return r;
  }
  r.scalar = parse_format(req.format);
  if (is_table(r.scalar)) {
    throw Error("code book " + quoted(req.format) + " needs a scale; use a scaled format such as " +
                req.format + ":group64 or " + req.format + ":channel");
  }
  if (!is_float(r.scalar) && !is_posit(r.scalar)) {
    throw Error("integer format " + quoted(req.format) +
                " needs a scale; use a block format such as mxint8 or mx:int4:32");
  }
  r.name = format_name(r.scalar);
  return r;
}

std::vector<std::int64_t> block_view(std::span<const std::int64_t> shape) {
  if (shape.size() < 3) return {shape.begin(), shape.end()};
  std::int64_t rest = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) rest *= shape[i];
  return {shape[0], rest};
}

void reject_onnx_input(const io::ModelReader& in, const std::string& output_kind) {
  if (in.kind() == "onnx") {
    throw Error(
        "an ONNX model keeps its weights in its graph: write an .onnx file with --fake, not " +
        output_kind);
  }
}

PackedMatrix quantize_matrix_by(const MatrixFormat& f, std::span<const float> values,
                                std::size_t rows, const QuantizeRequest& req) {
  const std::size_t cols = rows == 0 ? 0 : values.size() / rows;
  if (req.method == QuantMethod::kRtn) return PackedMatrix::quantize(f, values, rows, cols);
  MethodOptions o;
  o.method = req.method;
  o.search = req.search;
  o.threads = req.block.threads;
  return quantize_weight(f, values, rows, cols, o).matrix;
}

namespace {

// A block format quantized by a method: blocks along the 2-D view's rows
// (axis -1) or its columns (axis 0, quantized transposed).
std::vector<float> block_values_by(const ResolvedFormat& f, std::span<const float> values,
                                   std::span<const std::int64_t> shape,
                                   const QuantizeRequest& req) {
  const std::vector<std::int64_t> view = block_view(shape);
  const MatrixFormat mf = parse_matrix_format(f.name);
  const std::size_t d0 = view.size() < 2 ? 1 : static_cast<std::size_t>(view[0]);
  const std::size_t rest = d0 == 0 ? 0 : values.size() / d0;
  const int axis = normalize_axis(req.axis, view.size());
  std::vector<float> out(values.size());
  if (view.size() < 2 || axis == static_cast<int>(view.size()) - 1) {
    quantize_matrix_by(mf, values, d0, req).dequantize(out);
    return out;
  }
  std::vector<float> t(values.size());
  for (std::size_t i = 0; i < d0; ++i) {
    for (std::size_t j = 0; j < rest; ++j) t[j * d0 + i] = values[i * rest + j];
  }
  std::vector<float> q(values.size());
  quantize_matrix_by(mf, t, rest, req).dequantize(q);
  for (std::size_t i = 0; i < d0; ++i) {
    for (std::size_t j = 0; j < rest; ++j) out[i * rest + j] = q[j * d0 + i];
  }
  return out;
}

}  // namespace

std::vector<float> fake_values(const ResolvedFormat& f, const io::TensorInfo& t,
                               std::span<const float> values, const QuantizeRequest& req,
                               std::string& format_name) {
  const auto it = req.tensor_formats.find(t.name);
  if (it == req.tensor_formats.end()) {
    format_name = f.name;
    return fake_values(f, values, t.shape, req);
  }
  QuantizeRequest one = req;
  one.format = it->second;
  const ResolvedFormat g = resolve_format_rtn(one);
  format_name = g.name;
  return fake_values(g, values, t.shape, one);
}

std::vector<float> fake_values(const ResolvedFormat& f, std::span<const float> values,
                               std::span<const std::int64_t> shape, const QuantizeRequest& req) {
  if (req.method != QuantMethod::kRtn && f.is_block) return block_values_by(f, values, shape, req);
  if (f.is_ggml_q8_0) {
    std::vector<float> out(values.size());
    ggml_q8_0_dequantize(ggml_q8_0_quantize(values), out);
    return out;
  }
  if (f.matrix) {
    const std::vector<std::int64_t> view = block_view(shape);
    const std::size_t rows = view.size() < 2 ? 1 : static_cast<std::size_t>(view[0]);
    const PackedMatrix m = quantize_matrix_by(*f.matrix, values, rows, req);
    std::vector<float> out(values.size());
    m.dequantize(out);
    return out;
  }
  if (f.is_block) return fake_quantize(f.block, values, block_view(shape), req.axis, req.block);
  return decode_codes(f.scalar, encode_codes(f.scalar, values, req));
}

std::vector<float> decode_codes(const Format& f, std::span<const std::byte> codes) {
  const auto width = static_cast<std::size_t>(code_bytes(f));
  std::vector<float> out(codes.size() / width);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t c = 0;
    std::memcpy(&c, codes.data() + i * width, width);
    out[i] = decode_f32(f, c);
  }
  return out;
}

std::vector<std::byte> encode_codes(const Format& f, std::span<const float> values,
                                    const QuantizeRequest& req) {
  // The bulk kernel: the scalar reference's codes, code_bytes(f) wide (the low
  // bytes, little-endian), with element i at stochastic stream position i.
  std::vector<std::byte> out(values.size() * static_cast<std::size_t>(code_bytes(f)));
  encode_f32(f, values, out.data(), {req.block.rounding, req.saturate}, req.block.seed);
  return out;
}

std::optional<PackedTensor> stored_in_format(const io::ModelReader& in, const io::TensorInfo& t,
                                             const BlockFormat& f, std::string_view name,
                                             std::span<const std::int64_t> shape, int axis) {
  // The dtype first: packed() copies the tensor's codes.
  const bool same_name = std::equal(
      t.dtype.begin(), t.dtype.end(), name.begin(), name.end(),
      [](char a, char b) { return a == b || a == std::toupper(static_cast<unsigned char>(b)); });
  if (!same_name) return std::nullopt;
  std::optional<PackedTensor> stored = in.packed(t);
  if (!stored || stored->format != f || stored->axis != axis ||
      !std::equal(stored->shape.begin(), stored->shape.end(), shape.begin(), shape.end())) {
    return std::nullopt;
  }
  return stored;
}

std::string plain_dtype(const io::TensorInfo& t) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"F32", "F32"},       {"FLOAT", "F32"},   {"float32", "F32"}, {"F16", "F16"},
      {"FLOAT16", "F16"},   {"float16", "F16"}, {"BF16", "BF16"},   {"BFLOAT16", "BF16"},
      {"bfloat16", "BF16"}, {"F64", "F64"},     {"DOUBLE", "F64"},  {"float64", "F64"},
      {"I8", "I8"},         {"INT8", "I8"},     {"int8", "I8"},     {"U8", "U8"},
      {"UINT8", "U8"},      {"uint8", "U8"},    {"I16", "I16"},     {"INT16", "I16"},
      {"int16", "I16"},     {"U16", "U16"},     {"uint16", "U16"},  {"I32", "I32"},
      {"INT32", "I32"},     {"int32", "I32"},   {"U32", "U32"},     {"uint32", "U32"},
      {"I64", "I64"},       {"INT64", "I64"},   {"int64", "I64"},   {"U64", "U64"},
      {"uint64", "U64"},    {"BOOL", "BOOL"},   {"bool", "BOOL"},
  };
  for (const auto& [from, to] : kNames) {
    if (t.dtype == from) return to;
  }
  return "";
}

TensorReport base_report(const io::TensorInfo& t) {
  TensorReport r;
  r.name = t.name;
  r.dtype_in = t.dtype;
  r.stored_as = t.dtype;
  r.shape = t.shape;
  r.elements = t.element_count();
  r.bytes_in = t.nbytes;
  r.bytes_out = t.nbytes;
  return r;
}

void finish(ModelReport& report) {
  for (const TensorReport& t : report.tensors) {
    report.parameters += t.elements;
    report.bytes_in += t.bytes_in;
    report.bytes_out += t.bytes_out;
    if (t.quantized) {
      report.quantized_parameters += t.elements;
      report.quantized_stats.merge(t.stats);
    }
  }
}

}  // namespace detail

std::string output_kind_for(const std::filesystem::path& out, const std::string& to) {
  const std::string kind =
      !to.empty() ? to : out.extension().string().substr(out.extension().empty() ? 0 : 1);
  if (kind == "safetensors" || kind == "gguf" || kind == "onnx") return kind;
  throw Error("cannot tell the output format of " + quoted(out.string()) +
              " (use a .safetensors, .gguf or .onnx name, or --to)");
}

bool is_selected(const io::TensorInfo& t, const QuantizeRequest& req) {
  if (!t.is_float || t.shape.size() < req.min_rank || t.element_count() < req.min_elements)
    return false;
  auto matches = [&](const std::string& glob) {
    return ::fnmatch(glob.c_str(), t.name.c_str(), 0) == 0;
  };
  if (!req.include.empty() && std::none_of(req.include.begin(), req.include.end(), matches))
    return false;
  return std::none_of(req.exclude.begin(), req.exclude.end(), matches);
}

namespace {

// The per-tensor formats of a budget: sizes and data-free sensitivities of
// every selected tensor in every candidate format, then solve_budget.
std::map<std::string, std::string> assign_budget(const io::ModelReader& in,
                                                 const QuantizeRequest& req) {
  if (!req.fake) throw Error("--budget writes fake-quantized values: add --fake");
  if (req.budget_formats.empty()) throw Error("--budget needs candidate formats");
  std::vector<detail::ResolvedFormat> formats;
  for (const std::string& name : req.budget_formats) {
    QuantizeRequest one = req;
    one.format = name;
    formats.push_back(detail::resolve_format(one));
    if (!formats.back().is_block && !formats.back().matrix && !is_float(formats.back().scalar) &&
        !is_posit(formats.back().scalar)) {
      throw Error("--budget: " + quoted(name) + " is not a format to store weights in");
    }
  }
  std::vector<std::string> names;
  std::vector<std::vector<double>> cost, bits;
  double values_total = 0.0;
  for (const io::TensorInfo& t : in.tensors()) {
    if (!is_selected(t, req)) continue;
    const std::vector<float> values = in.read_f32(t);
    const std::vector<std::int64_t> view = detail::block_view(t.shape);
    const double n = static_cast<double>(values.size());
    double norm = 0.0;
    for (float v : values) norm += static_cast<double>(v) * v;
    std::vector<double> c, b;
    for (std::size_t k = 0; k < formats.size(); ++k) {
      QuantizeRequest one = req;
      one.format = req.budget_formats[k];
      const std::vector<float> q = detail::fake_values(formats[k], values, t.shape, one);
      double err = 0.0;
      for (std::size_t i = 0; i < values.size(); ++i) {
        err += std::pow(static_cast<double>(values[i]) - q[i], 2);
      }
      c.push_back(norm > 0.0 ? err / norm : 0.0);
      const detail::ResolvedFormat& f = formats[k];
      // Stored bits: the axis' row length decides the number of scales.
      const auto axis_len = static_cast<std::size_t>(
          view.empty() ? 1 : view[static_cast<std::size_t>(normalize_axis(req.axis, view.size()))]);
      double per_value = 0.0;
      if (f.matrix) {
        per_value = f.matrix->bits_per_value(view.size() < 2 ? values.size()
                                                             : static_cast<std::size_t>(view[1]));
      } else if (f.is_block) {
        const auto k_ = static_cast<std::size_t>(f.block.block_size);
        per_value =
            f.block.element.bits + 8.0 * static_cast<double>((axis_len + k_ - 1) / k_) /
                                       static_cast<double>(std::max<std::size_t>(axis_len, 1));
      } else {
        per_value = f.scalar.bits;
      }
      b.push_back(per_value * n);
    }
    names.push_back(t.name);
    cost.push_back(std::move(c));
    bits.push_back(std::move(b));
    values_total += n;
  }
  if (names.empty()) throw Error("--budget: no tensor is selected");
  const BudgetSolution s = solve_budget(cost, bits, req.budget * values_total);
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out[names[i]] =
        formats[s.choice[i]].matrix ? formats[s.choice[i]].matrix->name : formats[s.choice[i]].name;
  }
  return out;
}

}  // namespace

ModelReport quantize_model(const io::ModelReader& in, const std::filesystem::path& out,
                           const QuantizeRequest& request) {
  QuantizeRequest req = request;
  if (req.budget > 0) {
    req.tensor_formats = assign_budget(in, req);
    if (req.format.empty()) req.format = req.budget_formats.front();
  }
  const detail::ResolvedFormat f = detail::resolve_format(req);
  if (req.layout == io::Layout::kGptOss) {
    const std::string why =
        req.output_kind != "safetensors" ? "writes safetensors, not " + req.output_kind
        : req.fake                       ? "stores packed MXFP4, not --fake values"
        : req.budget > 0                 ? "has one format, not a --budget"
        : !f.is_block || f.block != BlockFormat{BlockScale::kUe8m0, kFp4E2m1, 32}
            ? "holds mxfp4 (blocks of 32), not " + quoted(f.name)
        : req.axis != -1 ? "blocks along the last dimension (--axis -1)"
                         : "";
    if (!why.empty()) throw Error("--layout gpt-oss " + why);
  }
  if (req.layout == io::Layout::kModelopt) {
    const std::string why =
        req.output_kind != "safetensors" ? "writes safetensors, not " + req.output_kind
        : req.fake                       ? "stores packed NVFP4, not --fake values"
        : req.budget > 0                 ? "has one format, not a --budget"
        : !(f.is_block && f.block == BlockFormat{BlockScale::kUe4m3, kFp4E2m1, 16}) &&
                !(f.matrix && f.matrix->scheme == MatrixScheme::kTensor &&
                  f.matrix->element == kFp8E4m3)
            ? "holds nvfp4 (blocks of 16) or fp8_e4m3:tensor, not " + quoted(f.name)
        : req.axis != -1 ? "blocks along the last dimension (--axis -1)"
                         : "";
    if (!why.empty()) throw Error("--layout modelopt " + why);
  }
  if (req.layout == io::Layout::kCompressedTensors) {
    const bool fp8 =
        f.matrix && f.matrix->element == kFp8E4m3 &&
        (f.matrix->scheme == MatrixScheme::kTensor || f.matrix->scheme == MatrixScheme::kChannel);
    const bool nvfp4 = f.is_block && f.block == BlockFormat{BlockScale::kUe4m3, kFp4E2m1, 16};
    const bool pack = f.matrix && io::compressed_pack_supports(*f.matrix);
    const std::string why =
        req.output_kind != "safetensors" ? "writes safetensors, not " + req.output_kind
        : req.fake                       ? "stores packed codes, not --fake values"
        : req.budget > 0                 ? "has one format, not a --budget"
        : !fp8 && !nvfp4 && !pack
            ? "holds fp8_e4m3:tensor or fp8_e4m3:channel (float-quantized), nvfp4 "
              "(nvfp4-pack-quantized), or intN:channel, intN:group<K>, intN:group<K>:asym with N "
              "= 2, 4, 8 (pack-quantized), not " +
                  quoted(f.name)
        : nvfp4 && req.axis != -1 ? "blocks along the last dimension (--axis -1)"
                                  : "";
    if (!why.empty()) throw Error("--layout compressed-tensors " + why);
  }
  ModelReport report;
  report.budget = req.budget;
  report.output = out.string();
  report.format = f.name;
  report.output_kind = req.output_kind;
  report.fake = req.fake;

  if (req.layout == io::Layout::kOnnxQdq) {
    if (req.output_kind != "onnx")
      throw Error("--layout onnx-qdq writes an .onnx file, not " + req.output_kind);
    detail::write_onnx_qdq_output(in, out, f, req, report);
  } else if (req.output_kind == "onnx") {
    if (in.kind() != "onnx")
      throw Error("ONNX output needs an ONNX input (it patches the input graph)");
    if (!req.fake)
      throw Error(
          "ONNX output keeps the graph's dtypes: add --fake, or --layout onnx-qdq for "
          "DequantizeLinear weights");
    // The patch writer offers every float tensor once, in file order; the
    // others are copied as they are.
    std::size_t index = 0;
    const std::size_t total = in.tensors().size();
    for (const io::TensorInfo& t : in.tensors()) {
      if (!t.is_float) report.tensors.push_back(detail::base_report(t));
    }
    io::write_onnx_replacing(out, in,
                             [&](const io::TensorInfo& t) -> std::optional<std::vector<float>> {
                               if (req.on_tensor) req.on_tensor(index++, total, t);
                               TensorReport r = detail::base_report(t);
                               if (!is_selected(t, req)) {
                                 report.tensors.push_back(std::move(r));
                                 return std::nullopt;
                               }
                               const std::vector<float> values = in.read_f32(t);
                               std::string name;
                               std::vector<float> q = detail::fake_values(f, t, values, req, name);
                               r.quantized = true;
                               r.stats.add(values, q);
                               r.stored_as = t.dtype + " (fake " + name + ")";
                               report.tensors.push_back(std::move(r));
                               return q;
                             });
  } else if (req.output_kind == "safetensors") {
    detail::write_safetensors_output(in, out, f, req, report);
  } else if (req.output_kind == "gguf") {
    detail::write_gguf_output(in, out, f, req, report);
  } else {
    throw Error("unknown output kind " + quoted(req.output_kind));
  }
  // Report rows in the input's tensor order, whatever order the writer used.
  std::unordered_map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < in.tensors().size(); ++i) position[in.tensors()[i].name] = i;
  std::stable_sort(report.tensors.begin(), report.tensors.end(),
                   [&](const TensorReport& a, const TensorReport& b) {
                     return position[a.name] < position[b.name];
                   });
  detail::finish(report);
  return report;
}

}  // namespace lowp
