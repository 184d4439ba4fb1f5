// The options every command that quantizes with a method shares (--method,
// --calib, --calib-tokens, --calib-seq, --calib-seed, --damp, --act-order, ...), and
// the calibration windows they describe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lowp/nn/report.h"
#include "lowp/quant/calibrate.h"
#include "lowp/quant/integer_model.h"
#include "models.h"

namespace lowp::cli {

struct CalibrationArgs {
  std::string file;  // calibration text (UTF-8)
  std::size_t tokens = 16384;
  std::size_t sequence = 0;  // 0: min(context, 256)
  std::uint64_t seed = 0;
  double damp = 0.01;
  bool act_order = false;
  bool static_groups = false;
  int search_radius = 1;                         // MX exponents either side of the rule
  std::size_t vq_dim = 2;                        // vq, gptvq: weights per vector
  int vq_update = 0;                             // gptvq: code-book update steps
  std::vector<int> matryoshka_bits = {8, 4, 2};  // matgptq: the widths of its objective
  std::vector<double> matryoshka_weights;        // and their weights (empty: equal)
};

void add_calibration_options(CLI::App* cmd, CalibrationArgs& a);

// --int-attention-bits and --int-softmax-bits of the commands with
// --integer-only (report, generate), into o's attention_bits and softmax_bits.
void add_integer_bits_options(CLI::App* cmd, IntegerModelOptions& o);

// The calibration windows of `a.file` (none without a file), tokenized by
// m's tokenizer, at most `n_ctx` tokens each (the context the model runs).
// Throws lowp::Error naming the file when it is unreadable, not UTF-8 or
// shorter than one window.
std::vector<std::vector<std::int32_t>> load_calibration(const ModelAndTokenizer& m,
                                                        const CalibrationArgs& a, int n_ctx);

// A comma-separated list (--formats, --methods, --budget-formats), entries
// trimmed; throws lowp::Error for an empty entry.
std::vector<std::string> split_list(const std::string& s);

// The method options the arguments describe.
MethodOptions method_options(QuantMethod method, const CalibrationArgs& a, unsigned threads);

// quantize_transformer's options for a --methods entry (e.g. gptq+lorc8,
// mse+row), without the objective measurement a report does not print.
ModelQuantizeOptions model_quantize_options(const std::string& method, const CalibrationArgs& a,
                                            unsigned threads);

// A ReportQuantizer over quantize_transformer that prints progress on stderr.
nn::ReportQuantizer report_quantizer(
    std::shared_ptr<const std::vector<std::vector<std::int32_t>>> windows, const CalibrationArgs& a,
    unsigned threads);

}  // namespace lowp::cli
