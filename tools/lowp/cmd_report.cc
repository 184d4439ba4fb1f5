// `lowp report [MODEL] [--text FILE] [--formats LIST] [--activations F]
//              [--threads N] [--json] [--svg FILE | --no-svg]`:
// what each number format costs a model (validation loss) and what it saves
// (bytes, speed), measured by running the model on packed weights. With no
// MODEL it runs on the embedded KJV byte-level GPT and its held-out text.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "calibration.h"
#include "commands.h"
#include "embedded.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/io/npy.h"
#include "lowp/nn/model_files.h"
#include "lowp/nn/report.h"
#include "lowp/quant/activations.h"
#include "lowp/quant/aqas.h"
#include "lowp/quant/budget.h"
#include "lowp/quant/integer_model.h"
#include "lowp/quant/matryoshka.h"
#include "lowp/quant/rotate.h"
#include "lowp/quant/smooth.h"
#include "lowp/quant/vq.h"
#include "models.h"

namespace lowp::cli {
namespace {

struct ReportArgs {
  std::string model;
  std::string text;
  std::string formats;
  std::string methods;
  CalibrationArgs calib;
  double budget = 0;
  std::string act_scales = "dynamic";
  std::string act_calibrator = "max";
  double smooth = -1;
  bool aqas = false;
  bool smooth_pow2 = false;
  std::string slices;
  std::string rotate;
  std::uint64_t rotate_seed = 0;
  std::string budget_formats = "mxfp4,mxfp6_e2m3,mxfp8_e4m3";
  std::string activations;
  unsigned threads = 0;
  int ctx = 0;
  bool json = false;
  bool integer_only = false;
  IntegerModelOptions integer;  // --int-attention-bits, --int-softmax-bits
  std::string svg = "lowp-report.svg";
  bool no_svg = false;
};

std::string thousands(std::uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

// Checks every method against every format and the model before any row
// runs: a method that does not apply to a format gets a note (returned) and
// no row; options that cannot fit a matrix (LoRC's rank, vector quantization's
// code books) throw. `rows` counts the rows that will run, `last_why` keeps
// the last mismatch.
std::vector<std::string> check_methods(const nn::Transformer& gpt,
                                       const std::vector<std::string>& formats,
                                       const std::vector<std::string>& methods,
                                       const CalibrationArgs& calib, std::size_t& rows,
                                       std::string& last_why) {
  std::vector<std::string> notes;
  auto each_matrix = [&](const std::function<void(int, nn::LinearKind, const PackedMatrix&)>& fn) {
    for (int layer = 0; layer <= gpt.config().n_layer; ++layer) {
      for (nn::LinearKind k : gpt.linear_kinds(layer)) fn(layer, k, gpt.linear_weight(layer, k));
    }
  };
  for (const std::string& m : methods) {
    const MethodSpec spec = parse_method_spec(m);
    const QuantMethod qm = spec.method;
    // LoRC's rank must fit every matrix.
    if (spec.lorc_rank > 0) {
      each_matrix([&](int layer, nn::LinearKind k, const PackedMatrix& w) {
        if (spec.lorc_rank > std::min(w.rows(), w.cols())) {
          throw Error(fmt::format(
              "--methods {}: --lorc-rank {} exceeds min(rows, cols) = {} of {} {} [{}, {}]", m,
              spec.lorc_rank, std::min(w.rows(), w.cols()),
              layer == gpt.config().n_layer ? "the head" : fmt::format("layer {}", layer),
              nn::linear_kind_name(k), w.rows(), w.cols()));
        }
      });
    }
    for (const std::string& name : formats) {
      const MatrixFormat f = parse_matrix_format(name);
      const std::string why = f.name == "fp32" ? "" : method_mismatch(spec, f);
      if (!why.empty()) {
        notes.push_back(fmt::format("note: no {} row for {}: {}", m, f.name, why));
        last_why = why;
        continue;
      }
      ++rows;
      // Vector quantization's options must fit every matrix.
      if ((qm == QuantMethod::kVq || qm == QuantMethod::kGptvq) && f.name != "fp32") {
        each_matrix([&](int, nn::LinearKind, const PackedMatrix& w) {
          VqOptions vo;
          vo.dim = calib.vq_dim;
          vo.bits = static_cast<std::size_t>(f.element.bits);
          vo.group_cols =
              f.scheme == MatrixScheme::kGroup ? static_cast<std::size_t>(f.group) : w.cols();
          check_vq(vo, w.rows(), w.cols());
        });
      }
    }
  }
  return notes;
}

void run_report(const ReportArgs& a) {
  // Everything that can be wrong with the input fails before any evaluation.
  nn::ReportOptions opt;
  if (!a.formats.empty()) opt.formats = split_list(a.formats);
  // The format column fits the longest name (14 wide at least).
  std::size_t name_width = 14;
  for (const std::string& f : opt.formats) {
    name_width = std::max(name_width, parse_matrix_format(f).name.size() + 1);
  }
  if (!a.activations.empty()) (void)parse_matrix_format(a.activations);
  opt.activations = a.activations;
  opt.threads = a.threads ? a.threads : std::max(1u, std::thread::hardware_concurrency());

  std::unique_ptr<io::MappedFile> text_file;
  std::string model_name = "embedded KJV byte-level GPT";
  const ModelAndTokenizer loaded = load_model_and_tokenizer(a.model);
  if (!a.model.empty()) model_name = a.model;
  nn::Transformer gpt = loaded.model;
  gpt = gpt.with_context(std::min(a.ctx > 0 ? a.ctx : 512, gpt.config().n_ctx));

  std::span<const std::uint8_t> text;
  std::string text_name;
  if (a.text.empty()) {
    text = embedded_validation_text();
    text_name = "embedded KJV held-out text";
  } else {
    text_file = std::make_unique<io::MappedFile>(a.text);
    const auto b = text_file->bytes();
    text = {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()};
    text_name = a.text;
  }
  nn::check_validation_text(text, text_name);
  const nn::ReportText tokens = tokenize_for_report(loaded, text);
  const bool static_acts = a.act_scales == "static";
  if (a.act_scales != "static" && a.act_scales != "dynamic") {
    throw Error("--act-scales " + quoted(a.act_scales) + ": expected static or dynamic");
  }
  const CalibratorOptions calibrator = parse_calibrator(a.act_calibrator);
  if (static_acts) {
    if (a.activations.empty()) {
      throw Error("--act-scales static needs --activations F (a scalar format, e.g. int8)");
    }
    if (parse_matrix_format(a.activations).scheme != MatrixScheme::kTensor) {
      throw Error(
          "--act-scales static takes a scalar format with a per-tensor scale (int8, "
          "fp8_e4m3, ...), not " +
          quoted(a.activations));
    }
  }
  if (a.integer_only && a.calib.file.empty()) {
    throw Error("--integer-only needs calibration text (--calib FILE) for its static scales");
  }
  if (a.integer_only && a.rotate == "hadamard") {
    throw Error(
        "--integer-only does not cover --rotate hadamard's online rotation of the MLP (use "
        "hadamard-residual)");
  }
  if ((static_acts || a.smooth >= 0 || a.aqas) && a.calib.file.empty()) {
    throw Error(std::string(static_acts ? "--act-scales static"
                            : a.aqas    ? "--aqas"
                                        : "--smooth") +
                " needs calibration text (--calib FILE)");
  }
  if (a.aqas && a.activations.empty()) {
    throw Error("--aqas chooses smoothing against the W/A product error: it needs --activations F");
  }
  if (a.aqas && a.smooth >= 0) throw Error("--aqas and --smooth both smooth the model: give one");
  if (a.smooth_pow2 && !a.aqas && a.smooth < 0) {
    throw Error("--smooth-pow2 rounds the factors of --smooth ALPHA or --aqas: give one of them");
  }
  if (!a.slices.empty()) {
    for (const std::string& s : split_list(a.slices)) {
      int bits = 0;
      try {
        std::size_t used = 0;
        bits = std::stoi(s, &used);
        if (used != s.size()) bits = 0;
      } catch (const std::exception&) {
        bits = 0;
      }
      if (bits < 1 || bits > 7) {
        throw Error("--slices " + a.slices + ": " + quoted(s) + " is not a width of 1 to 7 bits");
      }
      opt.slices.push_back(bits);
    }
    bool any = false;
    for (const std::string& name : opt.formats)
      any |= matryoshka_applies(parse_matrix_format(name));
    if (!any) {
      throw Error("--slices " + a.slices +
                  ": no int8 format to slice among --formats (int8, int8:channel, "
                  "int8:group<K>, int8:group<K>:asym)");
    }
    for (const std::string& name : opt.formats) {  // room for "<format>@<r>"
      name_width = std::max(name_width, parse_matrix_format(name).name.size() + 3);
    }
    opt.slice = [](const nn::Transformer& q, const MatrixFormat& f,
                   int bits) -> std::optional<nn::Transformer> {
      if (!matryoshka_applies(f)) return std::nullopt;
      for (int layer = 0; layer <= q.config().n_layer; ++layer) {
        for (nn::LinearKind k : q.linear_kinds(layer)) {
          if (!matryoshka_applies(q.linear_weight(layer, k).format())) return std::nullopt;
        }
      }
      return matryoshka_slice(q, bits);
    };
  }
  // matgptq optimizes the slices the report shows (and the int8 model).
  CalibrationArgs calib = a.calib;
  if (!opt.slices.empty()) {
    calib.matryoshka_bits = {8};
    calib.matryoshka_bits.insert(calib.matryoshka_bits.end(), opt.slices.begin(), opt.slices.end());
  }
  if (!calib.matryoshka_weights.empty() &&
      calib.matryoshka_weights.size() != calib.matryoshka_bits.size()) {
    throw Error(fmt::format(
        "--mat-weights: {} weights for the {} widths of matgptq's objective (8{}{})",
        calib.matryoshka_weights.size(), calib.matryoshka_bits.size(),
        opt.slices.empty() ? ", 4, 2" : " and --slices ", opt.slices.empty() ? "" : a.slices));
  }
  for (double w : calib.matryoshka_weights) {
    if (!(w >= 0.0) || !std::isfinite(w)) {
      throw Error(fmt::format("--mat-weights: {} is not a finite weight >= 0", w));
    }
  }
  std::shared_ptr<const std::vector<std::vector<std::int32_t>>> windows;
  if (!a.methods.empty() || a.budget > 0 || static_acts || a.smooth >= 0 || a.aqas ||
      a.integer_only) {
    if (!a.methods.empty()) opt.methods = split_list(a.methods);
    bool needs_data = false;
    for (const std::string& m : opt.methods)
      needs_data |= method_needs_data(parse_method_spec(m).method);
    if (needs_data && calib.file.empty()) {
      throw Error(
          "--methods " + a.methods +
          ": gptq, matgptq, gptvq, fpsearch and nupes need calibration text (--calib FILE)");
    }
    // A method that does not apply to a format gets no row, and a note says so.
    std::size_t rows = a.budget > 0 ? 1 : 0;
    std::string last_why;
    const std::vector<std::string> notes =
        check_methods(gpt, opt.formats, opt.methods, calib, rows, last_why);
    if (rows == 0 && !opt.methods.empty())
      throw Error("--methods " + a.methods + ": no format to apply them to: " + last_why);
    for (const std::string& n : notes) fmt::print(stderr, "{}\n", n);
    opt.applies = [](const MatrixFormat& f, const std::string& m) {
      return method_mismatch(parse_method_spec(m), f).empty();
    };
    windows = std::make_shared<const std::vector<std::vector<std::int32_t>>>(
        load_calibration(loaded, calib, gpt.config().n_ctx));
    opt.quantize = report_quantizer(windows, calib, opt.threads);
  }
  if (!a.rotate.empty()) {
    if (a.rotate != "hadamard" && a.rotate != "hadamard-residual") {
      throw Error("--rotate " + quoted(a.rotate) + ": expected hadamard or hadamard-residual");
    }
    RotateOptions ro;
    ro.seed = a.rotate_seed;
    ro.mlp = a.rotate == "hadamard";
    RotatedModel r = rotate_hadamard(gpt.config(), gpt.weights(), ro);
    const int ctx = gpt.config().n_ctx;
    r.config.n_ctx = loaded.model.config().n_ctx;  // the checkpoint's, as its weights have it
    gpt = nn::Transformer(r.config, std::move(r.weights), model_name + " (rotated)")
              .with_context(ctx);
  }
  if (a.smooth >= 0) {
    // SmoothQuant: the model itself changes (the same function in FP32).
    const SmoothStats stats = smoothing_stats(gpt, *windows, opt.threads);
    nn::TransformerWeights w =
        smooth_quant(gpt.config(), gpt.weights(), stats, a.smooth, a.smooth_pow2);
    nn::TransformerConfig cfg = gpt.config();
    cfg.n_ctx = loaded.model.config().n_ctx;  // the checkpoint's, as its weights have it
    gpt = nn::Transformer(cfg, std::move(w), model_name + " (smoothed)")
              .with_context(gpt.config().n_ctx);
  }
  if (a.aqas) {
    // AQAS: per weight format, each input's smoothing alpha chosen against the
    // error of the product with both operands quantized.
    const int checkpoint_ctx = loaded.model.config().n_ctx;
    const MatrixFormat acts = parse_matrix_format(a.activations);
    const unsigned threads = opt.threads;
    const bool pow2 = a.smooth_pow2;
    // The calibration pass once (every format is prepared from the same FP32
    // model), the alpha search per format.
    auto samples = std::make_shared<std::optional<AqasSamples>>();
    opt.prepare = [windows, acts, threads, checkpoint_ctx, pow2, samples](const nn::Transformer& m,
                                                                          const MatrixFormat& f) {
      AqasOptions ao;
      ao.weights = f;
      ao.activations = acts;
      ao.threads = threads;
      ao.pow2 = pow2;
      if (!*samples) *samples = aqas_samples(m, *windows, ao.tokens, threads);
      AqasResult r = aqas(m, **samples, ao);
      for (const std::string& line : r.lines) fmt::print(stderr, "  aqas {}: {}\n", f.name, line);
      nn::TransformerConfig cfg = m.config();
      cfg.n_ctx = checkpoint_ctx;  // the checkpoint's, as its weights have it
      return nn::Transformer(cfg, std::move(r.weights), "AQAS-smoothed model")
          .with_context(m.config().n_ctx);
    };
  }
  if (static_acts) {
    StaticActivationOptions so;
    so.element = parse_matrix_format(a.activations).element;
    so.calibrator = calibrator;
    so.threads = opt.threads;
    opt.finish = [windows, so](nn::Transformer m) {
      const nn::ActivationScales sc =
          calibrate_activation_scales(m.with_activations(std::nullopt), *windows, so);
      return m.with_activation_scales(sc);
    };
  }
  std::shared_ptr<TransformerAssignment> assignment;
  if (a.budget > 0) {
    std::vector<MatrixFormat> candidates;
    for (const std::string& f : split_list(a.budget_formats)) {
      candidates.push_back(parse_matrix_format(f));
    }
    // Sensitivity on (at most 4096 tokens of) the calibration windows, or
    // data-free without them.
    std::vector<std::vector<std::int32_t>> probe;
    std::size_t n = 0;
    for (const auto& w : *windows) {
      if (n >= 4096) break;
      probe.push_back(w);
      n += w.size();
    }
    assignment = std::make_shared<TransformerAssignment>(assign_transformer_formats(
        gpt, candidates, a.budget, probe, opt.threads,
        [](const std::string& line) { fmt::print(stderr, "  {}\n", line); }));
    const std::vector<std::string> methods =
        opt.methods.empty() ? std::vector<std::string>{"rtn"} : opt.methods;
    const std::string label = fmt::format("budget:{:g}", a.budget);
    name_width = std::max(name_width, label.size() + 1);
    for (const std::string& m : methods) {
      const unsigned threads = opt.threads;
      opt.extra.push_back({label,
                           m,
                           [assignment, windows, calib, m, threads](const nn::Transformer& model) {
                             ModelQuantizeOptions o = model_quantize_options(m, calib, threads);
                             o.format_of = [assignment](int layer, nn::LinearKind k) {
                               for (const MatrixAssignment& x : assignment->matrices) {
                                 if (x.layer == layer && x.kind == k) return x.format;
                               }
                               throw Error("budget: no format for a matrix");
                             };
                             const MatrixFormat& any = assignment->matrices.front().format;
                             return quantize_transformer(model, any, *windows, o).model;
                           },
                           {}});
    }
  }
  if (a.integer_only) {
    // Two rows from one integer model (built by the first): the float W8A8
    // model it mirrors (int8:channel weights, int8 static activation scales,
    // float nonlinearities) and the integer-only model itself.
    IntegerModelOptions io = a.integer;
    io.calibrator = calibrator;
    io.threads = opt.threads;
    auto im = std::make_shared<std::optional<IntegerTransformer>>();
    const auto get = [im, windows, io](const nn::Transformer& m) -> const IntegerTransformer& {
      if (!*im) im->emplace(m, *windows, io);
      return **im;
    };
    const nn::Transformer base = gpt;
    opt.extra.push_back(
        {"w8a8-static", "float", {}, [get, base](const nn::ReportText& t, unsigned threads) {
           const nn::Transformer& f = get(base).float_int8();
           return nn::ReportExtra::Measured{f.evaluate(t.tokens, t.token_bytes, threads, t.bos),
                                            f.linear_bits_per_weight(), f.weight_bytes()};
         }});
    opt.extra.push_back(
        {"integer-only", "int8", {}, [get, base](const nn::ReportText& t, unsigned threads) {
           const IntegerTransformer& m = get(base);
           return nn::ReportExtra::Measured{m.evaluate(t.tokens, t.token_bytes, threads, t.bos),
                                            m.linear_bits_per_weight(), m.weight_bytes()};
         }});
  }
  const bool show_method = !opt.methods.empty() || a.budget > 0;
  std::size_t method_width = 6;
  for (const std::string& m : opt.methods) method_width = std::max(method_width, m.size());

  if (!a.json) {
    fmt::print("lowp report: {} ({} parameters; {} layers, d_model {}, context {})\n", model_name,
               thousands(gpt.parameter_count()), gpt.config().n_layer, gpt.config().d_model,
               gpt.config().n_ctx);
    fmt::print("validation: {} ({} bytes); activations: {}{}; {} thread{}\n\n", text_name,
               thousands(text.size()), a.activations.empty() ? "fp32" : a.activations,
               static_acts ? " (static scales, " + a.act_calibrator + ")" : std::string(),
               opt.threads, opt.threads == 1 ? "" : "s");
    if (!a.rotate.empty()) {
      fmt::print("rotated: randomized Hadamard of the residual stream{} (seed {})\n",
                 a.rotate == "hadamard" ? " and, online, of the MLP's inner activations" : "",
                 a.rotate_seed);
    }
    if (a.smooth >= 0) {
      fmt::print("SmoothQuant alpha {:g}{} folded into the model\n", a.smooth,
                 a.smooth_pow2 ? " (factors rounded to powers of two)" : "");
    }
    if (a.aqas) {
      fmt::print(
          "AQAS: per weight format, each block's attention and MLP input smoothed with the "
          "alpha of least W/A product error\n");
    }
    if (!a.rotate.empty() || a.smooth >= 0 || a.aqas) fmt::print("\n");
    fmt::print("{:<{}} {}{:>11} {:>12} {:>10} {:>11} {:>15} {:>10}{}\n", "format", name_width,
               show_method ? fmt::format("{:<{}} ", "method", method_width) : "", "bits/weight",
               "model bytes", "bits/byte", "perplexity", "vs fp32", "tokens/s",
               show_method ? "  quantize s" : "");
    std::fflush(stdout);
  }
  auto print_row = [&](const nn::ReportRow& r) {
    if (a.json) return;
    const std::string delta =
        r.format == "fp32" && a.activations.empty()
            ? "-"
            : fmt::format("{:+.4f} ({:+.2f}%)", r.delta_bits, r.delta_percent);
    fmt::print("{:<{}} {}{:>11.3f} {:>12} {:>10.4f} {:>11.4f} {:>15} {:>10.0f}{}\n", r.format,
               name_width, show_method ? fmt::format("{:<{}} ", r.method, method_width) : "",
               r.bits_per_weight, thousands(r.model_bytes), r.bits_per_byte, r.perplexity, delta,
               r.tokens_per_second,
               show_method ? fmt::format("  {:>10.1f}", r.quantize_seconds) : "");
    std::fflush(stdout);
  };
  nn::Report rep = nn::run_report(gpt, tokens, opt, print_row);
  rep.model = model_name;
  rep.text = text_name;

  if (!a.no_svg && !a.svg.empty()) {
    const std::string svg = nn::report_svg(rep);
    io::write_file_atomic(a.svg, std::as_bytes(std::span<const char>(svg)));
  }
  if (a.json) {
    nlohmann::json j;
    j["model"] = model_name;
    j["parameters"] = rep.parameters;
    j["text"] = text_name;
    j["text_bytes"] = text.size();
    j["activations"] = rep.activations;
    j["threads"] = rep.threads;
    j["fp32_bits_per_byte"] = rep.baseline_bits_per_byte;
    j["rows"] = nlohmann::json::array();
    for (const nn::ReportRow& r : rep.rows) {
      j["rows"].push_back({{"format", r.format},
                           {"method", r.method},
                           {"quantize_seconds", r.quantize_seconds},
                           {"bits_per_weight", r.bits_per_weight},
                           {"model_bytes", r.model_bytes},
                           {"nats_per_byte", r.nats_per_byte},
                           {"bits_per_byte", r.bits_per_byte},
                           {"perplexity", r.perplexity},
                           {"delta_bits_per_byte", r.delta_bits},
                           {"delta_percent", r.delta_percent},
                           {"tokens", r.tokens},
                           {"tokens_per_second", r.tokens_per_second}});
    }
    if (!a.no_svg && !a.svg.empty()) j["svg"] = a.svg;
    if (a.integer_only && rep.rows.size() >= 2) {
      const nn::ReportRow& f = rep.rows[rep.rows.size() - 2];
      const nn::ReportRow& i = rep.rows.back();
      j["integer_only"] = {
          {"attention_bits", a.integer.attention_bits},
          {"softmax_bits", a.integer.softmax_bits},
          {"delta_percent_vs_fp32", i.delta_percent},
          {"delta_percent_vs_w8a8_static", 100.0 * (i.bits_per_byte / f.bits_per_byte - 1.0)}};
    }
    if (assignment) {
      nlohmann::json b;
      b["bits_per_weight"] = a.budget;
      b["assigned_bits_per_weight"] = assignment->bits_per_weight;
      b["sensitivity"] = assignment->sensitivity;
      b["matrices"] = nlohmann::json::array();
      for (const MatrixAssignment& x : assignment->matrices) {
        b["matrices"].push_back({{"name", x.name},
                                 {"weights", x.weights},
                                 {"format", x.format.name},
                                 {"sensitivity", x.sensitivity}});
      }
      j["budget"] = b;
    }
    fmt::print("{}\n", j.dump(2));
  } else {
    if (assignment) {
      fmt::print("\nbudget {:g} bits/weight: {:.3f} bits/weight assigned by {} sensitivity\n",
                 a.budget, assignment->bits_per_weight, assignment->sensitivity);
      for (const MatrixAssignment& x : assignment->matrices) {
        fmt::print("  {:<20} {:>10} weights  {}\n", x.name, thousands(x.weights), x.format.name);
      }
    }
    if (a.integer_only && rep.rows.size() >= 2) {
      const nn::ReportRow& f = rep.rows[rep.rows.size() - 2];
      const nn::ReportRow& i = rep.rows.back();
      fmt::print(
          "\ninteger-only (int8 weights and activations, {}-bit attention operands, {}-bit "
          "softmax; integer GELU/SiLU, softmax, norms): {:+.2f}% bits/byte vs fp32, {:+.2f}% vs "
          "w8a8-static (the same int8 model with float nonlinearities)\n",
          a.integer.attention_bits, a.integer.softmax_bits, i.delta_percent,
          100.0 * (i.bits_per_byte / f.bits_per_byte - 1.0));
    }
    if (!a.no_svg && !a.svg.empty()) fmt::print("\nchart (model size vs loss): {}\n", a.svg);
  }
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report",
                                 "What each format costs a model and what it saves: cast its "
                                 "matrices to each format, run it "
                                 "on the packed weights over validation text, and tabulate bits "
                                 "per weight, model bytes, "
                                 "validation loss (bits per byte, perplexity), the change "
                                 "against fp32 and tokens/s. With no "
                                 "MODEL: the embedded byte-level GPT trained on the King James "
                                 "Bible and its held-out text");
  cmd->add_option("MODEL", a->model,
                  "A Hugging Face model directory (Llama, Mistral, Qwen2, Qwen3, GPT-2), a "
                  "llama.cpp GGUF file of those, or a checkpoint of lowp's GPT (.safetensors or "
                  ".gguf); see docs/runtime.md");
  cmd->add_option("--text", a->text,
                  "Validation text (UTF-8; default: the embedded KJV held-out text)");
  cmd->add_option("--formats", a->formats,
                  "Comma-separated weight formats (default: "
                  "fp32,bf16,fp8_e4m3,fp8_e5m2,mxfp8_e4m3,"
                  "mxfp6_e3m2,mxfp6_e2m3,mxfp4,mxint8,nvfp4,int8:channel,int4:group32)");
  cmd->add_option(
      "--methods", a->methods,
      "Comma-separated quantization methods, one row per format and method: rtn "
      "(the direct cast), mse (data-free scale search), gptq (needs --calib), "
      "fpsearch (LLM-FP4: each layer's exponent/mantissa split and scales by its "
      "output error; needs --calib), fpvote (each layer's split by a vote of its "
      "rows; data-free); fpsearch and fpvote apply to scaled float formats such "
      "as fp4_e2m1:channel; power (PowerQuant/NUPES: sign(w)|w|^a in a scaled format, "
      "a searched per matrix; data-free); nupes (the same with a chosen by the layer's output "
      "error and refined on --calib); vq / gptvq (vector quantization with "
      "code books, data-free / inside GPTQ with --calib; on int<b>:group<G>, see "
      "--vq-dim); matgptq (MatGPTQ on int8 formats: GPTQ whose rounding serves the "
      "int8 codes and their Matryoshka slices together, the widths of --slices or "
      "else 4 and 2; needs --calib); any method followed by +row (on an MX format: its "
      "power-of-two block "
      "scales under a real FP32 scale per row, ZeroQuant-FP's second layout; 4 bytes "
      "per row counted) and/or +lorc<R> (e.g. "
      "gptq+lorc8) adds "
      "LoRC, the rank-R SVD of its error stored as int8 factors (bits counted); "
      "default: rtn");
  add_calibration_options(cmd, a->calib);
  cmd->add_option("--budget", a->budget,
                  "Also a mixed-precision row: each matrix gets a format of --budget-formats so "
                  "that the average bits per weight (scales included) stay within BITS; "
                  "sensitivity is the calibration loss with --calib, else the weight error")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--slices", a->slices,
                  "Matryoshka slices, e.g. 6,4,3,2: after each int8 row (int8:channel, "
                  "int8:group<K>[:asym]), a row per width r for the model whose codes are that "
                  "row's int8 codes sliced to their r most significant bits (rounded, clamped; "
                  "the same scales), counted as r-bit codes; formats spelled <format>@<r>");
  cmd->add_option("--budget-formats", a->budget_formats,
                  "Candidate formats of --budget (default: mxfp4,mxfp6_e2m3,mxfp8_e4m3)");
  cmd->add_option("--act-scales", a->act_scales,
                  "dynamic (each token vector scaled on its own, the default) or static (one "
                  "scale per linear input, calibrated on --calib; --activations must then be a "
                  "scalar format such as int8 or fp8_e4m3)");
  cmd->add_option("--act-calibrator", a->act_calibrator,
                  "Static scales from the |x| histogram: max (default), percentile[:P], mse or "
                  "entropy (TensorRT's KL)");
  cmd->add_option("--smooth", a->smooth,
                  "SmoothQuant: migrate activation outliers into the weights with this alpha "
                  "(0 to 1, e.g. 0.5), folded into the norms (and v for o's input); needs --calib")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--aqas", a->aqas,
                "AQAS (activation-quantization-aware scaling): for each weight format, each "
                "block's attention and MLP input gets the SmoothQuant alpha (0, 0.1, .., 1, or "
                "none) whose product with both weights (RTN) and --activations quantized errs "
                "least on calibration inputs; needs --calib and --activations");
  cmd->add_flag("--smooth-pow2", a->smooth_pow2,
                "Round the factors of --smooth or --aqas to powers of two: LLM-FP4's pre-shifted "
                "exponent biases (each channel's activation exponent folded into the weights as "
                "a shift; e.g. --smooth 1 --smooth-pow2 with FP activations)");
  cmd->add_option("--rotate", a->rotate,
                  "hadamard: rotate the residual stream by a randomized Hadamard matrix folded "
                  "into the weights, and the MLP's inner activations online (QuaRot); "
                  "hadamard-residual: the residual stream only. The FP32 model is unchanged");
  cmd->add_option("--rotate-seed", a->rotate_seed, "Seed of the rotation's signs (default 0)");
  cmd->add_option("--activations", a->activations,
                  "Also quantize the input of every matrix product to this "
                  "format (MX blocks along "
                  "the reduction dimension), e.g. mxfp8_e4m3");
  cmd->add_option("--threads", a->threads, "Threads (default: one per core)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ctx", a->ctx,
                  "Evaluation window in tokens (default: the model's context, at most 512)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--integer-only", a->integer_only,
                "Also two rows for integer-only inference (I-BERT): w8a8-static, the model with "
                "int8:channel weights and int8 activations at static scales (calibrated on "
                "--calib with --act-calibrator) and float nonlinearities, and integer-only, the "
                "same model run with integer arithmetic only from the embedding lookup to the "
                "logits (i-GELU, integer sigmoid, softmax, LayerNorm/RMSNorm, multiply-shift "
                "requantization); needs --calib; ignores --activations");
  add_integer_bits_options(cmd, a->integer);
  cmd->add_flag("--json", a->json, "Print JSON instead of a table");
  cmd->add_option("--svg", a->svg, "Where to write the chart (default: lowp-report.svg)");
  cmd->add_flag("--no-svg", a->no_svg, "Do not write the chart");
  cmd->callback([a] { run_report(*a); });
}

}  // namespace lowp::cli
