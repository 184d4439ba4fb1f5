// GGUF reading (versions 2 and 3), ggml's type table and metadata values.
//
// Format reference: ggml's docs/gguf.md and gguf.cpp; block layouts from
// ggml-common.h, decoding as ggml-quants.c's dequantize_row_* functions.
// Input is hostile: every count is bounded by the bytes left before anything
// is allocated, all size arithmetic is overflow-checked, and every problem is
// a one-line lowp::Error that starts with the source name.
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <set>
#include <unordered_set>

#include "gguf_internal.h"
#include "lowp/block/ggml.h"
#include "lowp/block/ggml_quants.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/gguf.h"

static_assert(std::endian::native == std::endian::little,
              "GGUF reading assumes a little-endian host");

namespace lowp::io {
namespace gguf_detail {
namespace {

// ggml's enum ggml_type (ggml.h) with type_traits' block and type sizes
// (ggml.c). Numbers 4, 5 and 31..33, 36..38 were removed from GGUF. The types
// read_f32 decodes take their sizes from lowp's block structs (ggml_quants.h);
// ggml_judge_test checks the whole table against ggml's type_traits.
constexpr std::array<GgmlType, 33> kTypes = {{
    {0, "F32", 1, 4, true, &kFp32},
    {1, "F16", 1, 2, true, &kFp16},
    {2, "Q4_0", 32, sizeof(GgmlBlockQ4_0), true},
    {3, "Q4_1", 32, sizeof(GgmlBlockQ4_1), true},
    {6, "Q5_0", 32, sizeof(GgmlBlockQ5_0), true},
    {7, "Q5_1", 32, sizeof(GgmlBlockQ5_1), true},
    {8, "Q8_0", 32, sizeof(GgmlBlockQ8_0), true},
    {9, "Q8_1", 32, 36, false},
    {10, "Q2_K", 256, sizeof(GgmlBlockQ2_K), true},
    {11, "Q3_K", 256, sizeof(GgmlBlockQ3_K), true},
    {12, "Q4_K", 256, sizeof(GgmlBlockQ4_K), true},
    {13, "Q5_K", 256, sizeof(GgmlBlockQ5_K), true},
    {14, "Q6_K", 256, sizeof(GgmlBlockQ6_K), true},
    {15, "Q8_K", 256, 292, false},
    {16, "IQ2_XXS", 256, 66, false},
    {17, "IQ2_XS", 256, 74, false},
    {18, "IQ3_XXS", 256, 98, false},
    {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, sizeof(GgmlBlockIq4Nl), true},
    {21, "IQ3_S", 256, 110, false},
    {22, "IQ2_S", 256, 82, false},
    {23, "IQ4_XS", 256, sizeof(GgmlBlockIq4Xs), true},
    {24, "I8", 1, 1, false},
    {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},
    {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},
    {29, "IQ1_M", 256, 56, false},
    {30, "BF16", 1, 2, true, &kBf16},
    {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},
    {39, "MXFP4", 32, sizeof(GgmlBlockMxfp4), true},
    {40, "NVFP4", 64, sizeof(GgmlBlockNvfp4), true},
}};

}  // namespace

const GgmlType* ggml_type_by_id(std::uint32_t id) {
  for (const GgmlType& t : kTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const GgmlType* ggml_type_by_name(std::string_view name) {
  for (const GgmlType& t : kTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const GgmlType* ggml_type_by_format(const Format& f) {
  for (const GgmlType& t : kTypes) {
    if (t.format != nullptr && *t.format == f) return &t;
  }
  return nullptr;
}

std::optional<std::uint64_t> ggml_nbytes(const GgmlType& t, std::span<const std::uint64_t> ne) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::uint64_t ne0 = ne.empty() ? 1 : ne[0];
  if (ne0 % t.block != 0) return std::nullopt;
  std::uint64_t elements = 1;
  bool empty = false;
  for (std::uint64_t d : ne) {
    if (d > kMax) return std::nullopt;
    if (d == 0) empty = true;
  }
  if (empty) return 0;
  for (std::uint64_t d : ne) {
    if (d > kMax / elements) return std::nullopt;
    elements *= d;
  }
  const std::uint64_t blocks = elements / t.block;
  if (blocks > std::numeric_limits<std::uint64_t>::max() / t.size) return std::nullopt;
  return blocks * t.size;
}

std::size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool is_valid_type(std::uint32_t t) { return t <= static_cast<std::uint32_t>(GgufType::kF64); }

}  // namespace gguf_detail

using namespace gguf_detail;

// ---- values ----

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
      "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < kNames.size() ? kNames[i] : std::string_view("?");
}

namespace {
GgufValue scalar(GgufType t, std::uint64_t bits) {
  GgufValue v;
  v.type = t;
  v.bits = bits;
  return v;
}
}  // namespace

GgufValue GgufValue::u8(std::uint8_t v) { return scalar(GgufType::kU8, v); }
GgufValue GgufValue::i8(std::int8_t v) {
  return scalar(GgufType::kI8, static_cast<std::uint8_t>(v));
}
GgufValue GgufValue::u16(std::uint16_t v) { return scalar(GgufType::kU16, v); }
GgufValue GgufValue::i16(std::int16_t v) {
  return scalar(GgufType::kI16, static_cast<std::uint16_t>(v));
}
GgufValue GgufValue::u32(std::uint32_t v) { return scalar(GgufType::kU32, v); }
GgufValue GgufValue::i32(std::int32_t v) {
  return scalar(GgufType::kI32, static_cast<std::uint32_t>(v));
}
GgufValue GgufValue::u64(std::uint64_t v) { return scalar(GgufType::kU64, v); }
GgufValue GgufValue::i64(std::int64_t v) {
  return scalar(GgufType::kI64, static_cast<std::uint64_t>(v));
}
GgufValue GgufValue::f32(float v) {
  return scalar(GgufType::kF32, std::bit_cast<std::uint32_t>(v));
}
GgufValue GgufValue::f64(double v) {
  return scalar(GgufType::kF64, std::bit_cast<std::uint64_t>(v));
}
GgufValue GgufValue::boolean(bool v) { return scalar(GgufType::kBool, v ? 1 : 0); }
GgufValue GgufValue::string(std::string v) {
  GgufValue out;
  out.type = GgufType::kString;
  out.str = std::move(v);
  return out;
}
GgufValue GgufValue::array(GgufType elem_type, std::vector<GgufValue> items) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = elem_type;
  out.items = std::move(items);
  return out;
}
GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const std::string& s : v) items.push_back(string(s));
  return array(GgufType::kString, std::move(items));
}
GgufValue GgufValue::f32s(std::span<const float> v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float x : v) items.push_back(f32(x));
  return array(GgufType::kF32, std::move(items));
}
GgufValue GgufValue::i32s(std::span<const std::int32_t> v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (std::int32_t x : v) items.push_back(i32(x));
  return array(GgufType::kI32, std::move(items));
}

std::optional<std::int64_t> GgufValue::as_i64() const {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kU16:
    case GgufType::kU32:
      return static_cast<std::int64_t>(bits);
    case GgufType::kU64:
      if (bits > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
      return static_cast<std::int64_t>(bits);
    case GgufType::kI8:
      return static_cast<std::int8_t>(bits);
    case GgufType::kI16:
      return static_cast<std::int16_t>(bits);
    case GgufType::kI32:
      return static_cast<std::int32_t>(bits);
    case GgufType::kI64:
      return static_cast<std::int64_t>(bits);
    default:
      return std::nullopt;
  }
}

std::optional<std::uint64_t> GgufValue::as_u64() const {
  if (type == GgufType::kU64) return bits;
  const std::optional<std::int64_t> v = as_i64();
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

std::optional<double> GgufValue::as_f64() const {
  if (type == GgufType::kF32) return std::bit_cast<float>(static_cast<std::uint32_t>(bits));
  if (type == GgufType::kF64) return std::bit_cast<double>(bits);
  if (type == GgufType::kU64) return static_cast<double>(bits);
  if (const std::optional<std::int64_t> v = as_i64()) return static_cast<double>(*v);
  return std::nullopt;
}

namespace {

constexpr std::size_t kShownItems = 16;

template <typename T>
std::string shortest(T v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string json_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string render(const GgufValue& v, bool nested) {
  switch (v.type) {
    case GgufType::kF32:
      return shortest(std::bit_cast<float>(static_cast<std::uint32_t>(v.bits)));
    case GgufType::kF64:
      return shortest(std::bit_cast<double>(v.bits));
    case GgufType::kBool:
      return v.bits != 0 ? "true" : "false";
    case GgufType::kU64:
      return std::to_string(v.bits);
    case GgufType::kString:
      return nested ? json_quoted(v.str) : v.str;
    case GgufType::kArray: {
      std::string out = "[";
      const std::size_t shown = std::min(v.items.size(), kShownItems);
      for (std::size_t i = 0; i < shown; ++i) {
        if (i > 0) out += ", ";
        out += render(v.items[i], true);
      }
      if (shown < v.items.size()) out += ", ... (" + std::to_string(v.items.size()) + " items)";
      return out + "]";
    }
    default:
      return std::to_string(v.as_i64().value_or(0));
  }
}

}  // namespace

std::string GgufValue::to_text() const { return render(*this, false); }

// ---- the reader ----

namespace {

constexpr int kMaxArrayDepth = 8;
constexpr std::uint32_t kMaxDims = 8;
// Metadata values held in memory take ~80 bytes each whatever their size in
// the file, so the number of array items is capped (large real tokenizers
// have about a million).
constexpr std::uint64_t kMaxArrayItems = std::uint64_t{1} << 23;

class Cursor {
 public:
  Cursor(std::span<const std::byte> image, const std::string& source)
      : image_(image), source_(source) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return image_.size() - pos_; }

  [[noreturn]] void truncated(const std::string& what, std::uint64_t n) const {
    fail("truncated file: " + what + " at byte " + std::to_string(pos_) + " needs " +
         std::to_string(n) + " bytes, only " + std::to_string(left()) + " left");
  }
  const std::byte* take(std::uint64_t n, const std::string& what) {
    if (n > left()) truncated(what, n);
    const std::byte* p = image_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::uint64_t uint(std::size_t n, const std::string& what) {
    const std::byte* p = take(n, what);
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
    return v;
  }
  std::uint32_t u32(const std::string& what) { return static_cast<std::uint32_t>(uint(4, what)); }
  std::uint64_t u64(const std::string& what) { return uint(8, what); }
  std::string str(const std::string& what) {
    if (left() < 8) truncated(what + " length", 8);
    const std::uint64_t n = uint(8, what);
    if (n > left()) truncated(what + " (" + std::to_string(n) + " bytes)", n);
    const std::byte* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

 private:
  std::span<const std::byte> image_;
  const std::string& source_;
  std::uint64_t pos_ = 0;
};

GgufType value_type(Cursor& c, const std::string& what) {
  const std::uint32_t t = c.u32(what);
  if (!is_valid_type(t))
    c.fail(what + " is " + std::to_string(t) + ", not a GGUF value type (0..12)");
  return static_cast<GgufType>(t);
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& where, int depth,
                     std::uint64_t& items_left) {
  if (type == GgufType::kString) return GgufValue::string(c.str(where + " string"));
  if (type != GgufType::kArray) {
    GgufValue v;
    v.type = type;
    v.bits = c.uint(scalar_size(type), where + " value");
    if (type == GgufType::kBool && v.bits > 1)
      c.fail(where + ": bool value " + std::to_string(v.bits) + " is not 0 or 1");
    return v;
  }
  if (depth >= kMaxArrayDepth)
    c.fail(where + ": arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = value_type(c, where + " array item type");
  const std::uint64_t count = c.u64(where + " array length");
  const std::size_t min_item = v.elem_type == GgufType::kString  ? 8
                               : v.elem_type == GgufType::kArray ? 12
                                                                 : scalar_size(v.elem_type);
  if (count > c.left() / min_item) {
    c.fail(where + ": array of " + std::to_string(count) + " items runs past the end of the file");
  }
  if (count > items_left) {
    c.fail(where + ": array of " + std::to_string(count) + " items exceeds lowp's limit of " +
           std::to_string(kMaxArrayItems) + " metadata array items per file");
  }
  items_left -= count;
  v.items.reserve(static_cast<std::size_t>(count));
  const std::size_t size = scalar_size(v.elem_type);
  for (std::uint64_t i = 0; i < count; ++i) {
    if (size > 0 && v.elem_type != GgufType::kBool) {  // fits: the count check covered it
      v.items.emplace_back();
      v.items.back().type = v.elem_type;
      v.items.back().bits = c.uint(size, where);
    } else {
      v.items.push_back(
          read_value(c, v.elem_type, where + "[" + std::to_string(i) + "]", depth + 1, items_left));
    }
  }
  return v;
}

struct Entry {
  const GgmlType* type;
  std::vector<std::uint64_t> ne;
};

class GgufReader final : public ModelReader {
 public:
  GgufReader(std::span<const std::byte> image, std::string source, ImageOwner owner)
      : image_(image), source_(std::move(source)), owner_(std::move(owner)) {
    parse();
  }

  std::string_view kind() const override { return "gguf"; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata() const override {
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(kv_.size());
    for (const GgufKv& kv : kv_) out.emplace_back(kv.first, kv.second.to_text());
    return out;
  }
  std::span<const std::byte> raw(const TensorInfo& t) const override {
    const TensorInfo& mine = tensors_[index_of(t)];
    // (An empty tensor's offset may lie past the end when the file stops
    // before the data section's padding.)
    if (mine.nbytes == 0) return {};
    return image_.subspan(static_cast<std::size_t>(mine.offset),
                          static_cast<std::size_t>(mine.nbytes));
  }
  std::vector<float> read_f32(const TensorInfo& t) const override;
  // MXFP4 and NVFP4 (with a single scale) as lowp's packed tensors: ggml's
  // codes and scales, so a writer can copy them.
  std::optional<PackedTensor> packed(const TensorInfo& t) const override;

  const std::vector<GgufKv>& kv() const { return kv_; }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }
  std::size_t index_of(const TensorInfo& t) const {
    if (&t >= tensors_.data() && &t < tensors_.data() + tensors_.size()) {
      return static_cast<std::size_t>(&t - tensors_.data());
    }
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      if (tensors_[i].name == t.name) return i;
    }
    fail("no tensor named " + lowp::quoted(t.name));
  }
  void parse();
  void parse_tensor_info(Cursor& c, std::uint64_t index);
  void apply_nvfp4_scale(const TensorInfo& t, std::vector<float>& values) const;
  // The values of an NVFP4 tensor's scale tensor: none (no scale tensor), one,
  // or one per outermost slice of a rank-3 tensor.
  std::vector<float> nvfp4_scale_values(const TensorInfo& t) const;

  std::span<const std::byte> image_;
  std::string source_;
  ImageOwner owner_;
  std::vector<GgufKv> kv_;
  std::vector<TensorInfo> tensors_;
  std::vector<Entry> entries_;
};

void GgufReader::parse() {
  Cursor c(image_, source_);
  const std::size_t magic_len = std::min<std::size_t>(image_.size(), 4);
  for (std::size_t i = 0; i < magic_len; ++i) {
    if (std::to_integer<char>(image_[i]) != "GGUF"[i])
      fail("not a GGUF file (bad magic bytes; expected GGUF)");
  }
  c.take(4, "magic");
  const std::uint32_t version = c.u32("version");
  if (version != 2 && version != 3) {
    fail("unsupported GGUF version " + std::to_string(version) + " (supported: 2, 3)");
  }
  const std::uint64_t tensor_count = c.u64("tensor count");
  const std::uint64_t kv_count = c.u64("metadata count");
  // A kv pair takes at least 13 bytes (empty key, type, one-byte value), a
  // tensor info at least 24 (empty name, n_dims 0, type, offset).
  if (kv_count > c.left() / 13)
    fail("metadata count " + std::to_string(kv_count) + " is more than the file can hold");
  kv_.reserve(static_cast<std::size_t>(kv_count));
  std::unordered_set<std::string> keys;
  std::uint64_t items_left = kMaxArrayItems;
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    const std::string where = "metadata entry " + std::to_string(i);
    std::string key = c.str(where + " key");
    const std::string named = "metadata " + lowp::quoted(key);
    const GgufType type = value_type(c, named + " type");
    GgufValue value = read_value(c, type, named, 0, items_left);
    if (!keys.insert(key).second) fail("duplicate metadata key " + lowp::quoted(key));
    kv_.emplace_back(std::move(key), std::move(value));
  }
  if (tensor_count > c.left() / 24) {
    fail("tensor count " + std::to_string(tensor_count) + " is more than the file can hold");
  }
  std::uint64_t alignment = kDefaultAlignment;
  for (const GgufKv& kv : kv_) {
    if (kv.first != kAlignmentKey) continue;
    if (kv.second.type != GgufType::kU32 || kv.second.bits == 0 ||
        !std::has_single_bit(kv.second.bits)) {
      fail(std::string(kAlignmentKey) + " must be a UINT32 power of two, not " +
           std::string(gguf_type_name(kv.second.type)) + " " + lowp::quoted(kv.second.to_text()));
    }
    alignment = kv.second.bits;
  }
  tensors_.reserve(static_cast<std::size_t>(tensor_count));
  entries_.reserve(static_cast<std::size_t>(tensor_count));
  for (std::uint64_t i = 0; i < tensor_count; ++i) parse_tensor_info(c, i);

  // The data section starts at the next multiple of the alignment (the file
  // may end before that when no tensor has bytes).
  const std::uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  const std::uint64_t data_size = image_.size() > data_start ? image_.size() - data_start : 0;
  std::unordered_set<std::string_view> names;
  for (TensorInfo& t : tensors_) {
    if (!names.insert(t.name).second) fail("duplicate tensor name " + lowp::quoted(t.name));
    if (t.offset % alignment != 0) {
      fail("tensor " + lowp::quoted(t.name) + " offset " + std::to_string(t.offset) +
           " is not a multiple of the alignment " + std::to_string(alignment));
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail("tensor " + lowp::quoted(t.name) + " (" + std::to_string(t.nbytes) +
           " bytes at data offset " + std::to_string(t.offset) +
           ") runs past the end of the file (data section has " + std::to_string(data_size) +
           " bytes)");
    }
  }
  std::vector<std::size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  const TensorInfo* prev = nullptr;
  for (std::size_t i : order) {
    const TensorInfo& t = tensors_[i];
    if (t.nbytes == 0) continue;
    if (prev != nullptr && prev->offset + prev->nbytes > t.offset) {
      fail("tensors " + lowp::quoted(prev->name) + " and " + lowp::quoted(t.name) + " overlap");
    }
    prev = &t;
  }
  for (TensorInfo& t : tensors_) t.offset += data_start;
}

void GgufReader::parse_tensor_info(Cursor& c, std::uint64_t index) {
  TensorInfo t;
  t.name = c.str("tensor info " + std::to_string(index) + " name");
  const std::string named = "tensor " + lowp::quoted(t.name);
  const std::uint32_t n_dims = c.u32(named + " n_dims");
  if (n_dims > kMaxDims)
    fail(named + " has " + std::to_string(n_dims) + " dimensions (at most " +
         std::to_string(kMaxDims) + ")");
  Entry e;
  for (std::uint32_t d = 0; d < n_dims; ++d) {
    const std::uint64_t n = c.u64(named + " ne[" + std::to_string(d) + "]");
    if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(named + " ne[" + std::to_string(d) + "] = " + std::to_string(n) + " is too large");
    }
    e.ne.push_back(n);
  }
  const std::uint32_t type = c.u32(named + " type");
  e.type = ggml_type_by_id(type);
  if (e.type == nullptr) fail(named + " has unknown ggml type " + std::to_string(type));
  t.offset = c.u64(named + " offset");
  t.dtype = std::string(e.type->name);
  t.is_float = e.type->is_float;
  for (std::size_t d = e.ne.size(); d-- > 0;) t.shape.push_back(static_cast<std::int64_t>(e.ne[d]));
  const std::uint64_t ne0 = e.ne.empty() ? 1 : e.ne[0];
  if (ne0 % e.type->block != 0) {
    fail(named + " of type " + t.dtype + " has ne[0] = " + std::to_string(ne0) +
         ", not a multiple of the block size " + std::to_string(e.type->block));
  }
  const std::optional<std::uint64_t> nbytes = ggml_nbytes(*e.type, e.ne);
  if (!nbytes) fail(named + " has too many elements");
  t.nbytes = *nbytes;
  tensors_.push_back(std::move(t));
  entries_.push_back(std::move(e));
}

float fp16_to_f32(std::uint16_t h) { return decode_f32(kFp16, h); }

std::uint16_t load16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}

std::vector<float> GgufReader::read_f32(const TensorInfo& t) const {
  const std::size_t index = index_of(t);
  const TensorInfo& info = tensors_[index];
  const GgmlType& type = *entries_[index].type;
  if (!type.is_float)
    fail("tensor " + lowp::quoted(info.name) + " has type " + info.dtype +
         ", which lowp cannot decode");
  const std::span<const std::byte> bytes = raw(info);
  const std::size_t n = static_cast<std::size_t>(bytes.size() / type.size * type.block);
  std::vector<float> out(n);
  const std::byte* p = bytes.data();
  switch (type.id) {
    case kF32:
      if (n > 0) std::memcpy(out.data(), p, n * 4);
      break;
    case kF16:
      for (std::size_t i = 0; i < n; ++i) out[i] = fp16_to_f32(load16(p + 2 * i));
      break;
    case kBF16:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = std::bit_cast<float>(std::uint32_t{load16(p + 2 * i)} << 16);
      break;
    default:  // ggml's quantized types (lowp/block/ggml_quants.h)
      ggml_dequantize(static_cast<GgmlQuantType>(type.id), bytes, out);
      break;
  }
  if (type.id == static_cast<std::uint32_t>(GgmlQuantType::kNvfp4)) apply_nvfp4_scale(info, out);
  return out;
}

void GgufReader::apply_nvfp4_scale(const TensorInfo& t, std::vector<float>& values) const {
  const std::vector<float> scale = nvfp4_scale_values(t);
  if (scale.empty()) return;
  const std::size_t per_slice = values.size() / scale.size();
  for (std::size_t i = 0; i < values.size(); ++i) values[i] *= scale[i / per_slice];
}

std::vector<float> GgufReader::nvfp4_scale_values(const TensorInfo& t) const {
  const std::string name = gguf_nvfp4_scale_name(t.name);
  const auto it = std::find_if(tensors_.begin(), tensors_.end(),
                               [&](const TensorInfo& s) { return s.name == name; });
  if (it == tensors_.end()) return {};  // llama.cpp's converter omits a scale of 1
  const std::string named =
      "NVFP4 tensor " + lowp::quoted(t.name) + ": its scale tensor " + lowp::quoted(name);
  if (it->dtype != "F32") fail(named + " has type " + it->dtype + ", not F32");
  const std::size_t count = static_cast<std::size_t>(it->nbytes / 4);
  const std::size_t slices =
      count == 1 ? 1 : (t.shape.size() == 3 ? static_cast<std::size_t>(t.shape[0]) : 0);
  if (count != slices || count == 0) {
    fail(named + " has " + std::to_string(count) +
         " values; it needs 1, or one per outermost slice of a rank-3 tensor");
  }
  std::vector<float> scale(count);
  std::memcpy(scale.data(), raw(*it).data(), count * 4);
  for (float s : scale) {
    if (!std::isfinite(s)) fail(named + " holds a non-finite value");
  }
  return scale;
}

// Copied into aligned blocks (the image's tensor data need not be aligned).
template <typename Block>
std::vector<Block> blocks_of(std::span<const std::byte> bytes) {
  std::vector<Block> blocks(bytes.size() / sizeof(Block));
  if (!blocks.empty()) std::memcpy(blocks.data(), bytes.data(), blocks.size() * sizeof(Block));
  return blocks;
}

std::optional<PackedTensor> GgufReader::packed(const TensorInfo& t) const {
  const std::size_t index = index_of(t);
  const TensorInfo& info = tensors_[index];
  const std::uint32_t id = entries_[index].type->id;
  if (id == static_cast<std::uint32_t>(GgmlQuantType::kMxfp4)) {
    return from_ggml_mxfp4(blocks_of<GgmlBlockMxfp4>(raw(info)), info.shape);
  }
  if (id == static_cast<std::uint32_t>(GgmlQuantType::kNvfp4)) {
    const std::vector<float> scale = nvfp4_scale_values(info);
    if (scale.size() > 1) return std::nullopt;  // one scale per slice: no PackedTensor holds it
    return from_ggml_nvfp4(blocks_of<GgmlBlockNvfp4>(raw(info)), info.shape,
                           scale.empty() ? 1.0f : scale[0]);
  }
  return std::nullopt;
}

}  // namespace

std::unique_ptr<ModelReader> parse_gguf(std::span<const std::byte> image, std::string source,
                                        ImageOwner owner) {
  return std::make_unique<GgufReader>(image, std::move(source), std::move(owner));
}

const std::vector<GgufKv>& gguf_kv(const ModelReader& reader) {
  const auto* g = dynamic_cast<const GgufReader*>(&reader);
  if (g == nullptr)
    throw Error("not a GGUF file: " + std::string(reader.kind()) + " files have no GGUF metadata");
  return g->kv();
}

std::string gguf_nvfp4_scale_name(std::string_view tensor_name) {
  constexpr std::string_view kWeight = ".weight";
  if (tensor_name.size() >= kWeight.size() &&
      tensor_name.substr(tensor_name.size() - kWeight.size()) == kWeight) {
    tensor_name.remove_suffix(kWeight.size());
  }
  return std::string(tensor_name) + ".scale";
}

std::map<std::string, std::string> gguf_nvfp4_scales(const ModelReader& reader) {
  std::map<std::string, std::string> scales;
  if (dynamic_cast<const GgufReader*>(&reader) == nullptr) return scales;
  std::set<std::string> names;
  for (const TensorInfo& t : reader.tensors()) names.insert(t.name);
  for (const TensorInfo& t : reader.tensors()) {
    if (t.dtype != "NVFP4") continue;
    std::string scale = gguf_nvfp4_scale_name(t.name);
    if (names.count(scale) != 0) scales.emplace(std::move(scale), t.name);
  }
  return scales;
}

std::optional<Format> gguf_type_format(std::string_view type) {
  const gguf_detail::GgmlType* t = gguf_detail::ggml_type_by_name(type);
  if (t == nullptr || t->format == nullptr) return std::nullopt;
  return *t->format;
}

std::string_view gguf_type_for(const Format& f) {
  const gguf_detail::GgmlType* t = gguf_detail::ggml_type_by_format(f);
  return t == nullptr ? std::string_view{} : t->name;
}

}  // namespace lowp::io
