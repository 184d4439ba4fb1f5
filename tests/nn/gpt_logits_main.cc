// lowp_gpt_logits MODEL TEXT OUT.npy [--offset N] [--length L] [--weights F] [--threads T]
//
// Writes the runtime's logits (float32 [L, vocab]) for bytes [N, N + L) of
// TEXT, one forward pass through the GEMM path (L defaults to the rest of the
// text, at most n_ctx). The PyTorch comparison (test_torch_logits.py) runs it.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/io/npy.h"
#include "lowp/nn/model_files.h"

namespace {

std::size_t parse_count(const std::string& option, const char* text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (*text == '\0' || *end != '\0' || *text == '-') {
    throw lowp::Error(option + ": expected a non-negative integer, got " +
                      lowp::quoted(std::string(text)));
  }
  return static_cast<std::size_t>(v);
}

int run(int argc, char** argv) {
  std::vector<std::string> positional;
  std::size_t offset = 0, length = 0;
  bool has_length = false;
  unsigned threads = 1;
  std::string weights = "fp32";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--offset" && has_value) {
      offset = parse_count(arg, argv[++i]);
    } else if (arg == "--length" && has_value) {
      length = parse_count(arg, argv[++i]);
      has_length = true;
    } else if (arg == "--weights" && has_value) {
      weights = argv[++i];
    } else if (arg == "--threads" && has_value) {
      threads = static_cast<unsigned>(parse_count(arg, argv[++i]));
    } else if (arg.starts_with("--")) {
      throw lowp::Error("unknown option or missing value: " + lowp::quoted(arg));
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 3) {
    throw lowp::Error(
        "usage: lowp_gpt_logits MODEL TEXT OUT.npy [--offset N] [--length L] [--weights F] "
        "[--threads T]");
  }
  const lowp::nn::Transformer base = lowp::nn::load_transformer(positional[0]);
  const lowp::nn::Transformer model = base.with_weights(lowp::parse_matrix_format(weights));
  std::ifstream in(positional[1], std::ios::binary);
  if (!in) throw lowp::Error(positional[1] + ": cannot read the text");
  const std::vector<std::uint8_t> text((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
  if (offset >= text.size()) {
    throw lowp::Error(positional[1] + ": offset " + std::to_string(offset) + " is past the end (" +
                      std::to_string(text.size()) + " bytes)");
  }
  const auto ctx = static_cast<std::size_t>(model.config().n_ctx);
  if (!has_length) length = std::min(ctx, text.size() - offset);
  if (length > text.size() - offset) {
    throw lowp::Error(positional[1] + ": " + std::to_string(length) + " bytes from offset " +
                      std::to_string(offset) + " run past the end (" + std::to_string(text.size()) +
                      " bytes)");
  }
  const std::vector<std::int32_t> tokens(
      text.begin() + static_cast<std::ptrdiff_t>(offset),
      text.begin() + static_cast<std::ptrdiff_t>(offset + length));
  const auto vocab = static_cast<std::size_t>(model.config().vocab_size);
  std::vector<float> logits(length * vocab);
  model.forward(tokens, logits, threads);
  const std::int64_t shape[2] = {static_cast<std::int64_t>(length),
                                 static_cast<std::int64_t>(vocab)};
  lowp::io::write_npy(positional[2], lowp::io::DType::kF32, shape,
                      std::as_bytes(std::span<const float>(logits)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "lowp_gpt_logits: " << e.what() << "\n";
    return 1;
  }
}
