// The engine checkpoint layouts (lowp/io/layouts.h describes each convention
// and the source it was read from).
#include "lowp/io/layouts.h"

#include <bit>
#include <cstring>
#include <fstream>
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
  const std::filesystem::path weights = dir / "model.safetensors";
  if (!std::filesystem::exists(weights)) {
    throw Error(quoted(dir.string()) + ": no model.safetensors in the model directory");
  }
  ModelDirectory d{open_model(weights), ""};
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
    if (format != "float-quantized") {
      throw Error(where + ": compressed-tensors format " + quoted(format) +
                  " is not read by lowp (it reads float-quantized)");
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
