// libFuzzer target for the runtime's model configurations: the bytes as a
// Hugging Face config.json (lowp::nn::config_from_hf_json, then the
// configuration's own checks) and as a GGUF file whose metadata describes a
// llama.cpp model (lowp::nn::load_transformer over parse_gguf). Either must
// load or throw one lowp::Error line; nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/nn/model_files.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const lowp::nn::TransformerConfig c = lowp::nn::config_from_hf_json(text, "config.json");
    c.validate("config.json");
  } catch (const lowp::Error& e) {
    if (std::string(e.what()).find('\n') != std::string::npos) std::abort();
  }
  try {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const auto reader = lowp::io::parse_gguf(bytes, "fuzz.gguf");
    const lowp::nn::Transformer t = lowp::nn::load_transformer(*reader, "fuzz.gguf");
    (void)t.parameter_count();
  } catch (const lowp::Error& e) {
    if (std::string(e.what()).find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
