// Internal helpers shared by the safetensors reader and writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lowp::io::safetensors_detail {

// How a dtype's elements read as fp32.
enum class Decode : std::uint8_t {
  kF64,   // rounded to nearest-even
  kF32,   // as is
  kCode,  // a lowp scalar format code, decoded exactly
  kNone,  // integers and bool: not float
};

struct DTypeInfo {
  std::string_view name;    // as safetensors spells it
  std::size_t size;         // bytes per element
  Decode decode;
  std::string_view format;  // lowp format name for kCode
};

// The dtype named `name`, or null.
const DTypeInfo* find_dtype(std::string_view name);

// Number of bytes of `itemsize`-byte elements in `shape`, or nullopt when a
// dimension is negative or the product overflows 64 bits. A zero dimension
// makes the tensor empty whatever the other dimensions are.
std::optional<std::uint64_t> checked_bytes(std::span<const std::int64_t> shape, std::uint64_t itemsize);

// "[2, 3]" for errors.
std::string shape_text(std::span<const std::int64_t> shape);

// The metadata key that describes lowp's packed tensor `name`, and the name of
// its scales tensor.
inline std::string packed_metadata_key(std::string_view name) { return "lowp." + std::string(name); }
inline std::string packed_scales_name(std::string_view name) { return std::string(name) + ".scales"; }
constexpr std::string_view kPackedPrefix = "lowp.";

}  // namespace lowp::io::safetensors_detail
