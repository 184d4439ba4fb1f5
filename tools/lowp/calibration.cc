// Calibration options and windows shared by the commands that quantize with a
// method.
#include "calibration.h"

#include <algorithm>
#include <cstdio>

#include <fmt/core.h>

#include "lowp/error.h"
#include "lowp/io/model.h"

namespace lowp::cli {

void add_calibration_options(CLI::App* cmd, CalibrationArgs& a) {
  cmd->add_option(
      "--calib", a.file,
      "Calibration text (UTF-8) for the methods that need data (gptq, fpsearch); keep it "
      "apart from the validation text");
  cmd->add_option("--calib-tokens", a.tokens, "Calibration tokens in all (default 16384)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--calib-seq", a.sequence,
                  "Tokens per calibration sequence (default: the context, at most 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--calib-seed", a.seed, "Seed of the calibration windows' offsets (default 0)");
  cmd->add_option("--damp", a.damp, "gptq: damping, relative to mean(diag H) (default 0.01)")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_flag("--act-order", a.act_order,
                "gptq: quantize columns in order of decreasing input energy (scales fixed "
                "from the original weights)");
  cmd->add_flag("--static-groups", a.static_groups,
                "gptq: fix every group's scale from the original weights before the loop");
  cmd->add_option("--search-radius", a.search_radius,
                  "mse/gptq: MX shared exponents tried either side of the spec's rule "
                  "(default 1)")
      ->check(CLI::Range(0, 8));
  cmd->add_option("--vq-dim", a.vq_dim,
                  "vq/gptvq: weights per vector, 1, 2 or 4 (default 2); the format int<b>:group<G> "
                  "gives b index bits per weight and a code book per 256 rows x G columns");
  cmd->add_option("--vq-update", a.vq_update,
                  "gptvq: conjugate-gradient steps of the code-book update after the GPTQ pass "
                  "(centroids moved toward the least layer output error with the indices fixed, "
                  "kept if better once rounded to int8; default 0: none)")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--mat-weights", a.matryoshka_weights,
                  "matgptq: the weight of each width in the joint objective, int8 first and "
                  "then each --slices width (default: 8, 4, 2 with equal weights)")
      ->delimiter(',');
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (b <= s.size()) {
    std::size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    std::string item = s.substr(b, e - b);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) throw Error("empty entry in the list " + quoted(s));
    out.push_back(item);
    b = e + 1;
  }
  return out;
}

std::vector<std::vector<std::int32_t>> load_calibration(const ModelAndTokenizer& m,
                                                        const CalibrationArgs& a, int n_ctx) {
  if (a.file.empty()) return {};
  const io::MappedFile file(a.file);
  const auto b = file.bytes();
  const std::span<const std::uint8_t> text(reinterpret_cast<const std::uint8_t*>(b.data()),
                                           b.size());
  nn::check_validation_text(text, a.file);
  const nn::ReportText tokens = tokenize_for_report(m, text);
  const auto ctx = static_cast<std::size_t>(n_ctx);
  const std::size_t length = a.sequence ? a.sequence : std::min<std::size_t>(ctx, 256);
  if (length > ctx) {
    throw Error("--calib-seq " + std::to_string(length) + " is longer than the context " +
                std::to_string(ctx));
  }
  try {
    return calibration_windows(tokens.tokens, tokens.bos, length,
                               std::max<std::size_t>(1, a.tokens / length), a.seed);
  } catch (const Error& e) {
    throw Error(a.file + ": " + e.what());
  }
}

MethodOptions method_options(QuantMethod method, const CalibrationArgs& a, unsigned threads) {
  MethodOptions o;
  o.method = method;
  o.threads = threads;
  o.gptq.damp = a.damp;
  o.gptq.act_order = a.act_order;
  o.gptq.static_groups = a.static_groups;
  o.search.exponent_radius = a.search_radius;
  o.vq_dim = a.vq_dim;
  o.vq_update = a.vq_update;
  o.matryoshka_bits = a.matryoshka_bits;
  o.matryoshka_weights = a.matryoshka_weights;
  return o;
}

void add_integer_bits_options(CLI::App* cmd, IntegerModelOptions& o) {
  cmd->add_option("--int-attention-bits", o.attention_bits,
                  "--integer-only: bits of q, k and v in attention (default 8)")
      ->check(CLI::Range(2, 16));
  cmd->add_option("--int-softmax-bits", o.softmax_bits,
                  "--integer-only: bits of the attention probabilities (default 8)")
      ->check(CLI::Range(1, 16));
}

ModelQuantizeOptions model_quantize_options(const std::string& method, const CalibrationArgs& a,
                                            unsigned threads) {
  ModelQuantizeOptions o;
  const MethodSpec spec = parse_method_spec(method);
  o.method = method_options(spec.method, a, threads);
  o.method.lorc_rank = spec.lorc_rank;
  o.method.row_scale = spec.row_scale;
  o.measure_objective = false;
  return o;
}

nn::ReportQuantizer report_quantizer(
    std::shared_ptr<const std::vector<std::vector<std::int32_t>>> windows, const CalibrationArgs& a,
    unsigned threads) {
  return [windows, a, threads](const nn::Transformer& model, const MatrixFormat& f,
                               const std::string& method) {
    ModelQuantizeOptions o = model_quantize_options(method, a, threads);
    o.progress = [](const std::string& line) { fmt::print(stderr, "  {}\n", line); };
    ModelQuantization q = quantize_transformer(model, f, *windows, o);
    for (const std::string& w : q.warnings) fmt::print(stderr, "warning: {}\n", w);
    return std::move(q.model);
  };
}

}  // namespace lowp::cli
