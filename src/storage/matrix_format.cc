// The matrix-format grammar (lowp/storage/matrix_format.h): one parser for
// every tool and binding that takes a matrix format.
#include "lowp/storage/matrix_format.h"

#include <charconv>
#include <string>

#include "lowp/error.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

// fp32, bf16, fp16 and the posits are plain casts (no scale).
bool is_plain(const Format& f) {
  if (f.kind == Kind::kPosit) return true;
  return f.kind == Kind::kFloat && f.specials == Specials::kIeee &&
         ((f.bits == 32 && f.exp_bits == 8) || (f.bits == 16 && f.exp_bits == 8) ||
          (f.bits == 16 && f.exp_bits == 5 && f.bias == 15));
}

[[noreturn]] void fail(std::string_view name, const std::string& why) {
  throw Error("matrix format " + quoted(name) + ": " + why);
}

// The element of a scaled spelling: any scalar format but e8m0; intN means
// the symmetric range (uintN stays unsigned: negative values clamp to 0).
Format scaled_element_of(std::string_view name, std::string_view element) {
  Format f = parse_format(element);
  if (f.kind == Kind::kFloat && f.specials == Specials::kE8m0)
    fail(name, "e8m0 cannot hold values");
  if (f.kind == Kind::kPosit) {
    // A scale s = amax / maxpos would put the values where a posit has the
    // fewest fraction bits (its precision tapers away from 1).
    fail(name, "a posit is a plain cast without a scale (posit8, posit16, posit8_es1, ...)");
  }
  if (f.kind == Kind::kInt && f.int_range == IntRange::kFull) f.int_range = IntRange::kSymmetric;
  return f;
}

int group_size(std::string_view name, std::string_view how) {
  const std::string_view digits = how.substr(5);
  int k = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), k);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || k < 1 ||
      k > (1 << 20)) {
    fail(name, "expected <format>:group<K> with 1 <= K <= 1048576, e.g. int4:group32");
  }
  return k;
}

}  // namespace

double MatrixFormat::bits_per_value(std::size_t cols) const {
  if (cols == 0) return 0.0;
  const double n = static_cast<double>(cols);
  const auto segments = [&](int k) {
    const auto kk = static_cast<std::size_t>(k);
    return static_cast<double>((cols + kk - 1) / kk);
  };
  switch (scheme) {
    case MatrixScheme::kPlain:
    case MatrixScheme::kTensor:
      return element.bits;
    case MatrixScheme::kChannel:
      return element.bits + 32.0 / n;
    case MatrixScheme::kGroup:
      return element.bits + (two_scales()    ? 32.0
                             : zero_points() ? 24.0
                                             : 16.0) *
                                segments(group) / n;
    case MatrixScheme::kBlock:
      return block.element.bits + 8.0 * segments(block.block_size) / n;
  }
  return 0.0;
}

namespace {

MatrixFormat parse_spelling(std::string_view name) {
  MatrixFormat w;
  if (name == "q8_0") {
    w.scheme = MatrixScheme::kGroup;
    w.element = int_format(8, IntRange::kSymmetric);
    w.group = 32;
    w.ggml_q8_0 = true;
    return w;
  }
  if (parse_block_format(name, w.block)) {
    w.scheme = MatrixScheme::kBlock;
    return w;
  }
  const std::size_t colon = name.find(':');
  if (colon == std::string_view::npos) {
    const Format f = parse_format(name);
    if (f.kind == Kind::kPosit && f.bits > 16) {
      // (The plain path stores 32-bit codes as fp32 bits.)
      fail(name, "32-bit posits are not a matrix storage format; use posit16 or posit8");
    }
    if (is_plain(f)) {
      w.scheme = MatrixScheme::kPlain;
      w.element = f;
      return w;
    }
    w.scheme = MatrixScheme::kTensor;
    w.element = scaled_element_of(name, name);
    return w;
  }
  // <F>:<how>[:asym]
  std::string_view how = name.substr(colon + 1);
  std::string_view suffix;
  if (const std::size_t second = how.find(':'); second != std::string_view::npos) {
    suffix = how.substr(second + 1);
    how = how.substr(0, second);
    if (suffix != "asym") fail(name, "unknown suffix " + quoted(suffix) + " (expected asym)");
  }
  w.element = scaled_element_of(name, name.substr(0, colon));
  if (how == "tensor") {
    w.scheme = MatrixScheme::kTensor;
  } else if (how == "channel") {
    w.scheme = MatrixScheme::kChannel;
  } else if (how.substr(0, 5) == "group") {
    w.scheme = MatrixScheme::kGroup;
    w.group = group_size(name, how);
  } else {
    fail(name, "unknown scaling " + quoted(how) +
                   " (expected tensor, channel or group<K>, e.g. int8:channel, int4:group32)");
  }
  if (!suffix.empty()) {
    const bool integer = w.element.kind == Kind::kInt && w.element.bits <= 8;
    const bool fp = w.element.kind == Kind::kFloat && w.element.bits <= 16;
    // A code book with values of both signs: two scales, as a float's.
    const bool table =
        w.element.kind == Kind::kTable && table_min(w.element) < 0.0 && table_max(w.element) > 0.0;
    if (w.scheme != MatrixScheme::kGroup || !(integer || fp || table)) {
      fail(name,
           "asym applies to groups of integers of at most 8 bits (a zero point, e.g. "
           "int4:group128:asym) or of floats of at most 16 bits or code books (two scales, e.g. "
           "fp4_e2m1:group32:asym, nf4:group64:asym)");
    }
    w.asymmetric = true;
    // Integers: codes 0 .. 2^N - 1 around the zero point.
    if (integer) w.element.int_range = IntRange::kUnsigned;
  }
  return w;
}

}  // namespace

std::string matrix_format_name(const MatrixFormat& f) {
  if (f.ggml_q8_0) return "q8_0";
  if (f.scheme == MatrixScheme::kBlock) return block_format_name(f.block);
  // The scaled spellings make intN symmetric (and :asym unsigned): name the
  // integer by its plain spelling, which parses back to the same range.
  Format element = f.element;
  if (element.kind == Kind::kInt && (element.int_range == IntRange::kSymmetric || f.asymmetric)) {
    element.int_range = IntRange::kFull;
  }
  const std::string base = format_name(element);
  switch (f.scheme) {
    case MatrixScheme::kChannel:
      return base + ":channel";
    case MatrixScheme::kGroup:
      return base + ":group" + std::to_string(f.group) + (f.asymmetric ? ":asym" : "");
    default:
      return base;  // kPlain, kTensor (a bare scalar name means the tensor scale)
  }
}

MatrixFormat parse_matrix_format(std::string_view name) {
  MatrixFormat f = parse_spelling(name);
  f.name = matrix_format_name(f);
  return f;
}

bool is_matrix_format(std::string_view name) {
  try {
    parse_matrix_format(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace lowp
