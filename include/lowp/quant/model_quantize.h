// lowp/quant/model_quantize.h — quantize a whole model file, tensor by tensor,
// and say what each tensor lost and what it saves. The engine behind
// `lowp quantize`.
//
// Tensors are read, quantized and written one at a time (peak memory is about
// one tensor in and out, not the model). By default the float tensors of rank
// 2 or more are quantized and the rest (norms, biases, integer tensors) are
// copied unchanged. The output is written atomically: it appears whole or not
// at all.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lowp/block/mx.h"
#include "lowp/io/layouts.h"
#include "lowp/io/model.h"
#include "lowp/quant/methods.h"
#include "lowp/quant/metrics.h"

namespace lowp {

struct QuantizeRequest {
  std::string format;             // a scalar or block format name
  std::optional<int> block_size;  // overrides the block format's k
  // The axis blocks run along, in the tensor's block view: tensors of rank 3+
  // are seen as 2-D [d0, d1*d2*...] (a convolution's output channels by its
  // reduction). -1 (the last) suits [out, in] weights (PyTorch, safetensors);
  // 0 suits [in, out] weights (ONNX MatMul, Paddle). GGUF block types need -1.
  int axis = -1;
  BlockOptions block;                // scale rule, rounding, seed, subnormal flush, threads
  bool saturate = false;             // scalar formats: clamp overflow instead of Inf/NaN
  std::vector<std::string> include;  // shell globs on tensor names; empty = all
  std::vector<std::string> exclude;
  std::uint64_t min_elements = 1;
  std::size_t min_rank = 2;
  // Keep each tensor's dtype and layout, holding fake-quantized values (the
  // only mode for ONNX output).
  bool fake = false;
  std::string output_kind;  // "safetensors", "gguf" or "onnx"
  // safetensors output: per-chunk statistics of every float tensor, this many
  // rows per chunk (0: none; lowp/io/chunk_stats.h).
  std::int64_t chunk_stats_rows = 0;
  // The safetensors convention of the quantized tensors (lowp/io/layouts.h):
  // lowp's packed form, or an engine's (gpt-oss: mxfp4 only, blocks along
  // the last dimension; tensors whose last dimension is not a multiple of 32
  // are kept).
  io::Layout layout = io::Layout::kLowp;
  // rtn (the format's rule) or mse (data-free scale search, lowp/quant/
  // methods.h): mse applies to block and scaled matrix formats, with --fake
  // (any output, ONNX included) or as a packed matrix in safetensors.
  QuantMethod method = QuantMethod::kRtn;
  ScaleSearch search;
  // Mixed precision (fake outputs only): when > 0, each selected tensor takes
  // one of `budget_formats` so that their average bits per value (scales
  // included) stay within `budget`, choosing by the data-free relative error
  // |W - Q|^2 / |W|^2 (lowp/quant/budget.h); `format` is then unused.
  double budget = 0;
  std::vector<std::string> budget_formats;
  // Filled by quantize_model from the budget: tensor name -> format.
  std::map<std::string, std::string> tensor_formats;
  // Called before each tensor is processed (index, total), e.g. for progress.
  std::function<void(std::size_t, std::size_t, const io::TensorInfo&)> on_tensor;
};

struct TensorReport {
  std::string name;
  std::string dtype_in;
  std::string stored_as;  // the output dtype or format
  std::vector<std::int64_t> shape;
  bool quantized = false;
  std::uint64_t elements = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;  // stored bytes, scales included
  ErrorStats stats;             // quantized tensors only

  double bits_per_value() const {
    return elements == 0 ? 0.0
                         : 8.0 * static_cast<double>(bytes_out) / static_cast<double>(elements);
  }
};

struct ModelReport {
  std::string input, output, format, output_kind;
  double budget = 0;  // bits per value asked for (0: none)
  bool fake = false;
  std::vector<TensorReport> tensors;
  ErrorStats quantized_stats;  // over all quantized tensors
  std::uint64_t parameters = 0, quantized_parameters = 0, bytes_in = 0, bytes_out = 0;

  double bits_per_parameter() const {
    return parameters == 0 ? 0.0
                           : 8.0 * static_cast<double>(bytes_out) / static_cast<double>(parameters);
  }
};

// The report as one JSON object (compact text, keys in this order): input,
// output, output_kind, format, fake, tensors (one object per tensor: name,
// shape, dtype_in, stored_as, quantized, elements, bytes_in, bytes_out,
// bits_per_value, and for quantized tensors mse, sqnr_db, max_abs_error,
// nonfinite) and totals (parameters, quantized_parameters, bytes_in,
// bytes_out, bits_per_parameter, mse, sqnr_db, max_abs_error). An infinite
// SQNR (exact) is null. The one serializer of `lowp quantize --report` and
// the Python bindings' lowp.quantize_model().
std::string report_json(const ModelReport& r);

// "safetensors", "gguf" or "onnx" from `to` if given, else from the output
// path's extension. Throws lowp::Error naming the path otherwise.
std::string output_kind_for(const std::filesystem::path& out, const std::string& to);

// Whether the request quantizes tensor `t` (float, rank, size, globs).
bool is_selected(const io::TensorInfo& t, const QuantizeRequest& req);

ModelReport quantize_model(const io::ModelReader& in, const std::filesystem::path& out,
                           const QuantizeRequest& req);

// A model in an engine's layout (req.layout with a config, io::layout_has_config)
// as the Hugging Face model directory engines load: `out_dir`/model.safetensors
// (quantize_model), config.json with the layout's "quantization_config" (the
// input's config.json when `in` is a model directory, or one holding only
// quantization_config; for modelopt, hf_quant_config.json, and the input's
// config.json without a quantization_config), and the input directory's
// tokenizer and generation files copied. `in` is a safetensors file or a directory holding one
// model.safetensors. The directory is built beside `out_dir` and renamed into
// place when complete: `out_dir` must not exist, or be an empty directory.
ModelReport quantize_model_dir(const std::filesystem::path& in,
                               const std::filesystem::path& out_dir, const QuantizeRequest& req);

}  // namespace lowp
