// Tests for per-chunk statistics in safetensors files (lowp/io/chunk_stats.h):
// the chunking rule, statistics of known values (signed zeros, NaN, inf,
// chunks with no finite value), bit-exact round trips through a file written
// with --chunk-stats (the stored numbers equal the recomputed ones, the tensor
// bytes and entries equal a file written without them), a mismatch named by
// tensor and chunk, and malformed metadata rejected with one line.
#include "lowp/io/chunk_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/safetensors.h"

namespace lowp::io {
namespace {

namespace fs = std::filesystem;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::string le(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string image(std::string_view json, std::string_view data = "") {
  return le(json.size(), 8) + std::string(json) + std::string(data);
}

std::unique_ptr<ModelReader> parse(const std::string& img) {
  auto owner = std::make_shared<const std::string>(img);
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(owner->data()),
                                         owner->size());
  return parse_safetensors(bytes, "t.safetensors", owner);
}

std::string f32_text(const std::vector<float>& v) {
  std::string out;
  for (const float x : v) out += le(std::bit_cast<std::uint32_t>(x), 4);
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lowp_cs_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

bool bits_equal(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

TEST(ChunkStats, ChunkingRule) {
  const std::vector<std::int64_t> matrix = {100, 7}, vec = {5000}, scalar = {}, big = {5000, 2};
  EXPECT_EQ(chunk_rows_of(matrix), 100u);
  EXPECT_EQ(chunk_row_length(matrix), 7u);
  EXPECT_EQ(chunk_rows_of(vec), 5000u);  // a 1-D tensor's rows are its elements
  EXPECT_EQ(chunk_row_length(vec), 1u);
  EXPECT_EQ(chunk_rows_of(scalar), 1u);
  EXPECT_EQ(chunk_rows_for(matrix, 16), 16);
  // At most kChunkStatsMaxChunks chunks: 5000 rows need 5 rows a chunk.
  EXPECT_EQ(chunk_rows_for(vec, 1), 5);
  EXPECT_EQ(chunk_rows_for(big, 64), 64);
  EXPECT_THROW(chunk_rows_for(matrix, 0), Error);
}

TEST(ChunkStats, KnownValues) {
  // 5 rows of 2, 2 rows a chunk: chunks [0,1], [2,3], [4].
  const std::vector<std::int64_t> shape = {5, 2};
  const std::vector<float> v = {0.0f, -0.0f, 3.0f,  -7.5f,   // chunk 0: -0 is below +0
                                kNan, 2.0f,  -kInf, 1e-45f,  // chunk 1: two non-finite
                                kNan, kInf};                 // chunk 2: none finite
  const ChunkStats s = chunk_stats_of("x", shape, v, 2);
  ASSERT_EQ(s.chunks(), 3u);
  EXPECT_TRUE(bits_equal(s.min[0], -7.5f));
  EXPECT_TRUE(bits_equal(s.max[0], 3.0f));
  EXPECT_TRUE(bits_equal(s.amax[0], 7.5f));
  EXPECT_EQ(s.nonfinite[0], 0u);
  EXPECT_TRUE(bits_equal(s.min[1], 1e-45f));  // a subnormal
  EXPECT_TRUE(bits_equal(s.max[1], 2.0f));
  EXPECT_EQ(s.nonfinite[1], 2u);
  EXPECT_TRUE(std::isnan(s.min[2]) && std::isnan(s.max[2]) && std::isnan(s.amax[2]));
  EXPECT_EQ(s.nonfinite[2], 2u);
  // Signed zeros: the same result in either order.
  const std::vector<float> zeros_a = {0.0f, -0.0f}, zeros_b = {-0.0f, 0.0f};
  const std::vector<std::int64_t> two = {2};
  for (const auto* z : {&zeros_a, &zeros_b}) {
    const ChunkStats zs = chunk_stats_of("z", two, *z, 2);
    EXPECT_TRUE(bits_equal(zs.min[0], -0.0f));
    EXPECT_TRUE(bits_equal(zs.max[0], 0.0f));
    EXPECT_TRUE(bits_equal(zs.amax[0], 0.0f));
  }
  // 0-D: one chunk; empty: none.
  const std::vector<std::int64_t> scalar = {}, empty = {0, 4};
  const std::vector<float> one = {-2.5f};
  EXPECT_EQ(chunk_stats_of("s", scalar, one, 1).chunks(), 1u);
  EXPECT_EQ(chunk_stats_of("e", empty, {}, 1).chunks(), 0u);
}

TEST(ChunkStats, NumbersRoundTripBitExact) {
  // The JSON text of awkward float32 values reads back as the same bits.
  std::vector<float> values = {std::numeric_limits<float>::max(),
                               -std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::min(),
                               std::numeric_limits<float>::denorm_min(),
                               0.1f,
                               -0.0f,
                               1.0f / 3.0f,
                               16777217.0f,
                               std::bit_cast<float>(0x15ae43fdu),   // double rounding: see
                               std::bit_cast<float>(0x95ae43fdu)};  // float_of_text
  std::mt19937 rng(11);
  for (int i = 0; i < 1000; ++i) {  // under kChunkStatsMaxChunks
    const float f = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (std::isfinite(f)) values.push_back(f);
  }
  std::vector<std::int64_t> shape = {static_cast<std::int64_t>(values.size())};
  const ChunkStats s = chunk_stats_of("v", shape, values, 1);
  ASSERT_EQ(s.chunks(), values.size());
  const std::vector<ChunkStats> list = {s};
  const std::string text = chunk_stats_json(list);
  const std::string json = R"({"__metadata__":{"lowp_chunk_stats":)" + nlohmann::json(text).dump() +
                           R"(},"v":{"dtype":"F32","shape":[)" + std::to_string(values.size()) +
                           R"(],"data_offsets":[0,)" + std::to_string(4 * values.size()) + "]}}";
  const auto r = parse(image(json, f32_text(values)));
  const std::vector<ChunkStats> back = read_chunk_stats(*r, "t.safetensors");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], s);
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_TRUE(bits_equal(back[0].min[i], values[i])) << values[i];
  EXPECT_EQ(check_chunk_stats(*r, back), std::nullopt);
}

// A model of every kind of float tensor lowp writes: F32 (with NaN and inf),
// BF16, F16, a 1-D bias, a 0-D scalar, an empty tensor, an I32 tensor (no
// statistics), an MXFP4 and an NVFP4 packed tensor (decoded values).
struct Model {
  std::vector<OutputTensor> outputs;
  std::vector<std::vector<std::byte>> bytes;
  Metadata metadata = {{"source", "test"}};
};

std::vector<float> test_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

Model test_model() {
  Model m;
  const auto add = [&](OutputTensor o, std::vector<std::byte> b) {
    m.outputs.push_back(std::move(o));
    m.bytes.push_back(std::move(b));
  };
  std::vector<float> w = test_values(130 * 8, 1);
  w[17] = kNan;
  w[400] = kInf;
  w[401] = -kInf;
  for (std::size_t i = 800; i < 808; ++i) w[i] = kNan;  // a whole row
  add(f32_output("w", {130, 8}), f32_bytes(w));
  const std::vector<float> h = test_values(40 * 3, 2);
  for (const auto& [name, fmt] : {std::pair{"h16", kFp16}, std::pair{"hb16", kBf16}}) {
    const std::string dtype(safetensors_dtype_for(fmt));
    std::vector<std::byte> codes;
    for (const float x : h) {
      const std::uint32_t c = encode(fmt, static_cast<double>(x));
      codes.push_back(static_cast<std::byte>(c & 0xff));
      codes.push_back(static_cast<std::byte>(c >> 8));
    }
    add(OutputTensor{name, dtype, {40, 3}, 240}, codes);
  }
  add(f32_output("bias", {77}), f32_bytes(test_values(77, 3)));
  add(f32_output("scalar", {}), f32_bytes(std::vector<float>{-4.25f}));
  add(f32_output("empty", {0, 5}), {});
  std::vector<std::byte> ints(12, std::byte{1});
  add(OutputTensor{"ids", "I32", {3}, 12}, ints);
  for (const auto& [name, fmt] : {std::pair{"q4", "mxfp4"}, std::pair{"nv", "nvfp4"}}) {
    BlockFormat f;
    EXPECT_TRUE(parse_block_format(fmt, f));
    const std::vector<std::int64_t> shape = {70, 64};
    std::vector<float> v = test_values(70 * 64, 4);
    v[100] = kNan;  // a NaN block (MX)
    const PackedTensor p = quantize(f, v, shape, -1, BlockOptions{});
    const std::vector<OutputTensor> parts =
        packed_tensor_outputs(name, p, ScaleRule::kFloor, m.metadata);
    add(parts[0], packed_tensor_bytes(p, 0));
    add(parts[1], packed_tensor_bytes(p, 1));
  }
  return m;
}

void write(const fs::path& path, const Model& m, std::int64_t rows) {
  write_safetensors(
      path, m.outputs, m.metadata, [&](std::size_t i) { return m.bytes[i]; },
      SafetensorsWriteOptions{rows});
}

TEST(ChunkStats, FileRoundTripIsBitExact) {
  const Model m = test_model();
  TempDir dir;
  const fs::path plain = dir.path() / "plain.safetensors", stats = dir.path() / "stats.safetensors";
  write(plain, m, 0);
  write(stats, m, 16);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2)
      << "no temporaries left behind";
  const auto a = open_model(plain);
  const auto b = open_model(stats);
  EXPECT_TRUE(read_chunk_stats(*a, plain.string()).empty());
  // lowp's reader: the same tensors, the same values, bit for bit.
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (std::size_t i = 0; i < a->tensors().size(); ++i) {
    const TensorInfo &ta = a->tensors()[i], &tb = b->tensors()[i];
    EXPECT_EQ(ta.name, tb.name);
    EXPECT_EQ(ta.dtype, tb.dtype);
    EXPECT_EQ(ta.shape, tb.shape);
    const auto ra = a->raw(ta), rb = b->raw(tb);
    EXPECT_TRUE(ra.size() == rb.size() &&
                (ra.empty() || std::memcmp(ra.data(), rb.data(), ra.size()) == 0))
        << ta.name;
  }
  // The data buffers are byte-identical; only the header grew.
  const std::string fa = read_file(plain), fb = read_file(stats);
  std::uint64_t na = 0, nb = 0;
  for (int i = 7; i >= 0; --i) {
    na = (na << 8) | static_cast<unsigned char>(fa[static_cast<std::size_t>(i)]);
    nb = (nb << 8) | static_cast<unsigned char>(fb[static_cast<std::size_t>(i)]);
  }
  EXPECT_EQ(nb % 8, 0u);
  EXPECT_GT(nb, na);
  EXPECT_EQ(fa.substr(8 + na), fb.substr(8 + nb));
  // The statistics equal the ones recomputed from read_f32, bit for bit.
  const std::vector<ChunkStats> stored = read_chunk_stats(*b, stats.string());
  std::size_t floats = 0;
  for (const TensorInfo& t : b->tensors()) floats += t.is_float ? 1 : 0;
  ASSERT_EQ(stored.size(), floats);  // every float tensor, the I32 one not
  for (const ChunkStats& s : stored) {
    const TensorInfo* t = b->find(s.tensor);
    ASSERT_NE(t, nullptr);
    const ChunkStats want =
        chunk_stats_of(t->name, t->shape, b->read_f32(*t), chunk_rows_for(t->shape, 16));
    EXPECT_EQ(s, want) << s.tensor;
  }
  EXPECT_EQ(check_chunk_stats(*b, stored), std::nullopt);
  // Spot checks: w's row of NaN (row 100) is in chunk 6; the scalar; empty.
  const auto find = [&](const std::string& name) {
    for (const ChunkStats& s : stored)
      if (s.tensor == name) return s;
    ADD_FAILURE() << name;
    return ChunkStats{};
  };
  const ChunkStats w = find("w");
  EXPECT_EQ(w.rows, 16);
  EXPECT_EQ(w.chunks(), 9u);  // 130 rows
  EXPECT_EQ(w.nonfinite[0], 1u);
  EXPECT_EQ(w.nonfinite[3], 2u);
  EXPECT_EQ(w.nonfinite[6], 8u);
  EXPECT_EQ(find("scalar").min, std::vector<float>{-4.25f});
  EXPECT_EQ(find("empty").chunks(), 0u);
  const ChunkStats q4 = find("q4");
  EXPECT_EQ(q4.chunks(), 5u);       // 70 rows
  EXPECT_EQ(q4.nonfinite[0], 32u);  // the NaN block decodes to 32 NaN
}

TEST(ChunkStats, StaleEntryReplacedAndBadRowsRejected) {
  Model m = test_model();
  m.metadata.emplace_back(std::string(kChunkStatsKey), "stale");
  TempDir dir;
  const fs::path p = dir.path() / "m.safetensors";
  write(p, m, 1000);
  const auto r = open_model(p);
  EXPECT_EQ(read_chunk_stats(*r, p.string()).size(), 8u);
  EXPECT_THROW(write(dir.path() / "bad.safetensors", m, -1), Error);
  EXPECT_FALSE(fs::exists(dir.path() / "bad.safetensors"));
}

// A file of F32 "x" [4, 2] (values 1..8, rows 2 a chunk) and I32 "i" [1],
// with `stats` as the lowp_chunk_stats metadata value.
std::string stats_image(const std::string& stats) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::string json = R"({"__metadata__":{"lowp_chunk_stats":)" +
                           nlohmann::json(stats).dump() +
                           R"(},"x":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]},)"
                           R"("i":{"dtype":"I32","shape":[1],"data_offsets":[32,36]}})";
  return image(json, f32_text(x) + le(7, 4));
}

std::string stats_error(const std::string& stats) {
  const auto r = parse(stats_image(stats));
  try {
    read_chunk_stats(*r, "t.safetensors");
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("t.safetensors: chunk statistics", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  return "";
}

const std::string kGood =
    R"({"version":1,"tensors":{"x":{"rows":2,"chunks":2,"min":[1,5],"max":[4,8],)"
    R"("amax":[4,8],"nonfinite":[0,0]}}})";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(ChunkStats, MalformedMetadataIsOneLineError) {
  EXPECT_EQ(stats_error(kGood), "");
  const auto r = parse(stats_image(kGood));
  EXPECT_EQ(check_chunk_stats(*r, read_chunk_stats(*r, "t")), std::nullopt);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "chunk statistics"},
      {"[1,2]", "not a JSON object"},
      {with(kGood, R"("version":1)", R"("version":2)"), "'version' must be 1"},
      {with(kGood, R"("version":1,)", ""), "'version' must be 1"},
      {with(kGood, R"({"version")", R"({"extra":0,"version")"), "unexpected key 'extra'"},
      {R"({"version":1})", "'tensors' must be an object"},
      {with(kGood, R"("x":{)", R"("y":{)"), "tensor 'y' is not in the file"},
      {with(kGood, R"("x":{)", R"("i":{)"), "tensor 'i' is not a float tensor"},
      {with(kGood, R"("rows":2)", R"("rows":0)"), "'rows' must be a positive integer"},
      {with(kGood, R"("rows":2)", R"("rows":"2")"), "'rows' must be a positive integer"},
      {with(kGood, R"("chunks":2)", R"("chunks":3)"), "'chunks' must be 2"},
      {with(kGood, R"("rows":2,"chunks":2)", R"("rows":1,"chunks":2)"), "'chunks' must be 4"},
      {with(kGood, R"("min":[1,5])", R"("min":[1])"), "'min' must be an array of 2"},
      {with(kGood, R"("max":[4,8])", R"("max":[4,"8"])"), "'max'[1] must be a finite float32"},
      {with(kGood, R"("max":[4,8])", R"("max":[4,1e300])"), "'max'[1] must be a finite float32"},
      {with(kGood, R"("amax":[4,8])", R"("amax":4)"), "'amax' must be an array of 2"},
      {with(kGood, R"("nonfinite":[0,0])", R"("nonfinite":[0,-1])"), "chunk 1: 'nonfinite'"},
      {with(kGood, R"("nonfinite":[0,0])", R"("nonfinite":[0,5])"), "at most 4"},
      {with(kGood, R"("min":[1,5])", R"("min":[9,5])"), "chunk 0: needs min <= max"},
      {with(kGood, R"("amax":[4,8])", R"("amax":[3,8])"), "amax = max(|min|, |max|)"},
      {with(kGood, R"("min":[1,5])", R"("min":[null,5])"), "all numbers or all null"},
      {with(with(with(kGood, R"("min":[1,5])", R"("min":[null,5])"), R"("max":[4,8])",
                 R"("max":[null,8])"),
            R"("amax":[4,8])", R"("amax":[null,8])"),
       "null statistics but only 0 non-finite"},
      {with(kGood, R"(,"nonfinite":[0,0])", ""), "missing key 'nonfinite'"},
      {with(kGood, R"("nonfinite")", R"("oops":1,"nonfinite")"), "unexpected key 'oops'"},
      {with(kGood, R"("rows":2)", R"("rows":2,"rows":2)"), "chunk statistics"},  // duplicate
      {R"({"version":1,"tensors":{"x":{"rows":1,"chunks":1,"min":[[[[1]]]]}}})",
       "chunk statistics"},  // too deep
  };
  for (const auto& [text, want] : cases)
    EXPECT_NE(stats_error(text).find(want), std::string::npos)
        << text << " -> " << stats_error(text);
}

TEST(ChunkStats, MismatchNamesTensorAndChunk) {
  // Consistent statistics that do not match the data: chunk 1's max is 8.
  const std::string wrong = with(with(kGood, R"("max":[4,8])", R"("max":[4,7.5])"),
                                 R"("amax":[4,8])", R"("amax":[4,7.5])");
  const auto r = parse(stats_image(wrong));
  const std::vector<ChunkStats> stored = read_chunk_stats(*r, "t.safetensors");
  const std::optional<std::string> diff = check_chunk_stats(*r, stored);
  ASSERT_TRUE(diff.has_value());
  EXPECT_EQ(*diff, "tensor 'x' chunk 1 (rows 2..3): stored max 7.5, data 8");
  const std::string counts = with(kGood, R"("nonfinite":[0,0])", R"("nonfinite":[1,0])");
  const auto r2 = parse(stats_image(counts));
  EXPECT_EQ(check_chunk_stats(*r2, read_chunk_stats(*r2, "t")),
            "tensor 'x' chunk 0 (rows 0..1): stored nonfinite 1, data 0");
}

}  // namespace
}  // namespace lowp::io
