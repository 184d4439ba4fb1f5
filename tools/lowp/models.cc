#include "models.h"

#include <filesystem>
#include <utility>

#include "embedded.h"
#include "lowp/error.h"
#include "lowp/io/gguf.h"
#include "lowp/io/model.h"
#include "lowp/nn/model_files.h"

namespace lowp::cli {
namespace {

// The BOS a tokenizer puts first when it adds special tokens, if any.
std::optional<std::int32_t> added_bos(const nn::Tokenizer& t) {
  if (!t.bos()) return std::nullopt;
  const std::vector<std::int32_t> ids = t.encode("a", true);
  if (!ids.empty() && ids.front() == *t.bos()) return t.bos();
  return std::nullopt;
}

void check_vocab(const nn::Transformer& model, const nn::Tokenizer& t, const std::string& path) {
  if (t.vocab_size() > model.config().vocab_size) {
    throw Error(path + ": the tokenizer has " + std::to_string(t.vocab_size()) +
                " tokens but the model's vocabulary only " +
                std::to_string(model.config().vocab_size));
  }
}

}  // namespace

ModelAndTokenizer load_model_and_tokenizer(const std::string& path) {
  if (path.empty()) {
    const auto reader = io::parse_safetensors(embedded_model(), "embedded model");
    return {nn::load_transformer(*reader, "embedded model"), std::nullopt, std::nullopt};
  }
  if (std::filesystem::is_directory(path)) {
    nn::Transformer model = nn::load_transformer(path);
    nn::Tokenizer t = nn::Tokenizer::from_directory(path);
    check_vocab(model, t, path);
    const std::optional<std::int32_t> bos = added_bos(t);
    return {std::move(model), std::move(t), bos};
  }
  const std::unique_ptr<io::ModelReader> reader = io::open_model(path);
  nn::Transformer model = nn::load_transformer(*reader, path);
  if (model.config().family == "lowp-gpt") return {std::move(model), std::nullopt, std::nullopt};
  if (reader->kind() != std::string_view("gguf")) {
    throw Error(path + ": a " + model.config().family + " model comes with a tokenizer");
  }
  nn::Tokenizer t = nn::Tokenizer::from_gguf(*reader);
  check_vocab(model, t, path);
  const std::optional<std::int32_t> bos = added_bos(t);
  return {std::move(model), std::move(t), bos};
}

nn::ReportText tokenize_for_report(const ModelAndTokenizer& m, std::span<const std::uint8_t> text) {
  if (!m.tokenizer) return nn::byte_tokens(text);
  nn::ReportText r;
  r.tokens = m.tokenizer->encode(
      std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), false);
  r.token_bytes.reserve(r.tokens.size());
  for (std::int32_t id : r.tokens) {
    r.token_bytes.push_back(static_cast<std::uint32_t>(
        m.tokenizer->decode(std::span<const std::int32_t>(&id, 1)).size()));
  }
  r.bos = m.bos;
  return r;
}

std::vector<std::int32_t> encode_prompt(const ModelAndTokenizer& m, std::string_view text) {
  if (!m.tokenizer) {
    std::vector<std::int32_t> out;
    for (char c : text) out.push_back(static_cast<unsigned char>(c));
    return out;
  }
  std::vector<std::int32_t> ids = m.tokenizer->encode(text, false);
  if (m.bos) ids.insert(ids.begin(), *m.bos);
  return ids;
}

std::string decode_tokens(const ModelAndTokenizer& m, std::span<const std::int32_t> tokens) {
  if (!m.tokenizer) {
    std::string out;
    for (std::int32_t t : tokens) out.push_back(static_cast<char>(t));
    return out;
  }
  // Ids past the tokenizer's vocabulary are the padding rows some models add
  // to their embedding (Qwen's): they stand for no text.
  std::vector<std::int32_t> known;
  for (std::int32_t t : tokens) {
    if (t < m.tokenizer->vocab_size()) known.push_back(t);
  }
  return m.tokenizer->decode(known);
}

}  // namespace lowp::cli
