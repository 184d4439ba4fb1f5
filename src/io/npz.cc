// .npy and .npz files as model readers.
//
// An .npz is a zip archive of .npy members (np.savez stores them, np.savez_compressed
// deflates them; numpy writes zip64 records). We read the central directory
// (APPNOTE 4.3.12-4.3.16, with the zip64 end-of-central-directory record and
// extra field, 4.3.14 and 4.5.3), locate each member through its local header, and
// either point straight into the mapped file (stored members) or inflate with
// zlib when a tensor is read (deflated members). Every offset and size comes
// from the file, so each is checked against the image before use.
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/model.h"
#include "lowp/io/npy.h"

namespace lowp::io {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error(source + ": " + what);
}

std::uint64_t le(std::span<const std::byte> b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | static_cast<std::uint64_t>(b[at + static_cast<std::size_t>(i)]);
  return v;
}

// Values of a float npy array as fp32 (float64 rounds to nearest-even).
std::vector<float> npy_to_f32(const NpyLayout& layout, std::span<const std::byte> data,
                              const std::string& what) {
  const std::size_t n = layout.data_bytes / std::max<std::size_t>(1, dtype_size(layout.dtype));
  std::vector<float> out(n);
  const std::byte* p = data.data();
  switch (layout.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), p, n * 4);
      break;
    case DType::kF64:
      for (std::size_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      break;
    case DType::kF16:
    case DType::kBF16: {
      const Format f = layout.dtype == DType::kF16 ? kFp16 : kBf16;
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        out[i] = decode_f32(f, bits);
      }
      break;
    }
    default:
      throw Error(what + ": dtype " + std::string(dtype_name(layout.dtype)) +
                  " is not a float array");
  }
  return out;
}

bool is_float_dtype(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16;
}

// One array of an npy/npz file: where its .npy image lies, and how it is stored.
struct Member {
  std::span<const std::byte> stored;  // the .npy image (stored) or the deflate stream
  bool deflated = false;
  std::uint64_t size = 0;  // uncompressed .npy image size
  std::uint32_t crc = 0;
  NpyLayout layout;
};

class NpyReader final : public ModelReader {
 public:
  NpyReader(std::string kind, std::string source, ImageOwner owner)
      : kind_(std::move(kind)), source_(std::move(source)), owner_(std::move(owner)) {}

  std::string_view kind() const override { return kind_; }
  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  std::vector<std::pair<std::string, std::string>> metadata() const override { return {}; }

  std::vector<float> read_f32(const TensorInfo& t) const override {
    const Member& m = member(t);
    const std::string what = source_ + ": tensor " + quoted(t.name);
    if (!m.deflated)
      return npy_to_f32(m.layout, m.stored.subspan(m.layout.data_offset, m.layout.data_bytes),
                        what);
    const std::vector<std::byte> image = inflate(m, t.name);
    return npy_to_f32(m.layout, std::span(image).subspan(m.layout.data_offset, m.layout.data_bytes),
                      what);
  }

  std::span<const std::byte> raw(const TensorInfo& t) const override {
    const Member& m = member(t);
    if (m.deflated)
      fail(source_, "tensor " + quoted(t.name) + " is compressed; read it with read_f32");
    return m.stored.subspan(m.layout.data_offset, m.layout.data_bytes);
  }

  void add(std::string name, Member m, std::uint64_t file_offset) {
    if (!names_.insert(name).second) fail(source_, "two arrays are named " + quoted(name));
    if (m.deflated)
      m.layout = parse_npy_layout(inflate(m, name), source_ + ": " + name + ".npy");
    else
      m.layout = parse_npy_layout(m.stored, source_ + (kind_ == "npz" ? ": " + name + ".npy" : ""));
    TensorInfo t;
    t.name = std::move(name);
    t.dtype = std::string(dtype_name(m.layout.dtype));
    t.shape = m.layout.shape;
    t.offset = m.deflated ? file_offset : file_offset + m.layout.data_offset;
    t.nbytes = m.deflated ? m.stored.size() : m.layout.data_bytes;
    t.is_float = is_float_dtype(m.layout.dtype);
    infos_.push_back(std::move(t));
    members_.push_back(std::move(m));
  }

 private:
  const Member& member(const TensorInfo& t) const {
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      if (&infos_[i] == &t || infos_[i].name == t.name) return members_[i];
    }
    fail(source_, "no tensor named " + quoted(t.name));
  }

  std::vector<std::byte> inflate(const Member& m, const std::string& name) const {
    const std::string what = "member " + quoted(name + ".npy");
    std::vector<std::byte> out(static_cast<std::size_t>(m.size));
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail(source_, "cannot start zlib");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(m.stored.data()));
    z.avail_in = static_cast<uInt>(m.stored.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = ::inflate(&z, Z_FINISH);
    const std::uint64_t produced = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != m.size) {
      fail(source_,
           what + " does not inflate to its recorded " + std::to_string(m.size) + " bytes");
    }
    const auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size())));
    if (crc != m.crc) fail(source_, what + " fails its CRC-32 check");
    return out;
  }

  std::string kind_;
  std::string source_;
  ImageOwner owner_;
  std::vector<TensorInfo> infos_;
  std::vector<Member> members_;
  std::set<std::string> names_;
};

constexpr std::uint32_t kEocd = 0x06054b50;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::uint32_t kZip64Eocd = 0x06064b50;
constexpr std::uint32_t kCentral = 0x02014b50;
constexpr std::uint32_t kLocal = 0x04034b50;

}  // namespace

std::unique_ptr<ModelReader> parse_npy_model(std::span<const std::byte> image, std::string source,
                                             ImageOwner owner) {
  auto reader = std::make_unique<NpyReader>("npy", source, std::move(owner));
  Member m;
  m.stored = image;
  m.size = image.size();
  reader->add(std::filesystem::path(source).stem().string(), std::move(m), 0);
  return reader;
}

std::unique_ptr<ModelReader> parse_npz(std::span<const std::byte> image, std::string source,
                                       ImageOwner owner) {
  const std::size_t size = image.size();
  auto need = [&](std::uint64_t at, std::uint64_t n, const char* what) {
    if (at > size || n > size - at)
      fail(source, std::string("zip ") + what + " lies past the end of the file");
  };
  // Step 1: the end-of-central-directory record, within the last 64 KiB + 22 bytes.
  if (size < 22) fail(source, "too short to be a zip (npz) archive");
  std::optional<std::size_t> eocd;
  for (std::size_t at = size - 22;; --at) {
    if (le(image, at, 4) == kEocd && at + 22 + le(image, at + 20, 2) == size) {
      eocd = at;
      break;
    }
    if (at == 0 || size - at > 22 + 0xFFFF) break;
  }
  if (!eocd) fail(source, "no zip end-of-central-directory record (not an npz archive?)");
  std::uint64_t entries = le(image, *eocd + 10, 2);
  std::uint64_t cd_size = le(image, *eocd + 12, 4);
  std::uint64_t cd_offset = le(image, *eocd + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Step 1b: zip64 — the locator sits just before the classic record.
    if (*eocd < 20 || le(image, *eocd - 20, 4) != kZip64Locator)
      fail(source, "missing zip64 locator");
    const std::uint64_t z64 = le(image, *eocd - 20 + 8, 8);
    need(z64, 56, "zip64 end record");
    if (le(image, static_cast<std::size_t>(z64), 4) != kZip64Eocd)
      fail(source, "bad zip64 end record");
    entries = le(image, static_cast<std::size_t>(z64) + 32, 8);
    cd_size = le(image, static_cast<std::size_t>(z64) + 40, 8);
    cd_offset = le(image, static_cast<std::size_t>(z64) + 48, 8);
  }
  need(cd_offset, cd_size, "central directory");
  if (entries > cd_size / 46)
    fail(source, "zip central directory is too small for " + std::to_string(entries) + " entries");

  auto reader = std::make_unique<NpyReader>("npz", source, std::move(owner));
  // Step 2: each central directory entry, then its local header and data.
  std::uint64_t at = cd_offset;
  const std::uint64_t cd_end = cd_offset + cd_size;
  for (std::uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > cd_end || le(image, static_cast<std::size_t>(at), 4) != kCentral) {
      fail(source, "bad zip central directory entry " + std::to_string(e));
    }
    const auto c = static_cast<std::size_t>(at);
    const auto flags = le(image, c + 8, 2);
    const auto method = le(image, c + 10, 2);
    const auto crc = static_cast<std::uint32_t>(le(image, c + 16, 4));
    std::uint64_t compressed = le(image, c + 20, 4);
    std::uint64_t uncompressed = le(image, c + 24, 4);
    const std::uint64_t name_len = le(image, c + 28, 2);
    const std::uint64_t extra_len = le(image, c + 30, 2);
    const std::uint64_t comment_len = le(image, c + 32, 2);
    std::uint64_t local = le(image, c + 42, 4);
    if (at + 46 + name_len + extra_len + comment_len > cd_end)
      fail(source, "zip central directory entry runs past its directory");
    const std::string name(reinterpret_cast<const char*>(image.data() + c + 46),
                           static_cast<std::size_t>(name_len));
    // The zip64 extra field holds, in order, the fields whose 32-bit slots are all ones.
    for (std::uint64_t x = at + 46 + name_len; x + 4 <= at + 46 + name_len + extra_len;) {
      const auto id = le(image, static_cast<std::size_t>(x), 2);
      const std::uint64_t len = le(image, static_cast<std::size_t>(x) + 2, 2);
      if (x + 4 + len > at + 46 + name_len + extra_len)
        fail(source, "zip extra field of " + quoted(name) + " runs past its entry");
      if (id == 0x0001) {
        std::uint64_t p = x + 4;
        auto take = [&](std::uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (p + 8 > x + 4 + len) fail(source, "short zip64 field in " + quoted(name));
          field = le(image, static_cast<std::size_t>(p), 8);
          p += 8;
        };
        take(uncompressed);
        take(compressed);
        take(local);
      }
      x += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;

    if (name.size() < 5 || name.substr(name.size() - 4) != ".npy") {
      fail(source, "member " + quoted(name) + " is not an .npy array");
    }
    if (flags & 1) fail(source, "member " + quoted(name) + " is encrypted");
    if (method != 0 && method != 8) {
      fail(source, "member " + quoted(name) + " uses zip compression method " +
                       std::to_string(method) + " (only stored and deflate are supported)");
    }
    need(local, 30, "local header");
    if (le(image, static_cast<std::size_t>(local), 4) != kLocal)
      fail(source, "bad zip local header for " + quoted(name));
    const std::uint64_t data = local + 30 + le(image, static_cast<std::size_t>(local) + 26, 2) +
                               le(image, static_cast<std::size_t>(local) + 28, 2);
    need(data, compressed, "member data");
    if (method == 0 && compressed != uncompressed)
      fail(source, "stored member " + quoted(name) + " has two different sizes");
    // Deflate expands at most ~1032:1; a larger claim is a decompression bomb.
    if (method == 8 && uncompressed > compressed * 1100 + 1024) {
      fail(source, "member " + quoted(name) + " claims an implausible " +
                       std::to_string(uncompressed) + " bytes");
    }
    Member m;
    m.stored = image.subspan(static_cast<std::size_t>(data), static_cast<std::size_t>(compressed));
    m.deflated = method == 8;
    m.size = uncompressed;
    m.crc = crc;
    reader->add(name.substr(0, name.size() - 4), std::move(m), data);
  }
  return reader;
}

}  // namespace lowp::io
