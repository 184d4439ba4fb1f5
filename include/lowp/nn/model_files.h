// lowp/nn/model_files.h — the transformer runtime's model files: what each
// family's checkpoint calls its tensors and hyperparameters, in one table per
// layout, and the loaders that read them into a Transformer.
//
// Inputs:
// - lowp's own GPT checkpoints (safetensors or GGUF, metadata "lowp.arch" =
//   "gpt"; tensor names as python/lowp/examples/charlm.py writes them);
// - Hugging Face model directories: config.json with `architectures`
//   LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM
//   or GPT2LMHeadModel, and model.safetensors or the shards that
//   model.safetensors.index.json lists (any float dtype);
// - GGUF files as llama.cpp writes them, general.architecture llama, qwen2,
//   qwen3 or gpt2, any tensor type lowp decodes (lowp/io/gguf.h). llama.cpp's
//   converter interleaves the rows of llama's q and k matrices for its RoPE;
//   the loader puts them back in rotate-half order.
// Every tensor must be present with its expected shape, hold finite values,
// and nothing unknown may be present (known buffers such as GPT-2's attention
// masks are skipped). Unsupported options (mixture of experts, a sliding
// window shorter than the context, rope_scaling types other than linear and
// llama3, activations other than the family's) are refused.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/io/model.h"
#include "lowp/nn/transformer.h"

namespace lowp::nn {

// What a tensor is to the runtime (a field of TransformerWeights).
enum class TensorRole {
  kTokEmb,
  kPosEmb,
  kNormFW,
  kNormFB,
  kHead,
  kNorm1W,
  kNorm1B,
  kQkvW,
  kQkvB,
  kQW,
  kQB,
  kKW,
  kKB,
  kVW,
  kVB,
  kOW,
  kOB,
  kQNorm,
  kKNorm,
  kNorm2W,
  kNorm2B,
  kFcW,
  kFcB,
  kGateW,
  kGateB,
  kDownW,
  kDownB,
};

// One row of a layout's name table: `name` with "{}" standing for the layer
// index; `transposed`: stored [in, out] (GPT-2's Conv1D) instead of [out, in].
struct TensorName {
  TensorRole role;
  std::string_view name;
  bool transposed = false;
};

// The tensor names of a layout: "lowp-gpt", "hf-llama" (Llama, Mistral, Qwen2,
// Qwen3), "hf-gpt2", "gguf-llama" (llama.cpp's names for llama, qwen2,
// qwen3), "gguf-gpt2". Throws lowp::Error for another name.
std::span<const TensorName> tensor_names(std::string_view layout);

// The runtime shape ([out, in] for matrices, [n] for vectors) of a role under
// a configuration, or an empty shape when the configuration has no such
// tensor (a bias it lacks, the head when tied, ...).
std::vector<std::int64_t> role_shape(TensorRole role, const TransformerConfig& c);

// The TransformerWeights field of a role (layer ignored for the global ones).
std::vector<float>& role_values(TransformerWeights& w, TensorRole role, std::size_t layer);
const std::vector<float>& role_values(const TransformerWeights& w, TensorRole role,
                                      std::size_t layer);

// llama.cpp's interleaving of q/k rows (its converter's permute for llama):
// within each head, row a * head_dim/2 + b (a in {0, 1}) moves to 2b + a.
// `rows_per_head` is head_dim; `cols` the row length. unpermute is its inverse.
std::vector<float> gguf_permute_qk(std::span<const float> m, std::size_t heads,
                                   std::size_t head_dim, std::size_t cols);
std::vector<float> gguf_unpermute_qk(std::span<const float> m, std::size_t heads,
                                     std::size_t head_dim, std::size_t cols);

// The configuration a Hugging Face config.json describes. Throws lowp::Error
// naming `source` and the key for a missing or bad key or an unsupported
// architecture or option.
TransformerConfig config_from_hf_json(std::string_view json, const std::string& source);

// Loads a model from a file (lowp checkpoint or GGUF) or a Hugging Face
// directory. Throws lowp::Error naming the file and the key or tensor at
// fault.
Transformer load_transformer(const std::filesystem::path& path);
// Loads a model from one file's reader (a lowp checkpoint or a llama.cpp
// GGUF).
Transformer load_transformer(const io::ModelReader& reader, const std::string& source);

}  // namespace lowp::nn
