// `lowp generate [MODEL] PROMPT [--format F] [-n N] [--temperature T]
//                [--top-k K] [--seed S] [--threads N]
//                [--integer-only --calib FILE]`: sample text from a
// (quantized) model, token by token through the GEMV path with a KV cache, so
// a user can see what a format does to it; --integer-only runs the model with
// integer arithmetic only (lowp/quant/integer_model.h).
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "calibration.h"
#include "commands.h"
#include "embedded.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/quant/act_calib.h"
#include "lowp/quant/integer_model.h"
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
  bool integer_only = false;
  CalibrationArgs calib;
  std::string act_calibrator = "max";
  IntegerModelOptions integer;  // --int-attention-bits, --int-softmax-bits
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
  if (a.integer_only && a.calib.file.empty()) {
    throw Error(
        "generate: --integer-only needs calibration text (--calib FILE) for its static scales");
  }
  if (a.integer_only && (a.format != "fp32" || !a.activations.empty())) {
    throw Error(
        "generate: --integer-only fixes the formats (int8 weights and activations); drop --format "
        "and --activations");
  }
  if (!a.integer_only && !a.calib.file.empty()) {
    throw Error("generate: --calib is for --integer-only");
  }
  IntegerModelOptions integer = a.integer;
  integer.calibrator = parse_calibrator(a.act_calibrator);
  integer.threads = a.threads;
  const bool own_model = a.positional.size() == 2;
  const ModelAndTokenizer loaded = load_model_and_tokenizer(own_model ? a.positional.front() : "");
  const std::vector<std::int32_t> prompt_tokens = encode_prompt(loaded, prompt);
  if (prompt_tokens.empty()) throw Error("generate: the prompt has no tokens");
  // A tokenized model stops at its end-of-text token (not printed).
  const std::optional<std::int32_t> eos =
      loaded.tokenizer ? loaded.model.config().eos : std::optional<std::int32_t>{};
  const auto count = static_cast<std::size_t>(a.tokens);
  std::vector<std::int32_t> tokens;
  if (a.integer_only) {
    const IntegerTransformer im(
        loaded.model, load_calibration(loaded, a.calib, loaded.model.config().n_ctx), integer);
    tokens = nn::generate_with(im.generator(a.threads), prompt_tokens, count, a.temperature,
                               a.top_k, a.seed, eos);
  } else {
    nn::Transformer model = loaded.model.with_weights(wf);
    if (!a.activations.empty()) model = model.with_activations(parse_matrix_format(a.activations));
    tokens =
        nn::generate(model, prompt_tokens, count, a.temperature, a.top_k, a.seed, a.threads, eos);
  }
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
  cmd->add_flag("--integer-only", a->integer_only,
                "Run the model with integer arithmetic only from the embedding lookup to the "
                "logits (I-BERT: int8 weights and activations at static scales, integer "
                "GELU/SiLU, softmax and norms; see docs/integer.md); needs --calib");
  cmd->add_option("--calib", a->calib.file,
                  "--integer-only: calibration text (UTF-8) for the static scales");
  cmd->add_option("--calib-tokens", a->calib.tokens,
                  "--integer-only: calibration tokens in all (default 16384)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--calib-seq", a->calib.sequence,
                  "--integer-only: tokens per calibration sequence (default: the context, at "
                  "most 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--calib-seed", a->calib.seed,
                  "--integer-only: seed of the calibration windows' offsets (default 0)");
  cmd->add_option("--act-calibrator", a->act_calibrator,
                  "--integer-only: static scales from the |x| histogram: max (default), "
                  "percentile[:P], mse or entropy");
  add_integer_bits_options(cmd, a->integer);
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace lowp::cli
