// libFuzzer target for the runtime's checkpoint loader (lowp::nn::load_transformer)
// over a safetensors image.
//
// Any input must either load or throw lowp::Error with a one-line message; any
// other exception, crash or sanitizer report is a bug. A checkpoint that loads
// must run a forward pass on a short sequence (finite weights may still
// overflow to Inf/NaN logits; that is arithmetic, not a bug, so only memory
// safety and the error contract are checked).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/nn/model_files.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const auto reader = lowp::io::parse_safetensors(bytes, "fuzz.safetensors");
    const lowp::nn::Transformer gpt = lowp::nn::load_transformer(*reader, "fuzz.safetensors");
    const auto& c = gpt.config();
    const std::size_t n = static_cast<std::size_t>(std::min(c.n_ctx, 4));
    const std::vector<std::int32_t> tokens = {'I', 'n', ' ', 't'};
    std::vector<float> logits(n * static_cast<std::size_t>(c.vocab_size));
    gpt.forward(std::span(tokens).first(n), logits, 1);
  } catch (const lowp::Error& e) {
    if (std::string(e.what()).find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
