// Helpers for the GGUF tests (tests/io/gguf_test.cc): images written byte by
// byte, and checks of parse_gguf's errors.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/error.h"
#include "lowp/io/gguf.h"
#include "lowp/io/model.h"

namespace lowp::io::gguf_testing {

// A GGUF image written byte by byte.
struct Image {
  std::vector<std::byte> b;

  Image& u8(std::uint64_t v) { return le(v, 1); }
  Image& u16(std::uint64_t v) { return le(v, 2); }
  Image& u32(std::uint64_t v) { return le(v, 4); }
  Image& u64(std::uint64_t v) { return le(v, 8); }
  Image& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  Image& f32(float v) { return u32(std::bit_cast<std::uint32_t>(v)); }
  Image& chars(std::string_view s) {
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Image& str(std::string_view s) { return u64(s.size()).chars(s); }
  Image& header(std::uint64_t tensors, std::uint64_t kvs, std::uint32_t version = 3) {
    return chars("GGUF").u32(version).u64(tensors).u64(kvs);
  }
  // A tensor info: name, ne (innermost first), ggml type, data offset.
  Image& tensor(std::string_view name, std::initializer_list<std::uint64_t> ne, std::uint32_t type,
                std::uint64_t offset) {
    str(name).u32(ne.size());
    for (std::uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }
  Image& pad(std::size_t alignment = 32) {
    while (b.size() % alignment != 0) b.push_back(std::byte{0});
    return *this;
  }
};

// Parses `img` as "t.gguf".
inline std::unique_ptr<ModelReader> parse(const Image& img) { return parse_gguf(img.b, "t.gguf"); }

// The error message parse_gguf gives ("" if none).
inline std::string parse_error(const Image& img) {
  try {
    parse(img);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Expects parse_gguf to reject `img` with a one-line message naming the
// source and containing `text` (needs gtest).
#define EXPECT_REJECTED(img, text)                                       \
  do {                                                                   \
    const std::string msg_ = ::lowp::io::gguf_testing::parse_error(img); \
    EXPECT_NE(msg_, "") << "accepted";                                   \
    EXPECT_EQ(msg_.rfind("t.gguf: ", 0), 0u) << msg_;                    \
    EXPECT_NE(msg_.find(text), std::string::npos) << msg_;               \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << msg_;               \
  } while (0)

// The bytes of a vector of trivially copyable values.
template <typename T>
std::vector<std::byte> as_bytes(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// Metadata with a value of every type.
inline std::vector<GgufKv> every_kind_of_kv() {
  return {{"general.architecture", GgufValue::string("llama")},
          {"u8", GgufValue::u8(7)},
          {"i8", GgufValue::i8(-7)},
          {"u16", GgufValue::u16(700)},
          {"i16", GgufValue::i16(-700)},
          {"u32", GgufValue::u32(70000)},
          {"i32", GgufValue::i32(-70000)},
          {"u64", GgufValue::u64(1ull << 40)},
          {"i64", GgufValue::i64(-(1ll << 40))},
          {"f32", GgufValue::f32(std::bit_cast<float>(0x7FC00123u))},  // a NaN payload survives
          {"f64", GgufValue::f64(-0.0)},
          {"b", GgufValue::boolean(true)},
          {"tokens", GgufValue::strings({"<s>", "", "\xE2\x96\x81the"})},
          {"scores", GgufValue::f32s(std::vector<float>{0.5f, -1.0f})},
          {"types", GgufValue::i32s(std::vector<std::int32_t>{1, 2, 3})},
          {"nested", GgufValue::array(GgufType::kArray,
                                      {GgufValue::array(GgufType::kU8, {GgufValue::u8(1)})})},
          {"empty", GgufValue::array(GgufType::kString, {})}};
}

}  // namespace lowp::io::gguf_testing
