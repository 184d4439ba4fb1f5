// The protobuf wire-format reader (see protobuf_wire.h).
#include "protobuf_wire.h"

#include <utility>

#include "lowp/error.h"

namespace lowp::io::pb {

void fail(const Context& ctx, std::size_t at, std::string_view what) {
  std::string msg =
      std::string(ctx.source) + ": " + std::string(what) + " at byte " + std::to_string(at);
  if (!ctx.message.empty()) msg += " (in " + ctx.message + ")";
  throw Error(msg);
}

std::uint64_t read_varint(std::span<const std::byte> image, std::size_t& pos, std::size_t end,
                          const Context& ctx) {
  const std::size_t start = pos;
  std::uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos >= end) fail(ctx, start, "truncated varint");
    const auto b = static_cast<std::uint8_t>(image[pos++]);
    // The 10th byte may only carry bit 63.
    if (i == 9 && (b & 0x7e) != 0) fail(ctx, start, "varint overflows 64 bits");
    v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return v;
  }
  fail(ctx, start, "varint longer than 10 bytes");
}

std::uint32_t load_le32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::uint64_t load_le64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

Reader::Reader(std::span<const std::byte> image, std::size_t begin, std::size_t end, Context ctx,
               int depth)
    : image_(image), pos_(begin), end_(end), ctx_(std::move(ctx)), depth_(depth) {
  if (begin > end || end > image.size()) fail(ctx_, begin, "message bounds outside the image");
  if (depth > kMaxDepth) fail(ctx_, begin, "messages nested too deeply");
}

bool Reader::next(Field& f) {
  if (pos_ >= end_) return false;
  f = Field{};
  f.tag_offset = pos_;
  const std::uint64_t key = read_varint(image_, pos_, end_, ctx_);
  const std::uint64_t number = key >> 3;
  if (number == 0 || number > (std::uint64_t{1} << 29) - 1) {
    fail(ctx_, f.tag_offset, "invalid field number " + std::to_string(number));
  }
  f.number = static_cast<std::uint32_t>(number);
  const auto type = static_cast<unsigned>(key & 7);
  auto need = [&](std::size_t n) {
    if (end_ - pos_ < n)
      fail(ctx_, f.tag_offset,
           "field " + std::to_string(number) + " runs past the end of its message");
  };
  switch (type) {
    case 0: {
      f.type = WireType::kVarint;
      f.offset = pos_;
      f.value = read_varint(image_, pos_, end_, ctx_);
      f.size = pos_ - f.offset;
      return true;
    }
    case 1:
      f.type = WireType::kFixed64;
      need(8);
      f.offset = pos_;
      f.size = 8;
      f.value = load_le64(image_.data() + pos_);
      pos_ += 8;
      return true;
    case 5:
      f.type = WireType::kFixed32;
      need(4);
      f.offset = pos_;
      f.size = 4;
      f.value = load_le32(image_.data() + pos_);
      pos_ += 4;
      return true;
    case 2: {
      f.type = WireType::kLen;
      const std::uint64_t len = read_varint(image_, pos_, end_, ctx_);
      if (len > end_ - pos_) {
        fail(ctx_, f.tag_offset,
             "field " + std::to_string(number) + " length " + std::to_string(len) +
                 " runs past the end of its message");
      }
      f.offset = pos_;
      f.size = static_cast<std::size_t>(len);
      pos_ += f.size;
      return true;
    }
    default:
      fail(
          ctx_, f.tag_offset,
          "unsupported wire type " + std::to_string(type) + " for field " + std::to_string(number));
  }
}

Reader Reader::sub(const Field& f, std::string message) const {
  expect(f, WireType::kLen, message);
  return Reader(image_, f.offset, f.offset + f.size, Context{ctx_.source, std::move(message)},
                depth_ + 1);
}

void Reader::expect(const Field& f, WireType t, std::string_view field_name) const {
  if (f.type != t) {
    fail(ctx_, f.tag_offset,
         "field " + std::string(field_name) + " has wire type " +
             std::to_string(static_cast<int>(f.type)) + ", expected " +
             std::to_string(static_cast<int>(t)));
  }
}

std::string_view Reader::string(const Field& f, std::string_view field_name) const {
  expect(f, WireType::kLen, field_name);
  return {reinterpret_cast<const char*>(image_.data() + f.offset), f.size};
}

std::int64_t Reader::int64(const Field& f, std::string_view field_name) const {
  expect(f, WireType::kVarint, field_name);
  return static_cast<std::int64_t>(f.value);
}

std::int32_t Reader::int32(const Field& f, std::string_view field_name) const {
  // int32 is written as the sign-extended 64-bit varint.
  const std::int64_t v = int64(f, field_name);
  if (v < INT32_MIN || v > INT32_MAX) {
    fail(ctx_, f.tag_offset, "field " + std::string(field_name) + " value out of int32 range");
  }
  return static_cast<std::int32_t>(v);
}

}  // namespace lowp::io::pb
