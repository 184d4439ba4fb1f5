// Tests for GGUF reading and writing (lowp/io/gguf.h): hand-built byte images
// with hand-computed values, write/read round trips, and rejection of
// malformed or hostile files. (ggml's Q8_0 quantizer: tests/block/ggml_test.cc.)
#include "lowp/io/gguf.h"
#include "lowp/block_kernels.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/gguf_image.h"
#include "lowp/block/ggml.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"

namespace lowp::io {
namespace {

namespace fs = std::filesystem;
using gguf_testing::as_bytes;
using gguf_testing::every_kind_of_kv;
using gguf_testing::Image;
using gguf_testing::parse;
using gguf_testing::parse_error;

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

float fp16(std::uint32_t code) { return decode_f32(kFp16, code); }

// ---- metadata ----

TEST(GgufRead, EveryValueType) {
  Image img;
  img.header(0, 14);
  img.str("u8").u32(0).u8(200);
  img.str("i8").u32(1).u8(0xFE);
  img.str("u16").u32(2).u16(65535);
  img.str("i16").u32(3).u16(0x8000);
  img.str("u32").u32(4).u32(4000000000u);
  img.str("i32").u32(5).u32(0xFFFFFFFFu);
  img.str("f32").u32(6).f32(0.1f);
  img.str("bool").u32(7).u8(1);
  img.str("str").u32(8).str("hi\nthere");
  img.str("arr").u32(9).u32(8).u64(2).str("a\"b").str("c");
  img.str("u64").u32(10).u64(18446744073709551615ull);
  img.str("i64").u32(11).u64(static_cast<std::uint64_t>(-5));
  img.str("f64").u32(12).u64(std::bit_cast<std::uint64_t>(-2.5));
  img.str("nested").u32(9).u32(9).u64(2).u32(4).u64(1).u32(7).u32(5).u64(0);
  const auto r = parse(img);
  EXPECT_EQ(r->kind(), "gguf");
  EXPECT_TRUE(r->tensors().empty());
  const std::vector<std::pair<std::string, std::string>> want = {{"u8", "200"},
                                                                 {"i8", "-2"},
                                                                 {"u16", "65535"},
                                                                 {"i16", "-32768"},
                                                                 {"u32", "4000000000"},
                                                                 {"i32", "-1"},
                                                                 {"f32", "0.1"},
                                                                 {"bool", "true"},
                                                                 {"str", "hi\nthere"},
                                                                 {"arr", "[\"a\\\"b\", \"c\"]"},
                                                                 {"u64", "18446744073709551615"},
                                                                 {"i64", "-5"},
                                                                 {"f64", "-2.5"},
                                                                 {"nested", "[[7], []]"}};
  EXPECT_EQ(r->metadata(), want);
  const std::vector<GgufKv>& kv = gguf_kv(*r);
  ASSERT_EQ(kv.size(), 14u);
  EXPECT_EQ(kv[1].second, GgufValue::i8(-2));
  EXPECT_EQ(kv[6].second, GgufValue::f32(0.1f));
  EXPECT_EQ(kv[8].second, GgufValue::string("hi\nthere"));
  EXPECT_EQ(kv[9].second, GgufValue::strings({"a\"b", "c"}));
  EXPECT_EQ(kv[13].second.items[0], GgufValue::array(GgufType::kU32, {GgufValue::u32(7)}));
  EXPECT_EQ(kv[13].second.items[1].elem_type, GgufType::kI32);
  EXPECT_EQ(kv[5].second.as_i64(), -1);
  EXPECT_EQ(kv[5].second.as_u64(), std::nullopt);
  EXPECT_EQ(kv[10].second.as_i64(), std::nullopt);
  EXPECT_EQ(kv[6].second.as_f64(), static_cast<double>(0.1f));
}

TEST(GgufRead, LongArraysAreElided) {
  std::vector<float> v(20);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  EXPECT_EQ(GgufValue::f32s(v).to_text(),
            "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, ... (20 items)]");
  EXPECT_EQ(GgufValue::array(GgufType::kBool, {GgufValue::boolean(false)}).to_text(), "[false]");
}

TEST(GgufRead, ModelReaderInterfaceOnly) {
  struct Other : ModelReader {
    std::string_view kind() const override { return "npy"; }
    const std::vector<TensorInfo>& tensors() const override { return t; }
    std::vector<std::pair<std::string, std::string>> metadata() const override { return {}; }
    std::vector<float> read_f32(const TensorInfo&) const override { return {}; }
    std::span<const std::byte> raw(const TensorInfo&) const override { return {}; }
    std::vector<TensorInfo> t;
  } other;
  EXPECT_THROW(gguf_kv(other), Error);
}

// ---- tensors ----

TEST(GgufRead, F32ShapeIsNeReversed) {
  Image img;
  img.header(1, 0).tensor("w", {3, 2}, 0, 0).pad();
  const std::size_t data = img.b.size();
  for (int i = 1; i <= 6; ++i) img.f32(static_cast<float>(i));
  const auto r = parse(img);
  ASSERT_EQ(r->tensors().size(), 1u);
  const TensorInfo& t = r->tensors()[0];
  EXPECT_EQ(t.name, "w");
  EXPECT_EQ(t.dtype, "F32");
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(t.offset, data);
  EXPECT_EQ(t.nbytes, 24u);
  EXPECT_TRUE(t.is_float);
  EXPECT_EQ(r->read_f32(t), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r->raw(t).data(), img.b.data() + data);
}

TEST(GgufRead, F16AndBf16AreExact) {
  Image img;
  img.header(2, 0).tensor("h", {4}, 1, 0).tensor("b", {2}, 30, 32).pad();
  img.u16(0x3C00).u16(0xC000).u16(0x7C00).u16(0x0001).pad();
  img.u16(0x3F80).u16(0xC0A0);
  const auto r = parse(img);
  EXPECT_EQ(r->tensors()[0].dtype, "F16");
  EXPECT_EQ(r->tensors()[1].dtype, "BF16");
  const std::vector<float> h = r->read_f32(r->tensors()[0]);
  EXPECT_EQ(h, (std::vector<float>{1.0f, -2.0f, std::numeric_limits<float>::infinity(),
                                   std::ldexp(1.0f, -24)}));
  EXPECT_EQ(r->read_f32(r->tensors()[1]), (std::vector<float>{1.0f, -5.0f}));
}

TEST(GgufRead, Q8_0Block) {
  Image img;
  img.header(1, 0).tensor("q", {32}, 8, 0).pad();
  img.u16(0x3800);  // d = 0.5
  for (int q = -3; q <= 28; ++q) img.u8(static_cast<std::uint8_t>(q));
  const auto r = parse(img);
  const TensorInfo& t = r->tensors()[0];
  EXPECT_EQ(t.dtype, "Q8_0");
  EXPECT_EQ(t.nbytes, 34u);
  std::vector<float> want;
  for (int q = -3; q <= 28; ++q) want.push_back(static_cast<float>(q) * 0.5f);
  EXPECT_EQ(r->read_f32(t), want);
}

TEST(GgufRead, Q4_0Block) {
  Image img;
  img.header(1, 0).tensor("q", {32, 1}, 2, 0).pad();
  img.u16(0x4000);  // d = 2
  for (int j = 0; j < 16; ++j) img.u8(static_cast<std::uint8_t>(j | ((15 - j) << 4)));
  const auto r = parse(img);
  const TensorInfo& t = r->tensors()[0];
  EXPECT_EQ(t.dtype, "Q4_0");
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{1, 32}));
  EXPECT_EQ(t.nbytes, 18u);
  std::vector<float> want(32);
  for (int j = 0; j < 16; ++j) {
    want[static_cast<std::size_t>(j)] = static_cast<float>(j - 8) * 2.0f;  // low nibble: element j
    want[static_cast<std::size_t>(j) + 16] =
        static_cast<float>(7 - j) * 2.0f;  // high nibble: element j+16
  }
  EXPECT_EQ(r->read_f32(t), want);
}

TEST(GgufRead, Mxfp4Block) {
  Image img;
  img.header(1, 0).tensor("m", {32}, 39, 0).pad();
  img.u8(128);  // scale 2^(128-127) = 2
  for (int j = 0; j < 16; ++j) img.u8(static_cast<std::uint8_t>(j | ((15 - j) << 4)));
  const auto r = parse(img);
  const TensorInfo& t = r->tensors()[0];
  EXPECT_EQ(t.dtype, "MXFP4");
  EXPECT_EQ(t.nbytes, 17u);
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  const std::vector<float> got = r->read_f32(t);
  for (std::size_t j = 0; j < 16; ++j) {
    EXPECT_EQ(got[j], 2 * e2m1[j]) << j;
    EXPECT_EQ(got[j + 16], 2 * e2m1[15 - j]) << j;
  }
  EXPECT_FALSE(std::signbit(got[8]));  // ggml decodes -0 as +0
}

// One NVFP4 block "w.weight" (64 values: sub-block s has UE4M3 scale 1.0
// and codes j low, 15 - j high in byte j), and, unless scale_type is -1, a
// tensor "w.scale" of that ggml type, shape ne and values.
Image nvfp4_image(int scale_type, std::initializer_list<std::uint64_t> ne = {1},
                  std::initializer_list<float> values = {0.5f}, const char* weight = "w.weight",
                  const char* scale = "w.scale") {
  Image img;
  img.header(scale_type < 0 ? 1 : 2, 0).tensor(weight, {64}, 40, 0);
  if (scale_type >= 0) img.tensor(scale, ne, static_cast<std::uint32_t>(scale_type), 64);
  img.pad();
  for (int s = 0; s < 4; ++s) img.u8(0x38);
  for (int s = 0; s < 4; ++s)
    for (int j = 0; j < 8; ++j) img.u8(static_cast<std::uint8_t>(j | ((15 - j) << 4)));
  img.pad();
  for (float v : values) img.f32(v);
  return img;
}

TEST(GgufRead, Nvfp4BlockAndItsScaleTensor) {
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (float scale : {1.0f, 0.5f, 3.0f}) {
    // A scale of 1 may be left out (llama.cpp's converter does).
    // (The reader maps the image: it must outlive the reader.)
    const Image img = scale == 1.0f ? nvfp4_image(-1) : nvfp4_image(0, {1}, {scale});
    const auto r = parse(img);
    const TensorInfo& t = *r->find("w.weight");
    EXPECT_EQ(t.dtype, "NVFP4");
    EXPECT_EQ(t.nbytes, 36u);
    EXPECT_TRUE(t.is_float);
    const std::vector<float> got = r->read_f32(t);
    ASSERT_EQ(got.size(), 64u);
    for (std::size_t s = 0; s < 4; ++s) {
      for (std::size_t j = 0; j < 8; ++j) {
        EXPECT_EQ(got[16 * s + j], e2m1[j] * scale) << s << " " << j;
        EXPECT_EQ(got[16 * s + j + 8], e2m1[15 - j] * scale) << s << " " << j;
      }
    }
  }
  // Names without ".weight" take ".scale" appended.
  EXPECT_EQ(gguf_nvfp4_scale_name("blk.0.attn_q.weight"), "blk.0.attn_q.scale");
  EXPECT_EQ(gguf_nvfp4_scale_name("proj"), "proj.scale");
  const Image proj = nvfp4_image(0, {1}, {2.0f}, "proj", "proj.scale");
  const auto r = parse(proj);
  EXPECT_EQ(r->read_f32(*r->find("proj"))[1], 1.0f);
}

TEST(GgufRead, Nvfp4BadScaleTensorsNameBothTensors) {
  auto read_error = [](const Image& img) -> std::string {
    const auto r = parse(img);
    try {
      r->read_f32(*r->find("w.weight"));
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const float inf = std::numeric_limits<float>::infinity();
  const struct {
    Image img;
    const char* text;
  } cases[] = {
      {nvfp4_image(1, {2}, {0.5f}), "has type F16, not F32"},
      {nvfp4_image(0, {2}, {0.5f, 0.5f}), "has 2 values; it needs 1"},
      {nvfp4_image(0, {1}, {inf}), "non-finite"},
      {nvfp4_image(0, {1}, {std::numeric_limits<float>::quiet_NaN()}), "non-finite"},
  };
  for (const auto& c : cases) {
    const std::string msg = read_error(c.img);
    EXPECT_EQ(msg.rfind("t.gguf: NVFP4 tensor 'w.weight': its scale tensor 'w.scale' ", 0), 0u)
        << msg;
    EXPECT_NE(msg.find(c.text), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  // Row lengths that are not a multiple of 64 are rejected when the file opens.
  Image img;
  img.header(1, 0).tensor("w.weight", {32}, 40, 0).pad();
  for (int i = 0; i < 36; ++i) img.u8(0);
  EXPECT_REJECTED(img, "not a multiple of the block size 64");
}

TEST(GgufRead, Q4_KBlock) {
  // d = 1, dmin = 0.5; all eight 6-bit (scale, min) pairs are (1, 2): bytes
  // 0..3 hold scales 0..3, bytes 4..7 mins 0..3, bytes 8..11 the low nibbles
  // of scale | min << 4 for pairs 4..7 (their high 2 bits, in bytes 0..7's
  // top bits, are 0). Every qs byte is 0x53: per 64 elements the first 32 are
  // code 3 (1*3 - 0.5*2 = 2), the next 32 code 5 (4).
  Image img;
  img.header(1, 0).tensor("k", {256}, 12, 0).pad();
  img.u16(0x3C00).u16(0x3800);
  for (int i = 0; i < 4; ++i) img.u8(1);
  for (int i = 0; i < 4; ++i) img.u8(2);
  for (int i = 0; i < 4; ++i) img.u8(0x21);
  for (int i = 0; i < 128; ++i) img.u8(0x53);
  const auto r = parse(img);
  const TensorInfo& t = r->tensors()[0];
  EXPECT_EQ(t.dtype, "Q4_K");
  EXPECT_EQ(t.nbytes, 144u);
  EXPECT_TRUE(t.is_float);
  std::vector<float> want(256);
  for (std::size_t i = 0; i < 256; ++i) want[i] = (i % 64) < 32 ? 2.0f : 4.0f;
  EXPECT_EQ(r->read_f32(t), want);
}

TEST(GgufRead, OtherTypesAreListedButNotDecoded) {
  Image img;
  img.header(2, 0).tensor("k", {256}, 16, 0).tensor("i", {3}, 26, 160).pad();
  img.b.resize(img.b.size() + 160 + 12);
  const auto r = parse(img);
  EXPECT_EQ(r->tensors()[0].dtype, "IQ2_XXS");
  EXPECT_EQ(r->tensors()[0].nbytes, 66u);
  EXPECT_FALSE(r->tensors()[0].is_float);
  EXPECT_EQ(r->tensors()[1].dtype, "I32");
  EXPECT_EQ(r->raw(r->tensors()[1]).size(), 12u);
  try {
    r->read_f32(r->tensors()[0]);
    FAIL() << "decoded IQ2_XXS";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'k' has type IQ2_XXS"), std::string::npos) << e.what();
  }
}

TEST(GgufRead, Version2AndCustomAlignment) {
  Image img;
  img.header(2, 1, 2).str("general.alignment").u32(4).u32(64);
  img.tensor("a", {2}, 0, 0).tensor("b", {1}, 0, 64).pad(64);
  const std::size_t data = img.b.size();
  img.f32(1).f32(2).pad(64).f32(3);
  const auto r = parse(img);
  EXPECT_EQ(r->tensors()[0].offset, data);
  EXPECT_EQ(r->tensors()[1].offset, data + 64);
  EXPECT_EQ(r->read_f32(r->tensors()[1]), std::vector<float>{3});
  // Offset 32 is aligned for the default but not for 64.
  Image bad;
  bad.header(1, 1).str("general.alignment").u32(4).u32(64).tensor("a", {1}, 0, 32).pad(64);
  bad.b.resize(bad.b.size() + 64);
  EXPECT_REJECTED(bad, "'a' offset 32 is not a multiple of the alignment 64");
}

TEST(GgufRead, DataStartsAtAlignedPositionAfterHeader) {
  Image img;
  img.header(1, 0).tensor("abc", {1}, 0, 0);
  ASSERT_NE(img.b.size() % 32, 0u);
  img.pad().f32(7);
  EXPECT_EQ(parse(img)->read_f32(parse(img)->tensors()[0]), std::vector<float>{7});
}

TEST(GgufRead, EmptyAndScalarTensors) {
  Image img;
  img.header(1, 0).tensor("e", {0, 4}, 8, 0);  // the file ends before the padding
  const auto r = parse(img);
  EXPECT_EQ(r->tensors()[0].shape, (std::vector<std::int64_t>{4, 0}));
  EXPECT_EQ(r->tensors()[0].nbytes, 0u);
  EXPECT_TRUE(r->read_f32(r->tensors()[0]).empty());
  EXPECT_TRUE(r->raw(r->tensors()[0]).empty());
  Image scalar;  // n_dims 0: one element
  scalar.header(1, 0).tensor("s", {}, 0, 0).pad().f32(-1.5f);
  const auto s = parse(scalar);
  EXPECT_TRUE(s->tensors()[0].shape.empty());
  EXPECT_EQ(s->read_f32(s->tensors()[0]), std::vector<float>{-1.5f});
}

// ---- writing ----

class GgufWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lowp_gguf_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path path(const std::string& name) const { return dir_ / name; }
  static std::vector<std::byte> file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(c.size());
    if (!c.empty()) std::memcpy(out.data(), c.data(), c.size());
    return out;
  }
  fs::path dir_;
};

TEST_F(GgufWrite, RoundTripsEveryDtypeBitExactly) {
  std::mt19937 rng(42);
  std::vector<float> f32(2 * 64);
  for (float& x : f32) x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
  f32[0] = -0.0f;
  std::vector<std::uint16_t> f16(64), bf16(64);
  for (std::uint16_t& x : f16) x = static_cast<std::uint16_t>(rng());
  for (std::uint16_t& x : bf16) x = static_cast<std::uint16_t>(rng());
  std::vector<float> src(3 * 64);
  for (float& x : src) x = std::normal_distribution<float>(0.0f, 3.0f)(rng);
  const std::vector<GgmlBlockQ8_0> q8 = ggml_q8_0_quantize(src);
  std::vector<GgmlBlockMxfp4> mx(4);
  for (GgmlBlockMxfp4& blk : mx) {
    blk.e = static_cast<std::uint8_t>(rng());
    for (std::uint8_t& q : blk.qs) q = static_cast<std::uint8_t>(rng());
  }
  std::vector<std::vector<std::byte>> data = {as_bytes(f32), as_bytes(f16), as_bytes(bf16),
                                              as_bytes(q8), as_bytes(mx)};
  const std::vector<OutputTensor> tensors = {{"a.f32", "F32", {2, 64}, 512},
                                             {"b.f16", "F16", {64}, 128},
                                             {"c.bf16", "BF16", {4, 16}, 128},
                                             {"d.q8", "Q8_0", {3, 64}, 204},
                                             {"e.mx", "MXFP4", {2, 2, 32}, 68}};
  const std::vector<GgufKv> kv = every_kind_of_kv();
  write_gguf(path("out.gguf"), kv, tensors, [&](std::size_t i) { return data[i]; });

  const auto r = open_model(path("out.gguf"));
  EXPECT_EQ(r->kind(), "gguf");
  EXPECT_EQ(gguf_kv(*r), kv);
  ASSERT_EQ(r->tensors().size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = r->tensors()[i];
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.dtype, tensors[i].dtype);
    EXPECT_EQ(t.shape, tensors[i].shape);
    EXPECT_EQ(t.offset % 32, 0u);
    const std::span<const std::byte> raw = r->raw(t);
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), data[i].begin(), data[i].end())) << t.name;
  }
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (bits(a[i]) != bits(b[i])) return false;
    }
    return true;
  };
  EXPECT_TRUE(same_bits(r->read_f32(r->tensors()[0]), f32));
  std::vector<float> want(64);
  for (std::size_t i = 0; i < 64; ++i) want[i] = fp16(f16[i]);
  EXPECT_TRUE(same_bits(r->read_f32(r->tensors()[1]), want));
  for (std::size_t i = 0; i < 64; ++i) want[i] = std::bit_cast<float>(std::uint32_t{bf16[i]} << 16);
  EXPECT_TRUE(same_bits(r->read_f32(r->tensors()[2]), want));
  want.assign(192, 0.0f);
  for (std::size_t i = 0; i < 192; ++i) {
    const GgmlBlockQ8_0& blk = q8[i / 32];
    want[i] = static_cast<float>(blk.qs[i % 32]) * fp16(blk.d);
  }
  EXPECT_TRUE(same_bits(r->read_f32(r->tensors()[3]), want));
  want.assign(128, 0.0f);
  ggml_mxfp4_dequantize(mx, want);
  EXPECT_TRUE(same_bits(r->read_f32(r->tensors()[4]), want));
}

TEST_F(GgufWrite, CopyingKvAndTensorsGivesTheSameFile) {
  const std::vector<OutputTensor> tensors = {{"x", "F32", {3}, 12}, {"k", "Q4_K", {256}, 144}};
  std::vector<std::vector<std::byte>> data = {std::vector<std::byte>(12, std::byte{1}),
                                              std::vector<std::byte>(144, std::byte{2})};
  std::vector<GgufKv> kv = every_kind_of_kv();
  kv.emplace_back("general.alignment", GgufValue::u32(64));
  write_gguf(path("a.gguf"), kv, tensors, [&](std::size_t i) { return data[i]; });
  const auto a = open_model(path("a.gguf"));
  EXPECT_EQ(a->tensors()[1].offset % 64, 0u);
  std::vector<OutputTensor> copy;
  for (const TensorInfo& t : a->tensors()) copy.push_back({t.name, t.dtype, t.shape, t.nbytes});
  write_gguf(path("b.gguf"), gguf_kv(*a), copy, [&](std::size_t i) {
    const auto raw = a->raw(a->tensors()[i]);
    return std::vector<std::byte>(raw.begin(), raw.end());
  });
  EXPECT_EQ(file_bytes(path("a.gguf")), file_bytes(path("b.gguf")));
}

TEST_F(GgufWrite, LayoutMatchesGgml) {
  write_gguf(path("t.gguf"), {}, std::vector<OutputTensor>{{"w", "F32", {2, 3}, 24}},
             [](std::size_t) { return std::vector<std::byte>(24, std::byte{0x11}); });
  Image want;
  want.header(1, 0).tensor("w", {3, 2}, 0, 0).pad();
  want.b.resize(want.b.size() + 24, std::byte{0x11});
  want.pad();
  EXPECT_EQ(file_bytes(path("t.gguf")), want.b);
}

TEST_F(GgufWrite, RejectsBadInputAndLeavesTargetAlone) {
  const fs::path p = path("keep.gguf");
  std::ofstream(p) << "old";
  auto produce = [](std::size_t) { return std::vector<std::byte>(4); };
  auto error = [&](std::span<const GgufKv> kv, std::vector<OutputTensor> t,
                   const ProduceTensor& f) -> std::string {
    try {
      write_gguf(p, kv, t, f);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::vector<GgufKv> none;
  EXPECT_NE(error(none, {{"w", "F32", {2}, 4}}, produce).find("needs 8 bytes, not 4"),
            std::string::npos);
  EXPECT_NE(error(none, {{"w", "Q9_9", {2}, 4}}, produce).find("unknown GGUF tensor type 'Q9_9'"),
            std::string::npos);
  EXPECT_NE(error(none, {{"w", "Q8_0", {16}, 17}}, produce).find("multiple of 32"),
            std::string::npos);
  EXPECT_NE(error(none, {{"w", "F32", {1}, 4}, {"w", "F32", {1}, 4}}, produce)
                .find("duplicate tensor name"),
            std::string::npos);
  EXPECT_NE(error(none, {{"w", "F32", {2}, 8}}, produce).find("got 4 bytes, expected 8"),
            std::string::npos);
  const std::vector<GgufKv> dup = {{"a", GgufValue::u8(1)}, {"a", GgufValue::u8(2)}};
  EXPECT_NE(error(dup, {}, produce).find("duplicate metadata key 'a'"), std::string::npos);
  const std::vector<GgufKv> mixed = {{"a", GgufValue::array(GgufType::kU8, {GgufValue::u16(1)})}};
  EXPECT_NE(error(mixed, {}, produce).find("item 0 is UINT16 in an array of UINT8"),
            std::string::npos);
  const std::vector<GgufKv> align = {{"general.alignment", GgufValue::u32(48)}};
  EXPECT_NE(error(align, {}, produce).find("power of two"), std::string::npos);
  std::ifstream in(p);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "old");
}

TEST(GgufTensorNbytes, Sizes) {
  EXPECT_EQ(gguf_tensor_nbytes("F32", std::vector<std::int64_t>{2, 3}), 24u);
  EXPECT_EQ(gguf_tensor_nbytes("Q8_0", std::vector<std::int64_t>{2, 64}), 136u);
  EXPECT_EQ(gguf_tensor_nbytes("Q4_0", std::vector<std::int64_t>{32}), 18u);
  EXPECT_EQ(gguf_tensor_nbytes("MXFP4", std::vector<std::int64_t>{5, 64}), 170u);
  EXPECT_EQ(gguf_tensor_nbytes("Q6_K", std::vector<std::int64_t>{256}), 210u);
  EXPECT_THROW(gguf_tensor_nbytes("F32", std::vector<std::int64_t>{-1}), Error);
  EXPECT_THROW(gguf_tensor_nbytes("F32", std::vector<std::int64_t>{1ll << 40, 1ll << 40}), Error);
}

TEST(GgufTypeFormat, TableBothWays) {
  EXPECT_EQ(gguf_type_format("F32"), kFp32);
  EXPECT_EQ(gguf_type_format("F16"), kFp16);
  EXPECT_EQ(gguf_type_format("BF16"), kBf16);
  for (const char* t : {"Q8_0", "MXFP4", "I8", "F64", "nope"})
    EXPECT_EQ(gguf_type_format(t), std::nullopt) << t;
  EXPECT_EQ(gguf_type_for(kFp32), "F32");
  EXPECT_EQ(gguf_type_for(kFp16), "F16");
  EXPECT_EQ(gguf_type_for(kBf16), "BF16");
  EXPECT_EQ(gguf_type_for(kFp8E4m3), "");
}

// ---- rejections ----

// A valid file whose last tensor ends the file (no trailing padding), so that
// every proper prefix is invalid.
Image valid_file() {
  Image img;
  img.header(2, 3).str("general.name").u32(8).str("x");
  img.str("list").u32(9).u32(5).u64(2).u32(1).u32(2).str("flag").u32(7).u8(0);
  img.tensor("a", {32}, 8, 0).tensor("b", {2}, 0, 64).pad();
  img.u16(0x3C00);
  for (int j = 0; j < 32; ++j) img.u8(static_cast<std::uint8_t>(j));
  img.pad().f32(1).f32(2);
  return img;
}

TEST(GgufReject, EveryTruncation) {
  const Image full = valid_file();
  ASSERT_EQ(parse_error(full), "");
  for (std::size_t n = 0; n < full.b.size(); ++n) {
    Image cut;
    cut.b.assign(full.b.begin(), full.b.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = parse_error(cut);
    EXPECT_NE(msg, "") << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  Image cut;
  cut.b.assign(full.b.begin(), full.b.begin() + 64);
  EXPECT_REJECTED(
      cut, "truncated file: metadata entry 1 key length at byte 57 needs 8 bytes, only 7 left");
}

TEST(GgufReject, MagicAndVersion) {
  Image bad;
  bad.chars("GGUX").u32(3).u64(0).u64(0);
  EXPECT_REJECTED(bad, "not a GGUF file");
  Image tiny;
  tiny.chars("GG");
  EXPECT_REJECTED(tiny, "truncated file: magic");
  Image v1;
  v1.header(0, 0, 1);
  EXPECT_REJECTED(v1, "unsupported GGUF version 1 (supported: 2, 3)");
  Image big_endian;
  big_endian.header(0, 0, 0x03000000);
  EXPECT_REJECTED(big_endian, "unsupported GGUF version 50331648");
}

TEST(GgufReject, HostileCountsAndLengths) {
  Image tensors;
  tensors.header(1ull << 60, 0);
  EXPECT_REJECTED(tensors, "tensor count 1152921504606846976 is more than the file can hold");
  Image kvs;
  kvs.header(0, 1ull << 60);
  EXPECT_REJECTED(kvs, "metadata count 1152921504606846976 is more than the file can hold");
  Image key;
  key.header(0, 1).u64(1000).chars("abcdefghijklmnop");
  EXPECT_REJECTED(key, "metadata entry 0 key (1000 bytes)");
  Image value;
  value.header(0, 1).str("k").u32(8).u64(1ull << 62);
  EXPECT_REJECTED(value, "metadata 'k' string");
  Image array;
  array.header(0, 1).str("k").u32(9).u32(6).u64(1ull << 61).f32(1);
  EXPECT_REJECTED(array, "metadata 'k': array of 2305843009213693952 items runs past the end");
  Image strings;
  strings.header(0, 1).str("k").u32(9).u32(8).u64(3).str("a").u64(500).chars("abcdefgh");
  EXPECT_REJECTED(strings, "metadata 'k'[1] string");
  Image many;
  many.header(0, 1).str("k").u32(9).u32(0).u64((1ull << 23) + 1);
  many.b.resize(many.b.size() + (1ull << 23) + 1);
  EXPECT_REJECTED(many, "array of 8388609 items exceeds lowp's limit of 8388608");
  Image nested;
  nested.header(0, 1).str("k").u32(9);
  for (int i = 0; i < 9; ++i) nested.u32(9).u64(1);
  nested.u32(0).u64(0);
  EXPECT_REJECTED(nested, "arrays nested more than 8 deep");
  Image ne;
  ne.header(1, 0).tensor("t", {1ull << 40, 1ull << 40}, 0, 0);
  EXPECT_REJECTED(ne, "tensor 't' has too many elements");
  Image ne_sign;
  ne_sign.header(1, 0).tensor("t", {1ull << 63}, 0, 0);
  EXPECT_REJECTED(ne_sign, "tensor 't' ne[0] = 9223372036854775808 is too large");
}

TEST(GgufReject, BadValues) {
  Image type;
  type.header(0, 1).str("k").u32(13).u32(0);
  EXPECT_REJECTED(type, "metadata 'k' type is 13, not a GGUF value type");
  Image item_type;
  item_type.header(0, 1).str("k").u32(9).u32(99).u64(0);
  EXPECT_REJECTED(item_type, "metadata 'k' array item type is 99");
  Image boolean;
  boolean.header(0, 1).str("k").u32(7).u8(2);
  EXPECT_REJECTED(boolean, "metadata 'k': bool value 2 is not 0 or 1");
  Image dup;
  dup.header(0, 2).str("k").u32(0).u8(1).str("k").u32(0).u8(2);
  EXPECT_REJECTED(dup, "duplicate metadata key 'k'");
  Image align_type;
  align_type.header(0, 1).str("general.alignment").u32(10).u64(32);
  EXPECT_REJECTED(align_type, "general.alignment must be a UINT32 power of two, not UINT64 '32'");
  Image align_zero;
  align_zero.header(0, 1).str("general.alignment").u32(4).u32(0);
  EXPECT_REJECTED(align_zero, "power of two");
  Image align_odd;
  align_odd.header(0, 1).str("general.alignment").u32(4).u32(48);
  EXPECT_REJECTED(align_odd, "power of two");
  Image escaped;
  escaped.header(0, 1).str("bad\nkey").u32(42);
  EXPECT_REJECTED(escaped, "metadata 'bad\\x0akey' type is 42");
}

TEST(GgufReject, BadTensorInfos) {
  Image unknown;
  unknown.header(1, 0).tensor("t", {1}, 99, 0).pad().f32(0);
  EXPECT_REJECTED(unknown, "tensor 't' has unknown ggml type 99");
  Image removed;
  removed.header(1, 0).tensor("t", {32}, 4, 0).pad().f32(0);
  EXPECT_REJECTED(removed, "tensor 't' has unknown ggml type 4");
  Image dims;
  dims.header(1, 0).tensor("t", {1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0).pad().f32(0);
  EXPECT_REJECTED(dims, "tensor 't' has 9 dimensions (at most 8)");
  Image block;
  block.header(1, 0).tensor("t", {16, 2}, 8, 0).pad();
  block.b.resize(block.b.size() + 68);
  EXPECT_REJECTED(block,
                  "tensor 't' of type Q8_0 has ne[0] = 16, not a multiple of the block size 32");
  Image misaligned;
  misaligned.header(1, 0).tensor("t", {1}, 0, 4).pad().f32(0).f32(0);
  EXPECT_REJECTED(misaligned, "tensor 't' offset 4 is not a multiple of the alignment 32");
  Image past;
  past.header(1, 0).tensor("t", {4}, 0, 0).pad().f32(0).f32(0).f32(0);
  EXPECT_REJECTED(past,
                  "tensor 't' (16 bytes at data offset 0) runs past the end of the file (data "
                  "section has 12 bytes)");
  Image far;
  far.header(1, 0).tensor("t", {1}, 0, ~0ull - 31).pad().f32(0);
  EXPECT_REJECTED(far, "runs past the end of the file");
  Image overlap;
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {1}, 0, 32).pad();
  overlap.b.resize(overlap.b.size() + 64);
  EXPECT_REJECTED(overlap, "tensors 'a' and 'b' overlap");
  Image overlap_reordered;
  overlap_reordered.header(2, 0).tensor("b", {1}, 0, 32).tensor("a", {16}, 0, 0).pad();
  overlap_reordered.b.resize(overlap_reordered.b.size() + 64);
  EXPECT_REJECTED(overlap_reordered, "tensors 'a' and 'b' overlap");
  Image dup;
  dup.header(2, 0).tensor("t", {1}, 0, 0).tensor("t", {1}, 0, 32).pad();
  dup.b.resize(dup.b.size() + 64);
  EXPECT_REJECTED(dup, "duplicate tensor name 't'");
}

}  // namespace
}  // namespace lowp::io
