#include "models.h"

#include "embedded.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/nn/model_files.h"

namespace lowp::cli {

ModelAndTokenizer load_model_and_tokenizer(const std::string& path) {
  if (path.empty()) {
    const auto reader = io::parse_safetensors(embedded_model(), "embedded model");
    return {nn::load_transformer(*reader, "embedded model"), true};
  }
  nn::Transformer model = nn::load_transformer(path);
  if (model.config().family != "lowp-gpt") {
    throw Error(path + ": no tokenizer for a " + model.config().family + " model yet");
  }
  return {std::move(model), true};
}

nn::ReportText tokenize_for_report(const ModelAndTokenizer& m, std::span<const std::uint8_t> text,
                                   const std::string&) {
  if (m.byte_level) return nn::byte_tokens(text);
  throw Error("no tokenizer");
}

std::vector<std::int32_t> encode_text(const ModelAndTokenizer& m, std::string_view text) {
  if (!m.byte_level) throw Error("no tokenizer");
  std::vector<std::int32_t> out;
  for (char c : text) out.push_back(static_cast<unsigned char>(c));
  return out;
}

std::string decode_tokens(const ModelAndTokenizer& m, std::span<const std::int32_t> tokens) {
  if (!m.byte_level) throw Error("no tokenizer");
  std::string out;
  for (std::int32_t t : tokens) out.push_back(static_cast<char>(t));
  return out;
}

}  // namespace lowp::cli
