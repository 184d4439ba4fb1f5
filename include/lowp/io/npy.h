// lowp/io/npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Reads little-endian (or byte-order-free) C-order arrays of the dtypes lowp
// uses; anything else (big-endian, Fortran order, object arrays, structured
// dtypes, truncated or oversized data, malformed headers) is rejected with a
// lowp::Error whose one-line message names the file and the problem.
// Writes version 1.0 files (2.0 when the header needs it) atomically: to a
// temporary file in the destination directory, renamed into place when complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowp::io {

enum class DType : std::uint8_t {
  kF64,   // '<f8'
  kF32,   // '<f4'
  kF16,   // '<f2'
  kBF16,  // '<V2' / '|V2': how ml_dtypes' bfloat16 arrays are saved
  kI8,    // '|i1'
  kU8,    // '|u1'
  kI16,   // '<i2'
  kU16,   // '<u2'
  kI32,   // '<i4'
  kU32,   // '<u4'
  kI64,   // '<i8'
  kU64,   // '<u8'
  kBool,  // '|b1'
};

std::size_t dtype_size(DType t);
// A readable name: "float32", "bfloat16", "uint8", ...
std::string_view dtype_name(DType t);
// The descr string written in headers: "<f4", "|u1", ...
std::string_view dtype_descr(DType t);

struct NpyArray {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;  // empty for a 0-d array
  std::vector<std::byte> data;      // element_count() * dtype_size(dtype) bytes, C order

  std::size_t element_count() const;
};

// Parses a whole .npy image held in memory; `source` names it in errors.
NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view source);

// Where the data of a whole .npy image lies, without copying it: the header is
// parsed and the data length checked exactly as parse_npy does.
struct NpyLayout {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;
  std::size_t data_bytes = 0;
};
NpyLayout parse_npy_layout(std::span<const std::byte> bytes, std::string_view source);

// Reads a .npy file. Throws lowp::Error naming the path on any problem.
NpyArray read_npy(const std::filesystem::path& path);

// The bytes of a .npy file holding `data` (C order) with the given dtype and shape.
std::vector<std::byte> serialize_npy(DType dtype, std::span<const std::int64_t> shape,
                                     std::span<const std::byte> data);

// Writes a .npy file atomically (temporary file + rename). Throws lowp::Error
// naming the path if it cannot; no partial file is left behind.
void write_npy(const std::filesystem::path& path, DType dtype, std::span<const std::int64_t> shape,
               std::span<const std::byte> data);

// Writes `bytes` to `path` atomically: a temporary file in the same directory,
// flushed, then renamed over `path`. On failure the temporary is removed and a
// lowp::Error naming `path` is thrown.
void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes);

}  // namespace lowp::io
