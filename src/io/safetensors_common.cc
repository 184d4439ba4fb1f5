// Shared safetensors helpers: the dtype table, size arithmetic, and the
// strict JSON parsing used for the header and lowp's packed-tensor metadata.
#include "safetensors_common.h"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "lowp/error.h"
#include "lowp/io/safetensors.h"

namespace lowp::io {
namespace safetensors_detail {

namespace {

// safetensors' dtypes (the safetensors crate's Dtype) and the lowp formats
// whose codes they hold.
constexpr DTypeInfo kDTypes[] = {
    {"F64", 8, Decode::kF64},
    {"F32", 4, Decode::kF32, kFp32},
    {"F16", 2, Decode::kCode, kFp16},
    {"BF16", 2, Decode::kCode, kBf16},
    {"F8_E4M3", 1, Decode::kCode, kFp8E4m3},
    {"F8_E5M2", 1, Decode::kCode, kFp8E5m2},
    {"F8_E8M0", 1, Decode::kCode, kE8m0},
    {"I8", 1, Decode::kNone},
    {"U8", 1, Decode::kNone},
    {"I16", 2, Decode::kNone},
    {"U16", 2, Decode::kNone},
    {"I32", 4, Decode::kNone},
    {"U32", 4, Decode::kNone},
    {"I64", 8, Decode::kNone},
    {"U64", 8, Decode::kNone},
    {"BOOL", 1, Decode::kNone},
};

}  // namespace

const DTypeInfo* find_dtype(std::string_view name) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

const DTypeInfo* find_dtype(const Format& f) {
  for (const DTypeInfo& d : kDTypes) {
    if (holds_format(d.decode) && d.format == f) return &d;
  }
  return nullptr;
}

std::optional<std::uint64_t> checked_bytes(std::span<const std::int64_t> shape,
                                           std::uint64_t itemsize) {
  if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; }))
    return std::nullopt;
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::uint64_t n = itemsize;
  for (std::int64_t d : shape) {
    const auto ud = static_cast<std::uint64_t>(d);
    if (n > std::numeric_limits<std::uint64_t>::max() / ud) return std::nullopt;
    n *= ud;
  }
  return n;
}

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    out += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

[[noreturn]] void fail(std::string_view source, const std::string& what) {
  throw Error(std::string(source) + ": " + what);
}

namespace {

// nlohmann's messages may quote raw input bytes: keep them one printable line.
std::string sanitize(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return out;
}

// nlohmann's DOM builder behind a SAX filter that rejects duplicate keys in
// any object (nlohmann would silently keep the last) and arrays or objects
// nested `max_depth` or more levels deep (the format never needs them; this
// bounds the work a hostile header can cause), and records the top-level keys
// in text order. (nlohmann's parse callbacks are not used: they rescan the
// parent object at every nested object's end, quadratic in the tensor count.)
class CheckedSax {
 public:
  using Dom = nlohmann::detail::json_sax_dom_parser<Json>;
  CheckedSax(Json& result, std::string_view source, const std::string& what, int max_depth,
             std::vector<std::string>* top_keys)
      : dom_(result, true),
        source_(source),
        what_(what),
        max_depth_(max_depth),
        top_keys_(top_keys) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(Json::number_float_t v, const Json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(Json::string_t& v) { return dom_.string(v); }
  bool binary(Json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    open();
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(Json::string_t& k) {
    if (!keys_.back().insert(k).second)
      fail(source_, what_ + " has a duplicate key " + lowp::quoted(k));
    if (depth_ == 1 && top_keys_ != nullptr) top_keys_->push_back(k);
    return dom_.key(k);
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    open();
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) {
    return dom_.parse_error(position, token, e);  // throws e
  }

 private:
  void open() {
    if (depth_ >= max_depth_) fail(source_, what_ + " is nested too deeply");
    ++depth_;
  }

  Dom dom_;
  std::string_view source_;
  const std::string& what_;
  int max_depth_;
  int depth_ = 0;
  std::vector<std::string>* top_keys_;
  std::vector<std::unordered_set<std::string>> keys_;
};

}  // namespace

// Parses `text` as JSON through CheckedSax.
Json parse_json(std::string_view text, std::string_view source, const std::string& what,
                int max_depth, std::vector<std::string>* top_keys) {
  Json result;
  CheckedSax sax(result, source, what, max_depth, top_keys);
  try {
    Json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const Json::exception& e) {
    fail(source, what + " is not valid JSON: " + sanitize(e.what()));
  }
  return result;
}

// A JSON integer as uint64 (nullopt for non-integers and negative values).
std::optional<std::uint64_t> json_u64(const Json& j) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer() && j.get<std::int64_t>() == 0) return 0;  // "-0"
  return std::nullopt;
}
// A JSON integer as int64 (nullopt for non-integers and values past 2^63).
std::optional<std::int64_t> json_i64(const Json& j) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  if (j.is_number_integer()) return j.get<std::int64_t>();
  return std::nullopt;
}

// A shape: a JSON array of integers in [0, 2^63).
std::vector<std::int64_t> json_shape(const Json& j, std::string_view source,
                                     const std::string& where) {
  if (!j.is_array()) fail(source, where + ": 'shape' must be an array of integers");
  std::vector<std::int64_t> shape;
  for (const Json& d : j) {
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<std::int64_t>() < 0) {
      fail(source,
           where + ": negative dimension " + std::to_string(d.get<std::int64_t>()) + " in 'shape'");
    }
    const std::optional<std::uint64_t> v = json_u64(d);
    if (!v) fail(source, where + ": 'shape' must be an array of integers");
    if (*v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(source,
           where + ": dimension " + std::to_string(*v) + " in 'shape' does not fit in 63 bits");
    }
    shape.push_back(static_cast<std::int64_t>(*v));
  }
  return shape;
}

}  // namespace safetensors_detail

std::size_t safetensors_dtype_size(std::string_view dtype) {
  const safetensors_detail::DTypeInfo* d = safetensors_detail::find_dtype(dtype);
  return d == nullptr ? 0 : d->size;
}

std::optional<Format> safetensors_dtype_format(std::string_view dtype) {
  const safetensors_detail::DTypeInfo* d = safetensors_detail::find_dtype(dtype);
  if (d == nullptr || !detail::holds_format(d->decode)) return std::nullopt;
  return d->format;
}

std::string_view safetensors_dtype_for(const Format& f) {
  const safetensors_detail::DTypeInfo* d = safetensors_detail::find_dtype(f);
  return d == nullptr ? std::string_view{} : d->name;
}

}  // namespace lowp::io
