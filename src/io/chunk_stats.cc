// Per-chunk statistics of safetensors tensors (lowp/io/chunk_stats.h): computing
// them, writing them as the "lowp_chunk_stats" metadata text, and reading that
// text back as hostile input.
#include "lowp/io/chunk_stats.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "lowp/error.h"
#include "safetensors_common.h"

namespace lowp::io {
namespace {

using safetensors_detail::Json;

constexpr float kNone = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

bool same_bits(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// The running statistics of one chunk.
struct Accumulator {
  float min = kNone, max = kNone, amax = kNone;
  std::uint64_t nonfinite = 0;

  void add(std::span<const float> values) {
    for (const float v : values) {
      if (!std::isfinite(v)) {
        ++nonfinite;
        continue;
      }
      if (std::isnan(min)) {
        min = max = v;
        amax = std::fabs(v);
        continue;
      }
      // -0 below +0: the result is the same in whatever order the values come.
      if (v < min || (v == min && std::signbit(v))) min = v;
      if (v > max || (v == max && !std::signbit(v))) max = v;
      amax = std::max(amax, std::fabs(v));
    }
  }
};

// The shortest decimal that reads back as v ("null" for NaN: no finite value).
void append_number(std::string& out, float v) {
  if (std::isnan(v)) {
    out += "null";
    return;
  }
  if (v == 0.0f && std::signbit(v)) {
    out += "-0.0";  // "-0" would read as the integer 0 in some JSON parsers (nlohmann's)
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// The float32 whose shortest decimal (as append_number writes it) reads as
// the double d. Rounding d to float32 gives it except for a few values where
// the double rounding lands on a neighbour (e.g. 7.038531e-26, bits
// 0x15ae43fd: checked over all float32), so the neighbours are tried too; a
// number no float32 writes (hand-made) is d rounded to float32.
float float_of_text(double d) {
  const auto f = static_cast<float>(d);
  if (!std::isfinite(f)) return f;
  for (const float g : {f, std::nextafter(f, -kInf), std::nextafter(f, kInf)}) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, g);
    double back = 0;
    std::from_chars(buf, r.ptr, back);
    if (back == d) return g;
  }
  return f;
}

std::string rows_text(std::uint64_t first, std::uint64_t last) {
  return "rows " + std::to_string(first) + ".." + std::to_string(last);
}

}  // namespace

bool ChunkStats::operator==(const ChunkStats& o) const {
  if (tensor != o.tensor || rows != o.rows || nonfinite != o.nonfinite ||
      min.size() != o.min.size() || max.size() != o.max.size() || amax.size() != o.amax.size())
    return false;
  for (std::size_t i = 0; i < min.size(); ++i) {
    if (!same_bits(min[i], o.min[i])) return false;
  }
  for (std::size_t i = 0; i < max.size(); ++i) {
    if (!same_bits(max[i], o.max[i])) return false;
  }
  for (std::size_t i = 0; i < amax.size(); ++i) {
    if (!same_bits(amax[i], o.amax[i])) return false;
  }
  return true;
}

std::uint64_t chunk_rows_of(std::span<const std::int64_t> shape) {
  return shape.empty() ? 1 : static_cast<std::uint64_t>(std::max<std::int64_t>(0, shape[0]));
}

std::uint64_t chunk_row_length(std::span<const std::int64_t> shape) {
  std::uint64_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i)
    n *= static_cast<std::uint64_t>(std::max<std::int64_t>(0, shape[i]));
  return n;
}

std::int64_t chunk_rows_for(std::span<const std::int64_t> shape, std::int64_t requested) {
  if (requested < 1) throw Error("chunk statistics: rows per chunk must be at least 1");
  const std::uint64_t rows = chunk_rows_of(shape);
  const auto cap = static_cast<std::uint64_t>(kChunkStatsMaxChunks);
  const std::uint64_t least = (rows + cap - 1) / cap;
  return std::max(requested, static_cast<std::int64_t>(least));
}

ChunkStats chunk_stats_of(std::string name, std::span<const std::int64_t> shape,
                          std::span<const float> values, std::int64_t rows_per_chunk) {
  ChunkStats s;
  s.tensor = std::move(name);
  s.rows = rows_per_chunk;
  const std::uint64_t rows = chunk_rows_of(shape), row = chunk_row_length(shape);
  if (rows * row != values.size())
    throw Error("tensor " + quoted(s.tensor) + ": values do not match its shape");
  const auto r = static_cast<std::uint64_t>(rows_per_chunk);
  for (std::uint64_t first = 0; first < rows && row != 0; first += r) {
    const std::uint64_t n = (std::min(rows, first + r) - first) * row;
    Accumulator a;
    a.add(values.subspan(static_cast<std::size_t>(first * row), static_cast<std::size_t>(n)));
    s.min.push_back(a.min);
    s.max.push_back(a.max);
    s.amax.push_back(a.amax);
    s.nonfinite.push_back(a.nonfinite);
  }
  return s;
}

ChunkStats compute_chunk_stats(const ModelReader& reader, const TensorInfo& t,
                               std::int64_t requested) {
  const std::int64_t r = chunk_rows_for(t.shape, requested);
  const std::uint64_t rows = chunk_rows_of(t.shape), row = chunk_row_length(t.shape);
  if (rows == 0 || row == 0) return chunk_stats_of(t.name, t.shape, {}, r);
  // Chunk by chunk where the reader can read pieces (safetensors' plain
  // dtypes), so that memory stays at one chunk; else the whole tensor.
  std::vector<float> values(static_cast<std::size_t>(
      std::min<std::uint64_t>(rows * row, static_cast<std::uint64_t>(r) * row)));
  if (!reader.read_f32_range(t, 0, values)) {
    reader.read_f32_into(t, values);
    return chunk_stats_of(t.name, t.shape, values, r);
  }
  ChunkStats s;
  s.tensor = t.name;
  s.rows = r;
  for (std::uint64_t first = 0; first < rows; first += static_cast<std::uint64_t>(r)) {
    const std::uint64_t n = (std::min(rows, first + static_cast<std::uint64_t>(r)) - first) * row;
    const std::span<float> piece(values.data(), static_cast<std::size_t>(n));
    if (first != 0 && !reader.read_f32_range(t, first * row, piece))
      throw Error("tensor " + quoted(t.name) + " can no longer be read in pieces");
    Accumulator a;
    a.add(piece);
    s.min.push_back(a.min);
    s.max.push_back(a.max);
    s.amax.push_back(a.amax);
    s.nonfinite.push_back(a.nonfinite);
  }
  return s;
}

std::string chunk_stats_json(std::span<const ChunkStats> stats) {
  std::string out = "{\"version\":1,\"tensors\":{";
  bool first_tensor = true;
  for (const ChunkStats& s : stats) {
    if (!first_tensor) out += ",";
    first_tensor = false;
    out += Json(s.tensor).dump(-1, ' ', false, Json::error_handler_t::strict);
    out += ":{\"rows\":" + std::to_string(s.rows) + ",\"chunks\":" + std::to_string(s.chunks());
    const auto list = [&](const char* key, std::span<const float> v) {
      out += ",\"";
      out += key;
      out += "\":[";
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ",";
        append_number(out, v[i]);
      }
      out += "]";
    };
    list("min", s.min);
    list("max", s.max);
    list("amax", s.amax);
    out += ",\"nonfinite\":[";
    for (std::size_t i = 0; i < s.nonfinite.size(); ++i)
      out += (i ? "," : "") + std::to_string(s.nonfinite[i]);
    out += "]}";
  }
  return out + "}}";
}

std::vector<ChunkStats> read_chunk_stats(const ModelReader& reader, std::string_view source) {
  std::vector<ChunkStats> out;
  std::string text;
  bool found = false;
  for (const auto& [key, value] : reader.metadata()) {
    if (key == kChunkStatsKey) {
      text = value;
      found = true;
    }
  }
  if (!found) return out;
  const std::string what = "chunk statistics";
  const auto bad = [&](const std::string& why) -> void {
    safetensors_detail::fail(source, what + ": " + why);
  };
  // Depth: the object (0), "tensors" (1), a tensor's entry (2), its arrays (3).
  const Json j = safetensors_detail::parse_json(text, source, what, 4);
  if (!j.is_object()) bad("not a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "version" && key != "tensors") bad("unexpected key " + quoted(key));
  }
  if (!j.contains("version") || safetensors_detail::json_u64(j["version"]) != 1u)
    bad("'version' must be 1");
  if (!j.contains("tensors") || !j["tensors"].is_object()) bad("'tensors' must be an object");
  for (const auto& item : j["tensors"].items()) {
    const std::string& name = item.key();
    const Json& e = item.value();
    const std::string where = "tensor " + quoted(name);
    const TensorInfo* t = reader.find(name);
    if (t == nullptr) bad(where + " is not in the file");
    if (!t->is_float) bad(where + " is not a float tensor");
    if (!e.is_object()) bad(where + ": entry must be an object");
    for (const auto& [key, value] : e.items()) {
      if (key != "rows" && key != "chunks" && key != "min" && key != "max" && key != "amax" &&
          key != "nonfinite")
        bad(where + ": unexpected key " + quoted(key));
    }
    for (const char* key : {"rows", "chunks", "min", "max", "amax", "nonfinite"}) {
      if (!e.contains(key)) bad(where + ": missing key '" + std::string(key) + "'");
    }
    ChunkStats s;
    s.tensor = name;
    const std::optional<std::int64_t> rows = safetensors_detail::json_i64(e["rows"]);
    if (!rows || *rows < 1) bad(where + ": 'rows' must be a positive integer");
    s.rows = *rows;
    const std::uint64_t tensor_rows = chunk_rows_of(t->shape), row = chunk_row_length(t->shape);
    const std::uint64_t r = static_cast<std::uint64_t>(s.rows);
    const std::uint64_t chunks = row == 0 ? 0 : tensor_rows / r + (tensor_rows % r != 0);
    if (chunks > static_cast<std::uint64_t>(kChunkStatsMaxChunks)) {
      bad(where + ": " + std::to_string(chunks) + " chunks of " + std::to_string(r) +
          " rows exceed the limit of " + std::to_string(kChunkStatsMaxChunks));
    }
    if (safetensors_detail::json_u64(e["chunks"]) != chunks) {
      bad(where + ": 'chunks' must be " + std::to_string(chunks) + " (" +
          std::to_string(tensor_rows) + " rows in chunks of " + std::to_string(r) + ")");
    }
    const auto floats = [&](const char* key, std::vector<float>& v) {
      const Json& a = e[key];
      if (!a.is_array() || a.size() != chunks) {
        bad(where + ": '" + key + "' must be an array of " + std::to_string(chunks) + " numbers");
      }
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].is_null()) {
          v.push_back(kNone);
          continue;
        }
        const double d = a[i].is_number() ? a[i].get<double>() : kNone;
        const float f = float_of_text(d);
        if (!a[i].is_number() || !std::isfinite(f)) {
          bad(where + ": '" + key + "'[" + std::to_string(i) +
              "] must be a finite float32 number or null");
        }
        v.push_back(f);
      }
    };
    floats("min", s.min);
    floats("max", s.max);
    floats("amax", s.amax);
    const Json& counts = e["nonfinite"];
    if (!counts.is_array() || counts.size() != chunks)
      bad(where + ": 'nonfinite' must be an array of " + std::to_string(chunks) + " counts");
    for (std::size_t i = 0; i < chunks; ++i) {
      const std::uint64_t first = i * r, last = std::min(tensor_rows, first + r);
      const std::string chunk = where + " chunk " + std::to_string(i);
      const std::optional<std::uint64_t> n = safetensors_detail::json_u64(counts[i]);
      if (!n || *n > (last - first) * row)
        bad(chunk + ": 'nonfinite' must be a count of at most " +
            std::to_string((last - first) * row));
      s.nonfinite.push_back(*n);
      const float lo = s.min[i], hi = s.max[i], mag = s.amax[i];
      const bool none = std::isnan(lo);
      if (none != std::isnan(hi) || none != std::isnan(mag))
        bad(chunk + ": min, max and amax must be all numbers or all null");
      if (none && *n != (last - first) * row)
        bad(chunk + ": null statistics but only " + std::to_string(*n) + " non-finite values");
      if (!none && (lo > hi || mag != std::max(std::fabs(lo), std::fabs(hi))))
        bad(chunk + ": needs min <= max and amax = max(|min|, |max|)");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::string> check_chunk_stats(const ModelReader& reader,
                                             std::span<const ChunkStats> stored) {
  for (const ChunkStats& s : stored) {
    const TensorInfo* t = reader.find(s.tensor);
    if (t == nullptr) return "tensor " + quoted(s.tensor) + " is not in the file";
    const ChunkStats data = compute_chunk_stats(reader, *t, s.rows);
    reader.release(*t);
    const std::string where = "tensor " + quoted(s.tensor);
    if (data.rows != s.rows || data.chunks() != s.chunks())
      return where + ": stored " + std::to_string(s.chunks()) + " chunks of " +
             std::to_string(s.rows) + " rows, data gives " + std::to_string(data.chunks()) +
             " of " + std::to_string(data.rows);
    const std::uint64_t rows = chunk_rows_of(t->shape);
    for (std::size_t i = 0; i < s.chunks(); ++i) {
      const auto r = static_cast<std::uint64_t>(s.rows);
      const std::string chunk = where + " chunk " + std::to_string(i) + " (" +
                                rows_text(i * r, std::min(rows, (i + 1) * r) - 1) + ")";
      const auto num = [](float v) {
        std::string text;
        append_number(text, v);
        return text;
      };
      const auto differ = [&](const char* key, float a, float b) -> std::optional<std::string> {
        if (same_bits(a, b)) return std::nullopt;
        return chunk + ": stored " + key + " " + num(a) + ", data " + num(b);
      };
      if (auto d = differ("min", s.min[i], data.min[i])) return d;
      if (auto d = differ("max", s.max[i], data.max[i])) return d;
      if (auto d = differ("amax", s.amax[i], data.amax[i])) return d;
      if (s.nonfinite[i] != data.nonfinite[i])
        return chunk + ": stored nonfinite " + std::to_string(s.nonfinite[i]) + ", data " +
               std::to_string(data.nonfinite[i]);
    }
  }
  return std::nullopt;
}

}  // namespace lowp::io
