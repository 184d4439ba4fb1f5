// libFuzzer target for the tokenizer.json loader and the encoder
// (lowp::nn::Tokenizer::from_hf_json_text, encode, decode, to_gguf_kv and
// from_gguf_kv).
//
// The input is a tokenizer.json, optionally followed by a NUL byte and a text
// to encode (else a fixed hostile text). Any input must either load or throw
// lowp::Error with a one-line message; a tokenizer that loads must encode the
// text (valid UTF-8 or not) into ids that decode without error, and its GGUF
// vocabulary must load back. Any other exception, crash or sanitizer report
// is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/error.h"
#include "lowp/nn/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos
                                    ? std::string_view(
                                          "Hello, World! it's 1234 \xE2\x96\x81 \xFF\xC3 "
                                          "\xE6\xBC\xA2 e\xCC\x81 <s>\r\n  ")
                                    : input.substr(nul + 1);
  const auto check = [](const lowp::Error& e) {
    if (std::string(e.what()).find('\n') != std::string::npos) std::abort();
  };
  try {
    const auto tok = lowp::nn::Tokenizer::from_hf_json_text(json, "", "fuzz.json");
    const std::vector<std::int32_t> ids = tok.encode(text, true);
    for (const std::int32_t id : ids) {
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    }
    (void)tok.decode(ids);
    std::vector<lowp::io::GgufKv> kv;
    try {
      tok.to_gguf_kv(kv);
    } catch (const lowp::Error& e) {
      check(e);
      return 0;  // a split regex llama.cpp has no name for
    }
    const auto back = lowp::nn::Tokenizer::from_gguf_kv(kv, "fuzz.gguf");
    (void)back.encode(text, true);
  } catch (const lowp::Error& e) {
    check(e);
  }
  return 0;
}
