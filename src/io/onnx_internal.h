// The ONNX reader's class, shared by the reader (onnx.cc) and the patch writer
// (onnx_write.cc). Internal to lowp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "element_type.h"
#include "lowp/format/format.h"
#include "lowp/io/model.h"
#include "protobuf_wire.h"

namespace lowp::io::onnx {

// An OperatorSetIdProto (ModelProto field 8): domain 1, version 2.
struct OpsetId {
  std::string domain;
  std::int64_t version = 0;
};
OpsetId read_opset_id(pb::Reader o);
// The default ONNX operator domain: "" or "ai.onnx".
inline bool is_default_domain(std::string_view domain) {
  return domain.empty() || domain == "ai.onnx";
}

// How a tensor's values are laid out at [offset, offset + nbytes) in the file.
enum class Storage : std::uint8_t {
  kNone,             // no data (zero elements)
  kRaw,              // raw_data: fixed-width little-endian (4-bit types: two per byte, low first)
  kPackedFixed32,    // packed float_data
  kPackedFixed64,    // packed double_data
  kPackedVarint,     // packed int32_data / int64_data / uint64_data
  kUnpackedFixed32,  // a run of (tag, fixed32) float_data fields
  kUnpackedFixed64,  // a run of (tag, fixed64) double_data fields
  kUnpackedVarint,   // a run of (tag, varint) fields
  kUnpackedBytes,    // a run of string_data fields
  kQdq,              // a DequantizeLinear output (OnnxReader::Qdq): its offset and
                     // nbytes are its quantized input's
};

// What lowp knows of an ONNX data type.
struct DataType {
  int code;
  const char* name;
  unsigned bits;          // bits per element in raw_data (0: not allowed in raw_data)
  std::uint32_t typed;    // the TensorProto field that may hold its values (0: none)
  unsigned per_element;   // typed-field values per element (complex: 2)
  detail::Decode decode;  // how its values read as fp32 (and are written from fp32)
  Format format{};        // the lowp format of its codes (kF32, kCode)
};

const DataType* find_data_type(int code);
const DataType& data_type_of(const TensorInfo& t);  // by t.dtype name

class OnnxReader final : public ModelReader {
 public:
  struct Entry {
    Storage storage = Storage::kNone;
    const DataType* type = nullptr;  // kQdq: the quantized input's
    std::size_t qdq = 0;             // kQdq: index into qdq_
  };
  // A DequantizeLinear whose inputs are all constant: y = (x - zp) * scale
  // in fp32 (onnx_qdq.h). The inputs are kept here, not listed.
  struct Qdq {
    TensorInfo x, scale, zero_point;
    Entry x_entry, scale_entry, zero_point_entry;
    bool has_zero_point = false;
    int axis = 0;                 // normalized; meaningful for per-axis and blocked
    std::int64_t block_size = 0;  // 0: per tensor or per axis
  };

  OnnxReader(std::span<const std::byte> image, std::string source, ImageOwner owner)
      : image_(image), source_(std::move(source)), owner_(std::move(owner)) {}

  std::string_view kind() const override { return "onnx"; }
  std::string layout() const override { return qdq_.empty() ? "" : "onnx-qdq"; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata() const override { return metadata_; }
  std::vector<float> read_f32(const TensorInfo& t) const override;
  std::span<const std::byte> raw(const TensorInfo& t) const override;

  // The element codes of tensor i in C order (the stored bits, zero-extended;
  // varints as their 64-bit value), one call of `sink` per element.
  void for_each_code(std::size_t i, const std::function<void(std::uint64_t)>& sink) const;
  void for_each_code(const TensorInfo& t, const Entry& e,
                     const std::function<void(std::uint64_t)>& sink) const;
  // The fp32 values of a tensor, listed or not (QDQ outputs dequantized).
  std::vector<float> values(const TensorInfo& t, const Entry& e) const;
  std::size_t index_of(const TensorInfo& t) const;  // throws if not one of ours

  std::span<const std::byte> image() const { return image_; }
  const std::string& source() const { return source_; }
  const Entry& entry(std::size_t i) const { return entries_[i]; }

  // Filled by parse_onnx.
  std::vector<TensorInfo> tensors_;
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<Qdq> qdq_;

 private:
  std::span<const std::byte> image_;
  std::string source_;
  ImageOwner owner_;
};

}  // namespace lowp::io::onnx
