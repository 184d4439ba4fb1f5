// How an element type of a model file holds real numbers: the vocabulary of the
// dtype tables of safetensors (safetensors_common.cc) and ONNX (onnx.cc), which
// map each file format's type names to lowp Formats in both directions (reading
// a tensor as fp32, and finding the type that stores a format's codes).
// Internal to lowp.
#pragma once

#include <cstdint>

#include "lowp/format/format.h"

namespace lowp::io::detail {

enum class Decode : std::uint8_t {
  kF64,   // IEEE binary64, rounded to fp32 to nearest even
  kF32,   // IEEE binary32 (lowp's fp32), its bits kept as they are (NaN payloads too)
  kCode,  // codes of a lowp scalar format, decoded exactly
  kNone,  // integers, bool, strings, complex: not real numbers
};

// The lowp format whose codes an element type holds (kF32: fp32; kCode: the
// table's format), if any.
constexpr bool holds_format(Decode d) { return d == Decode::kF32 || d == Decode::kCode; }

}  // namespace lowp::io::detail
