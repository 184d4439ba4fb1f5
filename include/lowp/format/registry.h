// lowp/format/registry.h — the one table of named scalar formats, and the parser
// for format names (registered names, aliases, and any minifloat eXmY).
//
// The CLI (`lowp formats`), docs/formats.md and the test sweeps all iterate this
// table; a fact about a format is written here once.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "lowp/error.h"
#include "lowp/format/format.h"

namespace lowp {

struct NamedFormat {
  std::string_view name;
  Format format;
  std::string_view summary;  // one line: what the format is and where it comes from
};

// Every registered scalar format, in display order.
std::span<const NamedFormat> registry();

// Parses a format name: a registered name, an alias (e.g. "float16",
// "e4m3fn"), or a minifloat spelled eXmY[bB][fn|fnuz|fin]:
//   X exponent bits (1..8), Y mantissa bits (0..10), optional bias B (default
//   2^(X-1)-1, or 2^(X-1) for fnuz), and the special-value policy suffix:
//   none = IEEE (Inf and NaN in the top binade), fn = NaN only at all ones,
//   fnuz = NaN at negative zero only, fin = every code a number.
// Throws lowp::Error naming the closest known names when nothing matches, and
// when a spelled format is out of range (its values must all be exact fp32s).
Format parse_format(std::string_view name);

// The canonical name of a format: its registry name, or its eXmY spelling.
std::string format_name(const Format& f);

// Registered names and aliases closest to `name` (edit distance), best first.
std::string suggest_format_names(std::string_view name);

// The special codes as `lowp formats` and lowp.formats() print them: the codes
// of +Inf and -Inf ("0x7C00 0xFC00"), every NaN code as ranges
// ("0x7C01..0x7FFF 0xFC01..0xFFFF"), or "none".
std::string inf_codes_text(const Format& f);
std::string nan_codes_text(const Format& f);

// The properties of a scalar format as one JSON object (compact text, keys in
// this order): name, kind ("float", "int", "table" or "posit"), bits, signed, summary; floats
// add exponent_bits, mantissa_bits, bias, emax, max_finite, min_normal,
// min_subnormal (null without subnormals), has_inf, has_nan,
// has_negative_zero, inf_codes, nan_codes; integers add min and max; code
// books add min, max, max_finite, has_negative_zero and values (the value of
// each code, in code order); posits add exponent_bits (es), max_finite
// (maxpos), min_positive (minpos), has_inf, has_nan, has_negative_zero and
// nan_codes (NaR). The one
// serializer of `lowp formats --json` and lowp.formats() / format_info().
std::string format_json(std::string_view name, const Format& f, std::string_view summary);

}  // namespace lowp
