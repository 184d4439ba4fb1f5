// The engine checkpoint layouts (lowp/io/layouts.h describes each convention
// and the source it was read from).
#include "lowp/io/layouts.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lowp/error.h"

namespace lowp::io {

Layout parse_layout(std::string_view name) {
  if (name == "lowp") return Layout::kLowp;
  if (name == "gpt-oss") return Layout::kGptOss;
  if (name == "modelopt") return Layout::kModelopt;
  if (name == "compressed-tensors") return Layout::kCompressedTensors;
  if (name == "onnx-qdq") return Layout::kOnnxQdq;
  throw Error("unknown --layout " + quoted(std::string(name)) +
              " (layouts: lowp, gpt-oss, modelopt, compressed-tensors, onnx-qdq)");
}

std::string_view layout_name(Layout layout) {
  switch (layout) {
    case Layout::kGptOss:
      return "gpt-oss";
    case Layout::kModelopt:
      return "modelopt";
    case Layout::kCompressedTensors:
      return "compressed-tensors";
    case Layout::kOnnxQdq:
      return "onnx-qdq";
    case Layout::kLowp:
      break;
  }
  return "lowp";
}

bool layout_has_config(Layout layout) {
  return layout != Layout::kLowp && layout != Layout::kOnnxQdq;
}

std::vector<OutputTensor> gpt_oss_outputs(const std::string& name,
                                          std::span<const std::int64_t> shape) {
  if (shape.empty() || shape.back() % 32 != 0) {
    throw Error("tensor " + quoted(name) +
                ": the gpt-oss layout stores MXFP4 blocks of 32 along the last dimension, which "
                "must be a multiple of 32");
  }
  std::vector<std::int64_t> scales(shape.begin(), shape.end());
  scales.back() /= 32;
  std::vector<std::int64_t> blocks = scales;
  blocks.push_back(16);
  std::uint64_t count = 1;
  for (const std::int64_t d : scales) count *= static_cast<std::uint64_t>(d);
  return {OutputTensor{name + "_blocks", "U8", blocks, count * 16},
          OutputTensor{name + "_scales", "U8", scales, count}};
}

std::vector<OutputTensor> modelopt_nvfp4_outputs(const std::string& name,
                                                 std::span<const std::int64_t> shape) {
  if (shape.size() != 2 || shape[1] % 16 != 0) {
    throw Error("tensor " + quoted(name) +
                ": the modelopt layout stores NVFP4 matrices [rows, cols] with cols a multiple "
                "of 16");
  }
  const auto rows = static_cast<std::uint64_t>(shape[0]);
  const auto cols = static_cast<std::uint64_t>(shape[1]);
  return {OutputTensor{name, "U8", {shape[0], shape[1] / 2}, rows * cols / 2},
          OutputTensor{name + "_scale", "F8_E4M3", {shape[0], shape[1] / 16}, rows * cols / 16},
          OutputTensor{name + "_scale_2", "F32", {}, 4}};
}

std::vector<std::byte> modelopt_part_bytes(const PackedTensor& t, std::size_t part) {
  const std::vector<std::uint8_t>& src = part == 0 ? t.elements : t.scales;
  if (part == 2) {
    const auto bits = std::bit_cast<std::uint32_t>(t.tensor_scale);
    std::vector<std::byte> out(4);
    for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::byte>((bits >> (8 * i)) & 0xFF);
    return out;
  }
  std::vector<std::byte> out(src.size());
  std::memcpy(out.data(), src.data(), src.size());
  return out;
}

std::string modelopt_fused_group(std::string_view tensor_name) {
  if (!tensor_name.ends_with(".weight")) return "";
  const std::string module = module_of(tensor_name);
  const std::size_t dot = module.rfind('.');
  const std::string_view layer = dot == std::string::npos
                                     ? std::string_view(module)
                                     : std::string_view(module).substr(dot + 1);
  const std::string parent = dot == std::string::npos ? "" : module.substr(0, dot + 1);
  if (layer == "q_proj" || layer == "k_proj" || layer == "v_proj") return parent + "qkv";
  if (layer == "gate_proj" || layer == "up_proj") return parent + "gate_up";
  if (layer == "w1" || layer == "w3") return parent + "w13";
  return "";
}

std::string modelopt_input_scale_name(std::string_view tensor_name) {
  if (!tensor_name.ends_with(".weight")) return "";
  return module_of(tensor_name) + ".input_scale";
}

std::vector<OutputTensor> modelopt_fp8_outputs(const std::string& name,
                                               std::span<const std::int64_t> shape) {
  if (shape.size() != 2) {
    throw Error("tensor " + quoted(name) +
                ": the modelopt layout stores FP8 matrices [rows, cols]");
  }
  const auto count = static_cast<std::uint64_t>(shape[0]) * static_cast<std::uint64_t>(shape[1]);
  return {OutputTensor{name, "F8_E4M3", {shape[0], shape[1]}, count},
          OutputTensor{name + "_scale", "F32", {}, 4}};
}

std::vector<OutputTensor> compressed_fp8_outputs(const std::string& name,
                                                 std::span<const std::int64_t> shape,
                                                 bool per_channel) {
  if (shape.size() != 2) {
    throw Error("tensor " + quoted(name) +
                ": the compressed-tensors layout stores FP8 matrices [rows, cols]");
  }
  const auto rows = static_cast<std::uint64_t>(shape[0]);
  const auto count = rows * static_cast<std::uint64_t>(shape[1]);
  if (per_channel) {
    return {OutputTensor{name, "F8_E4M3", {shape[0], shape[1]}, count},
            OutputTensor{name + "_scale", "F32", {shape[0], 1}, 4 * rows}};
  }
  return {OutputTensor{name, "F8_E4M3", {shape[0], shape[1]}, count},
          OutputTensor{name + "_scale", "F32", {1}, 4}};
}

std::string compressed_fp8_quantization_config(bool per_channel,
                                               const std::vector<std::string>& ignore) {
  nlohmann::ordered_json weights;
  weights["num_bits"] = 8;
  weights["type"] = "float";
  weights["symmetric"] = true;
  weights["strategy"] = per_channel ? "channel" : "tensor";
  weights["dynamic"] = false;
  weights["group_size"] = nullptr;
  weights["block_structure"] = nullptr;
  weights["actorder"] = nullptr;
  weights["observer"] = "minmax";
  weights["observer_kwargs"] = nlohmann::ordered_json::object();
  nlohmann::ordered_json group;
  group["targets"] = {"Linear"};
  group["weights"] = weights;
  group["input_activations"] = nullptr;
  group["output_activations"] = nullptr;
  nlohmann::ordered_json j;
  j["quant_method"] = "compressed-tensors";
  j["format"] = "float-quantized";
  j["quantization_status"] = "compressed";
  j["config_groups"] = {{"group_0", group}};
  j["ignore"] = ignore;
  j["kv_cache_scheme"] = nullptr;
  return j.dump();
}

std::vector<OutputTensor> compressed_nvfp4_outputs(const std::string& name,
                                                   std::span<const std::int64_t> shape) {
  if (shape.size() != 2 || shape[1] % 16 != 0) {
    throw Error("tensor " + quoted(name) +
                ": the compressed-tensors layout stores NVFP4 matrices [rows, cols] with cols a "
                "multiple of 16");
  }
  const auto rows = static_cast<std::uint64_t>(shape[0]);
  const auto cols = static_cast<std::uint64_t>(shape[1]);
  return {OutputTensor{name + "_packed", "U8", {shape[0], shape[1] / 2}, rows * cols / 2},
          OutputTensor{name + "_scale", "F8_E4M3", {shape[0], shape[1] / 16}, rows * cols / 16},
          OutputTensor{name + "_global_scale", "F32", {1}, 4}};
}

float compressed_nvfp4_global_scale(float amax) {
  const float g = 2688.0f / amax;  // 448 (E4M3's max) * 6 (E2M1's max)
  return std::isfinite(g) && g > 0.0f ? g : 1.0f;
}

float compressed_nvfp4_tensor_scale(float global_scale) { return 1.0f / global_scale; }

float compressed_global_scale(float tensor_scale) {
  if (!(tensor_scale > 0.0f) || !std::isfinite(tensor_scale)) return 1.0f;
  const float g = 1.0f / tensor_scale;
  float best = g;
  int best_zeros = -1;
  const auto consider = [&](float candidate) {
    if (1.0f / candidate != tensor_scale) return;
    const int zeros = std::countr_zero(std::bit_cast<std::uint32_t>(candidate) | 0x00800000u);
    if (zeros > best_zeros) best = candidate, best_zeros = zeros;
  };
  consider(g);
  float down = g, up = g;
  for (int k = 0; k < 2; ++k) {
    down = std::nextafter(down, 0.0f);
    up = std::nextafter(up, std::numeric_limits<float>::infinity());
    consider(down);
    consider(up);
  }
  return best;
}

namespace {

std::vector<std::byte> le_f32(float v) {
  const auto bits = std::bit_cast<std::uint32_t>(v);
  std::vector<std::byte> out(4);
  for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::byte>((bits >> (8 * i)) & 0xFF);
  return out;
}

// pack_to_int32's words per row of `count` values of `bits` bits.
std::uint64_t int32_words(std::uint64_t count, int bits) {
  return (count * static_cast<std::uint64_t>(bits) + 31) / 32;
}

}  // namespace

bool compressed_pack_supports(const MatrixFormat& f) {
  const bool bits = f.element.bits == 2 || f.element.bits == 4 || f.element.bits == 8;
  if (f.element.kind != Kind::kInt || !bits || f.ggml_q8_0) return false;
  if (!f.asymmetric && !is_signed(f.element)) return false;  // uintN codes have no offset form
  return (f.scheme == MatrixScheme::kChannel && !f.asymmetric) || f.scheme == MatrixScheme::kGroup;
}

std::vector<OutputTensor> compressed_pack_outputs(const std::string& name, const MatrixFormat& f,
                                                  std::span<const std::int64_t> shape) {
  if (shape.size() != 2) {
    throw Error("tensor " + quoted(name) +
                ": the compressed-tensors layout stores integer matrices [rows, cols]");
  }
  const auto rows = static_cast<std::uint64_t>(shape[0]);
  const auto cols = static_cast<std::uint64_t>(shape[1]);
  const int bits = f.element.bits;
  const std::uint64_t words = int32_words(cols, bits);
  std::vector<OutputTensor> out = {OutputTensor{
      name + "_packed", "I32", {shape[0], static_cast<std::int64_t>(words)}, rows * words * 4}};
  if (f.scheme == MatrixScheme::kChannel) {
    out.push_back(OutputTensor{name + "_scale", "F32", {shape[0], 1}, rows * 4});
  } else {
    const auto g = static_cast<std::uint64_t>(f.group);
    const std::uint64_t groups = (cols + g - 1) / g;
    out.push_back(OutputTensor{
        name + "_scale", "F16", {shape[0], static_cast<std::int64_t>(groups)}, rows * groups * 2});
  }
  out.push_back(OutputTensor{name + "_shape", "I64", {2}, 16});
  if (f.zero_points()) {
    const auto g = static_cast<std::uint64_t>(f.group);
    const std::uint64_t groups = (cols + g - 1) / g;
    const std::uint64_t zwords = int32_words(rows, bits);
    out.push_back(
        OutputTensor{name + "_zero_point",
                     "I32",
                     {static_cast<std::int64_t>(zwords), static_cast<std::int64_t>(groups)},
                     zwords * groups * 4});
  }
  return out;
}

std::vector<std::byte> compressed_pack_part_bytes(const PackedMatrix& m, std::size_t part) {
  const MatrixFormat& f = m.format();
  const auto bits = static_cast<std::size_t>(f.element.bits);
  const std::size_t rows = m.rows(), cols = m.cols();
  std::vector<std::byte> out;
  if (part == 0) {
    // lowp's rows are little-endian bit streams starting on a byte; here each
    // row starts on an int32 word (little-endian), the padding bits zero. A
    // symmetric code is N-bit two's complement q; offset binary q + 2^(N-1)
    // flips its top bit. An asymmetric code is already q + 2^(N-1)
    // (lowp's unsigned code c = q_ct + 2^(N-1), q_ct = c - 2^(N-1)).
    const std::size_t lowp_row = PackedMatrix::row_bytes(f, cols);
    const std::size_t row = static_cast<std::size_t>(int32_words(cols, f.element.bits)) * 4;
    std::uint8_t flip = 0;
    if (!f.asymmetric) {
      for (std::size_t b = bits - 1; b < 8; b += bits) flip |= static_cast<std::uint8_t>(1u << b);
    }
    const std::size_t full = cols * bits / 8;  // bytes whose fields are all codes (bits | 8)
    out.assign(rows * row, std::byte{0});
    const std::span<const std::uint8_t> codes = m.codes();
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t i = 0; i < lowp_row; ++i) {
        std::uint8_t v = codes[r * lowp_row + i];
        std::uint8_t mask = flip;
        if (i >= full) {  // the last, partial byte: only its code fields
          const std::size_t used = cols * bits - full * 8;
          mask = static_cast<std::uint8_t>(flip & ((1u << used) - 1));
        }
        out[r * row + i] = static_cast<std::byte>(v ^ mask);
      }
    }
    return out;
  }
  if (part == 1) {
    const MatrixScales& s = m.scales();
    if (f.scheme == MatrixScheme::kChannel) {
      for (const float v : s.row) {
        const std::vector<std::byte> b = le_f32(v);
        out.insert(out.end(), b.begin(), b.end());
      }
    } else {
      for (const std::uint16_t v : s.group) {
        out.push_back(static_cast<std::byte>(v & 0xFF));
        out.push_back(static_cast<std::byte>(v >> 8));
      }
    }
    return out;
  }
  if (part == 2) {
    for (const std::size_t d : {rows, cols}) {
      const auto v = static_cast<std::uint64_t>(d);
      for (std::size_t i = 0; i < 8; ++i)
        out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    }
    return out;
  }
  // Zero points [rows, groups] (lowp's unsigned codes, already offset binary),
  // packed down each column: word w of column g holds rows 32w/bits.. .
  const auto g = static_cast<std::size_t>(f.group);
  const std::size_t groups = (cols + g - 1) / g;
  const auto zwords = static_cast<std::size_t>(int32_words(rows, f.element.bits));
  std::vector<std::uint32_t> words(zwords * groups, 0);
  const std::vector<std::uint8_t>& zero = m.scales().zero;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t k = 0; k < groups; ++k) {
      const std::size_t bit = r * bits;
      words[(bit / 32) * groups + k] |= std::uint32_t{zero[r * groups + k]} << (bit % 32);
    }
  }
  for (const std::uint32_t w : words) {
    for (std::size_t i = 0; i < 4; ++i)
      out.push_back(static_cast<std::byte>((w >> (8 * i)) & 0xFF));
  }
  return out;
}

namespace {

// The compressed-tensors quantization_config around one group's "weights".
std::string compressed_config(std::string_view format, const nlohmann::ordered_json& weights,
                              const std::vector<std::string>& ignore) {
  nlohmann::ordered_json group;
  group["targets"] = {"Linear"};
  group["weights"] = weights;
  group["input_activations"] = nullptr;
  group["output_activations"] = nullptr;
  group["format"] = format;
  nlohmann::ordered_json j;
  j["quant_method"] = "compressed-tensors";
  j["version"] = "0.18.0";  // the compressed-tensors release whose conventions these are
  j["format"] = format;
  j["quantization_status"] = "compressed";
  j["config_groups"] = {{"group_0", group}};
  j["ignore"] = ignore;
  j["kv_cache_scheme"] = nullptr;
  return j.dump();
}

}  // namespace

std::string compressed_nvfp4_quantization_config(const std::vector<std::string>& ignore) {
  // quant_scheme.py's NVFP4A16 preset, as QuantizationArgs serializes it.
  nlohmann::ordered_json weights;
  weights["num_bits"] = 4;
  weights["type"] = "float";
  weights["symmetric"] = true;
  weights["group_size"] = 16;
  weights["strategy"] = "tensor_group";
  weights["block_structure"] = nullptr;
  weights["dynamic"] = false;
  weights["actorder"] = nullptr;
  weights["scale_dtype"] = "torch.float8_e4m3fn";
  weights["zp_dtype"] = nullptr;  // serialized only when asymmetric
  weights["observer"] = "memoryless_minmax";
  weights["observer_kwargs"] = nlohmann::ordered_json::object();
  return compressed_config("nvfp4-pack-quantized", weights, ignore);
}

std::string compressed_pack_quantization_config(const MatrixFormat& f,
                                                const std::vector<std::string>& ignore) {
  const bool group = f.scheme == MatrixScheme::kGroup;
  nlohmann::ordered_json weights;
  weights["num_bits"] = f.element.bits;
  weights["type"] = "int";
  weights["symmetric"] = !f.asymmetric;
  weights["group_size"] = group ? nlohmann::ordered_json(f.group) : nlohmann::ordered_json(nullptr);
  weights["strategy"] = group ? "group" : "channel";
  weights["block_structure"] = nullptr;
  weights["dynamic"] = false;
  weights["actorder"] = nullptr;
  weights["scale_dtype"] = group ? "torch.float16" : "torch.float32";
  weights["zp_dtype"] =
      f.asymmetric ? nlohmann::ordered_json("torch.int8") : nlohmann::ordered_json(nullptr);
  weights["observer"] = "memoryless_minmax";
  weights["observer_kwargs"] = nlohmann::ordered_json::object();
  return compressed_config("pack-quantized", weights, ignore);
}

std::string modelopt_quant_config(std::string_view quant_algo,
                                  const std::vector<std::string>& exclude_modules) {
  nlohmann::ordered_json j;
  j["producer"] = {{"name", "modelopt"}, {"version", "lowp"}};
  nlohmann::ordered_json q;
  q["quant_algo"] = quant_algo;
  q["kv_cache_quant_algo"] = nullptr;
  if (quant_algo == "NVFP4") q["group_size"] = 16;
  q["exclude_modules"] = exclude_modules;
  j["quantization"] = q;
  return j.dump(2) + "\n";
}

std::string module_of(std::string_view tensor_name) {
  const std::size_t dot = tensor_name.rfind('.');
  return std::string(dot == std::string_view::npos ? tensor_name : tensor_name.substr(0, dot));
}

std::string gpt_oss_quantization_config(const std::vector<std::string>& modules_to_not_convert) {
  nlohmann::ordered_json j;
  j["quant_method"] = "mxfp4";
  j["modules_to_not_convert"] = modules_to_not_convert;
  return j.dump();
}

std::string config_with_quantization(std::string_view config, std::string_view quantization_config,
                                     std::string_view source) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!config.empty()) {
    j = nlohmann::ordered_json::parse(config, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw Error(std::string(source) + ": not a JSON object (a Hugging Face config.json)");
    }
  }
  if (quantization_config.empty()) {
    j.erase("quantization_config");
  } else {
    j["quantization_config"] = nlohmann::ordered_json::parse(quantization_config);
  }
  return j.dump(2) + "\n";
}

ModelDirectory open_model_directory(const std::filesystem::path& dir) {
  std::filesystem::path weights = dir / "model.safetensors";
  const std::filesystem::path index = dir / "model.safetensors.index.json";
  const bool sharded = !std::filesystem::exists(weights) && std::filesystem::exists(index);
  if (!sharded && !std::filesystem::exists(weights)) {
    throw Error(quoted(dir.string()) +
                ": no model.safetensors or model.safetensors.index.json in the model directory");
  }
  if (sharded) weights = index;
  ModelDirectory d{sharded ? open_safetensors_shards(index) : open_model(weights), ""};
  d.layout = d.model->layout();
  const std::filesystem::path hf_quant = dir / "hf_quant_config.json";
  if (std::filesystem::exists(hf_quant)) {
    std::ifstream f(hf_quant, std::ios::binary);
    std::ostringstream text;
    text << f.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    const std::string where = hf_quant.string();
    if (j.is_discarded() || !j.is_object() || !j.contains("quantization") ||
        !j["quantization"].is_object() || !j["quantization"].contains("quant_algo") ||
        !j["quantization"]["quant_algo"].is_string()) {
      throw Error(where + ": not a ModelOpt config (no quantization.quant_algo string)");
    }
    const std::string algo = j["quantization"]["quant_algo"].get<std::string>();
    if (algo == "FP8") {
      bool any = false;
      for (const TensorInfo& t : d.model->tensors()) any = any || t.dtype == "fp8_e4m3:tensor";
      if (!any) {
        throw Error(weights.string() +
                    ": hf_quant_config.json says ModelOpt FP8 but no tensor is stored as <name> "
                    "(F8_E4M3 [rows, cols]) with <name>_scale (F32 scalar)");
      }
      d.layout = "modelopt";
      return d;
    }
    if (algo != "NVFP4") {
      throw Error(where + ": unknown ModelOpt quant_algo " + quoted(algo) +
                  " (lowp reads NVFP4, FP8)");
    }
    if (d.model->layout() != "modelopt") {
      throw Error(weights.string() +
                  ": hf_quant_config.json says ModelOpt NVFP4 but no tensor is stored as "
                  "<name> (U8 [rows, cols/2]) with <name>_scale (F8_E4M3 [rows, cols/16]) and "
                  "<name>_scale_2 (F32 scalar)");
    }
    d.layout = "modelopt";
    return d;
  }
  const std::filesystem::path config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path)) return d;
  std::ifstream f(config_path, std::ios::binary);
  std::ostringstream text;
  text << f.rdbuf();
  const nlohmann::json config = nlohmann::json::parse(text.str(), nullptr, false);
  const std::string where = config_path.string();
  if (config.is_discarded() || !config.is_object()) {
    throw Error(where + ": not a JSON object (a Hugging Face config.json)");
  }
  if (!config.contains("quantization_config")) return d;
  const nlohmann::json& q = config["quantization_config"];
  if (!q.is_object() || !q.contains("quant_method") || !q["quant_method"].is_string()) {
    throw Error(where + ": quantization_config has no quant_method string");
  }
  const std::string method = q["quant_method"].get<std::string>();
  if (method == "mxfp4") {
    if (d.model->layout() != "gpt-oss") {
      throw Error(weights.string() +
                  ": config.json says quant_method \"mxfp4\" (gpt-oss) but no tensor is stored "
                  "as a gpt-oss pair <name>_blocks (U8 [..., G, 16]) and <name>_scales (U8 "
                  "[..., G])");
    }
    d.layout = "gpt-oss";
    return d;
  }
  if (method == "compressed-tensors") {
    const std::string format =
        q.contains("format") && q["format"].is_string() ? q["format"].get<std::string>() : "";
    if (format == "nvfp4-pack-quantized" || format == "pack-quantized") {
      if (d.model->layout() != "compressed-tensors") {
        throw Error(weights.string() + ": config.json says compressed-tensors " + format +
                    " but no tensor is stored as <name>_packed (" +
                    (format == "pack-quantized" ? "I32) with <name>_scale and <name>_shape"
                                                : "U8) with <name>_scale (F8_E4M3) and "
                                                  "<name>_global_scale (F32 [1])"));
      }
      d.layout = "compressed-tensors";
      return d;
    }
    if (format != "float-quantized") {
      throw Error(where + ": compressed-tensors format " + quoted(format) +
                  " is not read by lowp (it reads float-quantized, nvfp4-pack-quantized, "
                  "pack-quantized)");
    }
    bool any = false;
    for (const TensorInfo& t : d.model->tensors())
      any = any || t.dtype == "fp8_e4m3:tensor" || t.dtype == "fp8_e4m3:channel";
    if (!any) {
      throw Error(weights.string() +
                  ": config.json says compressed-tensors float-quantized but no tensor is stored "
                  "as <name> (F8_E4M3 [rows, cols]) with <name>_scale (F32 [1] or [rows, 1])");
    }
    d.layout = "compressed-tensors";
    return d;
  }
  throw Error(where + ": unknown quant_method " + quoted(method) +
              " (lowp reads mxfp4, compressed-tensors)");
}

}  // namespace lowp::io
