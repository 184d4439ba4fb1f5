// `lowp generate [MODEL] PROMPT [--format F] [-n N] [--temperature T]
//                [--top-k K] [--seed S] [--threads N]`: sample text from a
// (quantized) model, token by token through the GEMV path with a KV cache, so
// a user can see what a format does to it.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "embedded.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/storage/packed_matrix.h"
#include "models.h"

namespace lowp::cli {
namespace {

struct GenerateArgs {
  std::vector<std::string> positional;  // [MODEL] PROMPT
  std::string format = "fp32";
  std::string activations;
  int tokens = 200;
  double temperature = 0.8;
  int top_k = 0;
  std::uint64_t seed = 1;
  unsigned threads = 1;
};

void run_generate(const GenerateArgs& a) {
  if (a.positional.empty() || a.positional.size() > 2) {
    throw Error("generate: expected [MODEL] PROMPT");
  }
  const std::string prompt = a.positional.back();
  const MatrixFormat wf = parse_matrix_format(a.format);
  if (a.tokens < 0) throw Error("generate: -n must be >= 0");
  if (prompt.empty()) throw Error("generate: the prompt is empty (give at least one byte)");
  if (!(a.temperature >= 0)) throw Error("generate: --temperature must be >= 0");
  if (a.top_k < 0) throw Error("generate: --top-k must be >= 0");
  const bool own_model = a.positional.size() == 2;
  const ModelAndTokenizer loaded = load_model_and_tokenizer(own_model ? a.positional.front() : "");
  nn::Transformer model = loaded.model.with_weights(wf);
  if (!a.activations.empty()) model = model.with_activations(parse_matrix_format(a.activations));
  const std::vector<std::int32_t> prompt_tokens = encode_prompt(loaded, prompt);
  if (prompt_tokens.empty()) throw Error("generate: the prompt has no tokens");
  // A tokenized model stops at its end-of-text token (not printed).
  const std::optional<std::int32_t> eos =
      loaded.tokenizer ? model.config().eos : std::optional<std::int32_t>{};
  std::vector<std::int32_t> tokens =
      nn::generate(model, prompt_tokens, static_cast<std::size_t>(a.tokens), a.temperature, a.top_k,
                   a.seed, a.threads, eos);
  if (eos && !tokens.empty() && tokens.back() == *eos) tokens.pop_back();
  fmt::print("{}{}\n", prompt, decode_tokens(loaded, tokens));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate",
                                 "Sample text from a model whose matrices are cast to a "
                                 "format (default model: the embedded "
                                 "KJV byte-level GPT), to see what the format does to it");
  cmd->add_option("ARGS", a->positional, "[MODEL] PROMPT")->required()->expected(1, 2);
  cmd->add_option("-f,--format", a->format,
                  "Weight format (default fp32), e.g. mxfp4, int4:group32");
  cmd->add_option("--activations", a->activations, "Also quantize activations to this format");
  cmd->add_option("-n,--tokens", a->tokens, "Bytes to generate (default 200)");
  cmd->add_option("--temperature", a->temperature,
                  "Sampling temperature; 0 is greedy (default 0.8)");
  cmd->add_option("--top-k", a->top_k, "Sample among the k most likely bytes (0: all)");
  cmd->add_option("--seed", a->seed, "Random seed (default 1)");
  cmd->add_option("--threads", a->threads, "Threads (default 1)")->check(CLI::PositiveNumber);
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace lowp::cli
