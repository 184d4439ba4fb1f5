// lowp/io/gguf.h — GGUF (ggml's model file format, versions 2 and 3): typed
// metadata values and the writer. (ggml's block layouts, their decoders and
// reference quantizers are lowp/block/ggml.h and lowp/block/ggml_quants.h.)
//
// Reading goes through parse_gguf / open_model (lowp/io/model.h); gguf_kv()
// gives the typed key-value pairs of such a reader, so that a tool can copy
// them into write_gguf unchanged.
//
// Layout (ggml docs/gguf.md), all little-endian:
//   "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count × (string key, u32 value type, value),
//   tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type,
//                   u64 offset relative to the data section),
//   zero padding to general.alignment (default 32), the data section.
// A string is a u64 byte count and the bytes (no terminator). ne[0] is the
// innermost (fastest-varying) dimension: TensorInfo::shape is ne reversed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowp/format/format.h"
#include "lowp/io/model.h"

namespace lowp::io {

// GGUF's metadata value types, with their numbers in the file.
enum class GgufType : std::uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
// "UINT8", ..., "FLOAT64" (gguf.md's names without the prefix).
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars keep their exact bits (so copying a file's
// metadata keeps NaN payloads and -0), strings their exact bytes.
struct GgufValue {
  GgufType type = GgufType::kU32;
  std::uint64_t bits = 0;              // scalars: the value's bits, zero-extended
  std::string str;                     // kString
  GgufType elem_type = GgufType::kU8;  // kArray: the type of every item
  std::vector<GgufValue> items;        // kArray

  static GgufValue u8(std::uint8_t v);
  static GgufValue i8(std::int8_t v);
  static GgufValue u16(std::uint16_t v);
  static GgufValue i16(std::int16_t v);
  static GgufValue u32(std::uint32_t v);
  static GgufValue i32(std::int32_t v);
  static GgufValue u64(std::uint64_t v);
  static GgufValue i64(std::int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // An array of `elem_type`; every item must have that type (write_gguf checks).
  static GgufValue array(GgufType elem_type, std::vector<GgufValue> items);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue f32s(std::span<const float> v);
  static GgufValue i32s(std::span<const std::int32_t> v);

  // Scalar accessors: nullopt when the value is not of a fitting type
  // (as_u64 takes any non-negative integer, as_i64 any integer in range,
  // as_f64 any float or integer type).
  std::optional<std::uint64_t> as_u64() const;
  std::optional<std::int64_t> as_i64() const;
  std::optional<double> as_f64() const;

  // As metadata() shows it: numbers in shortest round-trip form, bools as
  // true/false, strings verbatim at the top level and JSON-quoted inside
  // arrays, arrays as [a, b, ...] with the items past the 16th elided as
  // "... (N items)".
  std::string to_text() const;

  friend bool operator==(const GgufValue&, const GgufValue&) = default;
};

using GgufKv = std::pair<std::string, GgufValue>;

// The typed metadata of a reader made by parse_gguf (or open_model on a GGUF
// file), in file order. Throws lowp::Error if `reader` is not a GGUF reader.
const std::vector<GgufKv>& gguf_kv(const ModelReader& reader);

// The stored byte count of a tensor of ggml type `dtype` ("F32", "Q8_0", any
// ggml type name as TensorInfo::dtype spells it) and logical `shape`
// (outermost first). Throws lowp::Error for an unknown type, a negative
// dimension, a last dimension that is not a multiple of the type's block
// size, or a size that does not fit in 64 bits.
std::uint64_t gguf_tensor_nbytes(std::string_view dtype, std::span<const std::int64_t> shape);

// The scalar format whose codes a ggml type holds ("F32" -> fp32, "F16" ->
// fp16, "BF16" -> bf16), or nullopt (block types, integers, F64, unknown
// names). gguf_type_for is the other direction: the ggml type that stores
// codes of f, or "" if there is none. One table (src/io/gguf.cc) answers both.
std::optional<Format> gguf_type_format(std::string_view type);
std::string_view gguf_type_for(const Format& f);

// The name of the F32 tensor that holds an NVFP4 tensor's per-tensor scale,
// as llama.cpp's converter names it (convert_hf_to_gguf.py _repack_nvfp4:
// ".weight" replaced by ".scale"): "blk.0.attn_q.weight" ->
// "blk.0.attn_q.scale"; a name without ".weight" gets ".scale" appended.
// Reading an NVFP4 tensor multiplies ggml's block values by it (in fp32, one
// rounding); llama.cpp multiplies the matrix product by it instead. The
// converter leaves it out when the scale is 1, so a missing one means 1; one
// that is present must be F32 with one value, or for a rank-3 tensor one per
// outermost slice (experts), all finite (else read_f32 throws, naming both).
std::string gguf_nvfp4_scale_name(std::string_view tensor_name);

// The F32 scale tensors of a GGUF reader's NVFP4 tensors (those named
// gguf_nvfp4_scale_name of an NVFP4 tensor): scale tensor name -> the name of
// the tensor it scales. read_f32 of an NVFP4 tensor has applied its scale
// already, so a writer that decodes the tensor drops the scale tensor (and a
// writer that copies the NVFP4 bytes keeps it). Empty for other readers.
std::map<std::string, std::string> gguf_nvfp4_scales(const ModelReader& reader);

// Writes a GGUF version 3 file through an AtomicFile: `kv` in order, then the
// tensor infos, then each tensor's bytes from `produce` (called once per
// tensor, in order), each padded to the alignment. The alignment is
// general.alignment when `kv` has it (it must then be a UINT32 power of two),
// else GGUF's default 32 (and no key is added). Tensor dtypes are ggml type
// names: "F32", "F16", "BF16", "Q8_0", "MXFP4", or any other known ggml type
// (its bytes are copied as produced). Throws lowp::Error naming `path` for
// duplicate keys or tensor names, badly formed values, unknown dtypes, an
// nbytes that does not match dtype and shape, or a producer that returns the
// wrong number of bytes; the target is then left untouched.
void write_gguf(const std::filesystem::path& path, std::span<const GgufKv> kv,
                std::span<const OutputTensor> tensors, const ProduceTensor& produce);

}  // namespace lowp::io
