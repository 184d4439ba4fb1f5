// lowp/quant/export_gguf.h — a transformer written as the GGUF file llama.cpp
// loads: llama.cpp's architecture metadata and tensor names (llama, qwen2,
// qwen3, gpt2), its vocabulary keys, q/k rows interleaved for its RoPE (llama
// family), and the tensor types it computes with, in ggml's block layouts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lowp/io/gguf.h"
#include "lowp/nn/transformer.h"

namespace lowp {

struct GgufExportRequest {
  // The type of the matrices: fp32, fp16, bf16, q8_0, q4_0, q4_k or mxfp4
  // (lowp's MXFP4 quantizer, OCP's rule, in ggml's block layout; the others
  // ggml's reference quantizers, byte for byte). Norms and biases stay F32.
  // A matrix whose rows do not split into the type's blocks takes Q8_0 (rows
  // a multiple of 32) or F16; with a 4-bit type the output head takes Q6_K,
  // as llama.cpp's own quantizer does.
  std::string type = "fp32";
  std::string name;  // general.name
  // Write the model's linear matrices as they are packed (e.g. by GPTQ,
  // lowp/quant/calibrate.h) instead of quantizing the checkpoint's values:
  // q8_0 takes q8_0 or int8:group32 matrices, q4_0 int4:group32 (codes
  // -7..7, so ggml's -8 is never used), mxfp4 mxfp4, fp32/fp16/bf16 the
  // same plain format; rows must split into 32-value blocks. With a 4-bit
  // type the head is still written as Q6_K from the checkpoint, as llama.cpp
  // does; a tied head is the token embedding.
  bool packed = false;
  std::vector<io::GgufKv> tokenizer_kv;  // tokenizer.ggml.* (nn::Tokenizer::to_gguf_kv)
};

// What export_gguf wrote, per tensor.
struct GgufExportTensor {
  std::string name, type;
  std::vector<std::int64_t> shape;
  std::uint64_t bytes = 0;
};

// Writes `model` (its checkpoint's fp32 values) to `out` atomically. Throws
// lowp::Error for a family llama.cpp has no architecture for (lowp's own GPT,
// whose exact-erf GELU llama.cpp's gpt2 does not compute: write it with
// `lowp quantize FILE -o X.gguf` instead), an unknown type, or (packed) a
// matrix whose format the type cannot hold.
std::vector<GgufExportTensor> export_gguf(const nn::Transformer& model,
                                          const std::filesystem::path& out,
                                          const GgufExportRequest& req);

}  // namespace lowp
