// `lowp numeracy fone VALUE... [--int-digits N] [--frac-digits M] [--sign]
// [--fp32] [--json]`: each VALUE's FoNE features (lowp/numeracy/fone.h) and
// the value decoded back from them. Every value is checked before anything is
// printed.
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "lowp/error.h"
#include "lowp/numeracy/fone.h"

namespace lowp::cli {
namespace {

struct FoneOptions {
  std::vector<std::string> values;
  numeracy::FoneConfig config;
  bool fp32 = false;
  bool json = false;
};

void run_fone(const FoneOptions& o) {
  using namespace numeracy;
  check_fone_config(o.config);
  struct Row {
    std::string input;
    std::vector<double> features;
    std::string decoded;
  };
  std::vector<Row> rows;
  const auto width = static_cast<std::size_t>(fone_width(o.config));
  for (const std::string& text : o.values) {
    const FoneNumber v = fone_parse(text, o.config);
    Row r{text, std::vector<double>(width), ""};
    FoneNumber back;
    if (o.fp32) {
      std::vector<float> f(width);
      fone_encode(v, o.config, std::span<float>(f));
      for (std::size_t i = 0; i < width; ++i) r.features[i] = f[i];
      back = fone_decode(std::span<const float>(f), o.config);
    } else {
      fone_encode(v, o.config, std::span<double>(r.features));
      back = fone_decode(std::span<const double>(r.features), o.config);
    }
    if (back != v) {  // cannot happen (fone.h's exactness argument); never print a wrong value
      throw std::logic_error("fone: " + text + " decoded as " + fone_to_string(back, o.config));
    }
    r.decoded = fone_to_string(back, o.config);
    rows.push_back(std::move(r));
  }
  std::vector<int> periods;
  for (int p = 0; p < fone_positions(o.config); ++p) {
    periods.push_back(fone_period_exponent(o.config, p));
  }
  if (o.json) {
    nlohmann::json out = {{"int_digits", o.config.int_digits},
                          {"frac_digits", o.config.frac_digits},
                          {"sign", o.config.sign},
                          {"dtype", o.fp32 ? "float32" : "float64"},
                          {"period_exponents", periods},
                          {"values", nlohmann::json::array()}};
    for (const Row& r : rows) {
      out["values"].push_back(
          {{"input", r.input}, {"features", r.features}, {"decoded", r.decoded}});
    }
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("FoNE: int_digits {}, frac_digits {}{}, {} features ({}), periods 10^{}..10^{}\n",
             o.config.int_digits, o.config.frac_digits, o.config.sign ? ", sign" : "", width,
             o.fp32 ? "fp32" : "fp64", periods.front(), periods.back());
  for (const Row& r : rows) {
    fmt::print("{} -> decoded {}\n", r.input, r.decoded);
    for (std::size_t p = 0; p < periods.size(); ++p) {
      fmt::print("  T=10^{:<3} cos {:>+.17f}  sin {:>+.17f}\n", periods[p], r.features[2 * p],
                 r.features[2 * p + 1]);
    }
    if (o.config.sign) fmt::print("  sign {:+.0f}\n", r.features.back());
  }
}

}  // namespace

CLI::App* numeracy_command(CLI::App& app) {
  const std::vector<CLI::App*> existing =
      app.get_subcommands([](CLI::App* sub) { return sub->get_name() == "numeracy"; });
  if (!existing.empty()) return existing.front();
  CLI::App* cmd = app.add_subcommand(
      "numeracy",
      "How models see numbers: digit-group tokenization, FoNE, numeracy tasks and scoring");
  cmd->require_subcommand(1);
  return cmd;
}

void add_numeracy_fone_command(CLI::App& app) {
  CLI::App* numeracy = numeracy_command(app);
  auto* cmd = numeracy->add_subcommand(
      "fone",
      "Fourier Number Embedding: each value's cos/sin features of periods 10^k, one pair per "
      "digit (docs/numeracy.md), and the value decoded back from them");
  auto o = std::make_shared<FoneOptions>();
  cmd->add_option("values", o->values,
                  "Decimal numbers (digits, optional sign and '.'; put negative ones after --)")
      ->required();
  cmd->add_option("--int-digits", o->config.int_digits, "Integer digit positions")
      ->capture_default_str();
  cmd->add_option("--frac-digits", o->config.frac_digits, "Fractional digit positions")
      ->capture_default_str();
  cmd->add_flag("--sign", o->config.sign,
                "Add a sign feature (+1/-1) and accept negative values (else they are refused)");
  cmd->add_flag("--fp32", o->fp32,
                "Features rounded to fp32 (what a model sees), decoded from those");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] { run_fone(*o); });
}

}  // namespace lowp::cli
