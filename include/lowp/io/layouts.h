// lowp/io/layouts.h — the checkpoint conventions inference engines load, as
// output layouts of `lowp quantize --layout L` (docs/model-files.md).
//
//  * lowp: lowp's own packed safetensors tensors (safetensors.h).
//  * gpt-oss: OpenAI gpt-oss MXFP4 as Hugging Face transformers reads it
//    (transformers src/transformers/integrations/mxfp4.py, convert_moe_packed_tensors
//    and quantizers/quantizer_mxfp4.py): a weight "<name>" of shape [..., K]
//    (K a multiple of 32) is stored as
//      "<name>_blocks"  U8 [..., K/32, 16]: 32 FP4 E2M1 codes per block,
//                       element 2i in the low nibble of byte i, 2i+1 in the high;
//      "<name>_scales"  U8 [..., K/32]: the block's E8M0 scale (2^(s-127)).
//    config.json carries "quantization_config": {"quant_method": "mxfp4",
//    "modules_to_not_convert": [the modules left unquantized]}.
// safetensors reading recognizes the gpt-oss pairs (safetensors.h), so a file
// written in a layout reads back as the same tensors of that format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/io/model.h"

namespace lowp::io {

enum class Layout { kLowp, kGptOss };

// "lowp" or "gpt-oss" -> Layout; throws lowp::Error listing the layouts.
Layout parse_layout(std::string_view name);
std::string_view layout_name(Layout layout);
// Whether the layout comes with a Hugging Face config (quantization_config):
// its output is a model directory.
bool layout_has_config(Layout layout);

// gpt-oss: the two stored tensors of weight `name` of `shape` (last dimension
// a multiple of 32). Throws lowp::Error naming the tensor otherwise.
std::vector<OutputTensor> gpt_oss_outputs(const std::string& name,
                                          std::span<const std::int64_t> shape);

// The module a tensor belongs to: its name up to the last '.'
// ("model.layers.0.self_attn.q_proj.weight" -> "model.layers.0.self_attn.q_proj").
std::string module_of(std::string_view tensor_name);

// gpt-oss's quantization_config object as JSON text.
std::string gpt_oss_quantization_config(const std::vector<std::string>& modules_to_not_convert);

// A Hugging Face config.json's text with "quantization_config" set to the
// JSON object `quantization_config` (replacing any there). `config` may be
// empty (no input config): the result then holds only quantization_config.
// Throws lowp::Error naming `source` if config is not a JSON object.
std::string config_with_quantization(std::string_view config, std::string_view quantization_config,
                                     std::string_view source);

// A Hugging Face model directory: its model.safetensors, read as open_model
// reads it, and the layout named by config.json's quantization_config
// ("gpt-oss" for quant_method "mxfp4"; the file's own layout, "lowp" or "",
// without one). Throws lowp::Error naming the file and the convention when
// the directory has no model.safetensors, config.json is not a JSON object,
// quant_method is unknown, or the tensors disagree with the convention
// (quant_method "mxfp4" without a single "<name>_blocks"/"<name>_scales" pair;
// a pair's own faults are found by the safetensors reader).
struct ModelDirectory {
  std::unique_ptr<ModelReader> model;
  std::string layout;
};
ModelDirectory open_model_directory(const std::filesystem::path& dir);

}  // namespace lowp::io
