// GGUF writing (version 3).
#include <bit>
#include <limits>
#include <unordered_set>

#include "gguf_internal.h"
#include "lowp/error.h"
#include "lowp/io/atomic_file.h"
#include "lowp/io/gguf.h"

namespace lowp::io {

using namespace gguf_detail;

std::uint64_t gguf_tensor_nbytes(std::string_view dtype, std::span<const std::int64_t> shape) {
  const GgmlType* type = ggml_type_by_name(dtype);
  if (type == nullptr) throw Error("unknown GGUF tensor type " + lowp::quoted(dtype));
  std::vector<std::uint64_t> ne;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] < 0) throw Error("negative dimension " + std::to_string(shape[d]));
    ne.push_back(static_cast<std::uint64_t>(shape[d]));
  }
  const std::uint64_t ne0 = ne.empty() ? 1 : ne[0];
  if (ne0 % type->block != 0) {
    throw Error(std::string(type->name) + " needs a last dimension that is a multiple of " +
                std::to_string(type->block) + ", not " + std::to_string(ne0));
  }
  const std::optional<std::uint64_t> n = ggml_nbytes(*type, ne);
  if (!n) throw Error("too many elements for a GGUF tensor");
  return *n;
}

namespace {

constexpr int kMaxArrayDepth = 8;  // as the reader accepts

class Buffer {
 public:
  void uint(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      bytes_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
  }
  void chars(std::string_view s) {
    for (char ch : s) bytes_.push_back(static_cast<std::byte>(ch));
  }
  void str(std::string_view s) {
    uint(s.size(), 8);
    chars(s);
  }
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// An empty string if `v` can be written as is, else what is wrong with it.
std::string value_problem(const GgufValue& v, int depth) {
  if (static_cast<std::uint32_t>(v.type) > static_cast<std::uint32_t>(GgufType::kF64))
    return "unknown value type";
  if (v.type == GgufType::kArray) {
    if (depth >= kMaxArrayDepth)
      return "arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep";
    for (std::size_t i = 0; i < v.items.size(); ++i) {
      if (v.items[i].type != v.elem_type) {
        return "item " + std::to_string(i) + " is " + std::string(gguf_type_name(v.items[i].type)) +
               " in an array of " + std::string(gguf_type_name(v.elem_type));
      }
      std::string p = value_problem(v.items[i], depth + 1);
      if (!p.empty()) return "item " + std::to_string(i) + ": " + p;
    }
    return "";
  }
  const std::size_t size = scalar_size(v.type);
  if (size > 0 && size < 8 && (v.bits >> (8 * size)) != 0) return "value bits do not fit the type";
  if (v.type == GgufType::kBool && v.bits > 1) return "bool value is not 0 or 1";
  return "";
}

void put_value(Buffer& b, const GgufValue& v) {
  if (v.type == GgufType::kString) {
    b.str(v.str);
  } else if (v.type == GgufType::kArray) {
    b.uint(static_cast<std::uint32_t>(v.elem_type), 4);
    b.uint(v.items.size(), 8);
    for (const GgufValue& item : v.items) put_value(b, item);
  } else {
    b.uint(v.bits, scalar_size(v.type));
  }
}

std::uint64_t align_up(std::uint64_t n, std::uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

}  // namespace

void write_gguf(const std::filesystem::path& path, std::span<const GgufKv> kv,
                std::span<const OutputTensor> tensors, const ProduceTensor& produce) {
  const std::string name = path.string();
  auto fail = [&](const std::string& what) { throw Error(name + ": " + what); };

  std::uint64_t alignment = kDefaultAlignment;
  std::unordered_set<std::string_view> keys;
  for (const GgufKv& entry : kv) {
    if (!keys.insert(entry.first).second)
      fail("duplicate metadata key " + lowp::quoted(entry.first));
    const std::string problem = value_problem(entry.second, 0);
    if (!problem.empty()) fail("metadata " + lowp::quoted(entry.first) + ": " + problem);
    if (entry.first == kAlignmentKey) {
      if (entry.second.type != GgufType::kU32 || entry.second.bits == 0 ||
          !std::has_single_bit(entry.second.bits)) {
        fail(std::string(kAlignmentKey) + " must be a UINT32 power of two");
      }
      alignment = entry.second.bits;
    }
  }

  Buffer header;
  header.chars("GGUF");  // the magic, without a length
  header.uint(3, 4);
  header.uint(tensors.size(), 8);
  header.uint(kv.size(), 8);
  for (const GgufKv& entry : kv) {
    header.str(entry.first);
    header.uint(static_cast<std::uint32_t>(entry.second.type), 4);
    put_value(header, entry.second);
  }

  std::unordered_set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const OutputTensor& t : tensors) {
    const std::string named = "tensor " + lowp::quoted(t.name);
    if (!names.insert(t.name).second) fail("duplicate tensor name " + lowp::quoted(t.name));
    if (t.shape.size() > 8)
      fail(named + " has " + std::to_string(t.shape.size()) + " dimensions (at most 8)");
    std::uint64_t nbytes = 0;
    try {
      nbytes = gguf_tensor_nbytes(t.dtype, t.shape);
    } catch (const Error& e) {
      fail(named + ": " + e.what());
    }
    if (nbytes != t.nbytes) {
      fail(named + " of type " + t.dtype + " needs " + std::to_string(nbytes) + " bytes, not " +
           std::to_string(t.nbytes));
    }
    header.str(t.name);
    header.uint(t.shape.size(), 4);
    for (std::size_t d = t.shape.size(); d-- > 0;)
      header.uint(static_cast<std::uint64_t>(t.shape[d]), 8);
    header.uint(ggml_type_by_name(t.dtype)->id, 4);
    header.uint(offset, 8);
    const std::uint64_t padded = align_up(nbytes, alignment);
    if (padded < nbytes || padded > std::numeric_limits<std::uint64_t>::max() - offset)
      fail("tensor data too large");
    offset += padded;
  }

  AtomicFile out(path);
  out.write(header.bytes());
  out.write_zeros(
      static_cast<std::size_t>(align_up(header.bytes().size(), alignment) - header.bytes().size()));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::vector<std::byte> bytes = produce(i);
    if (bytes.size() != tensors[i].nbytes) {
      fail("tensor " + lowp::quoted(tensors[i].name) + ": got " + std::to_string(bytes.size()) +
           " bytes, expected " + std::to_string(tensors[i].nbytes));
    }
    out.write(bytes);
    out.write_zeros(static_cast<std::size_t>(align_up(bytes.size(), alignment) - bytes.size()));
  }
  out.commit();
}

}  // namespace lowp::io
