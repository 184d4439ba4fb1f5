// Tests for safetensors reading and writing (lowp/io/safetensors.h):
// hand-built images with known values for every dtype, published MXFP4 pairs,
// lowp's packed tensors (write -> read bit-identical to dequantize), and
// rejection of malformed or hostile files with useful one-line messages.
#include "lowp/io/safetensors.h"
#include "lowp/block_kernels.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "lowp/error.h"

namespace lowp::io {
namespace {

namespace fs = std::filesystem;

// A safetensors image: 8-byte little-endian length, the JSON as written, data.
std::string image(std::string_view json, std::string_view data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return out + std::string(json) + std::string(data);
}

// Parses an image as "t.safetensors"; the reader owns a copy of the bytes.
std::unique_ptr<ModelReader> parse(const std::string& img) {
  auto owner = std::make_shared<const std::string>(img);
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(owner->data()),
                                         owner->size());
  return parse_safetensors(bytes, "t.safetensors", owner);
}

// The error parsing `img` gives ("" if none); it must be one line naming the source.
std::string parse_error(const std::string& img) {
  try {
    parse(img);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("t.safetensors: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  return "";
}

#define EXPECT_REJECTED(img, text) \
  EXPECT_NE(parse_error(img).find(text), std::string::npos) << parse_error(img)

std::string le(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lowp_st_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(Safetensors, FloatDtypesDecodeExactly) {
  const double tie = 1.0 + std::ldexp(1.0, -24);    // halfway: rounds to even (1.0)
  const double above = tie + std::ldexp(1.0, -50);  // just above: rounds up
  const std::string data =
      le(std::bit_cast<std::uint32_t>(1.5f), 4) + le(std::bit_cast<std::uint32_t>(-2.0f), 4) +
      le(std::bit_cast<std::uint64_t>(0.1), 8) + le(std::bit_cast<std::uint64_t>(tie), 8) +
      le(std::bit_cast<std::uint64_t>(above), 8) + le(0x3C00, 2) + le(0xFC00, 2) + le(0x3FC0, 2) +
      le(0xC040, 2) + "\x7E\x7F\x38" + "\x7B\x3C" + "\x7F\x80";
  const std::string json = R"({"f32": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "f64": {"dtype": "F64", "shape": [3], "data_offsets": [8, 32]},
    "f16": {"dtype": "F16", "shape": [2], "data_offsets": [32, 36]},
    "bf16": {"dtype": "BF16", "shape": [2, 1], "data_offsets": [36, 40]},
    "e4m3": {"dtype": "F8_E4M3", "shape": [3], "data_offsets": [40, 43]},
    "e5m2": {"dtype": "F8_E5M2", "shape": [2], "data_offsets": [43, 45]},
    "e8m0": {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [45, 47]}}    )";
  const auto r = parse(image(json, data));
  EXPECT_EQ(r->kind(), "safetensors");
  ASSERT_EQ(r->tensors().size(), 7u);
  auto read = [&](const char* name) { return r->read_f32(*r->find(name)); };
  EXPECT_EQ(read("f32"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(read("f64"), (std::vector<float>{0.1f, 1.0f, 1.0f + 0x1p-23f}));
  EXPECT_EQ(read("f16"), (std::vector<float>{1.0f, -std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(read("bf16"), (std::vector<float>{1.5f, -3.0f}));
  const std::vector<float> e4m3 = read("e4m3");
  EXPECT_EQ(e4m3[0], 448.0f);
  EXPECT_TRUE(std::isnan(e4m3[1]));
  EXPECT_EQ(e4m3[2], 1.0f);
  EXPECT_EQ(read("e5m2"), (std::vector<float>{57344.0f, 1.0f}));
  EXPECT_EQ(read("e8m0"), (std::vector<float>{1.0f, 2.0f}));
  // Shapes and absolute offsets (8 + header length + begin).
  const TensorInfo& bf16 = *r->find("bf16");
  EXPECT_EQ(bf16.shape, (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(bf16.offset, 8 + json.size() + 36);
  EXPECT_EQ(bf16.nbytes, 4u);
  EXPECT_EQ(bf16.dtype, "BF16");
  EXPECT_EQ(r->raw(bf16).size(), 4u);
  EXPECT_EQ(std::to_integer<int>(r->raw(bf16)[1]), 0x3F);
}

TEST(Safetensors, IntegerDtypesAreListedButNotFloat) {
  const std::string json = R"({"b": {"dtype": "BOOL", "shape": [1], "data_offsets": [14, 15]},
    "i8": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]},
    "u8": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]},
    "i16": {"dtype": "I16", "shape": [1], "data_offsets": [2, 4]},
    "u16": {"dtype": "U16", "shape": [1], "data_offsets": [4, 6]},
    "i32": {"dtype": "I32", "shape": [], "data_offsets": [6, 10]},
    "u32": {"dtype": "U32", "shape": [1], "data_offsets": [10, 14]},
    "i64": {"dtype": "I64", "shape": [0, 5], "data_offsets": [15, 15]},
    "u64": {"dtype": "U64", "shape": [1], "data_offsets": [16, 24]}})";
  const auto r = parse(image(json, std::string(24, '\x01')));
  ASSERT_EQ(r->tensors().size(), 9u);
  // File order: by offset, whatever the header order.
  std::vector<std::string> names;
  for (const TensorInfo& t : r->tensors()) {
    names.push_back(t.name);
    EXPECT_FALSE(t.is_float) << t.name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"i8", "u8", "i16", "u16", "i32", "u32", "b", "i64", "u64"}));
  EXPECT_EQ(r->find("i32")->element_count(), 1u);
  EXPECT_EQ(r->find("i64")->element_count(), 0u);
  try {
    r->read_f32(*r->find("i32"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "t.safetensors: tensor 'i32' has dtype I32, which is not a float type");
  }
}

TEST(Safetensors, MetadataAndGaps) {
  const auto r = parse(image(R"({"__metadata__": {"format": "pt", "note": "x"},
      "a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}})",
                             "abcdef"));
  EXPECT_EQ(r->metadata(),
            (std::vector<std::pair<std::string, std::string>>{{"format", "pt"}, {"note", "x"}}));
  EXPECT_EQ(std::to_integer<char>(r->raw(*r->find("a"))[0]), 'c');
  EXPECT_EQ(parse(image("{}"))->tensors().size(), 0u);
  // A copy of a TensorInfo is found by name; an unknown one is an error.
  TensorInfo copy = *r->find("a");
  EXPECT_EQ(r->raw(copy).size(), 2u);
  copy.name = "zz";
  EXPECT_THROW(r->raw(copy), Error);
}

// gpt-oss layout: row r of 32 FP4 codes in 16 bytes, element 2i in the low nibble.
TEST(Safetensors, PublishedMxfp4Pair) {
  std::string blocks(32, '\0');
  blocks[0] = '\x21';                     // elements 0, 1: codes 1 (0.5), 2 (1.0)
  blocks[1] = '\xF7';                     // elements 2, 3: codes 7 (6.0), 15 (-6.0)
  blocks[31] = '\x0C';                    // row 1, elements 30, 31: code 12 (-2.0), 0
  const std::string scales = "\x7E\xFF";  // row 0: 2^-1; row 1: NaN
  for (const auto& [b, s] :
       {std::pair{"w_blocks", "w_scales"}, std::pair{"w.blocks", "w.scales"}}) {
    const std::string json = std::string(R"({")") + b +
                             R"(": {"dtype": "U8", "shape": [2, 1, 16], "data_offsets": [0, 32]},
        ")" + s + R"(": {"dtype": "U8", "shape": [2, 1], "data_offsets": [32, 34]}})";
    const auto r = parse(image(json, blocks + scales));
    ASSERT_EQ(r->tensors().size(), 1u) << b;
    const TensorInfo& t = r->tensors()[0];
    EXPECT_EQ(t.name, "w");
    EXPECT_EQ(t.dtype, "mxfp4");
    EXPECT_TRUE(t.is_float);
    EXPECT_EQ(t.shape, (std::vector<std::int64_t>{2, 32}));
    EXPECT_EQ(t.offset, 8 + json.size());
    const std::vector<float> v = r->read_f32(t);
    ASSERT_EQ(v.size(), 64u);
    EXPECT_EQ(v[0], 0.25f);
    EXPECT_EQ(v[1], 0.5f);
    EXPECT_EQ(v[2], 3.0f);
    EXPECT_EQ(v[3], -3.0f);
    EXPECT_EQ(v[4], 0.0f);
    for (std::size_t i = 32; i < 64; ++i) EXPECT_TRUE(std::isnan(v[i])) << i;
  }
  // Blocks without scales: say what is missing.
  EXPECT_REJECTED(
      image(R"({"w_blocks": {"dtype": "U8", "shape": [1, 1, 16], "data_offsets": [0, 16]}})",
            blocks),
      "MXFP4 tensor 'w_blocks' has no scales: tensor 'w_scales' is missing");
  EXPECT_REJECTED(
      image(R"({"w_blocks": {"dtype": "U8", "shape": [1, 1, 16], "data_offsets": [0, 16]},
                            "w_scales": {"dtype": "U8", "shape": [2], "data_offsets": [16, 18]}})",
            blocks),
      "scales 'w_scales' must be U8 of shape [1, 1], is U8 [2]");
  // G * 32 overflowing is caught even when the tensor is empty.
  EXPECT_REJECTED(
      image(
          R"({"w_blocks": {"dtype": "U8", "shape": [0, 4611686018427387904, 16], "data_offsets": [0, 0]},
                            "w_scales": {"dtype": "U8", "shape": [0, 4611686018427387904], "data_offsets": [0, 0]}})"),
      "too many blocks");
  // A U8 "_blocks" tensor that is not shaped like MXFP4 blocks stays plain.
  EXPECT_EQ(
      parse(image(R"({"x_blocks": {"dtype": "U8", "shape": [2, 8], "data_offsets": [0, 16]}})",
                  blocks))
          ->tensors()[0]
          .dtype,
      "U8");
}

std::vector<float> test_data(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t s = seed;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = std::ldexp(
        static_cast<float>(static_cast<int>(s >> 8) - (1 << 23)) / static_cast<float>(1 << 23),
        static_cast<int>((s >> 4) % 12) - 6);
  }
  return v;
}

struct PackedCase {
  const char* name;
  const char* format;
  std::vector<std::int64_t> shape;
  int axis;
};

TEST(Safetensors, LowpPackedRoundTripIsBitIdentical) {
  const std::vector<PackedCase> cases = {
      {"layers.0.w4", "mxfp4", {3, 40}, 1},  // partial last block
      {"w6", "mxfp6_e3m2", {33, 5}, 0},      // blocks down axis 0
      {"w6b", "mxfp6_e3m2", {2, 3, 7}, 2},   {"nv", "nvfp4", {2, 24}, 1},
      {"e4", "mxfp8_e4m3", {}, 0},   // 0-d
      {"int", "mxint8", {0, 3}, 1},  // empty
      {"custom", "mx:e3m4:16", {4, 17}, -1},
  };
  std::vector<PackedTensor> packed;
  std::vector<OutputTensor> outputs;
  std::vector<std::function<std::vector<std::byte>()>> producers;
  Metadata metadata = {{"source", "test"}};
  const std::vector<float> bias = {1.0f, -0.0f, 3.25f};
  outputs.push_back(f32_output("bias", {3}));
  producers.push_back([&] { return f32_bytes(bias); });
  packed.reserve(cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const PackedCase& c = cases[i];
    BlockFormat f;
    ASSERT_TRUE(parse_block_format(c.format, f));
    std::size_t n = 1;
    for (std::int64_t d : c.shape) n *= static_cast<std::size_t>(d);
    std::vector<float> data = test_data(n, static_cast<std::uint32_t>(i + 1));
    if (i == 0) data[5] = std::numeric_limits<float>::quiet_NaN();  // a NaN block
    packed.push_back(quantize(f, data, c.shape, c.axis, BlockOptions{}));
    const PackedTensor& p = packed.back();
    for (OutputTensor& o : packed_tensor_outputs(c.name, p, ScaleRule::kFloor, metadata))
      outputs.push_back(o);
    producers.push_back([&p] { return packed_tensor_bytes(p, 0); });
    producers.push_back([&p] { return packed_tensor_bytes(p, 1); });
  }
  TempDir dir;
  const fs::path path = dir.path() / "m.safetensors";
  write_safetensors(path, outputs, metadata, [&](std::size_t i) { return producers[i](); });

  const auto r = open_model(path);
  ASSERT_EQ(r->tensors().size(), 1 + cases.size());
  EXPECT_EQ(r->tensors()[0].name, "bias");  // file order = write order
  EXPECT_TRUE(same_bits(r->read_f32(*r->find("bias")), bias));
  EXPECT_EQ(r->metadata().size(), 1 + cases.size());
  EXPECT_EQ(r->metadata().back(),
            (std::pair<std::string, std::string>{"source", "test"}));  // by key
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const PackedTensor& p = packed[i];
    const TensorInfo* t = r->find(cases[i].name);
    ASSERT_NE(t, nullptr) << cases[i].name;
    EXPECT_EQ(t, &r->tensors()[i + 1]);
    EXPECT_EQ(t->dtype, block_format_name(p.format));
    EXPECT_EQ(t->shape, p.shape);
    EXPECT_TRUE(t->is_float);
    EXPECT_EQ(t->nbytes, p.elements.size());
    std::vector<float> expected(p.element_count());
    dequantize(p, expected);
    EXPECT_TRUE(same_bits(r->read_f32(*t), expected)) << cases[i].name;
  }
  // The data starts 8-byte aligned.
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t n = 0;
  for (int b = 7; b >= 0; --b)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(b)]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
}

TEST(Safetensors, DtypeFormatTableBothWays) {
  EXPECT_EQ(safetensors_dtype_format("F32"), kFp32);
  EXPECT_EQ(safetensors_dtype_format("BF16"), kBf16);
  EXPECT_EQ(safetensors_dtype_format("F8_E4M3"), kFp8E4m3);
  EXPECT_EQ(safetensors_dtype_format("F8_E8M0"), kE8m0);
  EXPECT_EQ(safetensors_dtype_format("F64"), std::nullopt);
  EXPECT_EQ(safetensors_dtype_format("I8"), std::nullopt);
  EXPECT_EQ(safetensors_dtype_format("F4"), std::nullopt);
  for (const char* d : {"F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0"}) {
    EXPECT_EQ(safetensors_dtype_for(*safetensors_dtype_format(d)), d);
  }
  EXPECT_EQ(safetensors_dtype_for(kFp8E4m3Fnuz), "");
  EXPECT_EQ(safetensors_dtype_for(kInt8), "");
}

TEST(Safetensors, WriteReadEveryDtype) {
  const char* dtypes[] = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "I8",
                          "U8",  "I16", "U16", "I32",  "U32",     "I64",     "U64",     "BOOL"};
  std::vector<OutputTensor> outputs;
  std::vector<std::vector<std::byte>> contents;
  for (const char* d : dtypes) {
    const std::size_t size = safetensors_dtype_size(d);
    ASSERT_GT(size, 0u) << d;
    outputs.push_back(OutputTensor{std::string("t_") + d, d, {3, 1}, 3 * size});
    std::vector<std::byte> b(3 * size);
    for (std::size_t i = 0; i < b.size(); ++i)
      b[i] = static_cast<std::byte>((i * 37 + size) & 0x7f);
    contents.push_back(b);
  }
  TempDir dir;
  const fs::path path = dir.path() / "all.safetensors";
  write_safetensors(path, outputs, {}, [&](std::size_t i) { return contents[i]; });
  const auto r = open_model(path);
  ASSERT_EQ(r->tensors().size(), outputs.size());
  EXPECT_TRUE(r->metadata().empty());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const TensorInfo& t = r->tensors()[i];
    EXPECT_EQ(t.name, outputs[i].name);
    EXPECT_EQ(t.dtype, outputs[i].dtype);
    EXPECT_EQ(t.shape, outputs[i].shape);
    const std::span<const std::byte> raw = r->raw(t);
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), contents[i].begin(), contents[i].end()))
        << t.name;
  }
}

TEST(Safetensors, RejectsMalformedHeaders) {
  const std::string ok_entry = R"("x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  const std::string data(8, '\0');
  EXPECT_TRUE(parse_error(image("{" + ok_entry + "}", data)).empty());
  EXPECT_REJECTED("\x05\0\0", "truncated");
  EXPECT_REJECTED(le(100, 8) + "{}",
                  "header length 100 runs past the end of the file (2 bytes follow");
  EXPECT_REJECTED(le(~0ull, 8) + "{}", "header length 18446744073709551615 runs past");
  EXPECT_REJECTED(image(R"({"x": )"), "header is not valid JSON");
  EXPECT_REJECTED(image("{} x"), "header is not valid JSON");
  EXPECT_REJECTED(image("{\"\xff\": 1}"), "header is not valid JSON");  // not UTF-8
  EXPECT_REJECTED(image("[1, 2]"), "header must be a JSON object");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [2]}})", data),
                  "tensor 'x': missing key 'data_offsets'");
  EXPECT_REJECTED(
      image(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "y": 1}})", data),
      "tensor 'x': unexpected key 'y'");
  EXPECT_REJECTED(image(R"({"x": [1]})"), "tensor 'x': entry must be an object");
  EXPECT_REJECTED(image(R"({"x": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", data),
                  "'dtype' must be a string");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", data),
                  "'shape' must be an array of integers");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})", data),
                  "'shape' must be an array of integers");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", data),
                  "'data_offsets' must be two non-negative integers");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [-1, 8]}})", data),
                  "'data_offsets' must be two non-negative integers");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F7", "shape": [2], "data_offsets": [0, 8]}})", data),
                  "t.safetensors: unknown dtype 'F7' for tensor 'x'");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}})", data),
                  "negative dimension -1");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", data),
                  "tensor 'x': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", data),
                  "data_offsets [4, 12] run past the end of the data buffer (8 bytes)");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", data),
                  "end before they begin");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                             "y": {"dtype": "U8", "shape": [2], "data_offsets": [3, 5]}})",
                        data),
                  "tensors 'x' and 'y' overlap");
  // A tensor nested inside another.
  EXPECT_REJECTED(image(R"({"a": {"dtype": "U8", "shape": [6], "data_offsets": [0, 6]},
                             "b": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                        data),
                  "tensors 'a' and 'b' overlap");
  EXPECT_REJECTED(image("{" + ok_entry + ", " + ok_entry + "}", data),
                  "header has a duplicate key 'x'");
  EXPECT_REJECTED(
      image(R"({"x": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
            data),
      "duplicate key 'dtype'");
  EXPECT_REJECTED(
      image(
          R"({"x": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 8]}})",
          data),
      "is too large (its byte size overflows 64 bits)");
  EXPECT_REJECTED(
      image(R"({"x": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 8]}})",
            data),
      "does not fit in 63 bits");
  EXPECT_REJECTED(image(R"({"x": {"dtype": "F32", "shape": [[2]], "data_offsets": [0, 8]}})", data),
                  "nested too deeply");
  EXPECT_REJECTED(image(R"({"__metadata__": {"a": 1}})"), "metadata 'a' must be a string");
  EXPECT_REJECTED(image(R"({"__metadata__": []})"), "'__metadata__' must be an object");
  EXPECT_REJECTED(image("{\"a\\nb\": 1}"),
                  "tensor 'a\\x0ab': entry must be an object");  // names are quoted
}

// A hand-built lowp packed tensor "w": 32 mxfp4 values in 16 bytes + 1 scale.
std::string packed_image(const std::string& description, const std::string& extra_entries = "") {
  std::string escaped;
  for (char c : description) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
  return image(R"({"__metadata__": {"lowp.w": ")" + escaped + R"("},
      "w": {"dtype": "U8", "shape": [16], "data_offsets": [0, 16]},
      "w.scales": {"dtype": "U8", "shape": [1], "data_offsets": [16, 17]})" +
                   extra_entries + "}",
               std::string("\x21") + std::string(15, '\0') + "\x80");
}

TEST(Safetensors, LowpPackedMetadataIsValidated) {
  const std::string good =
      R"({"format": "mxfp4", "block_size": 32, "axis": 0, "shape": [32], "scale_rule": "floor", "tensor_scale": 1.0})";
  const auto r = parse(packed_image(good));
  ASSERT_EQ(r->tensors().size(), 1u);
  EXPECT_EQ(r->tensors()[0].dtype, "mxfp4");
  const std::vector<float> v = r->read_f32(r->tensors()[0]);
  EXPECT_EQ(v[0], 1.0f);  // code 1 (0.5) * 2^1
  EXPECT_EQ(v[1], 2.0f);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string d = good;
    d.replace(d.find(from), from.size(), to);
    return packed_image(d);
  };
  EXPECT_REJECTED(with("[32]", "[33]"),
                  "packed tensor 'w': 'w' holds 16 bytes but shape [33] in mxfp4 needs 17");
  EXPECT_REJECTED(with("[32]", "[2, 16]"),
                  "'w.scales' holds 1 scales but shape [2, 16] in mxfp4 needs 16");  // axis 0
  EXPECT_REJECTED(with("\"mxfp4\"", "\"mxfp9\""), "unknown block format 'mxfp9'");
  EXPECT_REJECTED(with("\"mxfp4\"", "\"mx:e4m3:0\""), "packed tensor 'w': ");
  EXPECT_REJECTED(with("32,", "16,"), "'block_size' must be 32");
  EXPECT_REJECTED(with("\"axis\": 0", "\"axis\": 1"),
                  "'axis' must be an integer in range for shape [32]");
  EXPECT_REJECTED(with("\"axis\": 0", "\"axis\": 18446744073709551615"),
                  "'axis' must be an integer");
  EXPECT_REJECTED(with("\"axis\": 0, ", ""), "metadata lacks 'axis'");
  EXPECT_REJECTED(with("\"floor\"", "\"bogus\""), "packed tensor 'w': ");
  EXPECT_REJECTED(with("1.0", "1e300"), "'tensor_scale' is not a finite fp32");
  EXPECT_REJECTED(with("1.0}", "1.0, \"x\": 2}"), "unexpected metadata key 'x'");
  EXPECT_REJECTED(with("[32]", "[[32]]"), "nested too deeply");
  EXPECT_REJECTED(packed_image("{"), "metadata 'lowp.w' is not valid JSON");
  EXPECT_REJECTED(image(R"({"__metadata__": {"lowp.v": "{}"}})"),
                  "metadata 'lowp.v' describes tensor 'v', which is missing");
  EXPECT_REJECTED(
      image(
          R"({"__metadata__": {"lowp.v": "{}"}, "v": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}})"),
      "packed tensor 'v': its scales tensor 'v.scales' is missing");
  EXPECT_REJECTED(
      packed_image(good, R"(, "w_blocks": {"dtype": "U8", "shape": [0, 16], "data_offsets": [0, 0]},
                                       "w_scales": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]})"),
      "two tensors are named 'w'");
}

TEST(Safetensors, WriterRejectsBadInputAndLeavesNoFile) {
  TempDir dir;
  const fs::path path = dir.path() / "o.safetensors";
  auto zeros = [](std::size_t n) { return [n](std::size_t) { return std::vector<std::byte>(n); }; };
  auto error = [&](const std::vector<OutputTensor>& t, const Metadata& m, const ProduceTensor& p,
                   const fs::path& where) -> std::string {
    try {
      write_safetensors(where, t, m, p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error({{"x", "F9", {1}, 4}}, {}, zeros(4), path).find("unknown safetensors dtype 'F9'"),
            std::string::npos);
  EXPECT_NE(error({{"x", "F32", {2}, 4}}, {}, zeros(4), path).find("needs 8 bytes, not 4"),
            std::string::npos);
  EXPECT_NE(error({{"x", "F32", {-2}, 4}}, {}, zeros(4), path).find("invalid shape [-2]"),
            std::string::npos);
  EXPECT_NE(error({{"x", "U8", {1}, 1}, {"x", "U8", {1}, 1}}, {}, zeros(1), path)
                .find("duplicate tensor name"),
            std::string::npos);
  EXPECT_NE(error({{"__metadata__", "U8", {1}, 1}}, {}, zeros(1), path).find("reserved"),
            std::string::npos);
  EXPECT_NE(error({}, {{"a", "1"}, {"a", "2"}}, zeros(1), path).find("duplicate metadata key 'a'"),
            std::string::npos);
  EXPECT_NE(error({{"\xff", "U8", {1}, 1}}, {}, zeros(1), path).find("not valid UTF-8"),
            std::string::npos);
  // A producer that returns the wrong size: an error, and no file (nor temp) left.
  EXPECT_NE(error({{"x", "U8", {2}, 2}}, {}, zeros(3), path)
                .find("producer returned 3 bytes, expected 2"),
            std::string::npos);
  EXPECT_EQ(error(
                {{"x", "U8", {2}, 2}}, {},
                [](std::size_t) -> std::vector<std::byte> { throw Error("boom"); }, path),
            "boom");
  EXPECT_NE(error({}, {}, zeros(0), dir.path() / "missing" / "o.safetensors").find("cannot write"),
            std::string::npos);
  EXPECT_TRUE(fs::is_empty(dir.path()));
  // An inconsistent PackedTensor is refused before anything is written.
  PackedTensor p;
  parse_block_format("mxfp4", p.format);
  p.shape = {32};
  p.elements.resize(15);
  p.scales.resize(1);
  Metadata m;
  EXPECT_THROW(packed_tensor_outputs("w", p, ScaleRule::kFloor, m), Error);
  EXPECT_TRUE(m.empty());
}

// Scaled matrix formats in lowp's packed-matrix form read back as the
// PackedMatrix they were written from, bit for bit.
TEST(Safetensors, PackedMatrixRoundTripIsBitIdentical) {
  struct Case {
    const char* name;
    const char* format;
    std::vector<std::int64_t> shape;
  };
  const std::vector<Case> cases = {{"a", "int4:group32", {6, 70}},
                                   {"b", "int4:group16:asym", {5, 40}},
                                   {"c", "int8:channel", {3, 2, 9}},
                                   {"d", "fp8_e4m3:tensor", {4, 33}},
                                   {"e", "int3:group8:asym", {17}},
                                   {"f", "fp4_e2m1:group16:asym", {3, 40}},
                                   // Code books: NF4/NF3 with AFPQ's two scales, dINT4 per channel.
                                   {"g", "nf4:group64:asym", {2, 128}},
                                   {"h", "nf3:group32", {3, 70}},
                                   {"i", "dint4:channel", {4, 33}},
                                   {"j", "nf3:group16:asym", {2, 40}}};
  std::vector<OutputTensor> outputs;
  Metadata metadata;
  std::vector<PackedMatrix> packed;
  std::vector<std::pair<std::size_t, std::size_t>> producers;  // (case, part)
  packed.reserve(cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::size_t n = 1;
    for (std::int64_t d : c.shape) n *= static_cast<std::size_t>(d);
    const std::size_t rows = c.shape.size() < 2 ? 1 : static_cast<std::size_t>(c.shape[0]);
    const MatrixFormat f = parse_matrix_format(c.format);
    packed.push_back(
        PackedMatrix::quantize(f, test_data(n, static_cast<std::uint32_t>(i + 3)), rows, n / rows));
    const std::vector<OutputTensor> parts = packed_matrix_outputs(c.name, f, c.shape, metadata);
    EXPECT_EQ(parts.size(), f.zero_points() ? 3u : 2u);
    for (std::size_t k = 0; k < parts.size(); ++k) {
      outputs.push_back(parts[k]);
      producers.emplace_back(i, k);
    }
  }
  TempDir dir;
  const fs::path path = dir.path() / "m.safetensors";
  write_safetensors(path, outputs, metadata, [&](std::size_t i) {
    return packed_matrix_bytes(packed[producers[i].first], producers[i].second);
  });
  const auto r = open_model(path);
  ASSERT_EQ(r->tensors().size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const TensorInfo* t = r->find(cases[i].name);
    ASSERT_NE(t, nullptr) << cases[i].name;
    EXPECT_EQ(t->dtype, cases[i].format);
    EXPECT_EQ(t->shape, cases[i].shape);
    EXPECT_TRUE(t->is_float);
    std::vector<float> expected(packed[i].rows() * packed[i].cols());
    packed[i].dequantize(expected);
    EXPECT_TRUE(same_bits(r->read_f32(*t), expected)) << cases[i].name;
  }
}

// A hand-built int4:group4:asym matrix "w" of shape [1, 8]: 4 code bytes, two
// F16 scales (1.0), two zero points.
std::string matrix_image(const std::string& description, const std::string& scales_dtype = "F16",
                         const std::string& zeros = std::string("\x08\x08", 2)) {
  std::string escaped;
  for (char c : description) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
  const std::string data =
      std::string("\x98\xBA\x76\x54", 4) + std::string("\x00\x3C\x00\x3C", 4) + zeros;
  return image(R"({"__metadata__": {"lowp.w": ")" + escaped + R"("},
      "w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
      "w.scales": {"dtype": ")" +
                   scales_dtype + R"(", "shape": [2], "data_offsets": [4, 8]},
      "w.zeros": {"dtype": "U8", "shape": [)" +
                   std::to_string(zeros.size()) + R"(], "data_offsets": [8, )" +
                   std::to_string(8 + zeros.size()) + "]}}",
               data);
}

TEST(Safetensors, PackedMatrixMetadataIsValidated) {
  const std::string good = R"({"format": "int4:group4:asym", "shape": [1, 8]})";
  const auto r = parse(matrix_image(good));
  ASSERT_EQ(r->tensors().size(), 1u);
  EXPECT_EQ(r->tensors()[0].dtype, "int4:group4:asym");
  // codes 8 9 10 11 | 6 7 4 5 (low nibble first), zero point 8, scale 1.
  EXPECT_EQ(r->read_f32(r->tensors()[0]), (std::vector<float>{0, 1, 2, 3, -2, -1, -4, -3}));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string d = good;
    d.replace(d.find(from), from.size(), to);
    return matrix_image(d);
  };
  EXPECT_REJECTED(
      with("[1, 8]", "[1, 9]"),
      "packed matrix 'w': 'w' holds 4 bytes but shape [1, 9] in int4:group4:asym needs 5");
  EXPECT_REJECTED(with("group4", "group2"),
                  "'w.scales' holds 4 bytes but shape [1, 8] in int4:group2:asym needs 8");
  EXPECT_REJECTED(with("int4:group4:asym", "mxfp4"),
                  "packed matrix 'w': 'mxfp4' is not a scaled matrix format");
  EXPECT_REJECTED(with("int4:group4:asym", "fp16"), "'fp16' is not a scaled matrix format");
  EXPECT_REJECTED(with("int4:group4:asym", "int4:group4:bogus"),
                  "packed matrix 'w': matrix format");
  EXPECT_REJECTED(with("[1, 8]}", "[1, 8], \"x\": 1}"), "unexpected metadata key 'x'");
  EXPECT_REJECTED(with(", \"shape\": [1, 8]", ""), "metadata lacks 'shape'");
  EXPECT_REJECTED(matrix_image(good, "I16"), "tensor 'w.scales' must be F16 and 1-d, is I16 [2]");
  // A zero point outside int4's codes is refused when the file is opened.
  EXPECT_REJECTED(matrix_image(good, "F16", std::string("\x08\x10", 2)),
                  "packed matrix 'w': zero point 16 is not a code of uint4 (0 to 15)");
}

}  // namespace
}  // namespace lowp::io
