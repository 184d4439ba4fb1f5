// safetensors writing (streaming, atomic) and lowp's packed-tensor entries.
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "lowp/error.h"
#include "lowp/io/atomic_file.h"
#include "lowp/io/chunk_stats.h"
#include "lowp/io/safetensors.h"
#include "safetensors_common.h"

namespace lowp::io {
namespace {

using namespace safetensors_detail;
using OrderedJson = nlohmann::ordered_json;  // keeps the key order written

// The checks write_safetensors makes of one entry: a known dtype, dimensions
// >= 0, and nbytes equal to what the shape needs (overflow-safe).
void check_output(const OutputTensor& t, const std::string& where) {
  const DTypeInfo* d = find_dtype(t.dtype);
  if (d == nullptr) throw Error(where + ": unknown safetensors dtype " + lowp::quoted(t.dtype));
  const std::optional<std::uint64_t> bytes = checked_bytes(t.shape, d->size);
  if (!bytes)
    throw Error(where + ": invalid shape " + shape_text(t.shape) + " (negative or too large)");
  if (*bytes != t.nbytes) {
    throw Error(where + ": shape " + shape_text(t.shape) + " of " + t.dtype + " needs " +
                std::to_string(*bytes) + " bytes, not " + std::to_string(t.nbytes));
  }
}

// The consistency of a PackedTensor: sizes that match its shape and format.
void check_packed(const std::string& name, const PackedTensor& t) {
  const std::string where = "packed tensor " + lowp::quoted(name);
  if (t.format.block_size < 1) throw Error(where + ": block size must be at least 1");
  const std::optional<std::uint64_t> count = checked_bytes(t.shape, 1);
  if (!count || *count > std::numeric_limits<std::uint64_t>::max() / 32) {
    throw Error(where + ": invalid shape " + shape_text(t.shape));
  }
  if (normalize_axis(t.axis, t.shape.size()) != t.axis)
    throw Error(where + ": axis must be normalized");
  if (t.elements.size() != packed_bytes(t.format.element.bits, static_cast<std::size_t>(*count))) {
    throw Error(where + ": " + std::to_string(t.elements.size()) +
                " element bytes do not match shape " + shape_text(t.shape));
  }
  const std::size_t rows = t.row_length() == 0 ? 0 : t.rows();
  if (t.scales.size() != rows * t.blocks_per_row()) {
    throw Error(where + ": " + std::to_string(t.scales.size()) + " scales do not match shape " +
                shape_text(t.shape));
  }
  if (!std::isfinite(t.tensor_scale)) throw Error(where + ": tensor_scale is not finite");
}

void put_u64le(std::uint64_t v, std::byte* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>(v >> (8 * i));
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const std::vector<OutputTensor>& tensors,
                       const Metadata& metadata, const ProduceTensor& produce) {
  write_safetensors(path, tensors, metadata, produce, SafetensorsWriteOptions{});
}

void write_safetensors(const std::filesystem::path& path, const std::vector<OutputTensor>& tensors,
                       const Metadata& metadata, const ProduceTensor& produce,
                       const SafetensorsWriteOptions& options) {
  std::vector<std::byte> kept;  // the latest tensor's bytes, alive while written
  write_safetensors_views(
      path, tensors, metadata,
      [&](std::size_t i) {
        kept = produce(i);
        return std::span<const std::byte>(kept);
      },
      options);
}

namespace {

// The header text (padded so the data starts 8-byte aligned), checked as
// write_safetensors documents.
std::string header_text(const std::string& file, const std::vector<OutputTensor>& tensors,
                        const Metadata& metadata) {
  // The header is assembled as text: ordered_json's linear lookups would
  // make a model with many tensors quadratic.
  std::string text = "{";
  // A JSON string; names and metadata must be UTF-8 (the format says so).
  auto json_string = [&](const std::string& s) {
    try {
      return Json(s).dump(-1, ' ', false, Json::error_handler_t::strict);
    } catch (const Json::exception&) {
      throw Error(file + ": " + lowp::quoted(s) + " is not valid UTF-8");
    }
  };
  if (!metadata.empty()) {
    std::unordered_set<std::string_view> keys;
    text += "\"__metadata__\":{";
    for (const auto& [key, value] : metadata) {
      if (!keys.insert(key).second)
        throw Error(file + ": duplicate metadata key " + lowp::quoted(key));
      text += (keys.size() > 1 ? "," : "") + json_string(key) + ":" + json_string(value);
    }
    text += "}";
  }
  std::unordered_set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const OutputTensor& t : tensors) {
    const std::string where = file + ": tensor " + lowp::quoted(t.name);
    if (t.name == "__metadata__") throw Error(where + ": the name is reserved");
    if (!names.insert(t.name).second) throw Error(where + ": duplicate tensor name");
    check_output(t, where);
    if (t.nbytes > std::numeric_limits<std::uint64_t>::max() - offset)
      throw Error(where + ": data exceeds 2^64 bytes");
    const OrderedJson entry = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    text += (text.size() > 1 ? "," : "") + json_string(t.name) + ":" + entry.dump();
    offset += t.nbytes;
  }
  text += "}";
  // Pad with spaces so the data buffer starts 8-byte aligned, as the
  // reference implementation does.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kSafetensorsMaxHeader)
    throw Error(file + ": header exceeds " + std::to_string(kSafetensorsMaxHeader) + " bytes");
  return text;
}

void write_header(AtomicFile& out, const std::string& text) {
  std::byte length[8];
  put_u64le(text.size(), length);
  out.write(length);
  out.write(std::as_bytes(std::span(text)));
}

// The statistics pass: `first` holds the whole file without statistics; read
// it back with lowp's reader, and write `path` again with them in the header
// (the data bytes copied as they are).
void rewrite_with_chunk_stats(const std::filesystem::path& path, const AtomicFile& first,
                              const std::vector<OutputTensor>& tensors, Metadata metadata,
                              std::size_t old_header, std::int64_t rows) {
  const std::string file = path.string();
  auto map = std::make_shared<const MappedFile>(first.temp_path());
  const std::unique_ptr<ModelReader> reader = parse_safetensors(map->bytes(), file, map);
  reader->set_mapping(map);
  std::vector<ChunkStats> stats;
  for (const TensorInfo& t : reader->tensors()) {
    if (!t.is_float) continue;
    stats.push_back(compute_chunk_stats(*reader, t, rows));
    reader->release(t);
  }
  metadata.emplace_back(std::string(kChunkStatsKey), chunk_stats_json(stats));
  const std::string text = header_text(file, tensors, metadata);
  AtomicFile out(path);
  write_header(out, text);
  const std::span<const std::byte> data = map->bytes().subspan(8 + old_header);
  constexpr std::size_t kPiece = std::size_t{64} << 20;
  for (std::size_t at = 0; at < data.size(); at += kPiece) {
    const std::span<const std::byte> piece = data.subspan(at, std::min(kPiece, data.size() - at));
    out.write(piece);
    map->release(piece);
  }
  out.commit();
}

}  // namespace

void write_safetensors_views(const std::filesystem::path& path,
                             const std::vector<OutputTensor>& tensors, const Metadata& metadata,
                             const ProduceTensorView& produce,
                             const SafetensorsWriteOptions& options) {
  const std::string file = path.string();
  if (options.chunk_stats_rows < 0)
    throw Error(file + ": chunk statistics need at least 1 row per chunk");
  const bool stats = options.chunk_stats_rows > 0;
  Metadata plain = metadata;
  if (stats) std::erase_if(plain, [](const auto& kv) { return kv.first == kChunkStatsKey; });
  const std::string text = header_text(file, tensors, plain);
  AtomicFile out(path);
  write_header(out, text);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::span<const std::byte> bytes = produce(i);
    if (bytes.size() != tensors[i].nbytes) {
      throw Error(file + ": tensor " + lowp::quoted(tensors[i].name) + ": producer returned " +
                  std::to_string(bytes.size()) + " bytes, expected " +
                  std::to_string(tensors[i].nbytes));
    }
    out.write(bytes);
  }
  if (stats) {
    rewrite_with_chunk_stats(path, out, tensors, std::move(plain), text.size(),
                             options.chunk_stats_rows);
    return;  // `out`, never committed, removes its temporary
  }
  out.commit();
}

std::vector<OutputTensor> packed_tensor_outputs(const std::string& name, const PackedTensor& t,
                                                ScaleRule rule, Metadata& metadata) {
  check_packed(name, t);
  const OrderedJson description = {{"format", block_format_name(t.format)},
                                   {"block_size", t.format.block_size},
                                   {"axis", t.axis},
                                   {"shape", t.shape},
                                   {"scale_rule", std::string(scale_rule_name(rule))},
                                   {"tensor_scale", static_cast<double>(t.tensor_scale)}};
  metadata.emplace_back(packed_metadata_key(name), description.dump());
  const auto elements = static_cast<std::int64_t>(t.elements.size());
  const auto scales = static_cast<std::int64_t>(t.scales.size());
  return {OutputTensor{name, "U8", {elements}, t.elements.size()},
          OutputTensor{packed_scales_name(name), "U8", {scales}, t.scales.size()}};
}

std::vector<std::byte> packed_tensor_bytes(const PackedTensor& t, std::size_t part) {
  if (part > 1) throw Error("packed_tensor_bytes: part must be 0 (elements) or 1 (scales)");
  const std::vector<std::uint8_t>& src = part == 0 ? t.elements : t.scales;
  const auto bytes = std::as_bytes(std::span(src));
  return {bytes.begin(), bytes.end()};
}

std::vector<OutputTensor> packed_matrix_outputs(const std::string& name, const MatrixFormat& f,
                                                std::span<const std::int64_t> shape,
                                                Metadata& metadata) {
  if (f.scheme == MatrixScheme::kPlain || f.scheme == MatrixScheme::kBlock) {
    throw Error("tensor " + lowp::quoted(name) + ": " + lowp::quoted(f.name) +
                " is not a scaled matrix format");
  }
  const std::optional<std::uint64_t> count = checked_bytes(shape, 1);
  if (!count) throw Error("tensor " + lowp::quoted(name) + ": invalid shape " + shape_text(shape));
  const std::size_t rows = shape.size() < 2 ? 1 : static_cast<std::size_t>(shape[0]);
  const std::size_t cols = rows == 0 ? 0 : static_cast<std::size_t>(*count) / rows;
  // ":tensor" spelled out: a bare scalar name in a file reads as a plain cast.
  const std::string spelling = f.scheme == MatrixScheme::kTensor ? f.name + ":tensor" : f.name;
  const OrderedJson description = {{"format", spelling}, {"shape", shape}};
  metadata.emplace_back(packed_metadata_key(name), description.dump());
  const std::size_t code_bytes = rows * PackedMatrix::row_bytes(f, cols);
  std::size_t scales = 1;
  if (f.scheme == MatrixScheme::kChannel) scales = rows;
  if (f.scheme == MatrixScheme::kGroup) {
    const auto g = static_cast<std::size_t>(f.group);
    scales = rows * ((cols + g - 1) / g) * (f.two_scales() ? 2 : 1);
  }
  const bool f16 = f.scheme == MatrixScheme::kGroup;
  std::vector<OutputTensor> out = {
      OutputTensor{name, "U8", {static_cast<std::int64_t>(code_bytes)}, code_bytes},
      OutputTensor{packed_scales_name(name),
                   f16 ? "F16" : "F32",
                   {static_cast<std::int64_t>(scales)},
                   scales * (f16 ? 2 : 4)}};
  if (f.zero_points()) {
    out.push_back(OutputTensor{name + ".zeros", "U8", {static_cast<std::int64_t>(scales)}, scales});
  }
  return out;
}

std::vector<std::byte> packed_matrix_bytes(const PackedMatrix& m, std::size_t part) {
  const MatrixScales& s = m.scales();
  std::vector<std::byte> out;
  const auto put = [&](std::uint32_t bits, std::size_t size) {
    for (std::size_t b = 0; b < size; ++b) out.push_back(static_cast<std::byte>(bits >> (8 * b)));
  };
  switch (part) {
    case 0: {
      const auto bytes = std::as_bytes(m.codes());
      return {bytes.begin(), bytes.end()};
    }
    case 1:
      if (m.format().scheme == MatrixScheme::kTensor)
        put(std::bit_cast<std::uint32_t>(s.tensor), 4);
      for (float v : s.row) put(std::bit_cast<std::uint32_t>(v), 4);
      for (std::uint16_t v : s.group) put(v, 2);
      return out;
    case 2:
      if (m.format().zero_points()) {
        const auto bytes = std::as_bytes(std::span(s.zero));
        return {bytes.begin(), bytes.end()};
      }
      break;
    default:
      break;
  }
  throw Error("packed_matrix_bytes: no part " + std::to_string(part) + " for " + m.format().name);
}

OutputTensor f32_output(const std::string& name, std::vector<std::int64_t> shape) {
  const std::optional<std::uint64_t> bytes = checked_bytes(shape, 4);
  if (!bytes) throw Error("tensor " + lowp::quoted(name) + ": invalid shape " + shape_text(shape));
  return OutputTensor{name, "F32", std::move(shape), *bytes};
}

std::vector<std::byte> f32_bytes(std::span<const float> values) {
  std::vector<std::byte> out(values.size() * 4);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(values[i]);
    for (std::size_t b = 0; b < 4; ++b) out[4 * i + b] = static_cast<std::byte>(bits >> (8 * b));
  }
  return out;
}

}  // namespace lowp::io
