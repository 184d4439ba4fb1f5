// ONNX reading (parse_onnx) and patching (write_onnx_replacing): hand-built
// ModelProto images from a tiny protobuf encoder, hostile inputs, and the real
// PP-OCRv4 recognition model when scripts/fetch-models.sh has fetched it.
// fuzz/corpus/gen_onnx_corpus.py writes the fuzz seeds with the same encoder.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "ci.h"
#include "io/pb_builder.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/io/onnx.h"

namespace {

namespace fs = std::filesystem;
using lowp::io::ModelReader;
using lowp::io::TensorInfo;

using lowp::io::pb_testing::Pb;

std::string le_floats(const std::vector<float>& v) {
  Pb p;
  for (float x : v) p.le(std::bit_cast<std::uint32_t>(x), 4);
  return p.b;
}

Pb tensor(std::string_view name, int type, std::vector<std::int64_t> dims) {
  Pb t;
  for (std::int64_t d : dims) t.i(1, d);
  t.i(2, type);
  if (!name.empty()) t.s(8, name);
  return t;
}

Pb constant_node(std::string_view output, const Pb& t) {
  Pb attr;
  attr.s(1, "value").m(5, t).u(20, 4);
  Pb node;
  node.s(2, output).s(3, "const_node").s(4, "Constant").m(5, attr);
  return node;
}

std::string model(const Pb& graph) {
  Pb opset;
  opset.s(1, "").i(2, 13);
  Pb meta;
  meta.s(1, "author").s(2, "lowp");
  Pb m;
  m.i(1, 8).s(2, "lowp-test").s(3, "1.0").m(7, graph).m(8, opset).m(14, meta);
  return m.b;
}

// A model with one tensor in every storage the reader knows.
std::string full_model() {
  Pb g;
  g.s(2, "g");
  g.m(1, constant_node("c0", tensor("", 1, {2}).s(9, le_floats({0.5f, -4.0f}))));
  g.m(1, Pb{}.s(1, "x").s(1, "c0").s(2, "y").s(4, "Add"));
  g.m(5, tensor("raw", 1, {2, 3}).s(9, le_floats({1, 2, 3, 4, 5, 6})));
  g.m(5, tensor("packed", 1, {3}).s(4, le_floats({-1.5f, 0.25f, 1e30f})));
  Pb unpacked = tensor("unpacked", 1, {2, 2});
  for (float x : {7.0f, 8.0f, 9.0f, 10.0f}) unpacked.f32(4, x);
  g.m(5, unpacked);
  Pb half;
  half.varint(0x3C00).varint(0xC000).varint(0x7C00);  // 1, -2, inf
  g.m(5, tensor("half", 10, {3}).s(5, half.b));
  g.m(5, tensor("ints", 7, {2}).s(9, Pb{}.le(5, 8).le(static_cast<std::uint64_t>(-1), 8).b));
  g.m(5, tensor("empty", 1, {0, 4}));
  return model(g);
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// The reader points into `image`, which must outlive it (no temporaries).
std::unique_ptr<ModelReader> parse(const std::string& image) {
  return lowp::io::parse_onnx(bytes_of(image), "t.onnx");
}
std::unique_ptr<ModelReader> parse(std::string&& image) = delete;

// Parsing must fail with a one-line lowp::Error containing `needle`.
void expect_error(const std::string& image, const std::string& needle) {
  try {
    parse(image);
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const lowp::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("t.onnx: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

std::string one_tensor(const Pb& t) {
  Pb g;
  g.m(5, t);
  return model(g);
}

TEST(Onnx, ReadsEveryStorage) {
  const std::string image = full_model();
  const auto r = parse(image);
  EXPECT_EQ(r->kind(), "onnx");
  ASSERT_EQ(r->tensors().size(), 7u);
  const TensorInfo* raw = r->find("raw");
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(raw->dtype, "FLOAT");
  EXPECT_EQ(raw->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(raw->nbytes, 24u);
  EXPECT_EQ(std::memcmp(image.data() + raw->offset, le_floats({1, 2, 3, 4, 5, 6}).data(), 24), 0);
  EXPECT_EQ(r->read_f32(*raw), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r->raw(*raw).size(), 24u);

  const TensorInfo* packed = r->find("packed");
  ASSERT_NE(packed, nullptr);
  EXPECT_EQ(packed->nbytes, 12u);
  EXPECT_EQ(r->read_f32(*packed), (std::vector<float>{-1.5f, 0.25f, 1e30f}));
  EXPECT_EQ(r->read_f32(*r->find("unpacked")), (std::vector<float>{7, 8, 9, 10}));
  EXPECT_EQ(r->find("unpacked")->nbytes, 20u);  // four (tag, fixed32) pairs

  const TensorInfo* half = r->find("half");
  ASSERT_NE(half, nullptr);
  EXPECT_EQ(half->dtype, "FLOAT16");
  EXPECT_TRUE(half->is_float);
  const std::vector<float> h = r->read_f32(*half);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_TRUE(std::isinf(h[2]));

  const TensorInfo* c0 = r->find("c0");
  ASSERT_NE(c0, nullptr);
  EXPECT_EQ(r->read_f32(*c0), (std::vector<float>{0.5f, -4.0f}));

  const TensorInfo* ints = r->find("ints");
  ASSERT_NE(ints, nullptr);
  EXPECT_EQ(ints->dtype, "INT64");
  EXPECT_FALSE(ints->is_float);
  EXPECT_THROW(r->read_f32(*ints), lowp::Error);
  EXPECT_EQ(r->find("empty")->nbytes, 0u);
  EXPECT_TRUE(r->read_f32(*r->find("empty")).empty());
}

TEST(Onnx, Metadata) {
  const std::string image = full_model();
  const auto r = parse(image);
  const auto list = r->metadata();
  std::map<std::string, std::string> md(list.begin(), list.end());
  EXPECT_EQ(md["ir_version"], "8");
  EXPECT_EQ(md["producer_name"], "lowp-test");
  EXPECT_EQ(md["producer_version"], "1.0");
  EXPECT_EQ(md["opset_import"], "[{\"domain\": \"\", \"version\": 13}]");
  EXPECT_EQ(md["graph.name"], "g");
  EXPECT_EQ(md["graph.node_count"], "2");
  EXPECT_EQ(md["graph.initializer_count"], "6");
  EXPECT_EQ(md["metadata_props.author"], "lowp");
}

TEST(Onnx, FloatTypes) {
  Pb g;
  g.m(5, tensor("d", 11, {2})
             .s(9, Pb{}.le(std::bit_cast<std::uint64_t>(1.0 + 0x1p-24), 8)
                       .le(std::bit_cast<std::uint64_t>(1.0 + 0x1p-23 + 0x1p-24), 8)
                       .b));
  g.m(5, tensor("bf", 16, {2}).s(9, Pb{}.le(0x3F80, 2).le(0xC040, 2).b));  // 1, -3
  g.m(5, tensor("e4", 17, {3}).s(9, "\x38\xC4\x7F"));                      // 1, -3, NaN
  g.m(5, tensor("e5", 19, {2}).s(9, "\x3C\x7C"));                          // 1, inf
  g.m(5, tensor("f4", 23, {3}).s(9, "\x72\x0F"));  // 1, 6, -6 (low nibble first)
  Pb dd = tensor("dd", 11, {1});
  dd.s(10, Pb{}.le(std::bit_cast<std::uint64_t>(2.5), 8).b);
  g.m(5, dd);
  const std::string image = model(g);
  const auto r = parse(image);
  EXPECT_EQ(r->read_f32(*r->find("d")),
            (std::vector<float>{1.0f, 1.0f + 0x1p-22f}));  // ties to even
  EXPECT_EQ(r->read_f32(*r->find("bf")), (std::vector<float>{1.0f, -3.0f}));
  const std::vector<float> e4 = r->read_f32(*r->find("e4"));
  EXPECT_EQ(e4[0], 1.0f);
  EXPECT_EQ(e4[1], -3.0f);
  EXPECT_TRUE(std::isnan(e4[2]));
  EXPECT_EQ(r->read_f32(*r->find("e5")), (std::vector<float>{1.0f, INFINITY}));
  EXPECT_EQ(r->read_f32(*r->find("f4")), (std::vector<float>{1.0f, 6.0f, -6.0f}));
  EXPECT_EQ(r->find("f4")->nbytes, 2u);
  EXPECT_EQ(r->read_f32(*r->find("dd")), (std::vector<float>{2.5f}));
}

TEST(Onnx, Rejections) {
  expect_error(one_tensor(tensor("ext", 1, {2}).i(14, 1)), "tensor 'ext': data stored externally");
  expect_error(one_tensor(tensor("ext2", 1, {1}).m(13, Pb{}.s(1, "location").s(2, "w.bin"))),
               "'ext2': data stored externally");
  expect_error(one_tensor(tensor("neg", 1, {2, -1})), "negative dimension -1");
  expect_error(one_tensor(tensor("short", 1, {3}).s(9, le_floats({1, 2}))),
               "tensor 'short': raw_data has 8 bytes, expected 12");
  expect_error(one_tensor(tensor("few", 1, {3}).s(4, le_floats({1, 2}))),
               "has 2 data values, expected 3");
  expect_error(one_tensor(tensor("odd", 1, {1}).s(4, "abcde")), "not a multiple of 4");
  expect_error(one_tensor(tensor("u99", 99, {1}).s(9, "x")), "'u99': unsupported data type 99");
  expect_error(one_tensor(tensor("wrong", 1, {1}).s(7, Pb{}.varint(1).b)),
               "field 7 cannot hold FLOAT");
  expect_error(one_tensor(tensor("both", 1, {1}).s(9, le_floats({1})).s(4, le_floats({1}))),
               "more than one field");
  expect_error(one_tensor(tensor("", 1, {1}).s(9, le_floats({1}))), "no name");
  expect_error(one_tensor(tensor("nodata", 1, {2})), "'nodata': has 2 elements but no data");
  expect_error(one_tensor(tensor("big", 1, {1 << 30, 1 << 30, 1 << 30})),
               "element count overflows");
  expect_error(one_tensor(tensor("seg", 1, {1}).m(3, Pb{}.i(1, 0))), "segmented");
  Pb split = tensor("split", 1, {2}).f32(4, 1.0f);
  split.s(12, "doc").f32(4, 2.0f);
  expect_error(one_tensor(split), "split into pieces");
  {
    Pb g;
    g.m(5, tensor("dup", 1, {1}).s(9, le_floats({1})));
    g.m(5, tensor("dup", 1, {1}).s(9, le_floats({2})));
    expect_error(model(g), "tensor 'dup': duplicate tensor name");
  }
  {
    Pb g;
    g.m(1, constant_node("dup", tensor("", 1, {1}).s(9, le_floats({1}))));
    g.m(5, tensor("dup", 1, {1}).s(9, le_floats({2})));
    expect_error(model(g), "duplicate tensor name");
  }
  expect_error("", "no graph");
  expect_error(std::string(11, '\xff'), "varint");
  expect_error(std::string("\x08") + std::string(10, '\xff'), "varint");
  expect_error("\x0b\x00", "unsupported wire type 3");
  expect_error(std::string("\x00\x01", 2), "invalid field number 0");
  expect_error("\x3a\x05\x01", "runs past the end of its message");  // graph of 5 bytes, 1 present
  {
    // An initializer whose length runs past its graph but not past the file.
    Pb t = tensor("w", 1, {1}).s(9, le_floats({1}));
    Pb g;
    g.key(5, 2).varint(t.b.size() + 4).b += t.b;
    Pb m;
    m.key(7, 2).varint(t.b.size() + 2).b += g.b;
    expect_error(m.b, "runs past the end of its message");
  }
  expect_error(Pb{}.u(7, 1).b, "field graph has wire type 0, expected 2");
}

TEST(Onnx, EveryTruncationThrowsOrParses) {
  const std::string image = full_model();
  std::size_t thrown = 0;
  for (std::size_t n = 0; n < image.size(); ++n) {
    try {
      const std::string prefix = image.substr(0, n);
      const auto r = parse(prefix);
      for (const TensorInfo& t : r->tensors()) {
        if (t.is_float) r->read_f32(t);
      }
    } catch (const lowp::Error& e) {
      ++thrown;
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  // A prefix ending exactly at a top-level field boundary is a valid message.
  EXPECT_GT(thrown, image.size() - 8);
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("lowp_onnx_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Onnx, PatchWriterRoundTrip) {
  TempDir dir;
  Pb g;
  g.m(5, tensor("raw", 1, {2}).s(9, le_floats({1.5f, -2.0f})));
  g.m(5, tensor("packed", 1, {2}).s(4, le_floats({3.0f, 4.0f})));
  Pb un = tensor("unpacked", 1, {2});
  un.f32(4, 5.0f).f32(4, 6.0f);
  g.m(5, un);
  g.m(5, tensor("h", 10, {2}).s(9, Pb{}.le(0x3C00, 2).le(0x4000, 2).b));  // FLOAT16 raw: 1, 2
  g.m(5, tensor("keep", 1, {1}).s(9, le_floats({9.0f})));
  g.m(5, tensor("i", 6, {1}).s(9, Pb{}.le(7, 4).b));
  const std::string image = model(g);
  const fs::path in_path = dir.path / "in.onnx";
  std::ofstream(in_path, std::ios::binary) << image;
  const auto r = lowp::io::open_model(in_path);
  const fs::path out_path = dir.path / "out.onnx";
  std::vector<std::string> offered;
  lowp::io::write_onnx_replacing(out_path, *r,
                                 [&](const TensorInfo& t) -> std::optional<std::vector<float>> {
                                   offered.push_back(t.name);
                                   if (t.name == "keep") return std::nullopt;
                                   std::vector<float> v = r->read_f32(t);
                                   for (float& x : v) x *= 2;
                                   return v;
                                 });
  EXPECT_EQ(offered, (std::vector<std::string>{"raw", "packed", "unpacked", "h", "keep"}));
  const std::string out = read_file(out_path);
  ASSERT_EQ(out.size(), image.size());
  const auto r2 = lowp::io::open_model(out_path);
  EXPECT_EQ(r2->read_f32(*r2->find("raw")), (std::vector<float>{3.0f, -4.0f}));
  EXPECT_EQ(r2->read_f32(*r2->find("packed")), (std::vector<float>{6.0f, 8.0f}));
  EXPECT_EQ(r2->read_f32(*r2->find("unpacked")), (std::vector<float>{10.0f, 12.0f}));
  EXPECT_EQ(r2->read_f32(*r2->find("h")), (std::vector<float>{2.0f, 4.0f}));
  EXPECT_EQ(r2->read_f32(*r2->find("keep")), (std::vector<float>{9.0f}));
  // Only payload bytes changed.
  std::size_t differing = 0;
  for (std::size_t k = 0; k < image.size(); ++k) differing += image[k] != out[k] ? 1 : 0;
  EXPECT_LE(differing, 2u * 4 + 2 * 4 + 2 * 4 + 2 * 2);

  // Wrong element count, varint storage, non-ONNX input.
  EXPECT_THROW(
      lowp::io::write_onnx_replacing(dir.path / "bad.onnx", *r,
                                     [](const TensorInfo&) { return std::vector<float>{1.0f}; }),
      lowp::Error);
  EXPECT_FALSE(fs::exists(dir.path / "bad.onnx"));
  const std::string full_image = full_model();
  const auto full = parse(full_image);
  try {
    lowp::io::write_onnx_replacing(dir.path / "bad.onnx", *full,
                                   [&](const TensorInfo& t) -> std::optional<std::vector<float>> {
                                     if (t.name != "half") return std::nullopt;
                                     return std::vector<float>(3, 1.0f);
                                   });
    ADD_FAILURE() << "no error";
  } catch (const lowp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'half': FLOAT16 values stored as varints"),
              std::string::npos)
        << e.what();
  }
}

// ---- the real model (scripts/fetch-models.sh puts it in $LOWP_MODELS_DIR) ----
fs::path real_model() {
  const char* dir = std::getenv("LOWP_MODELS_DIR");
  return dir == nullptr ? fs::path() : fs::path(dir) / "ch_PP-OCRv4_rec_infer.onnx";
}

// Skips without the model, or fails under CI (tests/ci.h).
#define LOWP_REQUIRE_REAL_MODEL(path)                                       \
  const fs::path path = real_model();                                       \
  if (path.empty() || !fs::exists(path))                                    \
  LOWP_SKIP_OR_FAIL_UNDER_CI(                                               \
      "real model not found (run scripts/fetch-models.sh; LOWP_MODELS_DIR=" \
      << (std::getenv("LOWP_MODELS_DIR") ? std::getenv("LOWP_MODELS_DIR") : "unset") << ")")

TEST(OnnxRealModel, PpOcrV4Rec) {
  LOWP_REQUIRE_REAL_MODEL(path);
  const auto r = lowp::io::open_model(path);
  EXPECT_EQ(r->kind(), "onnx");
  // Paddle2ONNX stores every weight as a Constant node, none as initializers.
  std::size_t floats = 0, ints = 0;
  std::uint64_t params = 0;
  double sum = 0;
  for (const TensorInfo& t : r->tensors()) {
    if (t.dtype == "FLOAT") {
      ++floats;
      params += t.element_count();
      const std::vector<float> v = r->read_f32(t);
      ASSERT_EQ(v.size(), t.element_count());
      double s = 0;
      for (float x : v) s += x;
      EXPECT_TRUE(std::isfinite(s)) << t.name;
      sum += s;
    } else {
      ++ints;
      EXPECT_FALSE(t.is_float) << t.name;
    }
  }
  EXPECT_EQ(r->tensors().size(), 325u);
  EXPECT_EQ(floats, 309u);
  EXPECT_EQ(ints, 16u);  // 15 INT32 and 1 INT64 shape constants
  EXPECT_EQ(params, 2690296u);
  EXPECT_TRUE(std::isfinite(sum));
  auto shape_of = [&](const char* name) {
    const TensorInfo* t = r->find(name);
    return t == nullptr ? std::vector<std::int64_t>{-1} : t->shape;
  };
  EXPECT_EQ(shape_of("linear_85.w_0"), (std::vector<std::int64_t>{120, 6625}));
  EXPECT_EQ(shape_of("conv2d_180.w_0"), (std::vector<std::int64_t>{480, 480, 1, 1}));
  EXPECT_EQ(shape_of("batch_norm2d_148.b_0"), (std::vector<std::int64_t>{60}));
  const auto list = r->metadata();
  std::map<std::string, std::string> md(list.begin(), list.end());
  EXPECT_EQ(md["ir_version"], "8");
  EXPECT_EQ(md["graph.node_count"], "765");
}

TEST(OnnxRealModel, PatchWriterDoublesEveryFloat) {
  LOWP_REQUIRE_REAL_MODEL(path);
  TempDir dir;
  const auto r = lowp::io::open_model(path);
  const fs::path out = dir.path / "doubled.onnx";
  std::size_t replaced = 0;
  lowp::io::write_onnx_replacing(out, *r,
                                 [&](const TensorInfo& t) -> std::optional<std::vector<float>> {
                                   if (t.dtype != "FLOAT") return std::nullopt;
                                   ++replaced;
                                   std::vector<float> v = r->read_f32(t);
                                   for (float& x : v) x *= 2;
                                   return v;
                                 });
  EXPECT_EQ(replaced, 309u);
  EXPECT_EQ(fs::file_size(out), fs::file_size(path));
  const auto r2 = lowp::io::open_model(out);
  ASSERT_EQ(r2->tensors().size(), r->tensors().size());
  for (std::size_t i = 0; i < r->tensors().size(); ++i) {
    const TensorInfo& a = r->tensors()[i];
    const TensorInfo& b = r2->tensors()[i];
    ASSERT_EQ(a.name, b.name);
    ASSERT_EQ(a.offset, b.offset);
    ASSERT_EQ(a.shape, b.shape);
    if (a.dtype != "FLOAT") {
      const auto x = r->raw(a), y = r2->raw(b);
      EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << a.name;
      continue;
    }
    const std::vector<float> x = r->read_f32(a), y = r2->read_f32(b);
    std::size_t bad = 0;
    for (std::size_t k = 0; k < x.size(); ++k)
      bad += std::bit_cast<std::uint32_t>(x[k] * 2) != std::bit_cast<std::uint32_t>(y[k]) ? 1 : 0;
    EXPECT_EQ(bad, 0u) << a.name;
  }
  EXPECT_EQ(r2->metadata(), r->metadata());
}

}  // namespace
