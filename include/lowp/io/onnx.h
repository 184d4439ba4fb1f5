// lowp/io/onnx.h — ONNX-specific writing: patching tensor values into a copy of
// an ONNX model (reading is parse_onnx / open_model in lowp/io/model.h).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "lowp/io/model.h"

namespace lowp::io {

// Returns new values (C order, exactly the tensor's element count) for a
// tensor, or nullopt to keep it as is.
using OnnxReplacement = std::function<std::optional<std::vector<float>>(const TensorInfo&)>;

// Writes `in`'s file to `path_out` with the payload of every tensor for which
// `replacement` returns values overwritten in place: the new values are
// encoded into the tensor's own data type (FLOAT exactly; DOUBLE exactly;
// FLOAT16, BFLOAT16, FLOAT8* and FLOAT4E2M1 rounded to nearest-even with
// lowp's default, non-saturating overflow), so the payload keeps its size and
// every other byte of the file is unchanged.
//
// `replacement` is offered every float tensor (TensorInfo::is_float), once,
// in the order their bytes appear in the file. A tensor whose values are
// stored as varints (FLOAT16 etc. in int32_data) cannot be rewritten in place:
// returning values for it throws. `in` must be a reader from parse_onnx or
// open_model on an .onnx file. The output appears whole or not at all
// (AtomicFile); `path_out` may be the input's own path. Throws lowp::Error.
void write_onnx_replacing(const std::filesystem::path& path_out, const ModelReader& in,
                          const OnnxReplacement& replacement);

}  // namespace lowp::io
