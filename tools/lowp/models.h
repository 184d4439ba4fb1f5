// What `lowp report`, `lowp generate` and `lowp bench llama` load: a model
// (the embedded GPT, a lowp checkpoint, a Hugging Face directory or a GGUF
// file) and the tokenizer that goes with it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowp/nn/report.h"
#include "lowp/nn/transformer.h"

namespace lowp::cli {

struct ModelAndTokenizer {
  nn::Transformer model;
  // Text to tokens and back; a byte-level model (lowp's GPT) uses bytes.
  bool byte_level = true;
};

// `path` empty: the embedded model.
ModelAndTokenizer load_model_and_tokenizer(const std::string& path);

// The validation text as the model's tokens (see nn::ReportText).
nn::ReportText tokenize_for_report(const ModelAndTokenizer& m, std::span<const std::uint8_t> text,
                                   const std::string& text_name);

std::vector<std::int32_t> encode_text(const ModelAndTokenizer& m, std::string_view text);
std::string decode_tokens(const ModelAndTokenizer& m, std::span<const std::int32_t> tokens);

}  // namespace lowp::cli
