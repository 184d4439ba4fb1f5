// lowp/io/chunk_stats.h — per-chunk statistics of a safetensors file's
// tensors (min, max, amax, non-finite count per run of rows), kept in the
// header's "__metadata__" so that a reader can see each tensor's range, and
// skip the chunks it does not need, without reading the tensor data.
//
// Storage: one metadata entry, key "lowp_chunk_stats", whose value (a string,
// as the safetensors spec requires of metadata values) is compact JSON text:
//
//   {"version":1,"tensors":{"<name>":{"rows":R,"chunks":C,
//     "min":[..C..],"max":[..C..],"amax":[..C..],"nonfinite":[..C..]},...}}
//
//  * Tensors: every float tensor of the file as lowp's reader lists it (a
//    packed tensor under its own name and logical shape, with its DECODED
//    values: what read_f32 gives, e.g. codes times scales for mxfp4, the
//    values themselves for F32/BF16/F16/F8). Integer tensors have none.
//  * Chunks run along the first axis: chunk k holds rows [k*R, min((k+1)*R,
//    rows)) of the tensor's 2-D view [shape[0], rest], i.e. a contiguous run
//    of elements [k*R*row, ...). A 1-D tensor's rows are its elements; a 0-D
//    tensor is one row. An empty tensor has zero chunks.
//  * R is the rows asked for (--chunk-stats=ROWS), raised where needed so
//    that no tensor has more than kChunkStatsMaxChunks chunks:
//    R = max(ROWS, ceil(rows / kChunkStatsMaxChunks)).
//  * min, max: the least and greatest finite value of the chunk (-0 counts
//    as below +0, so the result does not depend on the order of the values);
//    amax: the greatest finite magnitude; nonfinite: how many values are NaN
//    or ±inf. A chunk with no finite value has null for min, max and amax.
//    Numbers are the shortest decimal that reads back (as a float32, or as a
//    double rounded to float32) as the same float32.
//
// The header's other entries are unchanged, so every other safetensors reader
// loads the tensors as before. Reading checks the entry as hostile input:
// anything malformed is a lowp::Error with one line naming the source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/io/model.h"

namespace lowp::io {

// The metadata key of the statistics (the "lowp_" prefix: quantize drops the
// input's lowp_ keys, so a rewritten file never carries stale statistics).
constexpr std::string_view kChunkStatsKey = "lowp_chunk_stats";
// The most chunks one tensor gets (the header cost per tensor is bounded by
// about kChunkStatsMaxChunks * 70 bytes).
constexpr std::int64_t kChunkStatsMaxChunks = 1024;
// Rows per chunk of `--chunk-stats` without a value.
constexpr std::int64_t kChunkStatsDefaultRows = 64;

// The statistics of one tensor.
struct ChunkStats {
  std::string tensor;
  std::int64_t rows = 1;              // rows per chunk (R above)
  std::vector<float> min, max, amax;  // NaN where a chunk holds no finite value
  std::vector<std::uint64_t> nonfinite;

  std::size_t chunks() const { return min.size(); }
  bool operator==(const ChunkStats& o) const;  // bit for bit (NaN equals NaN)
};

// Rows of the 2-D view [shape[0], rest] (a 1-D tensor's elements; 1 for 0-D)
// and elements per row.
std::uint64_t chunk_rows_of(std::span<const std::int64_t> shape);
std::uint64_t chunk_row_length(std::span<const std::int64_t> shape);
// R for a tensor of `shape` when `requested` rows per chunk are asked for
// (requested >= 1).
std::int64_t chunk_rows_for(std::span<const std::int64_t> shape, std::int64_t requested);

// Statistics of values (a tensor of `shape` in C order), R rows per chunk.
ChunkStats chunk_stats_of(std::string name, std::span<const std::int64_t> shape,
                          std::span<const float> values, std::int64_t rows_per_chunk);

// Statistics of tensor t of `reader`, read chunk by chunk where the reader can
// (read_f32_range), else whole; `requested` as for chunk_rows_for.
ChunkStats compute_chunk_stats(const ModelReader& reader, const TensorInfo& t,
                               std::int64_t requested);

// The metadata value for `stats` (in the given order).
std::string chunk_stats_json(std::span<const ChunkStats> stats);

// The statistics of `reader`'s file (empty when it has no kChunkStatsKey
// entry), checked against its tensors: valid JSON of the shape above, version
// 1, every name a float tensor of the file, R >= 1, chunk counts that match
// the tensor's shape and R, arrays of exactly that many numbers (null allowed
// for min/max/amax), min <= max and amax = max(|min|, |max|) where present,
// counts within the chunk's size. Throws lowp::Error "SOURCE: chunk
// statistics: WHAT" otherwise.
std::vector<ChunkStats> read_chunk_stats(const ModelReader& reader, std::string_view source);

// A difference between stored statistics and the data: "tensor 'x' chunk 3
// (rows 192..255): stored max 1.5, data 1.75". Compares every tensor of
// `stored` with compute_chunk_stats; returns the first mismatch, or nullopt.
std::optional<std::string> check_chunk_stats(const ModelReader& reader,
                                             std::span<const ChunkStats> stored);

}  // namespace lowp::io
