// write_onnx_replacing: a copy of an ONNX file with some tensors' payload
// bytes overwritten in place (see lowp/io/onnx.h).
//
// Only fixed-width payloads are patched (raw_data, packed or unpacked
// float_data/double_data, and raw_data of every float type), so each
// replacement has exactly the old payload's size and the protobuf framing
// around it (lengths, tags, every other field) stays byte-identical. The file
// is streamed through AtomicFile: the bytes between payloads are copied from
// the input's image, one tensor's new payload is in memory at a time.
#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/atomic_file.h"
#include "lowp/io/onnx.h"
#include "onnx_internal.h"
#include "protobuf_wire.h"

namespace lowp::io {
namespace {

using onnx::OnnxReader;
using onnx::Storage;

void store_le(std::byte* p, std::uint64_t v, std::size_t width) {
  for (std::size_t b = 0; b < width; ++b) p[b] = static_cast<std::byte>((v >> (8 * b)) & 0xFF);
}

// The stored code of value x in the tensor's data type (a float type).
struct Encoder {
  explicit Encoder(const onnx::DataType& t) : type(t) {}
  std::uint64_t operator()(float x) const {
    switch (type.decode) {
      case detail::Decode::kF32:
        return std::bit_cast<std::uint32_t>(x);
      case detail::Decode::kF64:
        return std::bit_cast<std::uint64_t>(static_cast<double>(x));
      default:
        return encode(type.format, static_cast<double>(x));
    }
  }
  const onnx::DataType& type;
};

// The new payload of tensor i (same size as the old one).
std::vector<std::byte> payload(const OnnxReader& r, std::size_t i, const std::vector<float>& v) {
  const TensorInfo& t = r.tensors()[i];
  const OnnxReader::Entry& e = r.entry(i);
  const Encoder enc(*e.type);
  const auto old =
      r.image().subspan(static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.nbytes));
  std::vector<std::byte> out(old.begin(), old.end());
  switch (e.storage) {
    case Storage::kNone:
      break;
    case Storage::kRaw:
      if (e.type->bits == 4) {
        std::fill(out.begin(), out.end(), std::byte{0});
        for (std::size_t k = 0; k < v.size(); ++k) {
          const auto code = static_cast<std::uint8_t>(enc(v[k]) & 0xF);
          out[k / 2] |= static_cast<std::byte>(k % 2 == 0 ? code : code << 4);
        }
      } else {
        const std::size_t w = e.type->bits / 8;
        for (std::size_t k = 0; k < v.size(); ++k) store_le(out.data() + k * w, enc(v[k]), w);
      }
      break;
    case Storage::kPackedFixed32:
    case Storage::kPackedFixed64: {
      const std::size_t w = e.storage == Storage::kPackedFixed32 ? 4 : 8;
      for (std::size_t k = 0; k < v.size(); ++k) store_le(out.data() + k * w, enc(v[k]), w);
      break;
    }
    case Storage::kUnpackedFixed32:
    case Storage::kUnpackedFixed64: {
      // Walk the run's fields again and rewrite each value in place.
      pb::Reader rd(r.image(), static_cast<std::size_t>(t.offset),
                    static_cast<std::size_t>(t.offset + t.nbytes),
                    pb::Context{r.source(), "tensor " + lowp::quoted(t.name)}, 1);
      pb::Field f;
      std::size_t k = 0;
      while (rd.next(f) && k < v.size()) {
        store_le(out.data() + (f.offset - static_cast<std::size_t>(t.offset)), enc(v[k++]), f.size);
      }
      break;
    }
    case Storage::kQdq:
      throw Error(r.source() + ": tensor " + lowp::quoted(t.name) +
                  " is a DequantizeLinear output (QDQ): its values cannot be replaced in place");
    default:
      throw Error(r.source() + ": tensor " + lowp::quoted(t.name) + ": " + t.dtype +
                  " values stored as varints cannot be replaced in place");
  }
  return out;
}

}  // namespace

void write_onnx_replacing(const std::filesystem::path& path_out, const ModelReader& in,
                          const OnnxReplacement& replacement) {
  const auto* reader = dynamic_cast<const OnnxReader*>(&in);
  if (reader == nullptr) {
    throw Error(path_out.string() + ": write_onnx_replacing needs an ONNX model as input, not " +
                std::string(in.kind()));
  }
  const auto& tensors = reader->tensors();
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return tensors[a].offset < tensors[b].offset;
  });

  const std::span<const std::byte> image = reader->image();
  AtomicFile file(path_out);
  std::size_t pos = 0;
  for (std::size_t i : order) {
    const TensorInfo& t = tensors[i];
    if (!t.is_float) continue;
    std::optional<std::vector<float>> values = replacement(t);
    if (!values) continue;
    if (values->size() != t.element_count()) {
      throw Error(reader->source() + ": replacement for tensor " + lowp::quoted(t.name) + " has " +
                  std::to_string(values->size()) + " values, expected " +
                  std::to_string(t.element_count()));
    }
    if (t.nbytes == 0) continue;
    const std::vector<std::byte> bytes = payload(*reader, i, *values);
    const auto off = static_cast<std::size_t>(t.offset);
    file.write(image.subspan(pos, off - pos));
    file.write(bytes);
    pos = off + bytes.size();
  }
  file.write(image.subspan(pos));
  file.commit();
}

}  // namespace lowp::io
