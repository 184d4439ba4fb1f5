// lowp/block/format_json.h — format properties as JSON: a block format's, and
// the whole registry's (every scalar format, then every block format). The one
// serializer of `lowp formats --json` and the Python bindings' lowp.formats()
// and lowp.format_info(); lowp::format_json (lowp/format/registry.h) is the
// scalar formats' part.
#pragma once

#include <string>
#include <string_view>

#include "lowp/block/block_format.h"

namespace lowp {

// The properties of a block format as one JSON object (compact text, keys in
// this order): name, kind ("block"), element (its scalar format's name),
// block_size, scale, bits_per_value (scales included), element_max,
// element_emax, summary.
std::string block_format_json(std::string_view name, const BlockFormat& f,
                              std::string_view summary);

// A JSON array of every registered format, scalar (format_json) then block
// (block_format_json), each with its registry name and summary.
std::string registry_json();

}  // namespace lowp
