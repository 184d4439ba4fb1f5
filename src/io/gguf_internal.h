// What gguf.cc (reading, values) and gguf_write.cc share: ggml's tensor type
// table and the sizes of GGUF's scalar value types.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "lowp/format/format.h"
#include "lowp/io/gguf.h"

namespace lowp::io::gguf_detail {

// One ggml tensor type: its number in GGUF files, its name (gguf-py's
// GGMLQuantizationType spelling), elements per block and bytes per block
// (ggml's type_traits blck_size and type_size).
struct GgmlType {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t block;
  std::uint32_t size;
  bool is_float;                   // read_f32 decodes it (a float or quantized type)
  const Format* format = nullptr;  // the scalar format whose codes it holds (F32, F16, BF16)
};

// ggml's scalar float types; read_f32 decodes every other type it can through
// ggml_dequantize (lowp/block/ggml_quants.h), whose type numbers are ggml's.
inline constexpr std::uint32_t kF32 = 0, kF16 = 1, kBF16 = 30;

const GgmlType* ggml_type_by_id(std::uint32_t id);         // null if unknown or removed
const GgmlType* ggml_type_by_name(std::string_view name);  // null if unknown
const GgmlType* ggml_type_by_format(const Format& f);      // the type holding f's codes, or null

// The stored bytes of a tensor with dimensions `ne` (innermost first), or
// nullopt if ne[0] is not a multiple of the block size or the count
// overflows. Every ne must be at most INT64_MAX.
std::optional<std::uint64_t> ggml_nbytes(const GgmlType& t, std::span<const std::uint64_t> ne);

// The byte size of a scalar value type (0 for kString and kArray).
std::size_t scalar_size(GgufType t);
bool is_valid_type(std::uint32_t t);

inline constexpr std::uint32_t kDefaultAlignment = 32;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

}  // namespace lowp::io::gguf_detail
