// safetensors reading: the header, lowp's packed tensors and published MXFP4
// pairs on top of it (safetensors.h describes the format and the rules).
//
// Input is hostile: the header length is checked against the file before the
// JSON is looked at, the JSON parser rejects nesting deeper than the format
// needs and duplicate keys, every tensor's shape is checked (overflow-safe)
// against its byte range, every byte range against the data buffer and against
// the other tensors. A reader that opened successfully never reads out of
// bounds. Every problem is a one-line lowp::Error starting with the source.
#include "lowp/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "lowp/storage/packed_matrix.h"
#include "safetensors_common.h"

namespace lowp::io {
namespace {

using namespace safetensors_detail;

// One entry of the header, validated on its own.
struct RawTensor {
  std::string name;
  const DTypeInfo* dtype = nullptr;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // relative to the data buffer
  bool consumed = false;             // part of a combined (packed) tensor
};

RawTensor parse_entry(const std::string& name, const Json& j, std::uint64_t data_size,
                      std::string_view source) {
  const std::string where = "tensor " + lowp::quoted(name);
  if (!j.is_object()) fail(source, where + ": entry must be an object");
  // Exactly dtype, shape and data_offsets: anything else means a format we do
  // not understand, not one to guess at.
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(key)) fail(source, where + ": missing key '" + key + "'");
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      fail(source, where + ": unexpected key " + lowp::quoted(key));
    }
  }
  RawTensor t;
  t.name = name;
  const Json& dtype = j["dtype"];
  if (!dtype.is_string()) fail(source, where + ": 'dtype' must be a string");
  t.dtype = find_dtype(dtype.get<std::string>());
  if (t.dtype == nullptr)
    fail(source, "unknown dtype " + lowp::quoted(dtype.get<std::string>()) + " for " + where);
  t.shape = json_shape(j["shape"], source, where);
  const Json& offsets = j["data_offsets"];
  std::optional<std::uint64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = json_u64(offsets[0]);
    end = json_u64(offsets[1]);
  }
  if (!begin || !end)
    fail(source, where + ": 'data_offsets' must be two non-negative integers [begin, end]");
  t.begin = *begin;
  t.end = *end;
  const std::string range =
      "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
  // The byte range must lie inside the data buffer.
  if (t.begin > t.end) fail(source, where + ": " + range + " end before they begin");
  if (t.end > data_size) {
    fail(source, where + ": " + range + " run past the end of the data buffer (" +
                     std::to_string(data_size) + " bytes)");
  }
  // The shape must describe exactly those bytes (no product overflow).
  const std::optional<std::uint64_t> bytes = checked_bytes(t.shape, t.dtype->size);
  if (!bytes)
    fail(source, where + ": shape " + shape_text(t.shape) +
                     " is too large (its byte size overflows 64 bits)");
  if (*bytes != t.end - t.begin) {
    fail(source, where + ": shape " + shape_text(t.shape) + " of " + std::string(t.dtype->name) +
                     " needs " + std::to_string(*bytes) + " bytes but " + range + " hold " +
                     std::to_string(t.end - t.begin));
  }
  return t;
}

// How read_f32 decodes a tensor.
struct Entry {
  const DTypeInfo* dtype = nullptr;  // plain tensors; null for packed ones
  BlockFormat format;                // packed tensors:
  int axis = 0;
  float tensor_scale = 1.0f;
  std::uint64_t scales_offset = 0, scales_bytes = 0;  // absolute
  // Packed matrices (a scaled matrix format, lowp/storage/matrix_format.h).
  std::optional<MatrixFormat> matrix;
  std::size_t rows = 0, cols = 0;
  std::uint64_t zeros_offset = 0, zeros_bytes = 0;  // absolute
  // compressed-tensors pack-quantized (ct_bits 2, 4 or 8): each row's codes
  // as offset-binary fields in ct_row_bytes (whole int32 words); the scales
  // (and zero points), converted when the file was opened, in ct_scales.
  int ct_bits = 0;
  std::uint64_t ct_row_bytes = 0;
  std::shared_ptr<const MatrixScales> ct_scales;
};

// Raw tensors by name (views into the RawTensors, which stay put).
using RawIndex = std::unordered_map<std::string_view, std::size_t>;

struct Combined {
  TensorInfo info;
  Entry entry;
};

class SafetensorsReader final : public ModelReader {
 public:
  SafetensorsReader(std::span<const std::byte> image, std::string source, ImageOwner owner)
      : image_(image), source_(std::move(source)), owner_(std::move(owner)) {}

  std::string_view kind() const override { return "safetensors"; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata() const override { return metadata_; }
  std::vector<float> read_f32(const TensorInfo& t) const override {
    std::vector<float> out;
    read_f32_into(t, out);
    return out;
  }
  void read_f32_into(const TensorInfo& t, std::vector<float>& out) const override;
  bool read_f32_range(const TensorInfo& t, std::uint64_t first,
                      std::span<float> out) const override;
  std::optional<PackedTensor> packed(const TensorInfo& t) const override;
  std::optional<PackedMatrix> packed_matrix(const TensorInfo& t) const;
  std::string layout() const override { return layout_; }
  std::span<const std::byte> raw(const TensorInfo& t) const override {
    const TensorInfo& own = tensors_[index_of(t)];
    return image_.subspan(static_cast<std::size_t>(own.offset),
                          static_cast<std::size_t>(own.nbytes));
  }

  void parse();

 private:
  // Our own record of `t` (found by name when t is a copy), so that a
  // caller's edited TensorInfo can never make us read out of bounds.
  std::size_t index_of(const TensorInfo& t) const {
    if (!tensors_.empty() && &t >= tensors_.data() && &t < tensors_.data() + tensors_.size()) {
      return static_cast<std::size_t>(&t - tensors_.data());
    }
    const auto it = by_name_.find(t.name);
    if (it == by_name_.end()) fail(source_, "no tensor " + lowp::quoted(t.name) + " in this file");
    return it->second;
  }
  // The packed matrix of tensors_[index] (entries_[index].matrix set).
  PackedMatrix matrix_of(std::size_t index) const;
  void add_packed(std::vector<RawTensor>& raw, const RawIndex& index, const std::string& name,
                  const std::string& description, std::uint64_t data_start,
                  std::vector<Combined>& out) const;
  void add_packed_matrix(std::vector<RawTensor>& raw, const RawIndex& index,
                         const std::string& name, const Json& d, std::uint64_t data_start,
                         std::vector<Combined>& out) const;
  void add_mxfp4_pairs(std::vector<RawTensor>& raw, const RawIndex& index, std::uint64_t data_start,
                       std::vector<Combined>& out) const;
  void add_modelopt_nvfp4(std::vector<RawTensor>& raw, const RawIndex& index,
                          std::uint64_t data_start, std::vector<Combined>& out) const;
  void add_fp8_tensor_scaled(std::vector<RawTensor>& raw, const RawIndex& index,
                             std::uint64_t data_start, std::vector<Combined>& out) const;
  void add_compressed_tensors(std::vector<RawTensor>& raw, const RawIndex& index,
                              std::uint64_t data_start, std::vector<Combined>& out) const;
  void add_compressed_pack(RawTensor& packed, const std::string& base, std::vector<RawTensor>& raw,
                           const RawIndex& index, std::uint64_t data_start,
                           std::vector<Combined>& out) const;
  // An element of a raw tensor as a double (F32, F16, BF16 or I64).
  double raw_value(const RawTensor& t, std::uint64_t data_start, std::uint64_t i) const;

  std::span<const std::byte> image_;
  std::string source_;
  ImageOwner owner_;
  std::vector<TensorInfo> tensors_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::string layout_;  // the convention recognized: "gpt-oss", "lowp" or ""
};

RawTensor* find_raw(std::vector<RawTensor>& raw, const RawIndex& index, std::string_view name) {
  const auto it = index.find(name);
  return it == index.end() ? nullptr : &raw[it->second];
}

void SafetensorsReader::parse() {
  const std::uint64_t size = image_.size();
  // The 8-byte header length, then a header that must fit in the file (and
  // under the cap, so a hostile length cannot make us parse gigabytes).
  if (size < 8)
    fail(source_, "truncated: a safetensors file starts with an 8-byte header length, file has " +
                      std::to_string(size) + " bytes");
  std::uint64_t n = 0;
  for (std::size_t i = 8; i-- > 0;) n = (n << 8) | std::to_integer<std::uint64_t>(image_[i]);
  if (n > size - 8) {
    fail(source_, "header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(size - 8) + " bytes follow the length)");
  }
  if (n > kSafetensorsMaxHeader) {
    fail(source_, "header length " + std::to_string(n) + " exceeds the limit of " +
                      std::to_string(kSafetensorsMaxHeader) + " bytes");
  }
  const std::string_view text(reinterpret_cast<const char*>(image_.data()) + 8,
                              static_cast<std::size_t>(n));
  const std::uint64_t data_start = 8 + n;
  const std::uint64_t data_size = size - data_start;
  // Depth: the header object (0), its entries (1), their shape arrays (2).
  std::vector<std::string> header_order;
  const Json header = parse_json(text, source_, "header", 3, &header_order);
  if (!header.is_object()) fail(source_, "header must be a JSON object");

  std::vector<RawTensor> raw;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(source_, "'__metadata__' must be an object of strings");
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string())
          fail(source_, "metadata " + lowp::quoted(mkey) + " must be a string");
        metadata_.emplace_back(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    raw.push_back(parse_entry(key, value, data_size, source_));
  }

  // No two tensors may share bytes: sorted by start, each must begin at or
  // after the end of the furthest-reaching one before it. Empty tensors hold
  // no bytes and overlap nothing.
  std::vector<const RawTensor*> order;
  for (const RawTensor& t : raw) {
    if (t.begin != t.end) order.push_back(&t);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const RawTensor* a, const RawTensor* b) { return a->begin < b->begin; });
  const RawTensor* reach = nullptr;
  for (const RawTensor* t : order) {
    if (reach != nullptr && t->begin < reach->end) {
      fail(source_,
           "tensors " + lowp::quoted(reach->name) + " and " + lowp::quoted(t->name) + " overlap");
    }
    if (reach == nullptr || t->end > reach->end) reach = t;
  }

  // Combine lowp's packed tensors, then published MXFP4 pairs.
  RawIndex index;
  for (std::size_t i = 0; i < raw.size(); ++i) index.emplace(raw[i].name, i);
  std::vector<Combined> combined;
  for (const auto& [key, value] : metadata_) {
    if (key.starts_with(kPackedPrefix) && key != kArchKey) {
      add_packed(raw, index, key.substr(kPackedPrefix.size()), value, data_start, combined);
    }
  }
  const std::size_t lowp_packed = combined.size();
  add_compressed_tensors(raw, index, data_start, combined);
  const std::size_t compressed = combined.size() - lowp_packed;
  add_mxfp4_pairs(raw, index, data_start, combined);
  const std::size_t gpt_oss = combined.size() - lowp_packed - compressed;
  add_modelopt_nvfp4(raw, index, data_start, combined);
  // (An FP8 matrix with a scale names no layout by itself: ModelOpt and
  // compressed-tensors both store it so.)
  const std::size_t before_fp8 = combined.size();
  add_fp8_tensor_scaled(raw, index, data_start, combined);
  const std::size_t fp8 = combined.size() - before_fp8;
  if (compressed > 0) {
    layout_ = "compressed-tensors";
  } else if (combined.size() - fp8 > lowp_packed + gpt_oss) {
    layout_ = "modelopt";
  } else if (gpt_oss > 0) {
    layout_ = "gpt-oss";
  } else if (lowp_packed > 0) {
    layout_ = "lowp";
  }

  std::vector<Combined> all = std::move(combined);
  for (const RawTensor& t : raw) {
    if (t.consumed) continue;
    Combined c;
    c.info.name = t.name;
    c.info.dtype = std::string(t.dtype->name);
    c.info.shape = t.shape;
    c.info.offset = data_start + t.begin;
    c.info.nbytes = t.end - t.begin;
    c.info.is_float = t.dtype->decode != Decode::kNone;
    c.entry.dtype = t.dtype;
    all.push_back(std::move(c));
  }
  // File order; ties (empty tensors) in header order.
  std::unordered_map<std::string_view, std::size_t> position;
  for (std::size_t i = 0; i < header_order.size(); ++i) position.emplace(header_order[i], i);
  auto rank = [&](const std::string& name) {
    const auto it = position.find(name);  // combined tensors' names need not be header keys
    return it == position.end() ? header_order.size() : it->second;
  };
  std::stable_sort(all.begin(), all.end(), [&](const Combined& a, const Combined& b) {
    return a.info.offset != b.info.offset ? a.info.offset < b.info.offset
                                          : rank(a.info.name) < rank(b.info.name);
  });
  for (Combined& c : all) {
    // A combined tensor's name may collide with a plain tensor's.
    if (!by_name_.emplace(c.info.name, tensors_.size()).second) {
      fail(source_, "two tensors are named " + lowp::quoted(c.info.name));
    }
    tensors_.push_back(std::move(c.info));
    entries_.push_back(c.entry);
  }
}

// lowp's packed form: "<name>" (element bit stream) + "<name>.scales", both
// U8 and 1-d, described by the JSON in metadata "lowp.<name>".
void SafetensorsReader::add_packed(std::vector<RawTensor>& raw, const RawIndex& index,
                                   const std::string& name, const std::string& description,
                                   std::uint64_t data_start, std::vector<Combined>& out) const {
  const std::string where = "packed tensor " + lowp::quoted(name);
  // Depth: the description object (0), its shape array (1).
  const Json d =
      parse_json(description, source_, "metadata " + lowp::quoted(packed_metadata_key(name)), 2);
  if (!d.is_object()) fail(source_, where + ": its metadata must be a JSON object");
  if (!d.contains("block_size") && d.contains("format")) {  // a packed matrix
    add_packed_matrix(raw, index, name, d, data_start, out);
    return;
  }
  const std::string scales_name = packed_scales_name(name);
  RawTensor* elements = find_raw(raw, index, name);
  RawTensor* scales = find_raw(raw, index, scales_name);
  if (elements == nullptr)
    fail(source_, "metadata " + lowp::quoted(packed_metadata_key(name)) + " describes tensor " +
                      lowp::quoted(name) + ", which is missing");
  if (scales == nullptr)
    fail(source_, where + ": its scales tensor " + lowp::quoted(scales_name) + " is missing");
  for (const RawTensor* t : {elements, scales}) {
    if (t->consumed)
      fail(source_, where + ": tensor " + lowp::quoted(t->name) +
                        " is already part of another packed tensor");
    if (t->dtype->name != "U8" || t->shape.size() != 1) {
      fail(source_, where + ": tensor " + lowp::quoted(t->name) + " must be U8 and 1-d, is " +
                        std::string(t->dtype->name) + " " + shape_text(t->shape));
    }
  }
  static constexpr const char* kKeys[] = {"format", "block_size", "axis",
                                          "shape",  "scale_rule", "tensor_scale"};
  for (const char* key : kKeys) {
    if (!d.contains(key)) fail(source_, where + ": metadata lacks '" + key + "'");
  }
  for (const auto& item : d.items()) {
    const std::string& key = item.key();
    if (std::none_of(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return key == k; })) {
      fail(source_, where + ": unexpected metadata key " + lowp::quoted(key));
    }
  }
  Combined c;
  Entry& e = c.entry;
  // The format must be a block format, and agree with block_size.
  if (!d["format"].is_string()) fail(source_, where + ": 'format' must be a string");
  const std::string format = d["format"].get<std::string>();
  try {
    if (!parse_block_format(format, e.format))
      fail(source_, where + ": unknown block format " + lowp::quoted(format));
  } catch (const Error& err) {
    if (std::string_view(err.what()).starts_with(source_ + ": ")) throw;
    fail(source_, where + ": " + err.what());
  }
  const std::optional<std::uint64_t> k = json_u64(d["block_size"]);
  if (!k || *k != static_cast<std::uint64_t>(e.format.block_size)) {
    fail(source_, where + ": 'block_size' must be " + std::to_string(e.format.block_size) +
                      " for format " + lowp::quoted(format));
  }
  if (!d["scale_rule"].is_string()) fail(source_, where + ": 'scale_rule' must be a string");
  try {
    (void)parse_scale_rule(d["scale_rule"].get<std::string>());
  } catch (const Error& err) {
    fail(source_, where + ": " + err.what());
  }
  const Json& ts = d["tensor_scale"];
  if (!ts.is_number()) fail(source_, where + ": 'tensor_scale' must be a number");
  // (Checked before the cast: a double beyond fp32's range has no fp32 value.)
  const auto scale = ts.get<double>();
  if (!(std::fabs(scale) <= std::numeric_limits<float>::max())) {
    fail(source_, where + ": 'tensor_scale' is not a finite fp32");
  }
  e.tensor_scale = static_cast<float>(scale);
  c.info.shape = json_shape(d["shape"], source_, where);
  const std::size_t rank = c.info.shape.size();
  // The axis: -r <= axis < r (0 or -1 for a 0-d tensor).
  const std::optional<std::int64_t> axis = json_i64(d["axis"]);
  const auto r = static_cast<std::int64_t>(std::max<std::size_t>(rank, 1));
  if (!axis || *axis < -r || *axis >= r) {
    fail(source_,
         where + ": 'axis' must be an integer in range for shape " + shape_text(c.info.shape));
  }
  e.axis = normalize_axis(static_cast<int>(*axis), rank);
  // Sizes: the element stream and the scale count the shape and format imply
  // (computed without overflow: elements fit in 64 bits, bits <= 32).
  const std::optional<std::uint64_t> count = checked_bytes(c.info.shape, 1);
  if (!count || *count > std::numeric_limits<std::uint64_t>::max() / 32) {
    fail(source_, where + ": shape " + shape_text(c.info.shape) + " is too large");
  }
  const std::uint64_t stream = (*count * static_cast<std::uint64_t>(e.format.element.bits) + 7) / 8;
  const std::uint64_t len =
      rank == 0 ? 1 : static_cast<std::uint64_t>(c.info.shape[static_cast<std::size_t>(e.axis)]);
  const std::uint64_t rows = len == 0 ? 0 : *count / len;
  const std::uint64_t blocks = len / *k + (len % *k != 0 ? 1 : 0);
  if (elements->end - elements->begin != stream) {
    fail(source_, where + ": " + lowp::quoted(name) + " holds " +
                      std::to_string(elements->end - elements->begin) + " bytes but shape " +
                      shape_text(c.info.shape) + " in " + block_format_name(e.format) + " needs " +
                      std::to_string(stream));
  }
  if (scales->end - scales->begin != rows * blocks) {
    fail(source_, where + ": " + lowp::quoted(scales_name) + " holds " +
                      std::to_string(scales->end - scales->begin) + " scales but shape " +
                      shape_text(c.info.shape) + " in " + block_format_name(e.format) + " needs " +
                      std::to_string(rows * blocks));
  }
  elements->consumed = scales->consumed = true;
  c.info.name = name;
  c.info.dtype = block_format_name(e.format);
  c.info.offset = data_start + elements->begin;
  c.info.nbytes = stream;
  e.scales_offset = data_start + scales->begin;
  e.scales_bytes = rows * blocks;
  out.push_back(std::move(c));
}

// lowp's packed matrix: "<name>" (U8, each row's codes from a byte), its
// scales "<name>.scales" (F32 for :tensor and :channel, F16 for :group<K>) and
// with :asym its zero points "<name>.zeros" (U8), all 1-d, described by
// {"format", "shape"} in metadata "lowp.<name>". The matrix is the 2-D view
// [shape[0], the rest] (a 1-d tensor is one row).
void SafetensorsReader::add_packed_matrix(std::vector<RawTensor>& raw, const RawIndex& index,
                                          const std::string& name, const Json& d,
                                          std::uint64_t data_start,
                                          std::vector<Combined>& out) const {
  const std::string where = "packed matrix " + lowp::quoted(name);
  for (const char* key : {"format", "shape"}) {
    if (!d.contains(key)) fail(source_, where + ": metadata lacks '" + key + "'");
  }
  for (const auto& item : d.items()) {
    if (item.key() != "format" && item.key() != "shape") {
      fail(source_, where + ": unexpected metadata key " + lowp::quoted(item.key()));
    }
  }
  if (!d["format"].is_string()) fail(source_, where + ": 'format' must be a string");
  const std::string spelling = d["format"].get<std::string>();
  MatrixFormat f;
  try {
    f = parse_matrix_format(spelling);
  } catch (const Error& err) {
    fail(source_, where + ": " + err.what());
  }
  if (f.scheme == MatrixScheme::kPlain || f.scheme == MatrixScheme::kBlock) {
    fail(source_, where + ": " + lowp::quoted(spelling) + " is not a scaled matrix format");
  }
  Combined c;
  c.info.shape = json_shape(d["shape"], source_, where);
  const std::optional<std::uint64_t> count = checked_bytes(c.info.shape, 1);
  if (!count || *count > (std::uint64_t{1} << 48)) {
    fail(source_, where + ": shape " + shape_text(c.info.shape) + " is too large");
  }
  const std::uint64_t rows =
      c.info.shape.size() < 2 ? 1 : static_cast<std::uint64_t>(c.info.shape[0]);
  const std::uint64_t cols = rows == 0 ? 0 : *count / rows;
  const auto r = static_cast<std::size_t>(rows), k = static_cast<std::size_t>(cols);
  const std::uint64_t code_bytes = rows * PackedMatrix::row_bytes(f, k);
  std::uint64_t scale_count = 1, scale_size = 4;
  std::string_view scale_dtype = "F32";
  if (f.scheme == MatrixScheme::kChannel) scale_count = rows;
  if (f.scheme == MatrixScheme::kGroup) {
    const auto g = static_cast<std::uint64_t>(f.group);
    scale_count = rows * ((cols + g - 1) / g);
    scale_size = f.two_scales() ? 4 : 2;  // AFPQ: two FP16 scales per group
    scale_dtype = "F16";
  }
  struct Part {
    std::string name;
    std::string_view dtype;
    std::uint64_t bytes;
    RawTensor* raw;
  };
  std::vector<Part> parts = {
      {name, "U8", code_bytes, nullptr},
      {packed_scales_name(name), scale_dtype, scale_count * scale_size, nullptr}};
  if (f.zero_points()) parts.push_back({name + ".zeros", "U8", scale_count, nullptr});
  for (Part& p : parts) {
    p.raw = find_raw(raw, index, p.name);
    if (p.raw == nullptr) fail(source_, where + ": tensor " + lowp::quoted(p.name) + " is missing");
    if (p.raw->consumed) {
      fail(source_, where + ": tensor " + lowp::quoted(p.name) +
                        " is already part of another packed tensor");
    }
    if (p.raw->dtype->name != p.dtype || p.raw->shape.size() != 1) {
      fail(source_, where + ": tensor " + lowp::quoted(p.name) + " must be " +
                        std::string(p.dtype) + " and 1-d, is " + std::string(p.raw->dtype->name) +
                        " " + shape_text(p.raw->shape));
    }
    if (p.raw->end - p.raw->begin != p.bytes) {
      fail(source_, where + ": " + lowp::quoted(p.name) + " holds " +
                        std::to_string(p.raw->end - p.raw->begin) + " bytes but shape " +
                        shape_text(c.info.shape) + " in " + spelling + " needs " +
                        std::to_string(p.bytes));
    }
  }
  if (f.zero_points()) {  // every zero point must be a code of the element (read_f32 then cannot
                          // fail)
    const auto top = static_cast<std::uint64_t>(int_max(f.element));
    for (std::uint64_t i = parts[2].raw->begin; i < parts[2].raw->end; ++i) {
      const auto z =
          std::to_integer<std::uint64_t>(image_[static_cast<std::size_t>(data_start + i)]);
      if (z > top) {
        fail(source_, where + ": zero point " + std::to_string(z) + " is not a code of " +
                          format_name(f.element) + " (0 to " + std::to_string(top) + ")");
      }
    }
  }
  for (Part& p : parts) p.raw->consumed = true;
  Entry& e = c.entry;
  e.matrix = f;
  e.rows = r;
  e.cols = k;
  e.scales_offset = data_start + parts[1].raw->begin;
  e.scales_bytes = parts[1].bytes;
  if (f.zero_points()) {
    e.zeros_offset = data_start + parts[2].raw->begin;
    e.zeros_bytes = parts[2].bytes;
  }
  c.info.name = name;
  c.info.dtype = spelling;
  c.info.offset = data_start + parts[0].raw->begin;
  c.info.nbytes = code_bytes;
  out.push_back(std::move(c));
}

// Published MXFP4 (gpt-oss): "<base>_blocks" U8 [..., G, 16] and
// "<base>_scales" U8 [..., G] (or ".blocks"/".scales").
void SafetensorsReader::add_mxfp4_pairs(std::vector<RawTensor>& raw, const RawIndex& index,
                                        std::uint64_t data_start,
                                        std::vector<Combined>& out) const {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    RawTensor& blocks = raw[i];
    if (blocks.consumed || blocks.dtype->name != "U8" || blocks.shape.size() < 2 ||
        blocks.shape.back() != 16)
      continue;
    std::string base, scales_name;
    for (const auto& [b, s] : {std::pair{"_blocks", "_scales"}, std::pair{".blocks", ".scales"}}) {
      if (blocks.name.ends_with(b)) {
        base = blocks.name.substr(0, blocks.name.size() - std::strlen(b));
        scales_name = base + s;
      }
    }
    if (scales_name.empty()) continue;
    const std::string where = "gpt-oss MXFP4 tensor " + lowp::quoted(blocks.name);
    RawTensor* scales = find_raw(raw, index, scales_name);
    if (scales == nullptr)
      fail(source_, where + " has no scales: tensor " + lowp::quoted(scales_name) + " is missing");
    std::vector<std::int64_t> expected(blocks.shape.begin(), blocks.shape.end() - 1);
    if (scales->consumed || scales->dtype->name != "U8" || scales->shape != expected) {
      fail(source_, where + ": scales " + lowp::quoted(scales_name) + " must be U8 of shape " +
                        shape_text(expected) + ", is " + std::string(scales->dtype->name) + " " +
                        shape_text(scales->shape));
    }
    // G * 32 must fit (G can be huge when another dimension is 0).
    const std::int64_t groups = expected.back();
    if (groups > std::numeric_limits<std::int64_t>::max() / 32)
      fail(source_, where + ": too many blocks per row");
    Combined c;
    c.info.name = base;
    c.info.dtype = "mxfp4";
    c.info.shape = expected;
    c.info.shape.back() = groups * 32;
    c.info.offset = data_start + blocks.begin;
    c.info.nbytes = blocks.end - blocks.begin;
    c.entry.format = BlockFormat{BlockScale::kUe8m0, kFp4E2m1, 32};
    c.entry.axis = static_cast<int>(c.info.shape.size() - 1);
    c.entry.scales_offset = data_start + scales->begin;
    c.entry.scales_bytes = scales->end - scales->begin;
    blocks.consumed = scales->consumed = true;
    out.push_back(std::move(c));
  }
}

// Values [first, first + out.size()) of a plain tensor's stored bytes, where
// they are the values' own bits on this machine: fp32 by a copy, 1- and 2-byte
// codes on their alignment by the bulk kernel. False (nothing written) for
// anything else.
bool decode_in_place(const Entry& e, std::span<const std::byte> bytes, std::size_t first,
                     std::span<float> out, unsigned threads) {
  if constexpr (std::endian::native != std::endian::little) return false;
  const std::byte* at = bytes.data() + first * e.dtype->size;
  if (e.dtype->decode == Decode::kF32) {
    if (!out.empty()) std::memcpy(out.data(), at, out.size() * sizeof(float));
    return true;
  }
  if (e.dtype->decode == Decode::kCode && (e.dtype->size == 1 || e.dtype->size == 2) &&
      reinterpret_cast<std::uintptr_t>(bytes.data()) % e.dtype->size == 0) {
    decode_to_f32(e.dtype->format, at, out, threads);
    return true;
  }
  return false;
}

bool SafetensorsReader::read_f32_range(const TensorInfo& t, std::uint64_t first,
                                       std::span<float> out) const {
  const std::size_t index = index_of(t);
  const TensorInfo& info = tensors_[index];
  const Entry& e = entries_[index];
  if (first > info.element_count() || out.size() > info.element_count() - first) {
    fail(source_, "tensor " + lowp::quoted(info.name) + ": values " + std::to_string(first) + ".." +
                      std::to_string(first + out.size()) + " are outside its " +
                      std::to_string(info.element_count()));
  }
  // Plain fp32 and 1- or 2-byte codes on their alignment, read in place; the
  // rest (packed tensors, F64, unaligned data) only whole.
  if (e.matrix || e.dtype == nullptr) return false;
  return decode_in_place(e, raw(info), static_cast<std::size_t>(first), out, 1);
}

// ModelOpt NVFP4 (vLLM's modelopt.py): "<name>" U8 [rows, cols/2],
// "<name>_scale" F8_E4M3 [rows, cols/16], "<name>_scale_2" F32 scalar (the
// per-tensor scale amax/2688). A U8 matrix with an F8_E4M3 "_scale" claims
// the convention; every other part must then agree.
void SafetensorsReader::add_modelopt_nvfp4(std::vector<RawTensor>& raw, const RawIndex& index,
                                           std::uint64_t data_start,
                                           std::vector<Combined>& out) const {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    RawTensor& w = raw[i];
    if (w.consumed || w.dtype->name != "U8" || w.shape.size() != 2) continue;
    RawTensor* scale = find_raw(raw, index, w.name + "_scale");
    if (scale == nullptr || scale->consumed || scale->dtype->name != "F8_E4M3") continue;
    const std::string where = "ModelOpt NVFP4 tensor " + lowp::quoted(w.name);
    const std::string scale2_name = w.name + "_scale_2";
    RawTensor* scale2 = find_raw(raw, index, scale2_name);
    if (scale2 == nullptr)
      fail(source_,
           where + " has no per-tensor scale: tensor " + lowp::quoted(scale2_name) + " is missing");
    if (scale2->consumed || scale2->dtype->name != "F32" || scale2->end - scale2->begin != 4) {
      fail(source_, where + ": " + lowp::quoted(scale2_name) + " must be one F32 value, is " +
                        std::string(scale2->dtype->name) + " " + shape_text(scale2->shape));
    }
    // cols = 2 * bytes per row must be a whole number of blocks of 16 (the
    // product cannot overflow: the U8 shape's bytes lie inside the file).
    const std::int64_t cols = w.shape[1] * 2;
    const std::vector<std::int64_t> expected = {w.shape[0], cols / 16};
    if (cols % 16 != 0 || scale->shape != expected) {
      fail(source_, where + ": scales " + lowp::quoted(scale->name) + " must be F8_E4M3 of shape " +
                        shape_text(expected) +
                        (cols % 16 != 0 ? " with the columns a multiple of 16" : "") + ", is " +
                        shape_text(scale->shape));
    }
    std::uint32_t bits = 0;
    for (std::size_t b = 4; b-- > 0;)
      bits = (bits << 8) | std::to_integer<std::uint32_t>(
                               image_[static_cast<std::size_t>(data_start + scale2->begin) + b]);
    const float tensor_scale = std::bit_cast<float>(bits);
    if (!std::isfinite(tensor_scale) || tensor_scale < 0.0f) {
      fail(source_, where + ": " + lowp::quoted(scale2_name) + " must be finite and non-negative");
    }
    Combined c;
    c.info.name = w.name;
    c.info.dtype = "nvfp4";
    c.info.shape = {w.shape[0], cols};
    c.info.offset = data_start + w.begin;
    c.info.nbytes = w.end - w.begin;
    c.entry.format = BlockFormat{BlockScale::kUe4m3, kFp4E2m1, 16};
    c.entry.axis = 1;
    c.entry.tensor_scale = tensor_scale;
    c.entry.scales_offset = data_start + scale->begin;
    c.entry.scales_bytes = scale->end - scale->begin;
    w.consumed = scale->consumed = scale2->consumed = true;
    out.push_back(std::move(c));
  }
}

// FP8 per tensor (ModelOpt quant_algo "FP8", vLLM's modelopt.py
// ModelOptFp8LinearMethod): "<name>" F8_E4M3 [rows, cols] with "<name>_scale"
// one F32, value = e4m3 * scale: lowp's fp8_e4m3:tensor matrix.
void SafetensorsReader::add_fp8_tensor_scaled(std::vector<RawTensor>& raw, const RawIndex& index,
                                              std::uint64_t data_start,
                                              std::vector<Combined>& out) const {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    RawTensor& w = raw[i];
    if (w.consumed || w.dtype->name != "F8_E4M3" || w.shape.size() != 2) continue;
    RawTensor* scale = find_raw(raw, index, w.name + "_scale");
    if (scale == nullptr || scale->consumed || scale->dtype->name != "F32") continue;
    const std::string where = "FP8 tensor " + lowp::quoted(w.name);
    // One scale (per tensor), or one per row [rows, 1] (per channel).
    const std::vector<std::int64_t> channel_shape = {w.shape[0], 1};
    const bool per_channel = scale->shape == channel_shape && scale->end - scale->begin != 4;
    if (scale->end - scale->begin != 4 && !per_channel) {
      fail(source_, where + ": scale " + lowp::quoted(scale->name) +
                        " must be one F32 value (per tensor), is " + shape_text(scale->shape) +
                        " (per channel: " + shape_text(channel_shape) + ")");
    }
    const std::string spelling = per_channel ? "fp8_e4m3:channel" : "fp8_e4m3:tensor";
    Combined c;
    c.info.name = w.name;
    c.info.dtype = spelling;
    c.info.shape = w.shape;
    c.info.offset = data_start + w.begin;
    c.info.nbytes = w.end - w.begin;
    c.entry.matrix = parse_matrix_format(spelling);
    c.entry.rows = static_cast<std::size_t>(w.shape[0]);
    c.entry.cols = static_cast<std::size_t>(w.shape[1]);
    c.entry.scales_offset = data_start + scale->begin;
    c.entry.scales_bytes = scale->end - scale->begin;
    w.consumed = scale->consumed = true;
    out.push_back(std::move(c));
  }
}

double SafetensorsReader::raw_value(const RawTensor& t, std::uint64_t data_start,
                                    std::uint64_t i) const {
  std::uint64_t v = 0;
  const std::size_t size = t.dtype->size;
  const std::size_t at = static_cast<std::size_t>(data_start + t.begin + i * size);
  for (std::size_t b = size; b-- > 0;)
    v = (v << 8) | std::to_integer<std::uint64_t>(image_[at + b]);
  if (t.dtype->name == "I64") return static_cast<double>(static_cast<std::int64_t>(v));
  if (t.dtype->name == "I32")
    return static_cast<double>(static_cast<std::int32_t>(static_cast<std::uint32_t>(v)));
  if (t.dtype->decode == Decode::kF32) return std::bit_cast<float>(static_cast<std::uint32_t>(v));
  return decode_f32(t.dtype->format, static_cast<std::uint32_t>(v));
}

// compressed-tensors (safetensors.h, layouts.h): "<base>_packed" with
// "<base>_scale" and, for NVFP4 (U8), "<base>_global_scale", for the integer
// pack-quantized (I32) "<base>_shape" and optionally "<base>_zero_point".
// A "_packed" tensor with any of its parts beside it claims the convention;
// every part must then be there and agree.
void SafetensorsReader::add_compressed_tensors(std::vector<RawTensor>& raw, const RawIndex& index,
                                               std::uint64_t data_start,
                                               std::vector<Combined>& out) const {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    RawTensor& w = raw[i];
    if (w.consumed || !w.name.ends_with("_packed") || w.shape.size() != 2) continue;
    const std::string base = w.name.substr(0, w.name.size() - 7);
    const bool nvfp4 = w.dtype->name == "U8", pack = w.dtype->name == "I32";
    if (!nvfp4 && !pack) continue;
    const std::string scale_name = base + "_scale";
    const std::string other_name = base + (nvfp4 ? "_global_scale" : "_shape");
    RawTensor* scale = find_raw(raw, index, scale_name);
    RawTensor* other = find_raw(raw, index, other_name);
    if (scale == nullptr && other == nullptr) continue;
    if (pack) {
      add_compressed_pack(w, base, raw, index, data_start, out);
      continue;
    }
    const std::string where = "compressed-tensors NVFP4 tensor " + lowp::quoted(w.name);
    if (scale == nullptr)
      fail(source_, where + " has no block scales: tensor " + lowp::quoted(scale_name) +
                        " (F8_E4M3 [rows, cols/16]) is missing");
    if (other == nullptr)
      fail(source_, where + " has no global scale: tensor " + lowp::quoted(other_name) +
                        " (F32 [1]) is missing");
    // cols = 2 * bytes per row, a whole number of blocks of 16 (no overflow:
    // the U8 shape's bytes lie inside the file).
    const std::int64_t cols = w.shape[1] * 2;
    const std::vector<std::int64_t> expected = {w.shape[0], cols / 16};
    if (cols % 16 != 0 || scale->consumed || scale->dtype->name != "F8_E4M3" ||
        scale->shape != expected) {
      fail(source_, where + ": block scales " + lowp::quoted(scale_name) +
                        " must be F8_E4M3 of shape " + shape_text(expected) +
                        (cols % 16 != 0 ? " with the columns a multiple of 16" : "") + ", is " +
                        std::string(scale->dtype->name) + " " + shape_text(scale->shape));
    }
    if (other->consumed || other->dtype->name != "F32" || other->end - other->begin != 4) {
      fail(source_, where + ": global scale " + lowp::quoted(other_name) +
                        " must be one F32 value, is " + std::string(other->dtype->name) + " " +
                        shape_text(other->shape));
    }
    const auto g = static_cast<float>(raw_value(*other, data_start, 0));
    if (!std::isfinite(g) || !(g > 0.0f)) {
      fail(source_,
           where + ": global scale " + lowp::quoted(other_name) + " must be finite and positive");
    }
    Combined c;
    c.info.name = base;
    c.info.dtype = "nvfp4";
    c.info.shape = {w.shape[0], cols};
    c.info.offset = data_start + w.begin;
    c.info.nbytes = w.end - w.begin;
    c.entry.format = BlockFormat{BlockScale::kUe4m3, kFp4E2m1, 16};
    c.entry.axis = 1;
    // value = e2m1 * e4m3 / g, read as lowp's e2m1 * (e4m3 * fp32(1 / g)).
    c.entry.tensor_scale = 1.0f / g;
    c.entry.scales_offset = data_start + scale->begin;
    c.entry.scales_bytes = scale->end - scale->begin;
    w.consumed = scale->consumed = other->consumed = true;
    out.push_back(std::move(c));
  }
}

void SafetensorsReader::add_compressed_pack(RawTensor& w, const std::string& base,
                                            std::vector<RawTensor>& raw, const RawIndex& index,
                                            std::uint64_t data_start,
                                            std::vector<Combined>& out) const {
  const std::string where = "compressed-tensors pack-quantized tensor " + lowp::quoted(w.name);
  const std::string scale_name = base + "_scale", shape_name = base + "_shape",
                    zero_name = base + "_zero_point";
  RawTensor* scale = find_raw(raw, index, scale_name);
  RawTensor* shape = find_raw(raw, index, shape_name);
  RawTensor* zero = find_raw(raw, index, zero_name);
  if (scale == nullptr)
    fail(source_, where + " has no scales: tensor " + lowp::quoted(scale_name) +
                      " ([rows, groups], F32, F16 or BF16) is missing");
  if (shape == nullptr)
    fail(source_,
         where + " has no shape: tensor " + lowp::quoted(shape_name) + " (I64 [2]) is missing");
  if (shape->consumed || (shape->dtype->name != "I64" && shape->dtype->name != "I32") ||
      shape->shape != std::vector<std::int64_t>{2}) {
    fail(source_, where + ": " + lowp::quoted(shape_name) + " must be I64 [2], is " +
                      std::string(shape->dtype->name) + " " + shape_text(shape->shape));
  }
  const double rows_d = raw_value(*shape, data_start, 0), cols_d = raw_value(*shape, data_start, 1);
  const std::uint64_t words = static_cast<std::uint64_t>(w.shape[1]);
  // The columns fit the packed words (at most 32 per word, 8 bits each at the
  // least), so no count below overflows.
  if (rows_d != static_cast<double>(w.shape[0]) || !(cols_d >= 1.0) ||
      cols_d > 32.0 * static_cast<double>(words)) {
    fail(source_, where + ": " + lowp::quoted(shape_name) + " [" +
                      std::to_string(static_cast<std::int64_t>(rows_d)) + ", " +
                      std::to_string(static_cast<std::int64_t>(cols_d)) +
                      "] does not fit the packed " + shape_text(w.shape) + " (int32 words)");
  }
  const auto rows = static_cast<std::uint64_t>(rows_d), cols = static_cast<std::uint64_t>(cols_d);
  // The width: ceil(cols * bits / 32) words per row.
  int bits = 0, widths = 0;
  for (const int b : {2, 4, 8}) {
    if ((cols * static_cast<std::uint64_t>(b) + 31) / 32 == words) {
      bits = b;
      ++widths;
    }
  }
  if (widths != 1) {
    fail(source_, where + ": " + std::to_string(words) + " int32 words per row of " +
                      std::to_string(cols) + " values " +
                      (widths == 0 ? "are not 2-, 4- or 8-bit codes (lowp reads those)"
                                   : "could be codes of more than one width"));
  }
  if (scale->consumed || scale->shape.size() != 2 || scale->shape[0] != w.shape[0] ||
      scale->shape[1] < 1 || static_cast<std::uint64_t>(scale->shape[1]) > cols ||
      cols % static_cast<std::uint64_t>(scale->shape[1]) != 0 ||
      (scale->dtype->name != "F32" && scale->dtype->name != "F16" &&
       scale->dtype->name != "BF16")) {
    fail(source_, where + ": scales " + lowp::quoted(scale_name) + " must be F32, F16 or BF16 [" +
                      std::to_string(rows) + ", groups] with the groups dividing the " +
                      std::to_string(cols) + " columns, is " + std::string(scale->dtype->name) +
                      " " + shape_text(scale->shape));
  }
  const auto groups = static_cast<std::uint64_t>(scale->shape[1]);
  const std::uint64_t group = cols / groups;
  const std::uint64_t zwords = (rows * static_cast<std::uint64_t>(bits) + 31) / 32;
  if (zero != nullptr &&
      (zero->consumed || zero->dtype->name != "I32" ||
       zero->shape != std::vector<std::int64_t>{static_cast<std::int64_t>(zwords),
                                                static_cast<std::int64_t>(groups)})) {
    fail(source_, where + ": zero points " + lowp::quoted(zero_name) + " must be I32 [" +
                      std::to_string(zwords) + ", " + std::to_string(groups) + "], is " +
                      std::string(zero->dtype->name) + " " + shape_text(zero->shape));
  }
  // One scale per row: :channel; else groups of cols / groups (zero points
  // exist for groups only).
  const bool channel = groups == 1 && zero == nullptr;
  std::string spelling = "int" + std::to_string(bits) +
                         (channel ? ":channel" : ":group" + std::to_string(group)) +
                         (zero != nullptr ? ":asym" : "");
  MatrixFormat f;
  try {
    f = parse_matrix_format(spelling);
  } catch (const Error& err) {
    fail(source_, where + ": " + err.what());
  }
  auto scales = std::make_shared<MatrixScales>();
  for (std::uint64_t k = 0; k < rows * groups; ++k) {
    const double v = raw_value(*scale, data_start, k);
    if (channel) {
      scales->row.push_back(static_cast<float>(v));
      continue;
    }
    // lowp's group scales are FP16: F16 exactly, F32 and BF16 where exact.
    const std::uint32_t code = encode(kFp16, v);
    if (static_cast<double>(decode_f32(kFp16, code)) != v && !(std::isnan(v))) {
      char text[32];
      std::snprintf(text, sizeof text, "%.9g", v);
      fail(source_, where + ": scale " + text + " of " + lowp::quoted(scale_name) +
                        " is not exactly an FP16 value (lowp's group scales are FP16)");
    }
    scales->group.push_back(static_cast<std::uint16_t>(code));
  }
  if (zero != nullptr) {  // unpacked down each column (pack_to_int32 packed_dim 0)
    const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
    for (std::uint64_t r = 0; r < rows; ++r) {
      for (std::uint64_t k = 0; k < groups; ++k) {
        const std::uint64_t bit = r * static_cast<std::uint64_t>(bits);
        const auto word = static_cast<std::uint32_t>(
            static_cast<std::int32_t>(raw_value(*zero, data_start, (bit / 32) * groups + k)));
        scales->zero.push_back(static_cast<std::uint8_t>((word >> (bit % 32)) & mask));
      }
    }
  }
  w.consumed = scale->consumed = shape->consumed = true;
  if (zero != nullptr) zero->consumed = true;
  Combined c;
  c.info.name = base;
  c.info.dtype = spelling;
  c.info.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
  c.info.offset = data_start + w.begin;
  c.info.nbytes = w.end - w.begin;
  c.entry.matrix = f;
  c.entry.rows = static_cast<std::size_t>(rows);
  c.entry.cols = static_cast<std::size_t>(cols);
  c.entry.ct_bits = bits;
  c.entry.ct_row_bytes = words * 4;
  c.entry.ct_scales = std::move(scales);
  out.push_back(std::move(c));
}

// The lowp codes (PackedMatrix::from_codes) of a pack-quantized tensor:
// each row's first row_bytes bytes of its int32 words, offset binary turned
// back into two's complement for symmetric formats (the top bit of each field
// flipped; an asymmetric code is offset binary already).
std::vector<std::uint8_t> compressed_codes(const Entry& e, std::span<const std::byte> bytes) {
  const MatrixFormat& f = *e.matrix;
  const auto bits = static_cast<std::size_t>(e.ct_bits);
  const std::size_t row = PackedMatrix::row_bytes(f, e.cols);
  const std::size_t full = e.cols * bits / 8, used = e.cols * bits - full * 8;
  std::uint8_t flip = 0;
  if (!f.asymmetric) {
    for (std::size_t b = bits - 1; b < 8; b += bits) flip |= static_cast<std::uint8_t>(1u << b);
  }
  std::vector<std::uint8_t> codes(e.rows * row);
  for (std::size_t r = 0; r < e.rows; ++r) {
    for (std::size_t i = 0; i < row; ++i) {
      const std::uint8_t mask =
          i < full ? flip : static_cast<std::uint8_t>(flip & ((1u << used) - 1));
      const auto v = std::to_integer<std::uint8_t>(bytes[r * e.ct_row_bytes + i]);
      // Bits past the last field (padding) are dropped.
      codes[r * row + i] = static_cast<std::uint8_t>(
          (v ^ mask) & (i < full ? 0xFF : static_cast<std::uint8_t>((1u << used) - 1)));
    }
  }
  return codes;
}

PackedMatrix SafetensorsReader::matrix_of(std::size_t index) const {
  const TensorInfo& info = tensors_[index];
  const Entry& e = entries_[index];
  const std::span<const std::byte> bytes = raw(info);
  const auto* u8 = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (e.ct_bits != 0) {
    try {
      return PackedMatrix::from_codes(*e.matrix, e.rows, e.cols, compressed_codes(e, bytes),
                                      *e.ct_scales);
    } catch (const Error& err) {
      fail(source_, "compressed-tensors tensor " + lowp::quoted(info.name) + ": " + err.what());
    }
  }
  const auto* sc = reinterpret_cast<const std::uint8_t*>(image_.data() + e.scales_offset);
  MatrixScales scales;
  const auto load = [&](std::size_t i, std::size_t size) {  // little-endian, unaligned
    std::uint32_t v = 0;
    for (std::size_t b = size; b-- > 0;) v = (v << 8) | sc[i * size + b];
    return v;
  };
  switch (e.matrix->scheme) {
    case MatrixScheme::kTensor:
      scales.tensor = std::bit_cast<float>(load(0, 4));
      break;
    case MatrixScheme::kChannel:
      for (std::size_t i = 0; i < e.scales_bytes / 4; ++i)
        scales.row.push_back(std::bit_cast<float>(load(i, 4)));
      break;
    case MatrixScheme::kGroup:
      for (std::size_t i = 0; i < e.scales_bytes / 2; ++i)
        scales.group.push_back(static_cast<std::uint16_t>(load(i, 2)));
      break;
    default:
      break;
  }
  if (e.matrix->zero_points()) {
    const auto* z = reinterpret_cast<const std::uint8_t*>(image_.data() + e.zeros_offset);
    scales.zero.assign(z, z + e.zeros_bytes);
  }
  try {
    return PackedMatrix::from_codes(*e.matrix, e.rows, e.cols, {u8, u8 + bytes.size()},
                                    std::move(scales));
  } catch (const Error& err) {
    fail(source_, "packed matrix " + lowp::quoted(info.name) + ": " + err.what());
  }
}

std::optional<PackedMatrix> SafetensorsReader::packed_matrix(const TensorInfo& t) const {
  const std::size_t index = index_of(t);
  if (!entries_[index].matrix) return std::nullopt;
  return matrix_of(index);
}

void SafetensorsReader::read_f32_into(const TensorInfo& t, std::vector<float>& out) const {
  const std::size_t index = index_of(t);
  const TensorInfo& info = tensors_[index];
  const Entry& e = entries_[index];
  const std::span<const std::byte> bytes = raw(info);
  const auto n = static_cast<std::size_t>(info.element_count());
  out.resize(n);   // every element is written below
  if (e.matrix) {  // a packed matrix: decode exactly as PackedMatrix::dequantize
    matrix_of(index).dequantize(out);
    return;
  }
  if (e.dtype == nullptr) {  // packed: decode exactly as lowp::dequantize
    dequantize(*packed(info), out);
    return;
  }
  if (e.dtype->decode == Decode::kNone) {
    fail(source_, "tensor " + lowp::quoted(info.name) + " has dtype " + info.dtype +
                      ", which is not a float type");
  }
  // On a little-endian machine the stored bytes are the values: fp32 by a
  // copy, 1- and 2-byte codes on their alignment by the bulk kernel on every
  // core (exact, as decode_f32 below).
  if (decode_in_place(e, bytes, 0, out, std::max(1u, std::thread::hardware_concurrency()))) {
    return;
  }
  // Little-endian loads that do not assume alignment.
  auto load = [&](std::size_t i, std::size_t size) {
    std::uint64_t v = 0;
    for (std::size_t b = size; b-- > 0;)
      v = (v << 8) | std::to_integer<std::uint64_t>(bytes[i * size + b]);
    return v;
  };
  switch (e.dtype->decode) {
    case Decode::kF64:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(std::bit_cast<double>(load(i, 8)));
      break;
    case Decode::kF32:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = std::bit_cast<float>(static_cast<std::uint32_t>(load(i, 4)));
      break;
    case Decode::kCode: {
      const Format& f = e.dtype->format;
      for (std::size_t i = 0; i < n; ++i)
        out[i] = decode_f32(f, static_cast<std::uint32_t>(load(i, e.dtype->size)));
      break;
    }
    case Decode::kNone:
      break;
  }
  return;
}

std::optional<PackedTensor> SafetensorsReader::packed(const TensorInfo& t) const {
  const std::size_t index = index_of(t);
  const TensorInfo& info = tensors_[index];
  const Entry& e = entries_[index];
  if (e.dtype != nullptr || e.matrix) return std::nullopt;
  PackedTensor p;
  p.format = e.format;
  p.shape = info.shape;
  p.axis = e.axis;
  p.tensor_scale = e.tensor_scale;
  const std::span<const std::byte> bytes = raw(info);
  const auto* u8 = reinterpret_cast<const std::uint8_t*>(bytes.data());
  p.elements.assign(u8, u8 + bytes.size());
  const auto* s = reinterpret_cast<const std::uint8_t*>(image_.data() + e.scales_offset);
  p.scales.assign(s, s + e.scales_bytes);
  return p;
}

}  // namespace

std::optional<PackedMatrix> safetensors_packed_matrix(const ModelReader& reader,
                                                      const TensorInfo& t) {
  const auto* s = dynamic_cast<const SafetensorsReader*>(&reader);
  return s == nullptr ? std::nullopt : s->packed_matrix(t);
}

std::unique_ptr<ModelReader> parse_safetensors(std::span<const std::byte> image, std::string source,
                                               ImageOwner owner) {
  auto reader = std::make_unique<SafetensorsReader>(image, std::move(source), std::move(owner));
  reader->parse();
  return reader;
}

}  // namespace lowp::io
