// quantize_model's ONNX QDQ output (`--layout onnx-qdq`, lowp/io/onnx_qdq.h):
// each selected weight quantized exactly as lowp stores it (a PackedMatrix of
// its 2-D view, or a plain cast), its codes and scales handed to the QDQ
// writer in the ONNX types that hold them.
//
// Geometry. lowp quantizes a tensor as the matrix block_view(shape) = [d0,
// d1·d2·...], scales along each row (--axis -1), or, for block formats of a
// rank-2 tensor with --axis 0, along each column. In ONNX:
//   per tensor   scale [];
//   channel      one scale per row: axis 0, scale [d0];
//   group/block  blocks along the row: axis 1 of W (rank 2; or rank 3+ whose
//                dimensions after the second are all 1, e.g. 1x1
//                convolutions), else the codes keep the 2-D view [d0, rest]
//                and a Reshape restores W's shape (a KxK convolution's
//                groups run across in_channels x kernel, as lowp's do);
//                --axis 0 (MatMul's [K, N] weights): axis 0 of W.
// Elements: fp8_e4m3 -> FLOAT8E4M3FN, fp8_e5m2 -> FLOAT8E5M2, fp4_e2m1 ->
// FLOAT4E2M1, symmetric intN (N <= 4) -> INT4, (N <= 8) -> INT8, asymmetric
// (unsigned codes) -> UINT4 / UINT8 with zero points. Scales: FP32 as stored;
// group FP16 scales widened (exact); MX's E8M0 s as 2^(s-127) (exact in fp32,
// NaN for 0xFF); NVFP4 as two levels (E4M3 block scales dequantized by the
// FP32 tensor scale). Every value DequantizeLinear computes, (q - zp) * s in
// fp32, is then lowp's own dequantized value bit for bit: lowp decodes its
// scaled formats as (v - z) * s in fp32 too, MX values are exact products,
// and NVFP4's is e2m1 * (tensor_scale * e4m3) as fp32 products.
#include <cmath>

#include "lowp/block/tensor.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/io/onnx_qdq.h"
#include "model_quantize_internal.h"

namespace lowp::detail {
namespace {

// The ONNX type of a lowp element format, or 0.
int onnx_type_of(const Format& e) {
  if (e == kFp8E4m3) return io::kOnnxFloat8E4m3fn;
  if (e == kFp8E5m2) return io::kOnnxFloat8E5m2;
  if (e == kFp4E2m1) return io::kOnnxFloat4E2m1;
  if (e.kind == Kind::kInt && e.bits <= 8) {
    const bool is_unsigned = e.int_range == IntRange::kUnsigned;
    if (e.bits <= 4) return is_unsigned ? io::kOnnxUint4 : io::kOnnxInt4;
    return is_unsigned ? io::kOnnxUint8 : io::kOnnxInt8;
  }
  return 0;
}

// The ONNX code of element code c: the same bits for the float types, the
// integer's two's complement (low bits) for the integer ones.
std::uint8_t onnx_code(const Format& e, std::uint32_t c) {
  if (e.kind != Kind::kInt) return static_cast<std::uint8_t>(c);
  const auto v = static_cast<std::int32_t>(decode_f32(e, c));
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(v) & 0xFF);
}

std::uint8_t mask_for(int data_type, std::uint8_t code) {
  const bool four =
      data_type == io::kOnnxInt4 || data_type == io::kOnnxUint4 || data_type == io::kOnnxFloat4E2m1;
  return four ? static_cast<std::uint8_t>(code & 0xF) : code;
}

std::string type_name(int t) {
  switch (t) {
    case io::kOnnxInt8:
      return "INT8";
    case io::kOnnxUint8:
      return "UINT8";
    case io::kOnnxInt4:
      return "INT4";
    case io::kOnnxUint4:
      return "UINT4";
    case io::kOnnxFloat8E4m3fn:
      return "FLOAT8E4M3FN";
    case io::kOnnxFloat8E5m2:
      return "FLOAT8E5M2";
    case io::kOnnxFloat4E2m1:
      return "FLOAT4E2M1";
    default:
      return "?";
  }
}

}  // namespace

io::QdqTensor qdq_tensor(const ResolvedFormat& f, const io::TensorInfo& t,
                         std::span<const float> values, const QuantizeRequest& req) {
  const std::string who = "--layout onnx-qdq: tensor " + quoted(t.name) + ": ";
  io::QdqTensor q;
  q.shape = t.shape;
  const std::size_t n = values.size();
  if (!f.matrix && !f.is_block) {  // a plain cast: scale 1
    q.data_type = onnx_type_of(f.scalar);
    if (q.data_type == 0 || f.scalar.kind == Kind::kInt) {
      throw Error(who + quoted(f.name) + " has no ONNX QDQ type");
    }
    const std::vector<std::byte> codes = encode_codes(f.scalar, values, req);
    q.codes.resize(n);
    for (std::size_t i = 0; i < n; ++i) q.codes[i] = static_cast<std::uint8_t>(codes[i]);
    q.scale = {1.0f};
    return q;
  }
  if (req.block.rounding != Rounding::kNearestEven || req.block.scale_rule != ScaleRule::kFloor) {
    throw Error(who + "QDQ is written with lowp's default rounding and scale rule");
  }
  const MatrixFormat mf = f.matrix ? *f.matrix : parse_matrix_format(f.name);
  if (mf.two_scales() || mf.ggml_q8_0) {
    throw Error(who + quoted(mf.name) + " has no ONNX QDQ form (one scale and zero point)");
  }
  const Format element = mf.scheme == MatrixScheme::kBlock ? mf.block.element : mf.element;
  q.data_type = onnx_type_of(element);
  if (q.data_type == 0) {
    throw Error(who + quoted(format_name(element)) + " elements have no ONNX type");
  }
  if (t.shape.empty()) throw Error(who + "a scalar has no QDQ axis");

  // 1. The matrix lowp quantizes: [d0, rest], or its transpose for --axis 0.
  const std::vector<std::int64_t> view = block_view(t.shape);
  const auto d0 = static_cast<std::size_t>(view.size() < 2 ? 1 : view[0]);
  const std::size_t rest = d0 == 0 ? 0 : n / d0;
  const bool transposed =
      view.size() == 2 && normalize_axis(req.axis, view.size()) == 0 && f.is_block;
  if (!f.is_block && req.axis != -1 && req.axis != 1) {
    throw Error(who + "scaled formats scale along the rows (--axis -1)");
  }
  const std::size_t rows = transposed ? rest : d0, cols = transposed ? d0 : rest;
  std::vector<float> m(values.begin(), values.end());
  if (transposed) {
    for (std::size_t i = 0; i < d0; ++i)
      for (std::size_t j = 0; j < rest; ++j) m[j * d0 + i] = values[i * rest + j];
  }
  const PackedMatrix pm = quantize_matrix_by(mf, m, rows, req);

  // 2. The codes, back in W's order.
  const std::size_t row_bytes = PackedMatrix::row_bytes(mf, cols);
  const int bits = element.bits;
  q.codes.resize(n);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::span<const std::uint8_t> stream = pm.codes().subspan(r * row_bytes, row_bytes);
    for (std::size_t c = 0; c < cols; ++c) {
      const std::uint8_t code =
          mask_for(q.data_type, onnx_code(element, unpack_code(bits, stream, c)));
      q.codes[transposed ? c * rest + r : r * cols + c] = code;
    }
  }

  // 3. The scales.
  const MatrixScales& s = pm.scales();
  switch (mf.scheme) {
    case MatrixScheme::kPlain:
      throw Error(who + quoted(mf.name) + " is not a scaled format");
    case MatrixScheme::kTensor:
      q.scale = {s.tensor};
      return q;
    case MatrixScheme::kChannel:
      if (t.shape.size() < 2) throw Error(who + "per-channel scales need rank 2 or more");
      q.axis = 0;
      q.scale_shape = {static_cast<std::int64_t>(d0)};
      q.scale = s.row;
      return q;
    case MatrixScheme::kGroup:
    case MatrixScheme::kBlock:
      break;
  }
  const bool block = mf.scheme == MatrixScheme::kBlock;
  const std::size_t g = static_cast<std::size_t>(block ? mf.block.block_size : mf.group);
  const std::size_t groups = (cols + g - 1) / g;
  q.block_size = static_cast<int>(g);
  // The codes' shape and the blocked axis.
  if (transposed) {
    q.axis = 0;
    q.scale_shape = {static_cast<std::int64_t>(groups), static_cast<std::int64_t>(rest)};
  } else {
    bool trailing_ones = true;
    for (std::size_t i = 2; i < t.shape.size(); ++i)
      trailing_ones = trailing_ones && t.shape[i] == 1;
    if (t.shape.size() >= 3 && !trailing_ones) q.shape = view;
    q.axis = q.shape.size() == 1 ? 0 : 1;
    q.scale_shape = q.shape;
    q.scale_shape[static_cast<std::size_t>(q.axis)] = static_cast<std::int64_t>(groups);
  }
  // Scale k of row r (the PackedMatrix's order) goes to [k, r] when transposed.
  auto place = [&](std::size_t r, std::size_t k) {
    return transposed ? k * rows + r : r * groups + k;
  };
  const std::size_t count = rows * groups;
  if (block && mf.block.scale == BlockScale::kUe4m3) {  // NVFP4: two levels
    q.scale_codes.resize(count);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < groups; ++k) q.scale_codes[place(r, k)] = s.block[r * groups + k];
    q.scale_scale = s.tensor;
    return q;
  }
  q.scale.resize(count);
  if (mf.zero_points()) q.zero_point.resize(count);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t k = 0; k < groups; ++k) {
      const std::size_t i = r * groups + k;
      float scale;
      if (block) {
        const std::uint8_t e = s.block[i];
        scale = e == 0xFF ? std::nanf("") : std::ldexp(1.0f, static_cast<int>(e) - 127);
      } else {
        scale = decode_f32(kFp16, s.group[i]);
      }
      q.scale[place(r, k)] = scale;
      if (mf.zero_points()) q.zero_point[place(r, k)] = mask_for(q.data_type, s.zero[i]);
    }
  }
  if (block && mf.block.element.kind == Kind::kInt) {
    throw Error(who + quoted(mf.name) + " elements are fixed-point, not ONNX integers");
  }
  return q;
}

std::string qdq_dtype(const io::QdqTensor& q) {
  std::string how = q.scale_shape.empty() ? "tensor"
                    : q.block_size > 0    ? "block " + std::to_string(q.block_size)
                                          : "axis " + std::to_string(q.axis);
  if (!q.scale_codes.empty()) how += ", FLOAT8E4M3FN scales";
  if (!q.zero_point.empty()) how += ", zero point";
  return type_name(q.data_type) + " (QDQ " + how + ")";
}

std::uint64_t qdq_bytes(const io::QdqTensor& q) {
  const bool four = q.data_type == io::kOnnxInt4 || q.data_type == io::kOnnxUint4 ||
                    q.data_type == io::kOnnxFloat4E2m1;
  auto packed = [&](std::size_t k) { return four ? (k + 1) / 2 : k; };
  std::uint64_t b = packed(q.codes.size()) + packed(q.zero_point.size());
  b += q.scale_codes.empty() ? 4 * q.scale.size() : q.scale_codes.size() + 4;
  return b;
}

void write_onnx_qdq_output(const io::ModelReader& in, const std::filesystem::path& out,
                           const ResolvedFormat& f, const QuantizeRequest& req,
                           ModelReport& report) {
  if (in.kind() != "onnx") throw Error("--layout onnx-qdq needs an ONNX input model");
  if (req.fake) throw Error("--layout onnx-qdq stores codes and scales, not --fake values");
  if (req.budget > 0) throw Error("--layout onnx-qdq has one format, not a --budget");
  std::size_t index = 0;
  const std::size_t total = in.tensors().size();
  for (const io::TensorInfo& t : in.tensors()) {
    if (!t.is_float) report.tensors.push_back(base_report(t));
  }
  io::write_onnx_qdq(out, in, [&](const io::TensorInfo& t) -> std::optional<io::QdqTensor> {
    if (req.on_tensor) req.on_tensor(index++, total, t);
    TensorReport r = base_report(t);
    if (!is_selected(t, req)) {
      report.tensors.push_back(std::move(r));
      return std::nullopt;
    }
    const std::vector<float> values = in.read_f32(t);
    io::QdqTensor q = qdq_tensor(f, t, values, req);
    std::vector<float> deq = fake_values(f, values, t.shape, req);
    r.quantized = true;
    r.stats.add(values, deq);
    r.stored_as = qdq_dtype(q);
    r.bytes_out = qdq_bytes(q);
    report.tensors.push_back(std::move(r));
    return q;
  });
}

}  // namespace lowp::detail
