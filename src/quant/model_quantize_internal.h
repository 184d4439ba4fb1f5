// Pieces shared by the output writers of quantize_model (not public API).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/tensor.h"
#include "lowp/quant/model_quantize.h"
#include "lowp/storage/matrix_format.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::detail {

struct ResolvedFormat {
  std::string name;  // canonical
  bool is_block = false;
  bool is_ggml_q8_0 = false;  // ggml's Q8_0 (GGUF output only)
  BlockFormat block;
  Format scalar;
  // A scaled matrix format (<F>:tensor, :channel, :group<K>[:asym]): each
  // tensor stored as a PackedMatrix of its 2-D view [d0, the rest].
  std::optional<MatrixFormat> matrix;
};

// Checks the request (the method against the format and output too).
ResolvedFormat resolve_format(const QuantizeRequest& req);
ResolvedFormat resolve_format_rtn(const QuantizeRequest& req);

// A scaled matrix format's PackedMatrix of `values` as `rows` rows, by the
// request's method.
PackedMatrix quantize_matrix_by(const MatrixFormat& f, std::span<const float> values,
                                std::size_t rows, const QuantizeRequest& req);

// The shape block formats see: tensors of rank 3 or more are viewed as 2-D,
// [d0, d1*d2*...], so that a convolution's blocks run along its whole
// reduction (in_channels x kernel), not along the kernel's last axis.
std::vector<std::int64_t> block_view(std::span<const std::int64_t> shape);

// Quantize-then-dequantize values of a tensor of `shape` (blocks along
// req.axis of block_view(shape)), as the request asks.
std::vector<float> fake_values(const ResolvedFormat& f, std::span<const float> values,
                               std::span<const std::int64_t> shape, const QuantizeRequest& req);

// ONNX graphs keep their constants in the graph: whole-model output from an
// ONNX input is an ONNX file (--fake). Throws for any other output kind.
// fake_values with the tensor's own format when the request assigns one
// (a budget); `format_name` is set to the format used.
std::vector<float> fake_values(const ResolvedFormat& f, const io::TensorInfo& t,
                               std::span<const float> values, const QuantizeRequest& req,
                               std::string& format_name);

void reject_onnx_input(const io::ModelReader& in, const std::string& output_kind);

// The codes of `values` in scalar format f (each in code_bytes(f) little-endian
// bytes), rounded as the request asks.
std::vector<std::byte> encode_codes(const Format& f, std::span<const float> values,
                                    const QuantizeRequest& req);

// The inverse: the values of such codes.
std::vector<float> decode_codes(const Format& f, std::span<const std::byte> codes);

// A plain (little-endian, unpacked) dtype of any reader in safetensors' words
// ("F32", "BF16", "I64", "BOOL", ...), or "" for anything else.
std::string plain_dtype(const io::TensorInfo& t);

// The input tensor's own codes and scales when it is already stored in block
// format `f` (named `name`, as lowp spells it, or upper case as GGUF does)
// along `axis` of `shape` — another layout's, GGUF's or lowp's packing — so a
// writer copies them instead of requantizing; nullopt otherwise.
std::optional<PackedTensor> stored_in_format(const io::ModelReader& in, const io::TensorInfo& t,
                                             const BlockFormat& f, std::string_view name,
                                             std::span<const std::int64_t> shape, int axis);

// A report row for a tensor copied unchanged.
TensorReport base_report(const io::TensorInfo& t);

void write_safetensors_output(const io::ModelReader& in, const std::filesystem::path& out,
                              const ResolvedFormat& f, const QuantizeRequest& req,
                              ModelReport& report);
// --layout onnx-qdq (model_quantize_onnx_qdq.cc): the ONNX input with the
// selected weights as DequantizeLinear of their codes and scales.
void write_onnx_qdq_output(const io::ModelReader& in, const std::filesystem::path& out,
                           const ResolvedFormat& f, const QuantizeRequest& req,
                           ModelReport& report);
void write_gguf_output(const io::ModelReader& in, const std::filesystem::path& out,
                       const ResolvedFormat& f, const QuantizeRequest& req, ModelReport& report);

}  // namespace lowp::detail
