// lowp_gpt_eval MODEL TEXT [--weights F,F,...] [--activations F] [--threads T]
//
// Evaluates MODEL on TEXT with Transformer::evaluate_bytes for each weight format and prints
// one line per format: bits per weight, model bytes, nats and bits per byte,
// bytes predicted, seconds and tokens/s. For measuring the runtime and for
// comparing its loss with the training script's.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/nn/model_files.h"

namespace {

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin <= list.size()) {
    const std::size_t end = std::min(list.find(',', begin), list.size());
    if (end > begin) out.push_back(list.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

int run(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string weights = "fp32", activations;
  unsigned threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--weights" && has_value) {
      weights = argv[++i];
    } else if (arg == "--activations" && has_value) {
      activations = argv[++i];
    } else if (arg == "--threads" && has_value) {
      threads = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else if (arg.starts_with("--")) {
      throw lowp::Error("unknown option or missing value: " + lowp::quoted(arg));
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) {
    throw lowp::Error(
        "usage: lowp_gpt_eval MODEL TEXT [--weights F,F,...] [--activations F] [--threads T]");
  }
  lowp::nn::Transformer base = lowp::nn::load_transformer(positional[0]);
  if (!activations.empty()) base = base.with_activations(lowp::parse_matrix_format(activations));
  std::ifstream in(positional[1], std::ios::binary);
  if (!in) throw lowp::Error(positional[1] + ": cannot read the text");
  const std::vector<std::uint8_t> text((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
  std::printf("%-14s %6s %10s %8s %8s %8s %8s %10s\n", "weights", "bits/w", "bytes", "nats/B",
              "bits/B", "tokens", "seconds", "tokens/s");
  for (const std::string& name : split(weights)) {
    const lowp::nn::Transformer model = base.with_weights(lowp::parse_matrix_format(name));
    const lowp::nn::EvalResult r = model.evaluate_bytes(text, threads);
    std::printf("%-14s %6.3f %10zu %8.5f %8.5f %8zu %8.3f %10.0f\n", name.c_str(),
                model.linear_bits_per_weight(), model.weight_bytes(), r.nats_per_byte(),
                r.bits_per_byte(), r.tokens, r.seconds, static_cast<double>(r.tokens) / r.seconds);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "lowp_gpt_eval: " << e.what() << "\n";
    return 1;
  }
}
