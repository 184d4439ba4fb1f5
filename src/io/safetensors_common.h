// Internal helpers shared by the safetensors reader and writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "element_type.h"
#include "lowp/format/format.h"

namespace lowp::io::safetensors_detail {

using detail::Decode;

// One safetensors dtype: how its elements read as fp32, and the lowp format
// whose codes they are (kF32 and kCode).
struct DTypeInfo {
  std::string_view name;  // as safetensors spells it
  std::size_t size;       // bytes per element
  Decode decode;
  Format format{};
};

// The dtype named `name`, or null.
const DTypeInfo* find_dtype(std::string_view name);
// The dtype that holds the codes of format f, or null.
const DTypeInfo* find_dtype(const Format& f);

// Number of bytes of `itemsize`-byte elements in `shape`, or nullopt when a
// dimension is negative or the product overflows 64 bits. A zero dimension
// makes the tensor empty whatever the other dimensions are.
std::optional<std::uint64_t> checked_bytes(std::span<const std::int64_t> shape,
                                           std::uint64_t itemsize);

// "[2, 3]" for errors.
std::string shape_text(std::span<const std::int64_t> shape);

// The metadata key that describes lowp's packed tensor `name`, and the name of
// its scales tensor.
inline std::string packed_metadata_key(std::string_view name) {
  return "lowp." + std::string(name);
}
inline std::string packed_scales_name(std::string_view name) {
  return std::string(name) + ".scales";
}
constexpr std::string_view kPackedPrefix = "lowp.";
// The one "lowp." key that is not a packed tensor's description: the model
// architecture of a lowp checkpoint (python/lowp/examples/charlm.py, src/nn).
constexpr std::string_view kArchKey = "lowp.arch";

// std::map-backed: ordered_json's lookups are linear, which a header with a
// million keys would turn into quadratic time.
using Json = nlohmann::json;

// Throws lowp::Error "SOURCE: WHAT".
[[noreturn]] void fail(std::string_view source, const std::string& what);

// Parses `text` as JSON, rejecting duplicate keys in any object and arrays or
// objects nested `max_depth` or more levels deep; the top-level keys are
// appended to `top_keys` (if given) in text order. Errors name `what`.
Json parse_json(std::string_view text, std::string_view source, const std::string& what,
                int max_depth, std::vector<std::string>* top_keys = nullptr);

// A JSON integer as uint64 (nullopt for non-integers and negative values).
std::optional<std::uint64_t> json_u64(const Json& j);
// A JSON integer as int64 (nullopt for non-integers and values past 2^63).
std::optional<std::int64_t> json_i64(const Json& j);
// A shape: a JSON array of integers in [0, 2^63); errors start with `where`.
std::vector<std::int64_t> json_shape(const Json& j, std::string_view source,
                                     const std::string& where);

}  // namespace lowp::io::safetensors_detail
