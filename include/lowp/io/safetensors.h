// lowp/io/safetensors.h — safetensors files (Hugging Face's format), with
// lowp's packed block formats and published MXFP4 checkpoints on top.
//
// File layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// (possibly padded with trailing spaces), then the data buffer. The JSON is an
// object of tensor entries {"dtype": "F32", "shape": [..], "data_offsets":
// [begin, end]} (offsets relative to the data buffer) plus an optional
// "__metadata__" object of string values.
//
// Reading (parse_safetensors in model.h / open_model):
//  * Plain dtypes F64, F32, F16, BF16, F8_E4M3, F8_E5M2, F8_E8M0 read as fp32
//    (F64 rounded to nearest-even, the others exactly); I8, U8, I16, U16, I32,
//    U32, I64, U64 and BOOL are listed with is_float = false.
//  * Published MXFP4 checkpoints (OpenAI gpt-oss): a pair "<name>_blocks" (U8,
//    shape [..., G, 16], 32 E2M1 codes per 16 bytes, element 2i in the low
//    nibble) and "<name>_scales" (U8, shape [..., G], E8M0) is one tensor
//    "<name>" of dtype "mxfp4" and shape [..., G*32]. The ".blocks"/".scales"
//    spelling of the original gpt-oss checkpoints is accepted too.
//  * ModelOpt NVFP4 (lowp/io/layouts.h): a U8 matrix "<name>" [rows, cols/2]
//    with "<name>_scale" (F8_E4M3 [rows, cols/16]) and "<name>_scale_2" (one
//    F32) is one tensor "<name>" of dtype "nvfp4" and shape [rows, cols].
//  * compressed-tensors (lowp/io/layouts.h): "<name>_packed" U8 [rows, cols/2]
//    with "<name>_scale" (F8_E4M3) and "<name>_global_scale" (F32 [1], g) is
//    one tensor "<name>" of dtype "nvfp4" whose tensor scale is fp32(1 / g);
//    "<name>_packed" I32 [rows, words] with "<name>_scale" (F32, F16 or BF16
//    [rows, groups]), "<name>_shape" (I64 [2]) and optionally
//    "<name>_zero_point" is one tensor "<name>" of dtype "int4:group128",
//    "int8:channel", "int4:group32:asym", ... (2-, 4- and 8-bit codes). Either
//    "_packed" tensor with one of its parts beside it claims the convention;
//    a missing or malformed part is then an error naming it.
//  * lowp's packed tensors (written by packed_tensor_outputs): U8 tensors
//    "<name>" (the element bit stream) and "<name>.scales" plus the metadata
//    entry "lowp.<name>" describing them are one tensor "<name>" whose dtype is
//    the block format's name ("mxfp4", "nvfp4", "mx:e3m4:32", ...) and whose
//    shape is the logical one. The "lowp." metadata prefix is reserved for this,
//    except "lowp.arch", the architecture of a lowp model checkpoint
//    (lowp/nn/gpt.h).
//  * lowp's packed matrices (written by packed_matrix_outputs, below): "<name>",
//    "<name>.scales" and for :asym "<name>.zeros", described by "lowp.<name>",
//    are one tensor "<name>" whose dtype is the matrix format's spelling
//    ("int4:group32", "int8:channel", "fp8_e4m3:tensor", ...); read_f32 decodes
//    exactly as PackedMatrix::dequantize.
//  For these combined tensors, TensorInfo's offset and nbytes (and raw())
//  cover the element bytes; read_f32 decodes exactly as lowp::dequantize.
//  Tensors are listed in file order (by data offset; in header order among
//  empty tensors at the same offset), metadata sorted by key. Gaps between tensors and
//  bytes after the last one are allowed (the reference implementation rejects
//  them); overlapping tensors are not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/tensor.h"
#include "lowp/io/model.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::io {

// The largest JSON header accepted (and written): 100 MB, as the reference
// implementation's MAX_HEADER_SIZE.
constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

// Bytes per element of a safetensors dtype ("F32" -> 4), or 0 if unknown.
std::size_t safetensors_dtype_size(std::string_view dtype);

// The scalar format whose codes a safetensors dtype holds ("F32" -> fp32,
// "F8_E4M3" -> fp8_e4m3, ...), or nullopt (F64, the integers, BOOL, unknown
// names). safetensors_dtype_for is the other direction: the dtype that stores
// codes of f ("BF16" for bf16), or "" if safetensors has none. One table
// (src/io/safetensors_common.cc) answers both.
std::optional<Format> safetensors_dtype_format(std::string_view dtype);
std::string_view safetensors_dtype_for(const Format& f);

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Writes a safetensors file through an AtomicFile (the file appears whole or
// not at all): the header lists `tensors` in the given order with contiguous
// data offsets, `metadata` as "__metadata__" (omitted when empty), and is
// padded with spaces so the data starts 8-byte aligned. Then produce(i) is
// called once per tensor, in order, and must return exactly tensors[i].nbytes
// bytes. Throws lowp::Error (naming the path and tensor) for an unknown dtype,
// a negative dimension, nbytes that do not match the shape, duplicate or
// reserved names ("__metadata__"), duplicate metadata keys, text that is not
// UTF-8, a producer that returns the wrong size, or an I/O error.
void write_safetensors(const std::filesystem::path& path, const std::vector<OutputTensor>& tensors,
                       const Metadata& metadata, const ProduceTensor& produce);
// The same with a producer that returns a view of bytes it keeps alive until
// it is called again (or the write ends): a caller that fills one buffer
// tensor after tensor writes without a copy.
using ProduceTensorView = std::function<std::span<const std::byte>(std::size_t index)>;

// lowp-native options of the writer; the file stays standard safetensors.
struct SafetensorsWriteOptions {
  // When >= 1: per-chunk statistics (lowp/io/chunk_stats.h) of every float
  // tensor, `chunk_stats_rows` rows per chunk (raised to keep at most
  // kChunkStatsMaxChunks chunks), in the metadata entry "lowp_chunk_stats"
  // (replacing one the caller passed). The header comes before the data, so
  // the file is written once, read back with lowp's reader (the decoded
  // values any reader gets), and written again with the statistics in its
  // header: about one extra read and one extra write of the file.
  std::int64_t chunk_stats_rows = 0;
};
void write_safetensors_views(const std::filesystem::path& path,
                             const std::vector<OutputTensor>& tensors, const Metadata& metadata,
                             const ProduceTensorView& produce,
                             const SafetensorsWriteOptions& options = {});
void write_safetensors(const std::filesystem::path& path, const std::vector<OutputTensor>& tensors,
                       const Metadata& metadata, const ProduceTensor& produce,
                       const SafetensorsWriteOptions& options);

// lowp's packed form of `t` under `name`: returns the two output tensors
// ("<name>" and "<name>.scales", both U8 and 1-d) and appends the "lowp.<name>"
// metadata entry (format, block_size, axis, shape, scale_rule, tensor_scale).
// `rule` is recorded for information only; decoding does not depend on it.
// Throws lowp::Error if t is inconsistent (sizes that do not match its shape
// and format, a non-finite tensor_scale).
std::vector<OutputTensor> packed_tensor_outputs(const std::string& name, const PackedTensor& t,
                                                ScaleRule rule, Metadata& metadata);
// The bytes of packed_tensor_outputs' entry `part` (0: elements, 1: scales).
std::vector<std::byte> packed_tensor_bytes(const PackedTensor& t, std::size_t part);

// lowp's packed form of a tensor stored as a PackedMatrix of a scaled matrix
// format f (:tensor, :channel, :group<K>[:asym]; lowp/storage/matrix_format.h)
// over its 2-D view [shape[0], the rest]: "<name>" (U8, the codes, each row
// from a byte), "<name>.scales" (F32: the tensor or row scales; F16: the group
// scales, row-major) and with :asym "<name>.zeros" (U8, one per group), all
// 1-d; appends "lowp.<name>" = {"format", "shape"}. Read back as one tensor
// "<name>" whose dtype is the format's spelling.
std::vector<OutputTensor> packed_matrix_outputs(const std::string& name, const MatrixFormat& f,
                                                std::span<const std::int64_t> shape,
                                                Metadata& metadata);
// The bytes of packed_matrix_outputs' entry `part` (0: codes, 1: scales, 2: zeros).
std::vector<std::byte> packed_matrix_bytes(const PackedMatrix& m, std::size_t part);

// Helpers for plain tensors: an F32 output entry, and its bytes (little-endian).
OutputTensor f32_output(const std::string& name, std::vector<std::int64_t> shape);
std::vector<std::byte> f32_bytes(std::span<const float> values);

// A tensor of a safetensors reader (open_model, parse_safetensors) stored as a
// scaled matrix (lowp's packed matrices, compressed-tensors pack-quantized,
// FP8 with scales) as its PackedMatrix, codes and scales as stored, so that a
// writer can copy it without requantizing; nullopt for any other tensor or
// reader. Throws lowp::Error naming the tensor where the storage does not fit
// its format.
std::optional<PackedMatrix> safetensors_packed_matrix(const ModelReader& reader,
                                                      const TensorInfo& t);

}  // namespace lowp::io
