// `lowp analyze (FILE [--tensor NAME]... [--min-elements N] | --dist D [--outliers P:FACTOR] [-n N]
//               [--seed S]) [--bits 4,8] [--no-channel] [--json] [--svg OUT.svg]`:
// which format for which tensor. Every candidate format at each bit budget
// (int, every eXmY, the block formats) with its MSE-searched clip, the SQNR
// measured on the data, the analytic SQNR for a synthetic distribution, the
// relative MAC cost the literature reports, and a recommendation per tensor
// (lowp/quant/analyze.h; docs/analyze.md).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/error.h"
#include "lowp/io/layouts.h"
#include "lowp/io/model.h"
#include "lowp/io/npy.h"
#include "lowp/nn/report.h"
#include "lowp/quant/analyze.h"

namespace lowp::cli {
namespace {

struct AnalyzeArgs {
  std::string file;
  std::vector<std::string> tensors;
  std::string dist;
  std::string outliers;
  std::size_t n = 1000000;
  std::uint64_t seed = 0;
  std::string bits = "4,8";
  std::uint64_t min_elements = 256;
  bool no_channel = false;
  bool json = false;
  std::string svg;
  unsigned threads = 0;
};

std::vector<int> parse_bits(const std::string& text) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    int b = 0;
    std::size_t used = 0;
    try {
      b = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || b < 2 || b > 8) {
      throw Error("--bits '" + text + "': expected bit widths in 2..8 separated by commas, as 4,8");
    }
    if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
    pos = comma + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}f}", v, decimals);
}

// JSON numbers: NaN and Inf (no JSON spelling) as null.
nlohmann::json jnum(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

// Why the recommended family wins, in the terms of its statistics.
std::string reason(const TensorAnalysis& t, const FormatResult& r) {
  const std::string k = fmt::format("kurtosis {:.2f}", t.stats.kurtosis);
  if (r.family == FormatFamily::kFloat) {
    return t.stats.kurtosis > 3.0 ? "tails heavier than Gaussian (" + k + ") favour fp"
                                  : "fp wins here (" + k + ")";
  }
  return t.stats.kurtosis <= 3.0 ? "tails no heavier than Gaussian (" + k + ") favour int"
                                 : "int wins here (" + k + ")";
}

std::string recommendation_line(const TensorAnalysis& t) {
  std::string s = "tensor " + t.name + ":";
  for (std::size_t i = 0; i < t.recommendation.size(); ++i) {
    const auto& [bits, idx] = t.recommendation[i];
    const FormatResult& r = t.formats[idx];
    s += fmt::format("{} at {} bits {}{} (SQNR {} dB)", i ? "," : "", bits, i ? "" : "use ", r.name,
                     fixed(r.error.sqnr_db(), 2));
  }
  return s;
}

void print_table(const TensorAnalysis& t, bool analytic) {
  fmt::print(
      "\ntensor {} [{} x {}]: {} values, std {:.4g}, amax/std {:.2f}, kurtosis {:.2f}, "
      "beyond 6 std {:.3g}%\n",
      t.name, t.rows, t.cols, t.stats.count, t.stats.std,
      t.stats.std > 0 ? t.stats.amax / t.stats.std : 0.0, t.stats.kurtosis,
      100.0 * t.stats.outlier_fraction);
  std::string head = fmt::format("  {:<18} {:>9} {:>9} {:>8} {:>9}", "format", "bits/val",
                                 "clip/amax", "clip/std", "SQNR dB");
  if (analytic) head += fmt::format(" {:>11} {:>13}", "analytic dB", "analytic clip");
  head += fmt::format(" {:>10}", "MAC cost*");
  fmt::print("{}\n", head);
  for (const FormatResult& r : t.formats) {
    std::string line =
        fmt::format("  {:<18} {:>9} {:>9} {:>8} {:>9}", r.name, fixed(r.bits_per_value, 3),
                    r.family == FormatFamily::kBlock ? "-" : fixed(r.clip_over_amax, 3),
                    r.family == FormatFamily::kBlock ? "-" : fixed(r.clip_over_std, 2),
                    fixed(r.error.sqnr_db(), 2));
    if (analytic) {
      line += fmt::format(" {:>11} {:>13}", fixed(r.analytic_sqnr_db, 2),
                          fixed(r.analytic_clip_over_std, 3));
    }
    line += fmt::format(" {:>10}", hardware_cost(r).relative_to_int8);
    fmt::print("{}\n", line);
  }
  for (const auto& [bits, idx] : t.recommendation) {
    const FormatResult& r = t.formats[idx];
    fmt::print("  at {} bits: {} (SQNR {} dB): {}\n", bits, r.name, fixed(r.error.sqnr_db(), 2),
               reason(t, r));
  }
}

nlohmann::json tensor_json(const TensorAnalysis& t) {
  nlohmann::json j;
  j["name"] = t.name;
  j["rows"] = t.rows;
  j["cols"] = t.cols;
  j["stats"] = {{"count", t.stats.count},
                {"mean", t.stats.mean},
                {"std", t.stats.std},
                {"amax", t.stats.amax},
                {"kurtosis", jnum(t.stats.kurtosis)},
                {"outlier_fraction", t.stats.outlier_fraction}};
  j["formats"] = nlohmann::json::array();
  for (const FormatResult& r : t.formats) {
    const HardwareCost c = hardware_cost(r);
    j["formats"].push_back(
        {{"name", r.name},
         {"family", family_name(r.family)},
         {"bits", r.bits},
         {"bits_per_value", r.bits_per_value},
         {"per_channel", r.per_channel},
         {"clip_over_amax",
          r.family == FormatFamily::kBlock ? nlohmann::json() : jnum(r.clip_over_amax)},
         {"clip_over_std",
          r.family == FormatFamily::kBlock ? nlohmann::json() : jnum(r.clip_over_std)},
         {"mse", r.error.mse()},
         {"sqnr_db", jnum(r.error.sqnr_db())},
         {"analytic_sqnr_db", jnum(r.analytic_sqnr_db)},
         {"analytic_clip_over_std", jnum(r.analytic_clip_over_std)},
         {"mac_cost_vs_int8", c.relative_to_int8},
         {"mac_cost_reference", c.reference},
         {"mac_cost_source", c.source}});
  }
  j["recommendation"] = nlohmann::json::array();
  for (const auto& [bits, idx] : t.recommendation) {
    j["recommendation"].push_back({{"bits", bits},
                                   {"format", t.formats[idx].name},
                                   {"sqnr_db", jnum(t.formats[idx].error.sqnr_db())}});
  }
  return j;
}

// ---- the chart: SQNR vs bits per family (the data's error energy summed
// over tensors, each tensor taking its family's best format at each width) ----

std::string chart_svg(const std::string& title, const std::vector<TensorAnalysis>& tensors,
                      const std::vector<int>& bits) {
  struct Family {
    const char* label;
    const char* colour;
    std::map<int, ErrorStats> at;  // bits -> merged error
  };
  std::array<Family, 3> fam = {Family{"INT (best of tensor / channel scale)", "#1b9e77", {}},
                               Family{"best eXmY (fp)", "#1f4e9c", {}},
                               Family{"MX / NVFP4 block", "#d95f02", {}}};
  for (const TensorAnalysis& t : tensors) {
    for (int b : bits) {
      for (std::size_t f = 0; f < 3; ++f) {
        const FormatResult* best = nullptr;
        for (const FormatResult& r : t.formats) {
          if (r.bits != b || static_cast<std::size_t>(r.family) != f) continue;
          if (best == nullptr || r.error.sqnr_db() > best->error.sqnr_db()) best = &r;
        }
        if (best != nullptr) fam[f].at[b].merge(best->error);
      }
    }
  }
  double ymin = HUGE_VAL, ymax = -HUGE_VAL;
  for (const Family& f : fam) {
    for (const auto& [b, e] : f.at) {
      const double y = e.sqnr_db();
      if (std::isfinite(y)) ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  if (!(ymin <= ymax)) ymin = 0, ymax = 1;
  ymin = std::floor(ymin / 5.0) * 5.0 - 5.0, ymax = std::ceil(ymax / 5.0) * 5.0 + 5.0;
  constexpr double kW = 720, kH = 460, kLeft = 70, kRight = 250, kTop = 50, kBottom = 50;
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  const double xmin = bits.front() - 0.5, xmax = bits.back() + 0.5;
  auto px = [&](double b) { return kLeft + pw * (b - xmin) / (xmax - xmin); };
  auto py = [&](double y) { return kTop + ph * (1 - (y - ymin) / (ymax - ymin)); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n",
      kW, kH);
  s +=
      fmt::format("<text x=\"{:.1f}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                  kLeft + pw / 2, nn::xml_escape("lowp analyze: " + title));
  const double ystep = (ymax - ymin) > 60 ? 10.0 : 5.0;
  for (double y = ymin; y <= ymax + 1e-9; y += ystep) {
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>\n"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:.0f}</text>\n",
        kLeft, kLeft + pw, py(y), kLeft - 6, py(y) + 4, y);
  }
  for (int b = bits.front(); b <= bits.back(); ++b) {
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        px(b), kTop, kTop + ph, kTop + ph + 18, b);
  }
  s += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
      "stroke=\"#333\"/>\n",
      kLeft, kTop, pw, ph);
  s += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">bits per element (block "
      "formats: plus their scales)</text>\n",
      kLeft + pw / 2, kH - 14);
  s += fmt::format(
      "<text transform=\"translate(20 {:.1f}) rotate(-90)\" text-anchor=\"middle\">SQNR "
      "(dB, measured)</text>\n",
      kTop + ph / 2);
  for (std::size_t f = 0; f < fam.size(); ++f) {
    std::string points;
    for (const auto& [b, e] : fam[f].at) {
      const double y = e.sqnr_db();
      if (!std::isfinite(y)) continue;
      points += fmt::format("{:.1f},{:.1f} ", px(b), py(y));
      s += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\"><title>{}</title></circle>\n",
          px(b), py(y), fam[f].colour,
          nn::xml_escape(fmt::format("{}: {} bits, {:.2f} dB", fam[f].label, b, y)));
    }
    if (!points.empty()) {
      s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                       points, fam[f].colour);
    }
    const double ly = kTop + 16 + 22.0 * static_cast<double>(f);
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"3\"/>\n<text x=\"{4:.1f}\" y=\"{5:.1f}\">{6}</text>\n",
        kLeft + pw + 12, kLeft + pw + 36, ly, fam[f].colour, kLeft + pw + 42, ly + 4,
        nn::xml_escape(fam[f].label));
  }
  s += "</svg>\n";
  return s;
}

// The matrix a tensor stands for: rows = the first dimension (nn.Linear's
// out, a convolution's output channels), cols = the rest; a vector is 1 row.
void matrix_shape(const io::TensorInfo& t, std::size_t& rows, std::size_t& cols) {
  const auto n = static_cast<std::size_t>(t.element_count());
  rows = t.shape.size() >= 2 && t.shape[0] > 0 ? static_cast<std::size_t>(t.shape[0]) : 1;
  cols = rows == 0 ? 0 : n / rows;
}

void run_analyze(const AnalyzeArgs& a) {
  if (a.file.empty() == a.dist.empty()) {
    throw Error("analyze: give either a model FILE or --dist (not both)");
  }
  if (a.dist.empty() && !a.outliers.empty()) throw Error("analyze: --outliers needs --dist");
  if (!a.dist.empty() && !a.tensors.empty()) throw Error("analyze: --tensor needs a model FILE");
  AnalyzeOptions opt;
  opt.bits = parse_bits(a.bits);
  opt.per_channel = !a.no_channel;
  opt.threads = a.threads > 0 ? a.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<TensorAnalysis> results;
  std::string title;
  DistributionSpec dist;
  if (!a.dist.empty()) {
    dist = parse_distribution(a.dist);
    if (!a.outliers.empty()) parse_outliers(a.outliers, dist);
    if (a.n == 0) throw Error("analyze: -n must be at least 1");
    opt.distribution = &dist;
    title = distribution_name(dist);
    const std::vector<float> x = sample_distribution(dist, a.n, a.seed);
    results.push_back(analyze_tensor(title, x, 1, x.size(), opt));
  } else {
    std::unique_ptr<io::ModelReader> model = std::filesystem::is_directory(a.file)
                                                 ? io::open_model_directory(a.file).model
                                                 : io::open_model(a.file);
    title = std::filesystem::path(a.file).filename().string();
    std::vector<const io::TensorInfo*> chosen;
    for (const std::string& name : a.tensors) {
      const io::TensorInfo* t = model->find(name);
      if (t == nullptr) throw Error(a.file + ": no tensor named '" + name + "'");
      if (!t->is_float) throw Error(a.file + ": tensor '" + name + "' holds no real numbers");
      chosen.push_back(t);
    }
    if (a.tensors.empty()) {
      for (const io::TensorInfo& t : model->tensors()) {
        if (t.is_float && t.element_count() > 0 && t.element_count() >= a.min_elements) {
          chosen.push_back(&t);
        }
      }
    }
    if (chosen.empty()) {
      throw Error(a.file + ": no tensor of real numbers with at least " +
                  std::to_string(a.min_elements) + " values to analyze");
    }
    std::vector<float> x;
    for (const io::TensorInfo* t : chosen) {
      model->read_f32_into(*t, x);
      std::size_t rows = 0, cols = 0;
      matrix_shape(*t, rows, cols);
      results.push_back(analyze_tensor(t->name, x, rows, cols, opt));
      model->release(*t);
    }
  }
  std::string svg;
  if (!a.svg.empty()) {
    svg = chart_svg(title, results, opt.bits);
    io::write_file_atomic(a.svg, std::as_bytes(std::span<const char>(svg)));
  }
  if (a.json) {
    nlohmann::json j;
    j["source"] = a.dist.empty() ? a.file : title;
    if (!a.dist.empty()) {
      j["distribution"] = {{"name", title}, {"samples", a.n}, {"seed", a.seed}};
    }
    j["bits"] = opt.bits;
    j["tensors"] = nlohmann::json::array();
    for (const TensorAnalysis& t : results) j["tensors"].push_back(tensor_json(t));
    j["mac_cost_note"] =
        "MAC cost relative to INT8 from the literature (docs/analyze.md), not measured: scalar "
        "formats vs a scalar INT8 MAC (van Baalen et al. 2023), block formats vs an MXINT8 "
        "dot-product unit at equal throughput, area..energy (Chen et al. 2025, Table 5)";
    if (!a.svg.empty()) j["svg"] = a.svg;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("lowp analyze: {} (bits {})\n", a.dist.empty() ? a.file : title, a.bits);
  for (const TensorAnalysis& t : results) print_table(t, !a.dist.empty());
  fmt::print(
      "\n* MAC cost relative to INT8 as the literature reports it (docs/analyze.md), not "
      "measured; n/a where no cited number was found.\n"
      "  scalar formats: vs a scalar INT8 MAC (8-bit eXmY: van Baalen et al. 2023)\n"
      "  block formats: vs an MXINT8 dot-product unit at equal throughput, low end area, "
      "high end energy (Chen et al. 2025, Table 5)\n");
  if (!a.dist.empty()) {
    fmt::print(
        "analytic: expected SQNR integrated over the format's grid for the distribution, "
        "at its own best clip (clip in units of the distribution's std).\n");
  }
  fmt::print("\n");
  for (const TensorAnalysis& t : results) fmt::print("{}\n", recommendation_line(t));
  if (!a.svg.empty()) fmt::print("\nchart (SQNR vs bits per family): {}\n", a.svg);
}

}  // namespace

void add_analyze_command(CLI::App& app) {
  auto a = std::make_shared<AnalyzeArgs>();
  auto* cmd = app.add_subcommand(
      "analyze",
      "Which format for which tensor: for each tensor of a model file (or a synthetic "
      "distribution) the SQNR of every format at each bit budget (intN and every eXmY with a "
      "searched clip, per tensor and per row; the MX and NVFP4 block formats), the analytic "
      "SQNR for --dist, the literature's relative MAC cost, and the best format per budget");
  cmd->add_option("FILE", a->file,
                  "Model file (.safetensors, .gguf, .onnx, .npy, .npz) or Hugging Face directory");
  cmd->add_option("--tensor", a->tensors, "Analyze only this tensor (repeatable; default: all)");
  cmd->add_option("--min-elements", a->min_elements,
                  "Without --tensor: skip tensors of fewer values (default 256)");
  cmd->add_option("--dist", a->dist,
                  "Analyze samples of a distribution: gaussian, laplace, student-t:NU, uniform");
  cmd->add_option("--outliers", a->outliers,
                  "With --dist: P:FACTOR multiplies a fraction P of the samples by FACTOR");
  cmd->add_option("-n", a->n, "With --dist: number of samples (default 1000000)");
  cmd->add_option("--seed", a->seed, "With --dist: the sampler's seed (default 0)");
  cmd->add_option("--bits", a->bits, "Bit budgets, 2..8, separated by commas (default 4,8)");
  cmd->add_flag("--no-channel", a->no_channel, "Skip the per-row (channel) scale candidates");
  cmd->add_option("--threads", a->threads, "Threads (default: all cores; results do not change)");
  cmd->add_flag("--json", a->json, "Print JSON instead of tables");
  cmd->add_option("--svg", a->svg, "Write a chart of SQNR vs bits per format family");
  cmd->callback([a] { run_analyze(*a); });
}

}  // namespace lowp::cli
