// A tiny protobuf encoder for the ONNX tests (tests/io/onnx_test.cc,
// tests/quant/onnx_qdq_test.cc): messages built field by field.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

namespace lowp::io::pb_testing {

struct Pb {
  std::string b;
  Pb& varint(std::uint64_t v) {
    while (v >= 0x80) {
      b += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    b += static_cast<char>(v);
    return *this;
  }
  Pb& key(std::uint32_t field, int wire) {
    return varint(std::uint64_t{field} << 3 | static_cast<unsigned>(wire));
  }
  Pb& u(std::uint32_t field, std::uint64_t v) { return key(field, 0).varint(v); }
  Pb& i(std::uint32_t field, std::int64_t v) { return u(field, static_cast<std::uint64_t>(v)); }
  Pb& s(std::uint32_t field, std::string_view v) {
    key(field, 2).varint(v.size());
    b += v;
    return *this;
  }
  Pb& m(std::uint32_t field, const Pb& v) { return s(field, v.b); }
  Pb& le(std::uint64_t v, int n) {
    for (int k = 0; k < n; ++k) b += static_cast<char>((v >> (8 * k)) & 0xff);
    return *this;
  }
  Pb& f32(std::uint32_t field, float v) {
    return key(field, 5).le(std::bit_cast<std::uint32_t>(v), 4);
  }
};

}  // namespace lowp::io::pb_testing
