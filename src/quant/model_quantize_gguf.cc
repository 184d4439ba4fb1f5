// quantize_model's GGUF output: F32/F16/BF16 casts, MXFP4 and NVFP4 in
// ggml's block layouts, and ggml's Q8_0; other tensors are copied in their
// own type. An NVFP4 tensor is lowp's NVFP4 (lowp/block/mx.h) repacked into
// ggml's blocks of 64, its FP32 per-tensor scale written after it as the F32
// tensor llama.cpp's converter writes (io::gguf_nvfp4_scale_name).
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "lowp/block/ggml.h"
#include "lowp/block/ggml_quants.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/gguf.h"
#include "model_quantize_internal.h"

namespace lowp::detail {
namespace {

// The file bytes of ggml blocks.
template <typename Block>
std::vector<std::byte> bytes_of(const std::vector<Block>& blocks) {
  std::vector<std::byte> bytes(blocks.size() * sizeof(Block));
  if (!blocks.empty()) std::memcpy(bytes.data(), blocks.data(), bytes.size());
  return bytes;
}

// The GGUF type that stores a quantized tensor in `f`, or "" if GGUF has none.
std::string gguf_type_for(const ResolvedFormat& f) {
  if (f.is_ggml_q8_0) return "Q8_0";
  if (f.is_block) {
    BlockFormat mxfp4;
    parse_block_format("mxfp4", mxfp4);
    if (f.block == mxfp4) return "MXFP4";
    BlockFormat nvfp4;
    parse_block_format("nvfp4", nvfp4);
    return f.block == nvfp4 ? "NVFP4" : "";
  }
  return std::string(io::gguf_type_for(f.scalar));
}

// GGUF's name for a tensor copied unchanged from `in`, or "" if there is none.
std::string gguf_copy_type(const io::ModelReader& in, const io::TensorInfo& t) {
  if (in.kind() == "gguf") return t.dtype;
  const std::string plain = plain_dtype(t);
  for (const char* gguf : {"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"}) {
    if (plain == gguf) return plain;
  }
  return "";
}

}  // namespace

void write_gguf_output(const io::ModelReader& in, const std::filesystem::path& out,
                       const ResolvedFormat& f, const QuantizeRequest& req, ModelReport& report) {
  reject_onnx_input(in, "GGUF");
  if (!req.fake && (f.is_block || f.is_ggml_q8_0) && req.axis != -1) {
    throw Error("GGUF's block types run along each row (the last axis): --axis must be -1");
  }
  const std::string stored_type = gguf_type_for(f);
  if (!req.fake && stored_type.empty()) {
    throw Error(
        "GGUF has no tensor type for " + f.name +
        " (it stores fp32, fp16, bf16, mxfp4, nvfp4 and q8_0); write .safetensors instead, or add "
        "--fake");
  }
  // Step 1: decide every output tensor up front (the header needs all sizes).
  // An NVFP4 tensor is followed by its scale tensor (scale_of: the index of
  // the tensor it scales); its value comes with the blocks.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  struct Plan {
    const io::TensorInfo* in;
    bool quantize;
    std::string note;
    std::size_t scale_of = kNone;
    bool decode = false;  // kept as its decoded fp32 values
  };
  std::vector<Plan> plans;
  std::vector<io::OutputTensor> outputs;
  const std::int64_t row_multiple = stored_type == "NVFP4" ? 64 : 32;
  const bool blocked =
      !req.fake && (stored_type == "MXFP4" || stored_type == "NVFP4" || stored_type == "Q8_0");
  auto decide = [&](const io::TensorInfo& t) {
    Plan p{&t, is_selected(t, req), ""};
    if (p.quantize && blocked && (t.shape.empty() || t.shape.back() % row_multiple != 0)) {
      p.quantize = false;
      p.note = "kept: " + stored_type + " needs a last dimension that is a multiple of " +
               std::to_string(row_multiple);
    }
    return p;
  };
  // A GGUF input's NVFP4 scale tensors: dropped where their tensor is decoded
  // (its values carry the scale), copied where its NVFP4 bytes are.
  const std::map<std::string, std::string> input_scales = io::gguf_nvfp4_scales(in);
  auto folded = [&](const io::TensorInfo& t) {
    const auto it = input_scales.find(t.name);
    return it != input_scales.end() && decide(*in.find(it->second)).quantize;
  };
  std::set<std::string> names;
  for (const io::TensorInfo& t : in.tensors()) {
    if (!folded(t)) names.insert(t.name);
  }
  for (const io::TensorInfo& t : in.tensors()) {
    if (folded(t)) continue;
    Plan p = decide(t);
    io::OutputTensor o{t.name, "", t.shape, 0};
    if (p.quantize && !req.fake) {
      o.dtype = stored_type;
    } else if (p.quantize) {
      o.dtype = in.kind() == "gguf" && (t.dtype == "F16" || t.dtype == "BF16") ? t.dtype : "F32";
    } else {
      o.dtype = gguf_copy_type(in, t);
      // A tensor in a format GGUF has no type for (another layout's block
      // format it cannot hold here) is kept as its exact fp32 values.
      if (o.dtype.empty() && t.is_float) {
        o.dtype = "F32";
        p.decode = true;
      }
      if (o.dtype.empty()) {
        throw Error("tensor " + quoted(t.name) + " of type " + t.dtype +
                    " has no GGUF type to be copied as");
      }
    }
    o.nbytes = io::gguf_tensor_nbytes(o.dtype, o.shape);
    const bool scaled = o.dtype == "NVFP4" && p.quantize;
    outputs.push_back(std::move(o));
    plans.push_back(std::move(p));
    if (scaled) {
      const std::string scale_name = io::gguf_nvfp4_scale_name(t.name);
      if (!names.insert(scale_name).second) {
        throw Error("tensor " + quoted(t.name) + "'s NVFP4 scale tensor " + quoted(scale_name) +
                    " would clash with a tensor of that name");
      }
      plans.push_back({&t, false, "", plans.size() - 1});
      outputs.push_back({scale_name, "F32", {1}, 4});
    }
  }
  std::vector<io::GgufKv> kv;
  if (in.kind() == "gguf") {
    kv = io::gguf_kv(in);
  } else if (in.kind() == "safetensors") {
    // safetensors metadata (all strings) carries over as GGUF strings, less
    // lowp's keys describing the input's packing; "lowp.arch" stays, so the
    // runtime (lowp/nn/model_files.h) can load the output.
    for (const auto& [key, value] : in.metadata()) {
      if (key != "lowp.arch" && (key.rfind("lowp.", 0) == 0 || key.rfind("lowp_", 0) == 0))
        continue;
      kv.emplace_back(key, io::GgufValue::string(value));
    }
  }
  // The output's own format replaces an input's (a lowp GGUF re-quantized).
  std::erase_if(kv, [](const io::GgufKv& e) { return e.first == "lowp.quantized_format"; });
  kv.emplace_back("lowp.quantized_format",
                  io::GgufValue::string(f.name + (req.fake ? " (fake)" : "")));

  // An input tensor already in the output's block format along its rows
  // (gpt-oss, ModelOpt, lowp's packing, GGUF) keeps its codes and scales:
  // converting between layouts loses nothing.
  const auto stored_or_quantized = [&](const io::TensorInfo& t, std::span<const float> values) {
    if (std::optional<PackedTensor> stored = stored_in_format(
            in, t, f.block, f.name, t.shape, static_cast<int>(t.shape.size()) - 1)) {
      return std::move(*stored);
    }
    return quantize(f.block, values, t.shape, -1, req.block);
  };

  // Step 2: stream the tensors; each is quantized when the writer asks for it.
  float nvfp4_scale = 1.0f;  // the last NVFP4 tensor's, for the scale tensor after it
  io::write_gguf(out, kv, outputs, [&](std::size_t i) -> std::vector<std::byte> {
    const Plan& p = plans[i];
    if (p.scale_of != kNone) {
      std::vector<std::byte> bytes(4);
      std::memcpy(bytes.data(), &nvfp4_scale, 4);
      return bytes;
    }
    const io::TensorInfo& t = *p.in;
    const io::OutputTensor& o = outputs[i];
    if (req.on_tensor) req.on_tensor(i, plans.size(), t);
    TensorReport r = base_report(t);
    r.stored_as = o.dtype;
    r.bytes_out = o.nbytes;
    if (!p.quantize) {
      r.stored_as = p.note.empty() ? o.dtype : o.dtype + " (" + p.note + ")";
      report.tensors.push_back(std::move(r));
      if (p.decode) return bytes_of(in.read_f32(t));
      // Every other reader that gets here stores plain little-endian values,
      // so the bytes carry over as they are (gguf_copy_type kept the type).
      const auto raw = in.raw(t);
      return {raw.begin(), raw.end()};
    }
    const std::vector<float> values = in.read_f32(t);
    std::vector<float> q;
    std::vector<std::byte> bytes;
    if (req.fake) {
      std::string used;
      q = fake_values(f, t, values, req, used);
      // The container's own rounding (nearest-even), not the request's.
      bytes = encode_codes(*io::gguf_type_format(o.dtype), q, {});
      r.stored_as = o.dtype + " (fake " + used + ")";
    } else if (o.dtype == "Q8_0") {
      const std::vector<GgmlBlockQ8_0> blocks = ggml_q8_0_quantize(values);
      bytes = bytes_of(blocks);
      q.resize(values.size());
      ggml_q8_0_dequantize(blocks, q);
    } else if (o.dtype == "MXFP4") {
      const PackedTensor packed = stored_or_quantized(t, values);
      const std::vector<GgmlBlockMxfp4> blocks = to_ggml_mxfp4(packed);
      bytes = bytes_of(blocks);
      q.resize(values.size());
      ggml_mxfp4_dequantize(blocks, q);  // what ggml will read back
    } else if (o.dtype == "NVFP4") {
      const PackedTensor packed = stored_or_quantized(t, values);
      bytes = bytes_of(to_ggml_nvfp4(packed));
      nvfp4_scale = packed.tensor_scale;
      // What a GGUF reader decodes: ggml's block values times the scale
      // tensor (io::gguf_nvfp4_scale_name).
      q.resize(values.size());
      ggml_dequantize(GgmlQuantType::kNvfp4, bytes, q);
      for (float& v : q) v *= nvfp4_scale;
      r.bytes_out += 4;
    } else {
      bytes = encode_codes(f.scalar, values, req);
      q = decode_codes(f.scalar, bytes);
    }
    r.quantized = true;
    r.stats.add(values, q);
    report.tensors.push_back(std::move(r));
    return bytes;
  });
}

}  // namespace lowp::detail
