// A small, strict reader for the protobuf wire format over an in-memory image
// (internal to lowp; the ONNX reader is its user).
//
// Reference: https://protobuf.dev/programming-guides/encoding/. A message is a
// sequence of fields, each a varint key (field_number << 3 | wire_type) and a
// value: a varint (type 0), 8 bytes (type 1), a varint length and that many
// bytes (type 2), or 4 bytes (type 5). Groups (types 3 and 4) are deprecated
// and rejected.
//
// The input is hostile: a varint has at most 10 bytes and must fit 64 bits, a
// length-delimited value must lie inside its parent message, field number 0 and
// numbers past 2^29 - 1 are rejected, and readers track their nesting depth
// (kMaxDepth). Positions are offsets into the whole image, so a caller can
// point at a field's bytes in the file (zero copy). Every problem throws
// lowp::Error "<source>: <what> at byte N (in <message>)".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lowp::io::pb {

enum class WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

struct Field {
  std::uint32_t number = 0;
  WireType type = WireType::kVarint;
  std::size_t tag_offset = 0;  // where the key starts
  std::size_t offset = 0;      // where the value's payload starts (after any length)
  std::size_t size = 0;        // payload bytes (varints: the varint's own length)
  std::uint64_t value = 0;     // varint, fixed32 or fixed64 value (little-endian); 0 for kLen
};

// What errors name: the image's source, and the message being read.
struct Context {
  std::string_view source;
  std::string message;  // e.g. "graph.initializer[3]"
};

[[noreturn]] void fail(const Context& ctx, std::size_t at, std::string_view what);

// Reads a varint at image[pos..end): advances pos. Throws on > 10 bytes, on
// bits past 64, or on running past `end`.
std::uint64_t read_varint(std::span<const std::byte> image, std::size_t& pos, std::size_t end,
                          const Context& ctx);

std::uint32_t load_le32(const std::byte* p);
std::uint64_t load_le64(const std::byte* p);

class Reader {
 public:
  static constexpr int kMaxDepth = 16;

  // Reads the message at image[begin, end) (end <= image.size()).
  Reader(std::span<const std::byte> image, std::size_t begin, std::size_t end, Context ctx,
         int depth = 0);

  // The next field, or false at the end of the message.
  bool next(Field& f);

  // A reader for a length-delimited field's payload as a nested message.
  Reader sub(const Field& f, std::string message) const;

  // Typed views of the current field; each checks the wire type.
  std::string_view string(const Field& f, std::string_view field_name) const;
  std::int64_t int64(const Field& f, std::string_view field_name) const;
  std::int32_t int32(const Field& f, std::string_view field_name) const;

  [[noreturn]] void fail_at(std::size_t at, std::string_view what) const { fail(ctx_, at, what); }
  void expect(const Field& f, WireType t, std::string_view field_name) const;
  const Context& context() const { return ctx_; }
  std::span<const std::byte> image() const { return image_; }

 private:
  std::span<const std::byte> image_;
  std::size_t pos_;
  std::size_t end_;
  Context ctx_;
  int depth_;
};

}  // namespace lowp::io::pb
