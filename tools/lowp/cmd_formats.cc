// `lowp formats [--json | --markdown]`: one row per registered format, every
// column derived from the registry entry (docs/formats.md is this command's
// --markdown output; a test keeps the two equal).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/block/block_format.h"
#include "lowp/block/format_json.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"

namespace lowp::cli {
namespace {

// A positive power of two as "2^k", any other value with 9 significant digits.
std::string value_text(double v) {
  int exp = 0;
  const double mant = std::frexp(v, &exp);
  if (mant == 0.5 && (exp - 1 < -4 || exp - 1 > 16)) return fmt::format("2^{}", exp - 1);
  return fmt::format("{:.9g}", v);
}

struct Row {
  std::string name, bits, exp_bits, man_bits, bias, max, min_normal, min_subnormal, inf, nan,
      summary;
};

Row row_of(const NamedFormat& nf) {
  const Format& f = nf.format;
  Row r;
  r.name = std::string(nf.name);
  r.bits = std::to_string(f.bits);
  r.summary = std::string(nf.summary);
  r.inf = inf_codes_text(f);
  r.nan = nan_codes_text(f);
  if (is_float(f)) {
    r.exp_bits = std::to_string(f.exp_bits);
    r.man_bits = std::to_string(f.man_bits);
    r.bias = std::to_string(f.bias);
    r.max = value_text(max_finite(f));
    r.min_normal = value_text(min_normal(f));
    r.min_subnormal = has_subnormals(f) ? value_text(min_positive(f)) : "none";
  } else if (is_posit(f)) {  // exp = es; max finite = maxpos, min normal = minpos
    r.exp_bits = std::to_string(f.exp_bits);
    r.man_bits = r.bias = "-";
    r.max = value_text(max_finite(f));
    r.min_normal = value_text(min_positive(f));
    r.min_subnormal = "none";
  } else if (is_table(f)) {  // a code book: its largest and smallest value
    r.exp_bits = r.man_bits = r.bias = "-";
    r.max = value_text(table_max(f));
    r.min_normal = value_text(table_min(f));
    r.min_subnormal = "-";
  } else {
    r.exp_bits = r.man_bits = r.bias = "-";
    r.max = fmt::format("{}", int_max(f));
    r.min_normal = fmt::format("{}", int_min(f));  // shown as "min" for integers
    r.min_subnormal = "-";
  }
  return r;
}

struct BlockRow {
  std::string name, element, block, scale, bits, summary;
};

BlockRow row_of(const NamedBlockFormat& nb) {
  const BlockFormat& f = nb.format;
  return {std::string(nb.name),
          f.element.kind == Kind::kInt ? fmt::format("int{} (fixed point)", f.element.bits)
                                       : format_name(f.element),
          std::to_string(f.block_size),
          std::string(block_scale_info(f.scale).short_description),
          fmt::format("{:g}", bits_per_value(f)),
          std::string(nb.summary)};
}

void print_text(const std::vector<Row>& rows, const std::vector<BlockRow>& blocks) {
  fmt::print("{:<13} {:>4} {:>3} {:>3} {:>4} {:>14} {:>14} {:>10} {:<13} {}\n", "name", "bits",
             "exp", "man", "bias", "max finite", "min normal", "min subn", "inf", "nan");
  for (const Row& r : rows) {
    fmt::print("{:<13} {:>4} {:>3} {:>3} {:>4} {:>14} {:>14} {:>10} {:<13} {}\n", r.name, r.bits,
               r.exp_bits, r.man_bits, r.bias, r.max, r.min_normal, r.min_subnormal, r.inf, r.nan);
  }
  fmt::print("\n{:<13} {:<22} {:>5} {:<19} {:>9}\n", "block format", "element", "k", "scale",
             "bits/value");
  for (const BlockRow& b : blocks) {
    fmt::print("{:<13} {:<22} {:>5} {:<19} {:>9}\n", b.name, b.element, b.block, b.scale, b.bits);
  }
  fmt::print(
      "\nIntegers and code books show their minimum under 'min normal'; posits show es under "
      "'exp', "
      "maxpos and minpos as max finite and min normal. Any minifloat can also be named as "
      "eXmY[bB][fn|fnuz|fin], and any MX format as mx:<element>:<k> (see docs/formats.md).\n");
}

void print_markdown(const std::vector<Row>& rows, const std::vector<BlockRow>& blocks) {
  fmt::print(
      "| name | bits | exp | man | bias | max finite | min normal (int, table: min) | min "
      "subnormal | "
      "Inf codes | NaN codes | what it is |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    fmt::print("| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.name, r.bits,
               r.exp_bits, r.man_bits, r.bias, r.max, r.min_normal, r.min_subnormal, r.inf, r.nan,
               r.summary);
  }
  fmt::print("\n| block format | element | k | scale | bits per value | what it is |\n");
  fmt::print("|---|---|---|---|---|---|\n");
  for (const BlockRow& b : blocks) {
    fmt::print("| `{}` | {} | {} | {} | {} | {} |\n", b.name, b.element, b.block, b.scale, b.bits,
               b.summary);
  }
}

}  // namespace

void add_formats_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "formats", "List every registered scalar and block format and its properties");
  auto json = std::make_shared<bool>(false);
  auto markdown = std::make_shared<bool>(false);
  auto* json_opt = cmd->add_flag("--json", *json, "Print a JSON array instead of a table");
  cmd->add_flag("--markdown", *markdown, "Print the table as Markdown (docs/formats.md)")
      ->excludes(json_opt);
  cmd->callback([json, markdown] {
    if (*json) {
      // The library's JSON, printed with sorted keys and an indent of 2.
      fmt::print("{}\n", nlohmann::json::parse(registry_json()).dump(2));
      return;
    }
    std::vector<Row> rows;
    for (const NamedFormat& nf : registry()) rows.push_back(row_of(nf));
    std::vector<BlockRow> blocks;
    for (const NamedBlockFormat& nb : block_registry()) blocks.push_back(row_of(nb));
    if (*markdown)
      print_markdown(rows, blocks);
    else
      print_text(rows, blocks);
  });
}

}  // namespace lowp::cli
