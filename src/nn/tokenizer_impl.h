// src/nn/tokenizer_impl.h — the state behind lowp::nn::Tokenizer, shared by
// the loaders (tokenizer_hf.cc, tokenizer.cc's from_gguf) and the encoder.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lowp/nn/tokenizer.h"

namespace lowp::nn {

// A compiled split regex (PCRE2, UTF + UCP + MATCH_INVALID_UTF). Splitting
// keeps both the matches and the text between them as pieces (HF's
// "Isolated" behaviour, llama.cpp's unicode_regex_split).
class SplitRegex {
 public:
  // Throws lowp::Error naming `where` if the pattern does not compile.
  SplitRegex(const std::string& pattern, const std::string& where);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;
  // Appends the pieces of `text` to `out` (views into `text`).
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// Text normalization steps (HF normalizers, applied in order).
struct NormalizeStep {
  enum class Op { kNfc, kPrepend, kReplace } op = Op::kNfc;
  std::string a, b;  // kPrepend: a; kReplace: a -> b
};

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
};

struct MergeRule {
  std::int32_t rank = 0;
  std::int32_t result = 0;
};

struct Tokenizer::Impl {
  Kind kind = Kind::kByteBpe;
  std::string source;  // the file, for errors

  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::vector<std::pair<std::string, std::string>> merges;
  std::unordered_map<std::string, std::int32_t> token_to_id;
  std::unordered_map<std::uint64_t, MergeRule> merge_rules;  // (left << 32 | right)

  // Pre-tokenization: split regexes applied in turn (byte-level only).
  std::string pre;  // llama.cpp's name, "" if none
  std::vector<std::shared_ptr<const SplitRegex>> split;
  bool byte_level_add_prefix_space = false;
  // SPM (HF Metaspace pre-tokenizer with split=true): pieces start at each "▁".
  bool metaspace_split = false;
  std::vector<NormalizeStep> normalize;

  // Digit-run cuts forced after pre-tokenization (with_number_grouping).
  std::optional<numeracy::DigitGrouping> number_grouping;

  bool ignore_merges = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool spm_scores = false;  // merge by score (llama.cpp SPM) instead of by rank
  bool add_space_prefix = false;
  bool decode_strip_space = false;  // SPM: drop one leading space when decoding

  std::optional<std::int32_t> bos, eos, unk;
  std::vector<std::int32_t> prefix_special, suffix_special;  // add_special

  std::vector<AddedToken> added;                                 // sorted longest first
  std::array<std::vector<std::uint32_t>, 256> added_by_first{};  // indices into `added`
  // Byte-level: the id of each byte's token (-1 if absent). SPM: <0xXX>.
  std::array<std::int32_t, 256> byte_token{};

  // Fills token_to_id, merge_rules (from merges), byte_token and the added
  // token index; checks merges name known tokens. Throws lowp::Error.
  void finish();
};

// ---- text helpers (tokenizer_text.cc) ----
// GPT-2's byte -> printable code point table (bytes_to_unicode) as UTF-8.
const std::array<std::string, 256>& byte_to_unicode();
// Its inverse on code points; -1 for code points outside the table.
int unicode_to_byte(std::uint32_t cp);
// Length of the valid UTF-8 sequence at text[i], or 0 if it is invalid.
std::size_t valid_utf8_len(std::string_view text, std::size_t i);
bool is_valid_utf8(std::string_view text);
// NFC of the valid UTF-8 runs of `text` (invalid bytes are kept as they are).
std::string nfc(std::string_view text);

// llama.cpp's split regexes for tokenizer.ggml.pre; empty if unknown.
std::vector<std::string> llama_cpp_pre_regexes(std::string_view pre);
// The pre name whose regexes are exactly `patterns` (HF spellings accepted), or "".
std::string llama_cpp_pre_name(const std::vector<std::string>& patterns);

}  // namespace lowp::nn
