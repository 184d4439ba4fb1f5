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
//  * modelopt: NVIDIA ModelOpt's NVFP4 checkpoints as vLLM's modelopt.py
//    (ModelOptNvFp4LinearMethod) loads them: a weight "<name>" [rows, cols]
//    (cols a multiple of 16) is stored as
//      "<name>"          U8 [rows, cols/2]: two E2M1 codes per byte, element
//                        2i in the low nibble;
//      "<name>_scale"    F8_E4M3 [rows, cols/16]: each block's scale;
//      "<name>_scale_2"  F32 []: the per-tensor scale amax/(6*448);
//    value = e2m1 * e4m3(scale) * scale_2: exactly lowp's NVFP4 (its
//    tensor_scale is scale_2, its UE4M3 scale bytes are the F8_E4M3 bytes).
//    hf_quant_config.json beside it: {"producer": {"name": "modelopt", ...},
//    "quantization": {"quant_algo": "NVFP4", "group_size": 16,
//    "exclude_modules": [the modules left unquantized]}}.
//    FP8 per tensor (quant_algo "FP8"): "<name>" F8_E4M3 [rows, cols] and
//    "<name>_scale" F32 [] (amax/448), value = e4m3 * scale: exactly lowp's
//    fp8_e4m3:tensor.
//  * compressed-tensors (vLLM's llm-compressor; Hugging Face transformers'
//    docs/source/en/quantization/compressed_tensors.md): "float-quantized" FP8,
//    a matrix "<name>" as "<name>" F8_E4M3 [rows, cols] and "<name>_scale" F32
//    [1] (strategy "tensor", lowp's fp8_e4m3:tensor) or [rows, 1] (strategy
//    "channel", lowp's fp8_e4m3:channel), value = e4m3 * scale; config.json's
//    quantization_config = {"quant_method": "compressed-tensors", "format":
//    "float-quantized", "quantization_status": "compressed", "config_groups":
//    {"group_0": {"targets": ["Linear"], "weights": {...}}}, "ignore": [...]}.
//    "nvfp4-pack-quantized" (compressed-tensors 0.18.0,
//    compressors/nvfp4/base.py NVFP4PackedCompressor and its helpers.py
//    pack_fp4_to_uint8; quant_scheme.py preset NVFP4A16): a weight "<name>"
//    [rows, cols] (cols a multiple of 16) as
//      "<name>_packed"        U8 [rows, cols/2], element 2i in the low nibble;
//      "<name>_scale"         F8_E4M3 [rows, cols/16], each block's scale;
//      "<name>_global_scale"  F32 [1], g = 448 * 6 / amax
//    (quantization/utils/helpers.py generate_gparam), value = e2m1 *
//    (e4m3 / g) (lifecycle/forward_helpers.py: scale / global_scale): g is the
//    RECIPROCAL of lowp's NVFP4 tensor_scale (and of ModelOpt's scale_2, as
//    entrypoints/convert/converters/modelopt_nvfp4.py converts it). lowp reads
//    tensor_scale = fp32(1 / g), so its values are e2m1 * (e4m3 * fp32(1/g));
//    see compressed_global_scale for the exactness of the round trip. The
//    layers an engine fuses (modelopt_fused_group) share one g, the smallest.
//    "pack-quantized" (compressors/pack_quantized/base.py and helpers.py
//    pack_to_int32): an integer matrix "<name>" [rows, cols] as
//      "<name>_packed"      I32 [rows, ceil(cols * bits / 32)]: each row's
//                           codes q + 2^(bits-1) (offset binary; q the signed
//                           integer) as a dense little-end-first bit stream of
//                           int32 words, element i at bit i * bits;
//      "<name>_scale"       [rows, 1] (strategy "channel") or [rows, groups]
//                           (strategy "group"): F32 for lowp's :channel, F16
//                           for lowp's :group<K> (lowp's own scale values; a
//                           reader converting them to the model's dtype may
//                           round them);
//      "<name>_shape"       I64 [2]: rows, cols;
//      "<name>_zero_point"  (asymmetric, lowp's :group<K>:asym) I32
//                           [ceil(rows * bits / 32), groups]: the zero points
//                           z_ct + 2^(bits-1) packed as above down each column
//                           (pack_to_int32 packed_dim 0);
//    value = (q - z_ct) * scale. lowp writes and reads bits 2, 4 and 8, whose
//    packing every compressed-tensors version agrees on (0.17.0 changed it
//    for the widths that do not divide 32).
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
#include "lowp/storage/packed_matrix.h"

namespace lowp::io {

enum class Layout { kLowp, kGptOss, kModelopt, kCompressedTensors, kOnnxQdq };

// "lowp", "gpt-oss", "modelopt", "compressed-tensors" or "onnx-qdq" (ONNX
// DequantizeLinear weights, lowp/io/onnx_qdq.h) -> Layout; throws
// lowp::Error listing them.
Layout parse_layout(std::string_view name);
std::string_view layout_name(Layout layout);
// Whether the layout comes with a Hugging Face config (quantization_config):
// its output is a model directory.
bool layout_has_config(Layout layout);

// gpt-oss: the two stored tensors of weight `name` of `shape` (last dimension
// a multiple of 32). Throws lowp::Error naming the tensor otherwise.
std::vector<OutputTensor> gpt_oss_outputs(const std::string& name,
                                          std::span<const std::int64_t> shape);

// modelopt NVFP4: the three stored tensors of weight `name` of `shape` (rank
// 2, last dimension a multiple of 16). Throws lowp::Error naming the tensor
// otherwise. modelopt_part_bytes gives part 0 (codes), 1 (block scales) or
// 2 (the FP32 tensor scale) of a PackedTensor in lowp's nvfp4 format.
std::vector<OutputTensor> modelopt_nvfp4_outputs(const std::string& name,
                                                 std::span<const std::int64_t> shape);
std::vector<std::byte> modelopt_part_bytes(const PackedTensor& t, std::size_t part);

// The group of layers an engine runs as one matrix product, whose ModelOpt
// NVFP4 weights share one weight_scale_2 (ModelOpt's export gives them the
// largest amax of the group; vLLM uses one global scale per fused layer):
// "<p>.q_proj.weight", "<p>.k_proj.weight", "<p>.v_proj.weight" -> "<p>.qkv";
// "<p>.gate_proj.weight", "<p>.up_proj.weight" -> "<p>.gate_up"; an expert's
// "<p>.w1.weight", "<p>.w3.weight" -> "<p>.w13"; "" for any other tensor.
std::string modelopt_fused_group(std::string_view tensor_name);
// "<module>.input_scale" for a weight "<module>.weight" (ModelOpt's static
// activation scale of the module); "" for a name without the ".weight" suffix.
std::string modelopt_input_scale_name(std::string_view tensor_name);

// modelopt FP8 per tensor: the two stored tensors of matrix `name` ("<name>"
// F8_E4M3, "<name>_scale" F32 []); throws unless `shape` has rank 2.
std::vector<OutputTensor> modelopt_fp8_outputs(const std::string& name,
                                               std::span<const std::int64_t> shape);

// compressed-tensors float-quantized FP8: "<name>" F8_E4M3 [rows, cols] and
// "<name>_scale" F32 [1] (per_channel false) or [rows, 1] (true).
std::vector<OutputTensor> compressed_fp8_outputs(const std::string& name,
                                                 std::span<const std::int64_t> shape,
                                                 bool per_channel);
// Its quantization_config object as JSON text.
std::string compressed_fp8_quantization_config(bool per_channel,
                                               const std::vector<std::string>& ignore);

// compressed-tensors nvfp4-pack-quantized: the three stored tensors of weight
// `name` of `shape` (rank 2, last dimension a multiple of 16); throws
// lowp::Error naming the tensor otherwise. Parts 0 and 1 hold the bytes of
// lowp's nvfp4 elements and scales as they are; part 2 the global scale.
std::vector<OutputTensor> compressed_nvfp4_outputs(const std::string& name,
                                                   std::span<const std::int64_t> shape);
// The global scale compressed-tensors computes for a tensor of largest finite
// magnitude amax (generate_gparam): fp32(2688 / amax), 1 where that is not
// finite (amax 0 or tiny), as generate_gparam falls back to.
float compressed_nvfp4_global_scale(float amax);
// lowp's tensor scale under global scale g: fp32(1 / g) (an all-zero tensor,
// written with g = 1, reads back with tensor scale 1 and all-zero codes).
float compressed_nvfp4_tensor_scale(float global_scale);
// The global scale written for a stored NVFP4 tensor of tensor scale t (one
// copied, not quantized): an FP32 g whose reciprocal fp32(1 / g) is t exactly
// where one exists among fp32(1 / t) and its two neighbours either side (the
// reciprocal is not onto FP32: where t's significand exceeds about sqrt(2),
// neighbouring reciprocals are more than an ulp of t apart), the one with the
// shortest significand (448 rather than 447.99997 for t = fp32(1/448)); else
// fp32(1 / t), whose reciprocal is then t's neighbour. 1 for t = 0.
float compressed_global_scale(float tensor_scale);

// compressed-tensors pack-quantized: whether lowp writes matrix format f in
// it (intN:channel, intN:group<K>, intN:group<K>:asym with N = 2, 4, 8).
bool compressed_pack_supports(const MatrixFormat& f);
// The stored tensors of matrix `name` of `shape` (rank 2) in format f (which
// compressed_pack_supports); throws lowp::Error naming the tensor otherwise.
std::vector<OutputTensor> compressed_pack_outputs(const std::string& name, const MatrixFormat& f,
                                                  std::span<const std::int64_t> shape);
// The bytes of compressed_pack_outputs' entry `part` (0: packed codes, 1:
// scales, 2: shape, 3: zero points).
std::vector<std::byte> compressed_pack_part_bytes(const PackedMatrix& m, std::size_t part);

// The quantization_config object (JSON text) of the compressed-tensors
// format for lowp's nvfp4 ("nvfp4-pack-quantized") or a matrix format
// compressed_pack_supports ("pack-quantized").
std::string compressed_nvfp4_quantization_config(const std::vector<std::string>& ignore);
std::string compressed_pack_quantization_config(const MatrixFormat& f,
                                                const std::vector<std::string>& ignore);

// ModelOpt's hf_quant_config.json text for quant_algo "NVFP4" (group size 16)
// or "FP8".
std::string modelopt_quant_config(std::string_view quant_algo,
                                  const std::vector<std::string>& exclude_modules);

// The module a tensor belongs to: its name up to the last '.'
// ("model.layers.0.self_attn.q_proj.weight" -> "model.layers.0.self_attn.q_proj").
std::string module_of(std::string_view tensor_name);

// gpt-oss's quantization_config object as JSON text.
std::string gpt_oss_quantization_config(const std::vector<std::string>& modules_to_not_convert);

// A Hugging Face config.json's text with "quantization_config" set to the
// JSON object `quantization_config` (replacing any there). `config` may be
// empty (no input config): the result then holds only quantization_config.
// An empty `quantization_config` removes the key instead.
// Throws lowp::Error naming `source` if config is not a JSON object.
std::string config_with_quantization(std::string_view config, std::string_view quantization_config,
                                     std::string_view source);

// A Hugging Face model directory: its model.safetensors, read as open_model
// reads it (or, without one, the shards model.safetensors.index.json lists,
// read by open_safetensors_shards), and the layout named by config.json's quantization_config
// ("gpt-oss" for quant_method "mxfp4"; "compressed-tensors" for
// quant_method "compressed-tensors" with format "float-quantized",
// "nvfp4-pack-quantized" or "pack-quantized"; "modelopt" when
// hf_quant_config.json names quant_algo "NVFP4" or "FP8"; the file's own layout, "lowp" or "",
// without one). Throws lowp::Error naming the file and the convention when the directory has no
// model.safetensors, config.json is not a JSON object, quant_method is unknown, or the tensors
// disagree with the convention (quant_method "mxfp4" without a single
// "<name>_blocks"/"<name>_scales" pair; a pair's own faults are found by the safetensors reader).
struct ModelDirectory {
  std::unique_ptr<ModelReader> model;
  std::string layout;
};
ModelDirectory open_model_directory(const std::filesystem::path& dir);

}  // namespace lowp::io
