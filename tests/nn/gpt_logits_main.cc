// lowp_gpt_logits MODEL TEXT OUT.npy [--offset N] [--length L] [--weights F] [--threads T]
// lowp_gpt_logits MODEL OUT.npy --tokens IDS.json [--weights F] [--threads T]
//
// Writes the runtime's logits (float32 [L, vocab]) for bytes [N, N + L) of
// TEXT, one forward pass through the GEMM path (L defaults to the rest of the
// text, at most n_ctx); with --tokens, for the token ids of IDS.json (a JSON
// array of integers) instead. MODEL is anything load_transformer reads (a
// lowp checkpoint, a Hugging Face directory, a GGUF). The PyTorch comparison
// (test_torch_logits.py) and the llama.cpp one (test_llama_cpp.py) run it.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
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

// The ids of a JSON array of non-negative integers ("[1, 2, 3]").
std::vector<std::int32_t> read_token_ids(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw lowp::Error(path + ": cannot read the token ids");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr std::int64_t kMaxId = std::numeric_limits<std::int32_t>::max();
  std::vector<std::int32_t> ids;
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
  };
  const auto fail = [&](const std::string& what) {
    return lowp::Error(path + ": " + what + " at byte " + std::to_string(i) +
                       " (expected a JSON array of token ids)");
  };
  skip_space();
  if (i >= text.size() || text[i] != '[') throw fail("no '['");
  ++i;
  skip_space();
  if (i < text.size() && text[i] == ']') throw fail("an empty array");
  for (;;) {
    skip_space();
    std::int64_t v = 0;
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && v <= kMaxId) {
      v = v * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start) throw fail("not a non-negative integer");
    if (v > kMaxId) throw fail("an id out of range");
    ids.push_back(static_cast<std::int32_t>(v));
    skip_space();
    if (i < text.size() && text[i] == ',') {
      ++i;
    } else if (i < text.size() && text[i] == ']') {
      ++i;
      break;
    } else {
      throw fail("neither ',' nor ']'");
    }
  }
  skip_space();
  if (i != text.size()) throw fail("trailing text");
  return ids;
}

int run(int argc, char** argv) {
  std::vector<std::string> positional;
  std::size_t offset = 0, length = 0;
  bool has_length = false;
  unsigned threads = 1;
  std::string weights = "fp32";
  std::string tokens_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--offset" && has_value) {
      offset = parse_count(arg, argv[++i]);
    } else if (arg == "--length" && has_value) {
      length = parse_count(arg, argv[++i]);
      has_length = true;
    } else if (arg == "--tokens" && has_value) {
      tokens_path = argv[++i];
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
  if (positional.size() != (tokens_path.empty() ? 3U : 2U)) {
    throw lowp::Error(
        "usage: lowp_gpt_logits MODEL TEXT OUT.npy [--offset N] [--length L] [--weights F] "
        "[--threads T]\n"
        "       lowp_gpt_logits MODEL OUT.npy --tokens IDS.json [--weights F] [--threads T]");
  }
  const lowp::nn::Transformer base = lowp::nn::load_transformer(positional[0]);
  const lowp::nn::Transformer model = base.with_weights(lowp::parse_matrix_format(weights));
  if (!tokens_path.empty()) {
    const std::vector<std::int32_t> ids = read_token_ids(tokens_path);
    const auto vocab = static_cast<std::size_t>(model.config().vocab_size);
    std::vector<float> logits(ids.size() * vocab);
    model.forward(ids, logits, threads);
    const std::int64_t shape[2] = {static_cast<std::int64_t>(ids.size()),
                                   static_cast<std::int64_t>(vocab)};
    lowp::io::write_npy(positional[1], lowp::io::DType::kF32, shape,
                        std::as_bytes(std::span<const float>(logits)));
    return 0;
  }
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
