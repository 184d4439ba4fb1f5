// NumPy .npy reading and writing (format versions 1.0, 2.0, 3.0).
//
// Format reference: numpy/lib/format.py (NEP 1). A file is
//   "\x93NUMPY" + major + minor + header length (uint16 LE for 1.0, uint32 LE
//   for 2.0/3.0) + header + data.
// The header is the repr() of a Python dict with exactly the keys 'descr',
// 'fortran_order' and 'shape', padded with spaces and ended by '\n' so that the
// data starts on a 64-byte boundary. Version 3.0 only differs in that the
// header is utf-8 instead of latin-1; every header we accept is plain ASCII.
//
// Input is treated as hostile: every length is checked against the bytes that
// are actually present before anything is allocated, all size arithmetic is
// overflow-checked, and every problem becomes a one-line lowp::Error that
// starts with the file (or other source) name.
#include "lowp/io/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "lowp/error.h"

namespace lowp::io {
namespace {

constexpr std::array<unsigned char, 6> kMagic = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kArrayAlign = 64;           // numpy's ARRAY_ALIGN
constexpr std::size_t kGrowthAxisMaxDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS
constexpr std::size_t kMaxDims = 64;              // numpy 2's NPY_MAXDIMS

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::string_view descr;  // what we write
  std::size_t size;
};

constexpr std::array<DTypeInfo, 13> kDTypes = {{
    {DType::kF64, "float64", "<f8", 8},
    {DType::kF32, "float32", "<f4", 4},
    {DType::kF16, "float16", "<f2", 2},
    // ml_dtypes' bfloat16 is a legacy user dtype; np.save records dtype.str,
    // which is '<V2'. Plain numpy reads such a file as 2-byte voids.
    {DType::kBF16, "bfloat16", "<V2", 2},
    {DType::kI8, "int8", "|i1", 1},
    {DType::kU8, "uint8", "|u1", 1},
    {DType::kI16, "int16", "<i2", 2},
    {DType::kU16, "uint16", "<u2", 2},
    {DType::kI32, "int32", "<i4", 4},
    {DType::kU32, "uint32", "<u4", 4},
    {DType::kI64, "int64", "<i8", 8},
    {DType::kU64, "uint64", "<u8", 8},
    {DType::kBool, "bool", "|b1", 1},
}};

const DTypeInfo& info(DType t) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == t) return d;
  }
  throw Error("npy: invalid DType value " + std::to_string(static_cast<int>(t)));
}

[[noreturn]] void fail(std::string_view source, const std::string& what) {
  throw Error(std::string(source) + ": " + what);
}

std::string shape_repr(std::span<const std::int64_t> shape) {
  // Python's repr of a tuple: "()", "(3,)", "(2, 3)".
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  out += ")";
  return out;
}

// Number of elements for a shape whose dims are all >= 0, or nullopt when the
// product does not fit in size_t. A zero dim makes the array empty whatever
// the other dims are (numpy agrees: np.empty((2**62, 2**62, 0)) is fine).
std::optional<std::size_t> checked_element_count(std::span<const std::int64_t> shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::size_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0) return std::nullopt;
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud > std::numeric_limits<std::size_t>::max() / count) return std::nullopt;
    count *= static_cast<std::size_t>(ud);
  }
  return count;
}

std::optional<std::size_t> checked_byte_count(std::span<const std::int64_t> shape,
                                              std::size_t itemsize) {
  const std::optional<std::size_t> count = checked_element_count(shape);
  if (!count || (itemsize != 0 && *count > std::numeric_limits<std::size_t>::max() / itemsize)) {
    return std::nullopt;
  }
  return *count * itemsize;
}

std::uint32_t load_le(std::span<const std::byte> b) {
  std::uint32_t v = 0;
  for (std::size_t i = b.size(); i-- > 0;) v = (v << 8) | std::to_integer<std::uint32_t>(b[i]);
  return v;
}

// ---- the fixed-size preamble: magic, version, header length ----

struct Preamble {
  int major = 0;
  std::size_t prefix_len = 0;  // magic + version + length field: 10 or 12
  std::size_t header_len = 0;
};

// `first` is the start of the file: at least 12 bytes unless the file is shorter.
Preamble parse_preamble(std::span<const std::byte> first, std::string_view source) {
  // Compare as much of the magic as we have, so that a file that is simply
  // not .npy says so even when it is tiny.
  const std::size_t n = std::min(first.size(), kMagic.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (std::to_integer<unsigned char>(first[i]) != kMagic[i]) {
      fail(source, "not a .npy file (bad magic bytes; expected \\x93NUMPY)");
    }
  }
  if (first.size() < 8) {
    fail(source, "truncated header: file has only " + std::to_string(first.size()) + " bytes");
  }
  Preamble p;
  const int major = std::to_integer<int>(first[6]);
  const int minor = std::to_integer<int>(first[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    fail(source, "unsupported .npy format version " + std::to_string(major) + "." +
                     std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  p.major = major;
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  p.prefix_len = 8 + len_bytes;
  if (first.size() < p.prefix_len) {
    fail(source, "truncated header: file has only " + std::to_string(first.size()) + " bytes");
  }
  p.header_len = load_le(first.subspan(8, len_bytes));
  return p;
}

[[noreturn]] void fail_header_past_eof(std::string_view source, const Preamble& p,
                                       std::size_t available) {
  fail(source, "header length " + std::to_string(p.header_len) +
                   " runs past the end of the file (only " + std::to_string(available) +
                   " bytes follow the preamble)");
}

// ---- the header dict ----

struct Header {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::size_t data_bytes = 0;
};

// A small recursive-descent parser for exactly the Python literals numpy
// writes in a header: a dict of str keys whose values are a str ('descr'),
// True/False ('fortran_order') and a tuple of non-negative ints ('shape').
// Whitespace is allowed wherever Python allows it, as are a trailing comma
// in the dict and in the tuple. Anything else is rejected.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Header parse() {
    std::optional<std::string_view> descr;
    std::optional<bool> fortran;
    std::optional<std::vector<std::int64_t>> shape;

    skip_ws();
    expect('{', "header must be a dict starting with '{'");
    skip_ws();
    while (!at('}')) {
      const std::string_view key = string_literal("a quoted key");
      skip_ws();
      expect(':', "expected ':' after key");
      skip_ws();
      if (key == "descr") {
        if (descr) malformed("duplicate key 'descr'");
        if (at('[')) fail(source_, "structured dtypes are not supported");
        descr = string_literal("a quoted dtype for 'descr'");
      } else if (key == "fortran_order") {
        if (fortran) malformed("duplicate key 'fortran_order'");
        fortran = boolean();
      } else if (key == "shape") {
        if (shape) malformed("duplicate key 'shape'");
        shape = tuple();
      } else {
        malformed("unexpected key " + quoted(key));
      }
      skip_ws();
      if (at(',')) {
        ++pos_;
        skip_ws();
      } else if (!at('}')) {
        malformed("expected ',' or '}'");
      }
    }
    ++pos_;  // '}'
    // numpy pads with spaces and ends with '\n'; accept any trailing whitespace.
    skip_ws();
    if (pos_ != text_.size()) malformed("unexpected text after the dict");

    if (!descr) malformed("missing key 'descr'");
    if (!fortran) malformed("missing key 'fortran_order'");
    if (!shape) malformed("missing key 'shape'");

    Header h;
    h.dtype = dtype_from_descr(*descr);
    if (*fortran)
      fail(source_, "Fortran-order arrays are not supported; save with np.ascontiguousarray");
    h.shape = std::move(*shape);
    const std::optional<std::size_t> bytes = checked_byte_count(h.shape, dtype_size(h.dtype));
    if (!bytes) {
      fail(source_, "shape " + shape_repr(h.shape) + " is too large: its size in bytes overflows " +
                        std::to_string(std::numeric_limits<std::size_t>::digits) + " bits");
    }
    h.data_bytes = *bytes;
    return h;
  }

 private:
  [[noreturn]] void malformed(const std::string& what) const {
    fail(source_, "malformed header: " + what + " at offset " + std::to_string(pos_));
  }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void expect(char c, const std::string& what) {
    if (!at(c)) malformed(what);
    ++pos_;
  }
  void skip_ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // '...' or "..." without escapes (numpy never needs one for these keys/values).
  std::string_view string_literal(const char* what) {
    if (!at('\'') && !at('"')) malformed(std::string("expected ") + what);
    const char q = text_[pos_++];
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != q) {
      if (text_[pos_] == '\\' || text_[pos_] == '\n') malformed("unsupported character in string");
      ++pos_;
    }
    if (pos_ == text_.size()) malformed("unterminated string");
    return text_.substr(start, pos_++ - start);
  }

  bool boolean() {
    for (auto [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    malformed("'fortran_order' must be True or False");
  }

  // A Python tuple of ints: "()", "(3,)", "(2, 3)", "(2, 3,)". "(3)" is an
  // int, not a tuple, and numpy rejects it, so do we.
  std::vector<std::int64_t> tuple() {
    expect('(', "'shape' must be a tuple");
    std::vector<std::int64_t> dims;
    skip_ws();
    bool single_needs_comma = true;
    while (!at(')')) {
      if (dims.size() == kMaxDims)
        malformed("shape has more than " + std::to_string(kMaxDims) + " dimensions");
      dims.push_back(integer());
      skip_ws();
      if (at(',')) {
        ++pos_;
        skip_ws();
        single_needs_comma = false;
      } else if (!at(')')) {
        malformed("expected ',' or ')' in shape");
      }
    }
    if (dims.size() == 1 && single_needs_comma) malformed("'shape' must be a tuple, e.g. (3,)");
    ++pos_;  // ')'
    return dims;
  }

  std::int64_t integer() {
    const bool negative = at('-');
    if (negative) ++pos_;
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9')
      malformed("expected an integer in shape");
    std::uint64_t v = 0;
    bool too_big = false;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (v > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - digit) / 10)
        too_big = true;
      if (!too_big) v = v * 10 + digit;
      ++pos_;
    }
    if (at('L')) ++pos_;  // Python 2 long suffix, as in headers written by numpy on Python 2
    if (negative && v != 0) {
      fail(source_, "negative dimension -" + (too_big ? std::string("<huge>") : std::to_string(v)) +
                        " in shape");
    }
    if (too_big) fail(source_, "dimension in shape does not fit in 64 bits");
    return static_cast<std::int64_t>(v);
  }

  DType dtype_from_descr(std::string_view descr) const {
    const std::string shown = quoted(descr);
    if (descr.empty()) fail(source_, "unsupported dtype ''");
    const char order = descr[0];
    const std::string_view code = descr.substr(1);
    const DTypeInfo* found = nullptr;
    for (const DTypeInfo& d : kDTypes) {
      if (d.descr.substr(1) == code) found = &d;
    }
    if (found == nullptr || (order != '<' && order != '>' && order != '|' && order != '=')) {
      std::string hint;
      if (!code.empty() && code[0] == 'O') hint = " (object arrays are not supported)";
      if (!code.empty() && (code[0] == 'U' || code[0] == 'S'))
        hint = " (string arrays are not supported)";
      fail(source_, "unsupported dtype " + shown + hint);
    }
    // Byte order: 1-byte types have none. For wider types '<' is little-endian,
    // '=' is native (accepted only on little-endian hosts, where data is used
    // as is), '|' means "not applicable" and is only right for a void type
    // (bfloat16 saved as '|V2'); '>' is big-endian.
    const bool little_host = std::endian::native == std::endian::little;
    if (found->size == 1) return found->dtype;
    if (order == '<' || (order == '=' && little_host) || (order == '|' && code[0] == 'V'))
      return found->dtype;
    if (order == '|') fail(source_, "unsupported dtype " + shown + " (a byte order is required)");
    fail(source_, "big-endian arrays are not supported (dtype " + shown + ")");
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
};

void check_data_length(std::size_t expected, std::size_t found, bool found_is_lower_bound,
                       std::string_view source) {
  if (found < expected) {
    fail(source, "truncated: expected " + std::to_string(expected) + " data bytes, found " +
                     std::to_string(found));
  }
  if (found > expected) {
    fail(source, "trailing bytes after the array data: expected " + std::to_string(expected) +
                     " data bytes, found " +
                     (found_is_lower_bound ? "more than " + std::to_string(expected)
                                           : std::to_string(found)));
  }
}

// ---- reading files ----

std::string errno_text(int err) { return std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Appends up to `n` bytes from `fd` to `out`, stopping early at end of file.
// The buffer grows as data actually arrives (in bounded steps), so a huge `n`
// taken from a hostile header never causes a huge allocation by itself.
void read_up_to(int fd, std::size_t n, std::vector<std::byte>& out, const std::string& source) {
  constexpr std::size_t kStep = std::size_t{1} << 20;
  std::size_t got = 0;
  while (got < n) {
    const std::size_t want = std::min(n - got, kStep);
    const std::size_t old = out.size();
    out.resize(old + want);
    const ssize_t r = ::read(fd, out.data() + old, want);
    if (r < 0) {
      out.resize(old);
      if (errno == EINTR) continue;
      fail(source, "read error: " + errno_text(errno));
    }
    out.resize(old + static_cast<std::size_t>(r));
    if (r == 0) return;
    got += static_cast<std::size_t>(r);
  }
}

}  // namespace

std::size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
std::string_view dtype_descr(DType t) { return info(t).descr; }

std::size_t NpyArray::element_count() const {
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("npy array: negative dimension in shape " + shape_repr(shape));
  }
  const std::optional<std::size_t> n = checked_element_count(shape);
  if (!n) throw Error("npy array: shape " + shape_repr(shape) + " is too large");
  return *n;
}

NpyLayout parse_npy_layout(std::span<const std::byte> bytes, std::string_view source) {
  const Preamble p = parse_preamble(bytes.first(std::min<std::size_t>(bytes.size(), 12)), source);
  const std::size_t after_prefix = bytes.size() - p.prefix_len;
  if (p.header_len > after_prefix) fail_header_past_eof(source, p, after_prefix);
  const auto header_bytes = bytes.subspan(p.prefix_len, p.header_len);
  const std::string_view text(reinterpret_cast<const char*>(header_bytes.data()),
                              header_bytes.size());
  Header h = HeaderParser(text, source).parse();
  const std::size_t data_offset = p.prefix_len + p.header_len;
  check_data_length(h.data_bytes, bytes.size() - data_offset, false, source);
  return NpyLayout{h.dtype, std::move(h.shape), data_offset, h.data_bytes};
}

NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view source) {
  NpyLayout layout = parse_npy_layout(bytes, source);
  const std::span<const std::byte> data = bytes.subspan(layout.data_offset, layout.data_bytes);
  NpyArray a;
  a.dtype = layout.dtype;
  a.shape = std::move(layout.shape);
  a.data.assign(data.begin(), data.end());
  return a;
}

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string source = path.string();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  // "cannot open 'path': <reason>" already names the file; no prefix needed.
  auto cannot_open = [&](int err) {
    throw Error("cannot open '" + source + "': " + errno_text(err));
  };
  if (fd.get() < 0) cannot_open(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) cannot_open(errno);
  if (S_ISDIR(st.st_mode)) cannot_open(EISDIR);
  // For regular files we know the true size up front, can reject a lying
  // header before reading anything big, and can report exact byte counts;
  // pipes and the like are simply read as far as they go.
  const bool regular = S_ISREG(st.st_mode);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);

  // buf holds the file from its start up to the end of the header.
  std::vector<std::byte> buf;
  read_up_to(fd.get(), 12, buf, source);
  const Preamble p = parse_preamble(buf, source);
  const std::uint64_t after_prefix =
      regular ? file_size - std::min<std::uint64_t>(file_size, p.prefix_len) : 0;
  if (regular && p.header_len > after_prefix)
    fail_header_past_eof(source, p, static_cast<std::size_t>(after_prefix));
  const std::size_t data_offset = p.prefix_len + p.header_len;  // header_len < 2^32: no overflow
  if (buf.size() < data_offset) read_up_to(fd.get(), data_offset - buf.size(), buf, source);
  if (buf.size() < data_offset) fail_header_past_eof(source, p, buf.size() - p.prefix_len);

  const std::string_view text(reinterpret_cast<const char*>(buf.data() + p.prefix_len),
                              p.header_len);
  Header h = HeaderParser(text, source).parse();

  NpyArray a;
  a.dtype = h.dtype;
  a.shape = std::move(h.shape);
  // Bytes read past the header (a short header inside the first 12 bytes).
  a.data.assign(buf.begin() + static_cast<std::ptrdiff_t>(data_offset), buf.end());
  if (regular && file_size >= data_offset && h.data_bytes <= file_size - data_offset) {
    a.data.reserve(h.data_bytes);  // bounded by the real file size
  }
  if (a.data.size() < h.data_bytes)
    read_up_to(fd.get(), h.data_bytes - a.data.size(), a.data, source);
  if (a.data.size() < h.data_bytes) check_data_length(h.data_bytes, a.data.size(), false, source);
  // Anything after the data is an error too; probe for one more byte.
  std::vector<std::byte> extra;
  read_up_to(fd.get(), 1, extra, source);
  if (a.data.size() > h.data_bytes || !extra.empty()) {
    if (regular && file_size >= data_offset) {
      check_data_length(h.data_bytes, static_cast<std::size_t>(file_size - data_offset), false,
                        source);
    }
    check_data_length(h.data_bytes, h.data_bytes + 1, true, source);
  }
  return a;
}

namespace {

// numpy's _write_array_header + _wrap_header for a C-order array:
//   "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
//   + (21 - len(repr(shape[0]))) spaces  (room to grow axis 0 in place; numpy >= 1.23)
//   + spaces + '\n' so that the data offset is a multiple of 64. numpy always
//   pads at least one space (a full 64 when already aligned) and we match it.
// Version 1.0 unless the header length does not fit in 16 bits, then 2.0.
std::vector<std::byte> npy_header(DType dtype, std::span<const std::int64_t> shape) {
  std::string dict = "{'descr': '";
  dict += dtype_descr(dtype);
  dict += "', 'fortran_order': False, 'shape': ";
  dict += shape_repr(shape);
  dict += ", }";
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  const std::size_t hlen = dict.size() + 1;  // + '\n'
  std::size_t prefix = 10;
  std::size_t pad = kArrayAlign - (prefix + hlen) % kArrayAlign;
  if (hlen + pad > 0xffff) {
    prefix = 12;
    pad = kArrayAlign - (prefix + hlen) % kArrayAlign;
  }
  const std::size_t total_len = hlen + pad;
  std::string out(kMagic.begin(), kMagic.end());
  out += static_cast<char>(prefix == 10 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < prefix - 8; ++i)
    out += static_cast<char>((total_len >> (8 * i)) & 0xff);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  std::vector<std::byte> bytes(out.size());
  std::memcpy(bytes.data(), out.data(), out.size());
  return bytes;
}

std::vector<std::byte> serialize_checked(DType dtype, std::span<const std::int64_t> shape,
                                         std::span<const std::byte> data, std::string_view source) {
  for (std::int64_t d : shape) {
    if (d < 0) fail(source, "negative dimension in shape " + shape_repr(shape));
  }
  if (shape.size() > kMaxDims)
    fail(source, "shape has more than " + std::to_string(kMaxDims) + " dimensions");
  const std::optional<std::size_t> expected = checked_byte_count(shape, dtype_size(dtype));
  if (!expected) fail(source, "shape " + shape_repr(shape) + " is too large");
  if (*expected != data.size()) {
    fail(source, "data has " + std::to_string(data.size()) + " bytes but a " +
                     std::string(dtype_name(dtype)) + " array of shape " + shape_repr(shape) +
                     " needs " + std::to_string(*expected));
  }
  std::vector<std::byte> out = npy_header(dtype, shape);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

}  // namespace

std::vector<std::byte> serialize_npy(DType dtype, std::span<const std::int64_t> shape,
                                     std::span<const std::byte> data) {
  return serialize_checked(dtype, shape, data, "npy");
}

void write_npy(const std::filesystem::path& path, DType dtype, std::span<const std::int64_t> shape,
               std::span<const std::byte> data) {
  write_file_atomic(path, serialize_checked(dtype, shape, data, path.string()));
}

}  // namespace lowp::io
