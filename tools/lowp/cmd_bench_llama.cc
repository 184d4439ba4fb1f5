// `lowp bench llama MODEL [--format F] [--threads N] [--prompt 128] [--decode
// 64] [--reps 3] [--json]`: the runtime's prompt processing (one pass over a
// prompt through the GEMM path) and single-token decode (the GEMV path with a
// KV cache), in tokens per second, as llama.cpp's llama-bench measures them.
// scripts/bench-llama.sh runs it and llama.cpp (tests/judges/llama_bench.mjs)
// alternately on the same GGUF and prints the ratios.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/error.h"
#include "lowp/nn/model_files.h"
#include "lowp/nn/transformer.h"

namespace lowp::cli {
namespace {

struct LlamaBenchOptions {
  std::string model;
  std::string format;  // empty: the file's weights as fp32
  unsigned threads = 1;
  int prompt = 128;
  int decode = 64;
  int reps = 3;
  bool json = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void run_bench_llama(const LlamaBenchOptions& o) {
  nn::Transformer model = nn::load_transformer(o.model);
  if (!o.format.empty()) model = model.with_weights(parse_matrix_format(o.format));
  const auto& c = model.config();
  if (o.prompt + o.decode > c.n_ctx) {
    throw Error("bench llama: --prompt + --decode (" + std::to_string(o.prompt + o.decode) +
                ") exceeds the model's context " + std::to_string(c.n_ctx));
  }
  // Token ids spread over the vocabulary (the speed does not depend on them).
  std::vector<std::int32_t> prompt(static_cast<std::size_t>(o.prompt));
  for (std::size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = static_cast<std::int32_t>((i * 7919 + 13) % static_cast<std::size_t>(c.vocab_size));
  using Clock = std::chrono::steady_clock;
  std::vector<double> pp, tg;
  for (int r = 0; r < o.reps + 1; ++r) {  // the first round warms up
    nn::Generator gen(model, o.threads);
    const auto t0 = Clock::now();
    std::span<const float> logits = gen.push(prompt);
    const auto t1 = Clock::now();
    std::int32_t next = 0;
    for (int i = 0; i < o.decode; ++i) {
      next = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) -
                                       logits.begin());
      logits = gen.push(next);
    }
    const auto t2 = Clock::now();
    if (r == 0) continue;
    pp.push_back(o.prompt / std::chrono::duration<double>(t1 - t0).count());
    tg.push_back(o.decode / std::chrono::duration<double>(t2 - t1).count());
  }
  const double pp_tps = median(pp), tg_tps = median(tg);
  const std::string weights = o.format.empty() ? "as stored (fp32)" : model.weight_format().name;
  if (o.json) {
    const nlohmann::json j = {{"model", o.model},
                              {"weights", weights},
                              {"threads", o.threads},
                              {"prompt_tokens", o.prompt},
                              {"decode_tokens", o.decode},
                              {"prompt_tokens_per_second", pp_tps},
                              {"decode_tokens_per_second", tg_tps}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{} ({}, weights {}), {} thread(s), median of {}\n", o.model, c.family, weights,
             o.threads, o.reps);
  fmt::print("prompt processing ({} tokens): {:.1f} tokens/s\n", o.prompt, pp_tps);
  fmt::print("decode ({} tokens, one at a time): {:.1f} tokens/s\n", o.decode, tg_tps);
}

}  // namespace

void add_bench_llama_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "llama",
      "Prompt processing and token-by-token decode of a model (HF directory or GGUF), in "
      "tokens/s (scripts/bench-llama.sh compares with llama.cpp on the same file)");
  auto o = std::make_shared<LlamaBenchOptions>();
  cmd->add_option("MODEL", o->model, "A model directory or file")->required();
  cmd->add_option("-f,--format", o->format,
                  "Cast the weights to this matrix format first (default: as stored, fp32), "
                  "e.g. q8_0, mxfp4");
  cmd->add_option("--threads", o->threads, "Threads")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prompt", o->prompt, "Prompt tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--decode", o->decode, "Tokens decoded one at a time")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reps", o->reps, "Timed rounds (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] { run_bench_llama(*o); });
}

}  // namespace lowp::cli
