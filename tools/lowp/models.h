// What `lowp report` and `lowp generate` load: a model (the embedded GPT, a
// lowp checkpoint, a Hugging Face directory or a llama.cpp GGUF file) and the
// tokenizer that goes with it (bytes for lowp's byte-level GPT; the
// directory's tokenizer.json; the GGUF's tokenizer.ggml.* vocabulary).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/nn/report.h"
#include "lowp/nn/tokenizer.h"
#include "lowp/nn/transformer.h"

namespace lowp::cli {

struct ModelAndTokenizer {
  nn::Transformer model;
  std::optional<nn::Tokenizer> tokenizer;  // none: byte-level (vocab 256)
  // The token each sequence starts with, when the tokenizer adds one.
  std::optional<std::int32_t> bos;
};

// `path` empty: the embedded model. Throws lowp::Error naming the file.
ModelAndTokenizer load_model_and_tokenizer(const std::string& path);

// The validation text as the model's tokens (see nn::ReportText): each
// token's bytes are the length of its own decoded text.
nn::ReportText tokenize_for_report(const ModelAndTokenizer& m, std::span<const std::uint8_t> text);

// A prompt's tokens (with the tokenizer's BOS when it adds one) and tokens
// back to text.
std::vector<std::int32_t> encode_prompt(const ModelAndTokenizer& m, std::string_view text);
std::string decode_tokens(const ModelAndTokenizer& m, std::span<const std::int32_t> tokens);

}  // namespace lowp::cli
