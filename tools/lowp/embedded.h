// The default model of `lowp report` and `lowp generate`, compiled into the
// tool: a byte-level GPT trained on the King James Bible
// (models/kjv-char/model.safetensors, see docs/embedded-model.md) and the
// held-out validation text the report evaluates (models/kjv-char/val.txt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace lowp::cli {

std::span<const std::byte> embedded_model();
std::span<const std::uint8_t> embedded_validation_text();

}  // namespace lowp::cli
