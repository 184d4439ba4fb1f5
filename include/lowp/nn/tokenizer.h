// lowp/nn/tokenizer.h — text <-> token ids for the models the runtime runs:
//
//   * byte-level BPE (GPT-2, Llama-3, Qwen2): Hugging Face tokenizer.json with
//     model.type "BPE" and a ByteLevel pre-tokenizer (alone, or after a Split
//     regex in a Sequence), or GGUF tokenizer.ggml.model "gpt2" with
//     tokenizer.ggml.pre naming the split regex as llama.cpp does;
//   * SentencePiece-style (Llama-2): tokenizer.json with model.type "BPE",
//     byte_fallback and the "▁" (U+2581) space normalizer, or GGUF
//     tokenizer.ggml.model "llama" (llama.cpp's score-driven SPM merges).
//
// Added/special tokens are matched in the text before pre-tokenization.
// Invalid UTF-8 in the text is always encoded (byte-level: its bytes map to
// their byte tokens; SPM: byte fallback), never rejected. What is supported
// and how it is checked against Hugging Face's and llama.cpp's tokenizers:
// docs/tokenizers.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowp/io/gguf.h"
#include "lowp/io/model.h"
#include "lowp/numeracy/digits.h"

namespace lowp::nn {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : std::int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // special tokens (BOS, EOS, <|im_start|>, ...)
  kUserDefined = 4,  // added tokens that are not special
  kUnused = 5,
  kByte = 6,  // SPM byte fallback tokens <0x00> ... <0xFF>
};

class Tokenizer {
 public:
  enum class Kind { kByteBpe, kSpm };

  // A Hugging Face tokenizer.json (and tokenizer_config.json beside it, if
  // present, for bos/eos/add_bos). Throws lowp::Error naming the file and the
  // key for malformed or unsupported content.
  static Tokenizer from_hf_json(const std::filesystem::path& tokenizer_json);
  // The same from the file's bytes; `source` names it in errors (for tests
  // and the fuzz target). `config_json` is tokenizer_config.json's text or "".
  static Tokenizer from_hf_json_text(std::string_view tokenizer_json, std::string_view config_json,
                                     const std::string& source);
  // The tokenizer.ggml.* metadata of a GGUF reader.
  static Tokenizer from_gguf(const lowp::io::ModelReader& gguf);
  // Same from the key-value pairs; `source` names them in errors.
  static Tokenizer from_gguf_kv(std::span<const lowp::io::GgufKv> kv, const std::string& source);
  // tokenizer.json in `hf_dir` (a SentencePiece tokenizer.model alone is
  // rejected with an error that says so).
  static Tokenizer from_directory(const std::filesystem::path& hf_dir);

  // `add_special`: prepend BOS (and append EOS) as the tokenizer's config
  // says (add_bos_token / add_eos_token, or the post-processor's template).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special = false) const;
  // Ids out of range throw lowp::Error.
  std::string decode(std::span<const std::int32_t> ids) const;

  // The same tokenizer with a number pre-tokenizer step: after the
  // tokenizer's own pre-tokenization, the cuts inside every run of ASCII
  // digits are replaced by `grouping`'s (lowp/numeracy/digits.h), so that
  // "12345" is encoded as "12" "345" (r2l3) whatever the tokenizer's split
  // regex does; text outside digit runs is encoded as before. (A group the
  // vocabulary has no single token for is still merged as BPE merges it.)
  Tokenizer with_number_grouping(numeracy::DigitGrouping grouping) const;
  std::optional<numeracy::DigitGrouping> number_grouping() const;

  std::int32_t vocab_size() const;
  std::optional<std::int32_t> bos() const;
  std::optional<std::int32_t> eos() const;

  Kind kind() const;
  // "gpt2" or "llama" (tokenizer.ggml.model).
  std::string_view gguf_model() const;
  // llama.cpp's tokenizer.ggml.pre ("gpt-2", "llama-bpe", "qwen2", "default"),
  // or "" for SPM and for a split regex llama.cpp does not know.
  const std::string& pre() const;
  const std::vector<std::string>& tokens() const;
  const std::vector<float>& scores() const;
  const std::vector<TokenType>& token_types() const;
  const std::vector<std::pair<std::string, std::string>>& merges() const;

  // Appends tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,
  // bos_token_id,eos_token_id,unknown_token_id,add_bos_token,add_eos_token,
  // add_space_prefix} (those that apply). Throws lowp::Error if the split
  // regex is not one llama.cpp knows by name.
  void to_gguf_kv(std::vector<lowp::io::GgufKv>& kv) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace lowp::nn
