// lowp/io/onnx_qdq.h — ONNX QDQ weights: a weight W stored as quantized
// codes, a scale (and a zero point) and the DequantizeLinear node that
// computes W from them (onnx/docs/Operators.md, DequantizeLinear-19/21/23):
//
//   W_quantized  codes, data type INT8, UINT8, INT4, UINT4 (two per byte,
//                element 2i in the low nibble), FLOAT8E4M3FN, FLOAT8E5M2 or
//                FLOAT4E2M1;
//   W_scale      FLOAT32: shape [] (per tensor), [W.shape[axis]] (per axis) or
//                W's shape with dimension `axis` = ceil(dim / block_size)
//                (blocked);
//   W_zero_point optional, W_quantized's type and W_scale's shape;
//   DequantizeLinear(W_quantized, W_scale[, W_zero_point]) -> W, attributes
//   axis (per axis, blocked) and block_size (blocked):
//       W = (float(q) - float(zp)) * scale, one fp32 multiply per element.
//
// Two-level scales (NVFP4, as ModelOpt exports it): W_scale is itself the
// output of a DequantizeLinear of FLOAT8E4M3FN codes W_scale_quantized by an
// FP32 [] W_scale_scale. A weight quantized in a 2-D view of a higher-rank
// tensor (lowp's [d0, d1·d2·...]) is written in that view and a Reshape node
// (shape W_shape, INT64) restores W's shape.
//
// Reading: parse_onnx recognizes DequantizeLinear nodes (and such Reshapes)
// whose inputs are all constant, and lists each output as one float tensor
// (dtype e.g. "INT4 (QDQ block 32)") whose read_f32 computes exactly what
// DequantizeLinear does; their constant inputs are then not listed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lowp/io/model.h"

namespace lowp::io {

// ONNX TensorProto.DataType codes QDQ uses.
enum OnnxType : int {
  kOnnxFloat = 1,
  kOnnxUint8 = 2,
  kOnnxInt8 = 3,
  kOnnxInt64 = 7,
  kOnnxFloat8E4m3fn = 17,
  kOnnxFloat8E5m2 = 19,
  kOnnxUint4 = 21,
  kOnnxInt4 = 22,
  kOnnxFloat4E2m1 = 23,
};

// One weight as QDQ (the shapes and counts are checked by the writer).
struct QdqTensor {
  int data_type = 0;                // of the codes (an OnnxType above)
  std::vector<std::int64_t> shape;  // of the codes: W's shape, or its 2-D view
  // One code per element in C order, the element's bits (INT4: the two's
  // complement nibble; FLOAT8: the byte).
  std::vector<std::uint8_t> codes;
  std::vector<std::int64_t> scale_shape;  // [] per tensor, [n] per axis, blocked: see above
  std::vector<float> scale;
  int axis = 0;        // per axis and blocked
  int block_size = 0;  // blocked: > 0
  // Empty (no zero point) or one code of data_type per scale.
  std::vector<std::uint8_t> zero_point;
  // Two-level scales: scale is then ignored, and the scale is
  // DequantizeLinear(scale_codes [FLOAT8E4M3FN, scale_shape], scale_scale).
  std::vector<std::uint8_t> scale_codes;
  float scale_scale = 1.0f;
};

// The smallest default-domain opset and IR version that define what `t` uses:
// FLOAT8 (opset 19, IR 9), INT4/UINT4 or block_size (21, IR 10), FLOAT4E2M1
// (23, IR 11); INT8/UINT8 per axis (13, IR 7).
int qdq_min_opset(const QdqTensor& t);

// Returns the QDQ form of a weight, or nullopt to keep it.
using OnnxQdqReplacement = std::function<std::optional<QdqTensor>(const TensorInfo&)>;

// Writes `in`'s model to `path_out` with every tensor for which `replacement`
// returns a QdqTensor (offered every float tensor, in the reader's order)
// stored as QDQ: an initializer W is removed (and from graph.input where
// listed), its DequantizeLinear placed first among the nodes; a Constant node
// W is replaced by its DequantizeLinear in place. The new tensors are
// initializers. The default-domain opset_import is raised to the largest
// qdq_min_opset needed (never lowered), ir_version with it, and the nodes
// whose definition changed between the two opsets are rewritten to the new
// one (raise_onnx_opset). Every other byte of the model is copied as it is.
// Throws lowp::Error (naming the tensor or node) when a name the writer needs
// is taken, a QdqTensor does not fit its shapes, or a node cannot be raised.
void write_onnx_qdq(const std::filesystem::path& path_out, const ModelReader& in,
                    const OnnxQdqReplacement& replacement);

}  // namespace lowp::io
