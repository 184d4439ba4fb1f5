// The registry of named scalar formats and the format-name parser.
//
// Sources: OCP 8-bit Floating Point Specification (OFP8) v1.0 for E4M3/E5M2;
// the code books' papers in lowp/format/code_table.h;
// OCP Microscaling Formats (MX) v1.0 §5 for FP6/FP4 elements and the E8M0 scale;
// the FNUZ variants as defined by ml_dtypes / ONNX (bias + 1, NaN = 0x80).
#include "lowp/format/registry.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowp/format/convert.h"

namespace lowp {
namespace {

constexpr std::array kRegistry = {
    NamedFormat{"fp32", kFp32, "IEEE 754 binary32"},
    NamedFormat{"bf16", kBf16, "bfloat16: fp32's range, 8-bit significand"},
    NamedFormat{"fp16", kFp16, "IEEE 754 binary16"},
    NamedFormat{"fp8_e4m3", kFp8E4m3, "OCP FP8 E4M3 (E4M3FN): no Inf, NaN = S.1111.111"},
    NamedFormat{"fp8_e5m2", kFp8E5m2, "OCP FP8 E5M2: IEEE-like, Inf and NaN"},
    NamedFormat{"fp8_e4m3fnuz", kFp8E4m3Fnuz, "E4M3 with bias 8, no Inf, no -0, NaN = 0x80"},
    NamedFormat{"fp8_e5m2fnuz", kFp8E5m2Fnuz, "E5M2 with bias 16, no Inf, no -0, NaN = 0x80"},
    NamedFormat{"fp6_e3m2", kFp6E3m2, "OCP MX FP6 E3M2: no Inf, no NaN"},
    NamedFormat{"fp6_e2m3", kFp6E2m3, "OCP MX FP6 E2M3: no Inf, no NaN"},
    NamedFormat{"fp4_e2m1", kFp4E2m1, "OCP MX FP4 E2M1: no Inf, no NaN"},
    NamedFormat{"e8m0", kE8m0,
                "OCP MX scale: unsigned power of two 2^(code-127), 0xFF = NaN, no zero"},
    NamedFormat{"int8", kInt8, "two's complement, [-128, 127]"},
    NamedFormat{"int7", kInt7, "two's complement, [-64, 63]"},
    NamedFormat{"int6", kInt6, "two's complement, [-32, 31]"},
    NamedFormat{"int5", kInt5, "two's complement, [-16, 15]"},
    NamedFormat{"int4", kInt4, "two's complement, [-8, 7]"},
    NamedFormat{"int3", kInt3, "two's complement, [-4, 3]"},
    NamedFormat{"int2", kInt2, "two's complement, [-2, 1]"},
    NamedFormat{"int8_sym", kInt8Sym, "symmetric, [-127, 127]; code 0x80 unused"},
    NamedFormat{"int7_sym", kInt7Sym, "symmetric, [-63, 63]"},
    NamedFormat{"int6_sym", kInt6Sym, "symmetric, [-31, 31]"},
    NamedFormat{"int5_sym", kInt5Sym, "symmetric, [-15, 15]"},
    NamedFormat{"int4_sym", kInt4Sym, "symmetric, [-7, 7]"},
    NamedFormat{"int3_sym", kInt3Sym, "symmetric, [-3, 3]"},
    NamedFormat{"int2_sym", kInt2Sym, "symmetric, [-1, 1]"},
    NamedFormat{"uint8", kUint8, "unsigned, [0, 255]"},
    NamedFormat{"uint7", kUint7, "unsigned, [0, 127]"},
    NamedFormat{"uint6", kUint6, "unsigned, [0, 63]"},
    NamedFormat{"uint5", kUint5, "unsigned, [0, 31]"},
    NamedFormat{"uint4", kUint4, "unsigned, [0, 15]"},
    NamedFormat{"uint3", kUint3, "unsigned, [0, 7]"},
    NamedFormat{"uint2", kUint2, "unsigned, [0, 3]"},
    NamedFormat{"nf4", kNf4,
                "code book: QLoRA's NormalFloat4 (Dettmers et al. 2023), 16 N(0,1) quantiles "
                "in [-1, 1]"},
    NamedFormat{"nf3", kNf3,
                "code book: AFPQ's 3-bit NormalFloat (Zhang et al. 2023), 8 values in [-1, 1]"},
    NamedFormat{"dint4", kDint4,
                "code book: dINT4 (Lee et al. 2023, EMNLP), ±0 ±0.5 ±1..±6, lowp's reading"},
    NamedFormat{"posit8", kPosit8, "Posit Standard 2022 posit8 (es = 2): ±2^-24 .. ±2^24, NaR"},
    NamedFormat{"posit16", kPosit16, "Posit Standard 2022 posit16 (es = 2): ±2^-56 .. ±2^56, NaR"},
    NamedFormat{"posit32", kPosit32,
                "Posit Standard 2022 posit32 (es = 2): ±2^-120 .. ±2^120, NaR"},
    NamedFormat{"posit8_es0", kPosit8Es0, "posit<8, 0> (2017 draft's posit8): ±2^-6 .. ±2^6"},
    NamedFormat{"posit8_es1", kPosit8Es1, "posit<8, 1>: ±2^-12 .. ±2^12"},
    NamedFormat{"posit16_es0", kPosit16Es0, "posit<16, 0>: ±2^-14 .. ±2^14"},
    NamedFormat{"posit16_es1", kPosit16Es1, "posit<16, 1> (2017 draft's posit16): ±2^-28 .. ±2^28"},
    NamedFormat{"posit32_es0", kPosit32Es0, "posit<32, 0>: ±2^-30 .. ±2^30"},
    NamedFormat{"posit32_es1", kPosit32Es1, "posit<32, 1>: ±2^-60 .. ±2^60"},
};
static_assert(max_finite(kPosit8) == exp2i(24) && max_finite(kPosit16) == exp2i(56) &&
              max_finite(kPosit32) == exp2i(120) && max_finite(kPosit8Es0) == exp2i(6) &&
              max_finite(kPosit8Es1) == exp2i(12) && max_finite(kPosit16Es0) == exp2i(14) &&
              max_finite(kPosit16Es1) == exp2i(28) && max_finite(kPosit32Es0) == exp2i(30) &&
              max_finite(kPosit32Es1) == exp2i(60));

// Other spellings users bring from PyTorch, ml_dtypes and papers.
// posit<n>_es2 is the standard's posit<n>: one format, registered under the
// standard's name.
constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kAliases = {{
    {"float32", "fp32"},
    {"bfloat16", "bf16"},
    {"float16", "fp16"},
    {"half", "fp16"},
    {"fp8_e4m3fn", "fp8_e4m3"},
    {"float8_e4m3fn", "fp8_e4m3"},
    {"float8_e5m2", "fp8_e5m2"},
    {"float8_e4m3fnuz", "fp8_e4m3fnuz"},
    {"float8_e5m2fnuz", "fp8_e5m2fnuz"},
    {"float6_e3m2fn", "fp6_e3m2"},
    {"float6_e2m3fn", "fp6_e2m3"},
    {"float4_e2m1fn", "fp4_e2m1"},
    {"fp8_e8m0", "e8m0"},
    {"float8_e8m0fnu", "e8m0"},
    {"posit8_es2", "posit8"},
    {"posit16_es2", "posit16"},
    {"posit32_es2", "posit32"},
}};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool read_int(std::string_view& s, int& out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out);
  if (ec != std::errc() || ptr == s.data()) return false;
  s.remove_prefix(static_cast<std::size_t>(ptr - s.data()));
  return true;
}

// Parses eXmY[bB][fn|fnuz|fin]; returns false if `name` is not of that shape.
// Throws for a well-formed spelling whose parameters are out of range.
bool parse_minifloat(std::string_view name, Format& out) {
  std::string_view s = name;
  int e = 0;
  int m = 0;
  if (s.empty() || s[0] != 'e') return false;
  s.remove_prefix(1);
  if (!read_int(s, e) || s.empty() || s[0] != 'm') return false;
  s.remove_prefix(1);
  if (!read_int(s, m)) return false;
  bool has_bias = false;
  int bias = 0;
  if (!s.empty() && s[0] == 'b') {
    s.remove_prefix(1);
    std::string_view digits = s;
    bool negative = !digits.empty() && digits[0] == '-';
    if (negative) s.remove_prefix(1);
    if (!read_int(s, bias)) return false;
    if (negative) bias = -bias;
    has_bias = true;
  }
  Specials specials;
  if (s.empty())
    specials = Specials::kIeee;
  else if (s == "fn")
    specials = Specials::kFn;
  else if (s == "fnuz")
    specials = Specials::kFnuz;
  else if (s == "fin")
    specials = Specials::kFinite;
  else
    return false;

  const std::string where = "format " + quoted(name) + ": ";
  if (e < 1 || e > 8) throw Error(where + "exponent bits must be 1..8");
  if (m < 0 || m > 10) throw Error(where + "mantissa bits must be 0..10");
  if (specials == Specials::kIeee && e < 2) {
    throw Error(where +
                "an IEEE-style format needs at least 2 exponent bits (try the 'fin' suffix)");
  }
  if (specials == Specials::kIeee && m == 0) {
    // Its top binade would hold only ±Inf: no code is left for NaN.
    throw Error(
        where +
        "an IEEE-style format needs a mantissa bit to encode NaN (try the 'fn' or 'fin' suffix)");
  }
  if (!has_bias) bias = (1 << (e - 1)) - (specials == Specials::kFnuz ? 0 : 1);
  out = float_format(e, m, bias, specials);
  if (max_magnitude_code(out) == 0 || max_finite(out) <= 0) {
    throw Error(where + "has no nonzero finite value");
  }
  if (max_finite(out) > static_cast<double>(std::numeric_limits<float>::max()) ||
      min_positive(out) < static_cast<double>(std::numeric_limits<float>::denorm_min())) {
    throw Error(where + "bias " + std::to_string(bias) +
                " puts values outside fp32's range; choose a bias that keeps max finite <= 3.4e38 "
                "and the smallest value >= 2^-149");
  }
  return true;
}

}  // namespace

std::span<const NamedFormat> registry() { return kRegistry; }

std::string suggest_format_names(std::string_view name) {
  std::vector<std::pair<std::size_t, std::string_view>> scored;
  for (const NamedFormat& nf : kRegistry)
    scored.emplace_back(edit_distance(name, nf.name), nf.name);
  for (const auto& [alias, target] : kAliases)
    scored.emplace_back(edit_distance(name, alias), alias);
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (std::size_t i = 0; i < scored.size() && i < 3; ++i) {
    if (i > 0) out += ", ";
    out += scored[i].second;
  }
  return out;
}

Format parse_format(std::string_view name) {
  for (const NamedFormat& nf : kRegistry) {
    if (nf.name == name) return nf.format;
  }
  for (const auto& [alias, target] : kAliases) {
    if (alias == name) return parse_format(target);
  }
  Format f;
  if (parse_minifloat(name, f)) return f;
  throw Error("unknown format " + quoted(name) + " (closest: " + suggest_format_names(name) +
              "; see 'lowp formats', or spell a minifloat as eXmY[bB][fn|fnuz|fin])");
}

std::string format_name(const Format& f) {
  for (const NamedFormat& nf : kRegistry) {
    if (nf.format == f) return std::string(nf.name);
  }
  if (f.kind == Kind::kPosit) {
    return "posit" + std::to_string(f.bits) + "_es" + std::to_string(f.exp_bits);
  }
  if (f.kind == Kind::kTable) {
    throw Error("format_name: a code book that is not in the registry");
  }
  if (f.kind == Kind::kInt) {
    std::string base = f.int_range == IntRange::kUnsigned ? "uint" : "int";
    return base + std::to_string(f.bits) + (f.int_range == IntRange::kSymmetric ? "_sym" : "");
  }
  std::string s = "e" + std::to_string(f.exp_bits) + "m" + std::to_string(f.man_bits);
  const int default_bias = (1 << (f.exp_bits - 1)) - (f.specials == Specials::kFnuz ? 0 : 1);
  if (f.bias != default_bias) s += "b" + std::to_string(f.bias);
  switch (f.specials) {
    case Specials::kFn:
      s += "fn";
      break;
    case Specials::kFnuz:
      s += "fnuz";
      break;
    case Specials::kFinite:
      s += "fin";
      break;
    default:
      break;
  }
  return s;
}

namespace {

std::string hex_code(const Format& f, std::uint32_t code) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%0*X", (f.bits + 3) / 4, code);
  return text;
}

}  // namespace

std::string inf_codes_text(const Format& f) {
  if (!has_inf(f)) return "none";
  return hex_code(f, inf_code(f)) + " " + hex_code(f, inf_code(f) | sign_mask(f));
}

std::string nan_codes_text(const Format& f) {
  if (!has_nan(f)) return "none";
  if (is_posit(f)) return hex_code(f, nan_code(f));  // NaR
  switch (f.specials) {
    case Specials::kIeee: {
      const std::uint32_t lo = inf_code(f) + 1;
      const std::uint32_t hi = magnitude_mask(f);
      return hex_code(f, lo) + ".." + hex_code(f, hi) + " " + hex_code(f, lo | sign_mask(f)) +
             ".." + hex_code(f, hi | sign_mask(f));
    }
    case Specials::kFn:
      return hex_code(f, nan_code(f)) + " " + hex_code(f, nan_code(f) | sign_mask(f));
    default:
      return hex_code(f, nan_code(f));
  }
}

std::string format_json(std::string_view name, const Format& f, std::string_view summary) {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["kind"] = is_float(f) ? "float" : is_table(f) ? "table" : is_posit(f) ? "posit" : "int";
  j["bits"] = f.bits;
  j["signed"] = is_signed(f);
  j["summary"] = summary;
  if (is_float(f)) {
    j["exponent_bits"] = f.exp_bits;
    j["mantissa_bits"] = f.man_bits;
    j["bias"] = f.bias;
    j["emax"] = emax(f);
    j["max_finite"] = max_finite(f);
    j["min_normal"] = min_normal(f);
    j["min_subnormal"] = has_subnormals(f) ? nlohmann::ordered_json(min_positive(f)) : nullptr;
    j["has_inf"] = has_inf(f);
    j["has_nan"] = has_nan(f);
    j["has_negative_zero"] = has_negative_zero(f);
    j["inf_codes"] = inf_codes_text(f);
    j["nan_codes"] = nan_codes_text(f);
  } else if (is_posit(f)) {
    j["exponent_bits"] = f.exp_bits;      // es
    j["max_finite"] = max_finite(f);      // maxpos
    j["min_positive"] = min_positive(f);  // minpos
    j["has_inf"] = false;
    j["has_nan"] = true;  // NaR
    j["has_negative_zero"] = false;
    j["nan_codes"] = nan_codes_text(f);
  } else if (is_table(f)) {
    j["min"] = table_min(f);
    j["max"] = table_max(f);
    j["max_finite"] = max_finite(f);
    j["has_negative_zero"] = has_negative_zero(f);
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    for (double v : table_values(f)) values.push_back(v);
    j["values"] = values;
  } else {
    j["min"] = int_min(f);
    j["max"] = int_max(f);
  }
  return j.dump();
}

}  // namespace lowp
