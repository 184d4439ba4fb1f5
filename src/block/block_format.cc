// Block format names, the block-format registry, and scale-rule names.
#include "lowp/block/block_format.h"

#include <array>
#include <charconv>
#include <string>

#include "lowp/error.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

constexpr Format kInt8Sym = int_format(8, IntRange::kSymmetric);  // MXINT8 (OCP MX §5.3.3)

constexpr std::array kBlockRegistry = {
    NamedBlockFormat{
        "mxfp8_e4m3", {BlockScale::kUe8m0, kFp8E4m3, 32}, "OCP MX: 32 x FP8 E4M3, E8M0 scale"},
    NamedBlockFormat{
        "mxfp8_e5m2", {BlockScale::kUe8m0, kFp8E5m2, 32}, "OCP MX: 32 x FP8 E5M2, E8M0 scale"},
    NamedBlockFormat{
        "mxfp6_e3m2", {BlockScale::kUe8m0, kFp6E3m2, 32}, "OCP MX: 32 x FP6 E3M2, E8M0 scale"},
    NamedBlockFormat{
        "mxfp6_e2m3", {BlockScale::kUe8m0, kFp6E2m3, 32}, "OCP MX: 32 x FP6 E2M3, E8M0 scale"},
    NamedBlockFormat{
        "mxfp4", {BlockScale::kUe8m0, kFp4E2m1, 32}, "OCP MX: 32 x FP4 E2M1, E8M0 scale"},
    NamedBlockFormat{"mxint8",
                     {BlockScale::kUe8m0, kInt8Sym, 32},
                     "OCP MX: 32 x INT8 (6 fraction bits), E8M0 scale"},
    NamedBlockFormat{"nvfp4",
                     {BlockScale::kUe4m3, kFp4E2m1, 16},
                     "NVIDIA: 16 x FP4 E2M1, E4M3 scale, FP32 tensor scale"},
};

constexpr std::array kScaleInfo = {
    BlockScaleInfo{BlockScale::kUe8m0, "e8m0", "e8m0", "e8m0", 8, false, "mx"},
    BlockScaleInfo{BlockScale::kUe4m3, "ue4m3", "fp8_e4m3 (unsigned) + fp32 per tensor",
                   "e4m3 + fp32/tensor", 8, true, "nvfp4"},
};

// k from the text after the last colon of a spelling.
int parse_block_size(std::string_view name, std::string_view k_text) {
  int k = 0;
  const auto [ptr, ec] = std::from_chars(k_text.data(), k_text.data() + k_text.size(), k);
  if (ec != std::errc() || ptr != k_text.data() + k_text.size() || k < 1) {
    throw Error("block format " + quoted(name) + ": block size " + quoted(k_text) +
                " is not a positive integer");
  }
  return k;
}

}  // namespace

const BlockScaleInfo& block_scale_info(BlockScale kind) {
  for (const BlockScaleInfo& info : kScaleInfo) {
    if (info.kind == kind) return info;
  }
  return kScaleInfo[0];
}

std::string_view scale_rule_name(ScaleRule r) {
  switch (r) {
    case ScaleRule::kFloor:
      return "floor";
    case ScaleRule::kRceil:
      return "rceil";
    case ScaleRule::kCeil:
      return "ceil";
    case ScaleRule::kEven:
      return "even";
  }
  return "floor";
}

ScaleRule parse_scale_rule(std::string_view name) {
  for (ScaleRule r : {ScaleRule::kFloor, ScaleRule::kRceil, ScaleRule::kCeil, ScaleRule::kEven}) {
    if (scale_rule_name(r) == name) return r;
  }
  throw Error("unknown scale rule " + quoted(name) + " (expected floor, rceil, ceil or even)");
}

double bits_per_value(const BlockFormat& f) {
  return f.element.bits + static_cast<double>(block_scale_info(f.scale).bits) / f.block_size;
}

std::span<const NamedBlockFormat> block_registry() { return kBlockRegistry; }

bool parse_block_format(std::string_view name, BlockFormat& out) {
  for (const NamedBlockFormat& nb : kBlockRegistry) {
    if (nb.name == name) {
      out = nb.format;
      return true;
    }
  }
  if (name.substr(0, 6) == "nvfp4:") {
    BlockFormat f;
    parse_block_format("nvfp4", f);
    f.block_size = parse_block_size(name, name.substr(6));
    out = f;
    return true;
  }
  if (name.substr(0, 3) != "mx:") return false;
  const std::string text = quoted(name);
  const std::size_t colon = name.rfind(':');
  if (colon == 2) {
    throw Error("block format " + text + ": expected mx:<element>:<block size>, e.g. mx:int4:32");
  }
  const std::string_view element_name = name.substr(3, colon - 3);
  const int k = parse_block_size(name, name.substr(colon + 1));
  Format element = parse_format(element_name);
  if (element.kind == Kind::kTable) {
    // An MX scale is a power of two chosen from the element's binade (OCP MX
    // §6.3); a code book has no exponent for that rule to align.
    throw Error("block format " + text + ": " + quoted(element_name) +
                " is a code book, which MX's power-of-two scale rule does not define; use it "
                "with a scaled matrix format, e.g. " +
                std::string(element_name) + ":group64");
  }
  if (element.kind == Kind::kPosit) {
    throw Error("block format " + text + ": " + quoted(element_name) +
                " is a posit, which has no fixed binade for MX's power-of-two scale rule to align");
  }
  if (element.kind == Kind::kInt) {
    if (element.int_range == IntRange::kUnsigned) {
      throw Error("block format " + text + ": MX integer elements are signed");
    }
    element.int_range = IntRange::kSymmetric;  // OCP MX §5.3.3: the most negative code is unused
  } else if (element.specials == Specials::kE8m0) {
    throw Error("block format " + text + ": e8m0 is the scale format, not an element format");
  }
  out = BlockFormat{BlockScale::kUe8m0, element, k};
  return true;
}

std::string block_format_name(const BlockFormat& f) {
  for (const NamedBlockFormat& nb : kBlockRegistry) {
    if (nb.format == f) return std::string(nb.name);
  }
  const std::string element = f.element.kind == Kind::kInt ? "int" + std::to_string(f.element.bits)
                                                           : format_name(f.element);
  const std::string k = std::to_string(f.block_size);
  if (f.scale == BlockScale::kUe4m3) return std::string(block_scale_info(f.scale).prefix) + ":" + k;
  return std::string(block_scale_info(f.scale).prefix) + ":" + element + ":" + k;
}

}  // namespace lowp
