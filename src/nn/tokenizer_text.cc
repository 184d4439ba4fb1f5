// src/nn/tokenizer_text.cc — the text side of the tokenizers: GPT-2's byte to
// code point table, UTF-8 checks, NFC (ICU) and the split regexes (PCRE2 in
// UTF + UCP mode, so \p{L}, \p{N}, \s and (?i:...) follow Unicode as HF's
// Oniguruma and llama.cpp's tables do).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <climits>
#include <string>

#include "lowp/error.h"
#include "nn/tokenizer_impl.h"

namespace lowp::nn {
namespace {

std::string utf8_of(std::uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py): the printable bytes
// '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves, the other 68 bytes to
// U+0100, U+0101, ... in byte order.
struct ByteTable {
  std::array<std::string, 256> to_utf8;
  std::array<int, 324> from_cp{};  // code points < 0x144
  ByteTable() {
    from_cp.fill(-1);
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const std::uint32_t cp = printable ? b : next++;
      to_utf8[b] = utf8_of(cp);
      from_cp[cp] = static_cast<int>(b);
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// llama.cpp's split regexes (src/llama-vocab.cpp, llm_tokenizer_bpe).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// The same as Hugging Face's tokenizer.json files spell them.
constexpr const char* kHfGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kHfLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kHfQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return byte_table().to_utf8; }

int unicode_to_byte(std::uint32_t cp) {
  return cp < byte_table().from_cp.size() ? byte_table().from_cp[cp] : -1;
}

std::size_t valid_utf8_len(std::string_view text, std::size_t i) {
  const auto c = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = c(i);
  if (b < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2, cp = b & 0x1Fu;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3, cp = b & 0x0Fu;
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4, cp = b & 0x07u;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((c(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c(i + k) & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = valid_utf8_len(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string nfc(std::string_view text) {
  bool ascii = true;
  for (const char ch : text) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return std::string(text);
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* norm = icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err)) throw Error("NFC: ICU has no NFC data");
  std::string out;
  const auto flush = [&](std::string_view run) {
    if (run.empty()) return;
    if (run.size() > INT32_MAX / 2) throw Error("NFC: text too long");
    const auto s = icu::UnicodeString::fromUTF8(
        icu::StringPiece(run.data(), static_cast<std::int32_t>(run.size())));
    UErrorCode e = U_ZERO_ERROR;
    const icu::UnicodeString r = norm->normalize(s, e);
    if (U_FAILURE(e)) throw Error("NFC: ICU failed to normalize the text");
    r.toUTF8String(out);
  };
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = valid_utf8_len(text, i);
    if (n == 0) {
      flush(text.substr(start, i - start));
      out += text[i];
      start = ++i;
    } else {
      i += n;
    }
  }
  flush(text.substr(start));
  return out;
}

std::vector<std::string> llama_cpp_pre_regexes(std::string_view pre) {
  if (pre == "gpt-2" || pre == "gpt2") return {kGpt2};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return {kLlama3};
  if (pre == "qwen2") return {kQwen2};
  if (pre == "default") {
    return {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  }
  return {};
}

std::string llama_cpp_pre_name(const std::vector<std::string>& patterns) {
  if (patterns.size() != 1) {
    return patterns == llama_cpp_pre_regexes("default") ? "default" : "";
  }
  const std::string& p = patterns[0];
  if (p == kGpt2 || p == kHfGpt2) return "gpt-2";
  if (p == kLlama3 || p == kHfLlama3) return "llama-bpe";
  if (p == kQwen2 || p == kHfQwen2) return "qwen2";
  return "";
}

// ---- SplitRegex ----

SplitRegex::SplitRegex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(where + ": regex " + quoted(pattern) + " does not compile at offset " +
                std::to_string(off) + ": " + reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
  code_ = code;
}

SplitRegex::~SplitRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void SplitRegex::split(std::string_view text, std::vector<std::string_view>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  struct Match {
    pcre2_match_data* data;
    pcre2_match_context* ctx;
    pcre2_jit_stack* stack;
    ~Match() {
      pcre2_match_data_free(data);
      pcre2_match_context_free(ctx);
      pcre2_jit_stack_free(stack);
    }
  } m{pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_context_create(nullptr),
      pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr)};
  if (m.data == nullptr || m.ctx == nullptr) throw std::bad_alloc();
  pcre2_set_match_limit(m.ctx, 10'000'000);
  if (m.stack != nullptr) pcre2_jit_stack_assign(m.ctx, nullptr, m.stack);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t pos = 0, last = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), pos, 0, m.data, m.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error("tokenizer split regex " + quoted(pattern_) + ": " +
                  reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
    const std::size_t s = ov[0], e = ov[1];
    if (e <= s) {  // an empty match: step over one character
      const std::size_t n = s < text.size() ? valid_utf8_len(text, s) : 1;
      pos = s + (n == 0 ? 1 : n);
      continue;
    }
    if (s > last) out.push_back(text.substr(last, s - last));
    out.push_back(text.substr(s, e - s));
    last = pos = e;
  }
  if (last < text.size()) out.push_back(text.substr(last));
}

}  // namespace lowp::nn
