// lowp's ggml block types against ggml itself: node-llama-cpp's prebuilt
// libggml-base.so (tests/judges, installed by scripts/deps.sh), loaded with
// dlopen from LOWP_GGML_BASE. For every type lowp decodes:
//   - lowp's block and element sizes are ggml's type_traits;
//   - ggml_quantize_chunk's bytes (imatrix NULL) decode to the same fp32 bits
//     through ggml's to_float and lowp's ggml_dequantize;
//   - random bytes (NaN/Inf fp16 scales included) decode the same through both;
//   - where lowp has the quantizer, its bytes are ggml_quantize_chunk's;
//   - a GGUF file written by lowp reads back (open_model -> read_f32) as
//     ggml's to_float decodes the same bytes.
// Without the library the tests skip (fail under CI).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ci.h"
#include "lowp/block/ggml_quants.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/io/gguf.h"
#include "lowp/io/model.h"

namespace lowp {
namespace {

// ggml.h's struct ggml_type_traits (ggml 0.x as node-llama-cpp 3.21 ships it).
struct GgmlTypeTraits {
  const char* type_name;
  std::int64_t blck_size;
  std::int64_t blck_size_interleave;
  std::size_t type_size;
  bool is_quantized;
  void (*to_float)(const void* x, float* y, std::int64_t k);
  void (*from_float_ref)(const float* x, void* y, std::int64_t k);
};

// The entry points of libggml-base.so the tests call.
struct Ggml {
  const GgmlTypeTraits* (*get_type_traits)(int type) = nullptr;
  std::size_t (*quantize_chunk)(int type, const float* src, void* dst, std::int64_t start,
                                std::int64_t nrows, std::int64_t n_per_row,
                                const float* imatrix) = nullptr;
  bool (*requires_imatrix)(int type) = nullptr;
  std::string error;  // why loading failed, or empty

  static const Ggml& get() {
    static const Ggml g = load();
    return g;
  }

 private:
  template <typename Fn>
  static bool bind(void* lib, const char* name, Fn& fn, std::string& error) {
    void* sym = dlsym(lib, name);
    if (sym == nullptr) {
      error = std::string("libggml-base has no ") + name;
      return false;
    }
    fn = reinterpret_cast<Fn>(sym);
    return true;
  }

  static Ggml load() {
    Ggml g;
    const char* path = std::getenv("LOWP_GGML_BASE");
    if (path == nullptr || !std::filesystem::exists(path)) {
      g.error = std::string("ggml's libggml-base.so not found (LOWP_GGML_BASE=") +
                (path ? path : "unset") + "; run scripts/deps.sh)";
      return g;
    }
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      g.error = std::string("dlopen failed: ") + dlerror();
      return g;
    }
    if (bind(lib, "ggml_get_type_traits", g.get_type_traits, g.error) &&
        bind(lib, "ggml_quantize_chunk", g.quantize_chunk, g.error))
      bind(lib, "ggml_quantize_requires_imatrix", g.requires_imatrix, g.error);
    return g;
  }
};

#define REQUIRE_GGML()                                             \
  const Ggml& ggml = Ggml::get();                                  \
  if (!ggml.error.empty()) LOWP_SKIP_OR_FAIL_UNDER_CI(ggml.error); \
  do {                                                             \
  } while (0)

int id_of(const GgmlQuantInfo& info) { return static_cast<int>(info.type); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Rows of 512 values (two K-quant super-blocks) meant to reach every branch of
// the quantizers: Gaussian data, outliers, zeros, all-equal rows of either
// sign, one-sided rows, tiny (subnormal) and huge magnitudes, and blocks with
// a single non-zero value.
constexpr std::size_t kRow = 512;

std::vector<float> judge_rows() {
  std::mt19937 rng(20250821);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<std::vector<float>> rows;
  auto gaussian = [&](float scale) {
    std::vector<float> r(kRow);
    for (float& v : r) v = normal(rng) * scale;
    return r;
  };
  for (float scale : {1.0f, 0.02f, 300.0f, 1e-30f, 1e-38f, 1e30f, 6e4f, 1e5f}) {
    rows.push_back(gaussian(scale));
  }
  // Heavy tails at random scales: a normal over a uniform.
  for (int r = 0; r < 24; ++r) {
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
    std::vector<float> row(kRow);
    for (float& v : row) v = normal(rng) / (uniform(rng) + 0.05f) * scale;
    rows.push_back(row);
  }
  std::vector<float> outliers = gaussian(1.0f);
  for (std::size_t i = 0; i < kRow; i += 37) outliers[i] *= 1000.0f;
  rows.push_back(outliers);
  rows.emplace_back(kRow, 0.0f);
  rows.emplace_back(kRow, -0.0f);
  rows.emplace_back(kRow, 0.75f);
  rows.emplace_back(kRow, -3.0f);
  std::vector<float> positive(kRow), negative(kRow), sparse(kRow, 0.0f), steps(kRow), mixed(kRow);
  for (std::size_t i = 0; i < kRow; ++i) {
    positive[i] = uniform(rng) * 5.0f + 1.0f;
    negative[i] = -uniform(rng) * 0.1f;
    steps[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.25f;
    mixed[i] = (i / 32) % 3 == 0
                   ? 0.0f
                   : normal(rng) * std::ldexp(1.0f, static_cast<int>(i / 32) * 9 - 70);
  }
  for (std::size_t i = 5; i < kRow; i += 32) sparse[i] = (i % 64 == 5) ? 2.5f : -1e-3f;
  rows.insert(rows.end(), {positive, negative, sparse, steps, mixed});
  std::vector<float> all;
  for (const auto& r : rows) all.insert(all.end(), r.begin(), r.end());
  return all;
}

// fp32 bit patterns equal, any NaN matching any NaN (compilers may pick either
// operand's payload when both are NaN).
::testing::AssertionResult same_floats(std::span<const float> expected, std::span<const float> got,
                                       std::size_t block_elements) {
  if (expected.size() != got.size())
    return ::testing::AssertionFailure() << "sizes " << expected.size() << " vs " << got.size();
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const bool both_nan = std::isnan(expected[i]) && std::isnan(got[i]);
    if (!both_nan &&
        std::bit_cast<std::uint32_t>(expected[i]) != std::bit_cast<std::uint32_t>(got[i])) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << expected.size() << " values differ; first at " << first << " (block "
         << first / block_elements << "): ggml " << expected[first] << " (0x" << std::hex
         << std::bit_cast<std::uint32_t>(expected[first]) << "), lowp " << got[first] << " (0x"
         << std::bit_cast<std::uint32_t>(got[first]) << ")";
}

std::vector<std::byte> ggml_quantize_rows(const Ggml& ggml, const GgmlQuantInfo& info,
                                          std::span<const float> x) {
  const std::size_t rows = x.size() / kRow;
  std::vector<std::byte> out(x.size() / info.block_elements * info.block_bytes);
  const std::size_t written =
      ggml.quantize_chunk(id_of(info), x.data(), out.data(), 0, static_cast<std::int64_t>(rows),
                          static_cast<std::int64_t>(kRow), nullptr);
  EXPECT_EQ(written, out.size()) << info.name;
  return out;
}

std::vector<float> ggml_decode(const Ggml& ggml, const GgmlQuantInfo& info,
                               std::span<const std::byte> bytes) {
  std::vector<float> out(bytes.size() / info.block_bytes * info.block_elements);
  ggml.get_type_traits(id_of(info))
      ->to_float(bytes.data(), out.data(), static_cast<std::int64_t>(out.size()));
  return out;
}

std::vector<float> lowp_decode(const GgmlQuantInfo& info, std::span<const std::byte> bytes) {
  std::vector<float> out(bytes.size() / info.block_bytes * info.block_elements);
  ggml_dequantize(info.type, bytes, out);
  return out;
}

TEST(GgmlJudge, TypeTableIsGgmls) {
  REQUIRE_GGML();
  ASSERT_EQ(ggml_quant_types().size(), 14u);
  for (const GgmlQuantInfo& info : ggml_quant_types()) {
    const GgmlTypeTraits* t = ggml.get_type_traits(id_of(info));
    ASSERT_NE(t, nullptr) << info.name;
    EXPECT_EQ(lower(t->type_name), lower(info.name));
    EXPECT_EQ(static_cast<std::size_t>(t->blck_size), info.block_elements) << info.name;
    EXPECT_EQ(t->type_size, info.block_bytes) << info.name;
    EXPECT_TRUE(t->is_quantized) << info.name;
    EXPECT_NE(t->to_float, nullptr) << info.name;
    if (ggml.requires_imatrix != nullptr) {
      EXPECT_FALSE(ggml.requires_imatrix(id_of(info))) << info.name;
    }
  }
}

TEST(GgmlJudge, DecodesGgmlQuantizedDataBitExactly) {
  REQUIRE_GGML();
  const std::vector<float> x = judge_rows();
  for (const GgmlQuantInfo& info : ggml_quant_types()) {
    const std::vector<std::byte> bytes = ggml_quantize_rows(ggml, info, x);
    EXPECT_TRUE(
        same_floats(ggml_decode(ggml, info, bytes), lowp_decode(info, bytes), info.block_elements))
        << info.name;
  }
}

TEST(GgmlJudge, DecodesRandomBytesBitExactly) {
  REQUIRE_GGML();
  std::mt19937 rng(7);
  for (const GgmlQuantInfo& info : ggml_quant_types()) {
    for (int trial = 0; trial < 8; ++trial) {
      std::vector<std::byte> bytes(64 * info.block_bytes);
      for (std::byte& b : bytes) b = static_cast<std::byte>(rng() & 0xFF);
      if (trial % 2 == 1) {
        // Tame fp16 scales in the first two bytes of each block (where every
        // type but Q2_K/Q3_K/Q6_K/MXFP4 keeps d), so that finite values show.
        for (std::size_t b = 0; b < bytes.size(); b += info.block_bytes)
          bytes[b + 1] = static_cast<std::byte>(0x38 | (rng() & 0x83));
      }
      EXPECT_TRUE(same_floats(ggml_decode(ggml, info, bytes), lowp_decode(info, bytes),
                              info.block_elements))
          << info.name << " trial " << trial;
    }
  }
}

TEST(GgmlJudge, QuantizesAsGgmlQuantizeChunk) {
  REQUIRE_GGML();
  const std::vector<float> x = judge_rows();
  int checked = 0;
  for (const GgmlQuantInfo& info : ggml_quant_types()) {
    if (!info.has_quantizer) continue;
    ++checked;
    const std::vector<std::byte> expected = ggml_quantize_rows(ggml, info, x);
    const std::vector<std::byte> got = ggml_quantize(info.type, x);
    ASSERT_EQ(got.size(), expected.size()) << info.name;
    std::size_t bad_blocks = 0, first = 0;
    for (std::size_t b = 0; b < got.size(); b += info.block_bytes) {
      if (std::memcmp(got.data() + b, expected.data() + b, info.block_bytes) != 0) {
        if (bad_blocks++ == 0) first = b / info.block_bytes;
      }
    }
    EXPECT_EQ(bad_blocks, 0u) << info.name << ": first differing block " << first << " (row "
                              << first * info.block_elements / kRow << ")";
  }
  EXPECT_EQ(checked, 9);
}

TEST(GgmlJudge, GgufRoundTripReadsAsGgmlDecodes) {
  REQUIRE_GGML();
  const std::vector<float> x = judge_rows();
  const std::int64_t rows = static_cast<std::int64_t>(x.size() / kRow);
  std::vector<io::OutputTensor> tensors;
  std::vector<std::vector<std::byte>> data;
  for (const GgmlQuantInfo& info : ggml_quant_types()) {
    data.push_back(ggml_quantize_rows(ggml, info, x));
    tensors.push_back({"t." + std::string(info.name),
                       std::string(info.name),
                       {rows, static_cast<std::int64_t>(kRow)},
                       data.back().size()});
  }
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) / "lowp_ggml_judge.gguf";
  io::write_gguf(path, {}, tensors, [&](std::size_t i) { return data[i]; });
  const auto reader = io::open_model(path);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const GgmlQuantInfo info = ggml_quant_types()[i];
    const io::TensorInfo* t = reader->find(tensors[i].name);
    ASSERT_NE(t, nullptr) << tensors[i].name;
    EXPECT_EQ(t->dtype, info.name);
    EXPECT_TRUE(t->is_float) << info.name;
    EXPECT_TRUE(
        same_floats(ggml_decode(ggml, info, data[i]), reader->read_f32(*t), info.block_elements))
        << info.name;
  }
  std::filesystem::remove(path);
}

GgmlQuantInfo nvfp4_info() { return *ggml_quant_info("NVFP4"); }

TEST(GgmlJudge, Nvfp4EveryScaleByteWithEveryCode) {
  REQUIRE_GGML();
  // 64 blocks: block b's sub-block s has scale byte 4b + s; each sub-block
  // holds all 16 codes (code j low in byte j, code j + 8 high).
  std::vector<GgmlBlockNvfp4> blocks(64);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    for (std::size_t s = 0; s < 4; ++s) {
      blocks[b].d[s] = static_cast<std::uint8_t>(4 * b + s);
      for (std::size_t j = 0; j < 8; ++j)
        blocks[b].qs[8 * s + j] = static_cast<std::uint8_t>(((j + s) % 8) | ((j + 8) << 4));
    }
  }
  const auto bytes = std::as_bytes(std::span(blocks));
  const GgmlQuantInfo info = nvfp4_info();
  const std::vector<float> expected = ggml_decode(ggml, info, bytes);
  EXPECT_TRUE(same_floats(expected, lowp_decode(info, bytes), info.block_elements));
  // ggml's table: 0x00, 0x7F and 0x80 give a zero scale; 0x7E is 448; bit 7
  // is otherwise ignored (0xFE decodes as 0x7E).
  auto value = [&](std::size_t scale_byte, std::size_t code_position) {
    return expected[scale_byte * 16 + code_position];
  };
  EXPECT_EQ(value(0x7E, 8 + 7), -6.0f * 448.0f);  // code 0xF, in the high nibble of byte 7
  EXPECT_EQ(value(0x7F, 8 + 7), 0.0f);
  EXPECT_EQ(value(0x80, 8 + 7), 0.0f);
  EXPECT_EQ(value(0xFE, 8 + 7), -6.0f * 448.0f);
  EXPECT_EQ(value(0x01, 8 + 1), -0.5f * 0x1.0p-9f);  // code 0x9: -0.5 times the least subnormal
}

TEST(GgmlJudge, Nvfp4QuantizerScaleEdges) {
  REQUIRE_GGML();
  // Each 16 gets one amax (the rest a fraction of it), chosen so that amax/6
  // lands on ggml_fp32_to_ue4m3's edges: halfway between two UE4M3 values
  // (rounded up, not to even), the subnormal range and its cut-off at 2^-10,
  // the top (448) and beyond, infinities and NaN.
  std::vector<float> amaxes;
  for (int e = -12; e <= 9; ++e) {
    for (float m : {1.0f, 1.0625f, 1.1875f, 1.9375f, 1.96875f, 1.0624999f, 1.0625001f})
      amaxes.push_back(6.0f * std::ldexp(m, e));
  }
  for (float v : {0x1.0p-10f, 0x1.fffffep-11f, 0x1.8p-9f, 0x1.4p-10f, 448.0f, 449.0f, 480.0f,
                  464.0f, 1e30f, 0.0f})
    amaxes.push_back(6.0f * v);
  amaxes.push_back(std::numeric_limits<float>::infinity());
  amaxes.push_back(std::numeric_limits<float>::quiet_NaN());
  amaxes.push_back(std::numeric_limits<float>::max());
  while (amaxes.size() % 32 != 0) amaxes.push_back(1.0f);
  std::mt19937 rng(16);
  std::uniform_real_distribution<float> fraction(-1.0f, 1.0f);
  std::vector<float> x;
  for (std::size_t i = 0; i < amaxes.size(); ++i) {
    for (std::size_t j = 0; j < 16; ++j) {
      const float a = std::isnan(amaxes[i]) ? 1.0f : amaxes[i];
      x.push_back(j == i % 16 ? (i % 2 ? -amaxes[i] : amaxes[i])
                              : (std::isinf(a) ? 1.0f : a * fraction(rng)));
    }
  }
  const GgmlQuantInfo info = nvfp4_info();
  const std::vector<std::byte> expected = ggml_quantize_rows(ggml, info, x);
  const std::vector<std::byte> got = ggml_quantize(info.type, x);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t b = 0; b < got.size(); b += info.block_bytes) {
    EXPECT_EQ(std::memcmp(got.data() + b, expected.data() + b, info.block_bytes), 0)
        << "block " << b / info.block_bytes;
  }
  EXPECT_TRUE(same_floats(ggml_decode(ggml, info, got), lowp_decode(info, got), 64));
}

// lowp's NVFP4 rule (a per-tensor FP32 scale, E4M3 block scales relative to
// it, round to nearest even) is not ggml's quantize_row_nvfp4_ref (no
// per-tensor scale, amax/6 rounded half up): their bytes differ by design.
// What must hold is that ggml decodes lowp's repacked blocks to exactly the
// block values lowp means, e2m1 * e4m3 (nvfp4_value with tensor_scale 1), and
// that the GGUF reader's value, that times the tensor's scale, is the
// correctly rounded e2m1 * e4m3 * tensor_scale.
TEST(GgmlJudge, LowpNvfp4DecodesInGgmlAsLowpIntends) {
  REQUIRE_GGML();
  std::vector<float> x = judge_rows();
  // Rows at two magnitudes of their own so that tensor scales differ; a NaN
  // and an infinity in the last row make two blocks' scales NaN.
  const std::size_t half = x.size() / 2;
  x[x.size() - 100] = std::numeric_limits<float>::quiet_NaN();
  x[x.size() - 20] = -std::numeric_limits<float>::infinity();
  BlockFormat nvfp4;
  ASSERT_TRUE(parse_block_format("nvfp4", nvfp4));
  const GgmlQuantInfo info = nvfp4_info();
  for (std::size_t part = 0; part < 2; ++part) {
    const std::span<const float> data = std::span(x).subspan(part * half, half);
    const std::int64_t shape[2] = {static_cast<std::int64_t>(half / kRow),
                                   static_cast<std::int64_t>(kRow)};
    const PackedTensor t = quantize(nvfp4, data, shape, -1, BlockOptions{});
    const std::vector<GgmlBlockNvfp4> blocks = to_ggml_nvfp4(t);
    const auto bytes = std::as_bytes(std::span(blocks));
    const std::vector<float> in_ggml = ggml_decode(ggml, info, bytes);
    ASSERT_EQ(in_ggml.size(), data.size());
    std::size_t bad = 0, nan_blocks = 0, off_by_rounding = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
      const std::size_t row = i / kRow, j = i % kRow;
      const std::uint8_t scale = t.scale(row, j / 16);
      const std::uint32_t code = t.code(row, j);
      float intended = nvfp4_value(1.0f, scale, code);
      if (std::isnan(intended)) {  // a block that held NaN or Inf: ggml gives 0
        intended = 0.0f;
        nan_blocks += j % 16 == 0;
      }
      if (code == 0x8) intended = 0.0f;  // -0 is +0 in ggml's table
      if (std::bit_cast<std::uint32_t>(in_ggml[i]) != std::bit_cast<std::uint32_t>(intended)) {
        if (bad++ == 0)
          ADD_FAILURE() << "element " << i << ": ggml " << in_ggml[i] << ", lowp " << intended;
      }
      const float correctly_rounded =
          static_cast<float>(static_cast<double>(intended) * static_cast<double>(t.tensor_scale));
      EXPECT_EQ(std::bit_cast<std::uint32_t>(in_ggml[i] * t.tensor_scale),
                std::bit_cast<std::uint32_t>(correctly_rounded));
      const float lowp_value = t.value(row, j);
      const float read_value = in_ggml[i] * t.tensor_scale;
      if (!std::isnan(lowp_value) && lowp_value != read_value) {
        ++off_by_rounding;
        // one fp32 step apart (same sign, adjacent bit patterns)
        const auto a = std::bit_cast<std::uint32_t>(lowp_value);
        const auto b = std::bit_cast<std::uint32_t>(read_value);
        EXPECT_EQ(a > b ? a - b : b - a, 1u) << "element " << i;
      }
    }
    EXPECT_EQ(bad, 0u) << "part " << part;
    EXPECT_EQ(nan_blocks, part == 1 ? 2u : 0u);
    std::printf(
        "part %zu: tensor scale %g, %zu NaN blocks, %zu of %zu values differ from "
        "lowp::dequantize's e2m1 * (scale * e4m3) in the last place\n",
        part, static_cast<double>(t.tensor_scale), nan_blocks, off_by_rounding, data.size());
  }
}

TEST(GgmlJudge, GgufNvfp4WithScaleTensorReadsAsGgmlTimesScale) {
  REQUIRE_GGML();
  const std::vector<float> x = judge_rows();
  const GgmlQuantInfo info = nvfp4_info();
  const std::vector<std::byte> bytes = ggml_quantize_rows(ggml, info, x);
  const float scale = 0.00390625f * 1.1f;
  std::vector<std::byte> scale_bytes(4);
  std::memcpy(scale_bytes.data(), &scale, 4);
  const std::int64_t rows = static_cast<std::int64_t>(x.size() / kRow);
  const std::vector<io::OutputTensor> tensors = {
      {"blk.0.ffn_up.weight", "NVFP4", {rows, static_cast<std::int64_t>(kRow)}, bytes.size()},
      {"blk.0.ffn_up.scale", "F32", {1}, 4}};
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) / "lowp_ggml_judge_nvfp4.gguf";
  io::write_gguf(path, {}, tensors, [&](std::size_t i) { return i == 0 ? bytes : scale_bytes; });
  const auto reader = io::open_model(path);
  std::vector<float> expected = ggml_decode(ggml, info, bytes);
  for (float& v : expected) v *= scale;
  EXPECT_TRUE(same_floats(expected, reader->read_f32(*reader->find("blk.0.ffn_up.weight")), 64));
  std::filesystem::remove(path);
}

TEST(GgmlQuants, SizeChecks) {
  const auto q4k = *ggml_quant_info("Q4_K");
  std::vector<std::byte> bytes(q4k.block_bytes * 2);
  std::vector<float> out(512);
  EXPECT_NO_THROW(ggml_dequantize(q4k.type, bytes, out));
  std::vector<float> short_out(511);
  EXPECT_THROW(ggml_dequantize(q4k.type, bytes, short_out), Error);
  EXPECT_THROW(ggml_dequantize(q4k.type, std::span(bytes).first(143), out), Error);
  EXPECT_THROW(ggml_quantize(q4k.type, std::vector<float>(300)), Error);
  EXPECT_THROW(ggml_quantize(GgmlQuantType::kIq4Xs, std::vector<float>(256)), Error);
  EXPECT_FALSE(ggml_quant_info(std::uint32_t{16}).has_value());  // IQ2_XXS: not decoded
  EXPECT_EQ(ggml_quant_info(std::uint32_t{23})->name, "IQ4_XS");
}

}  // namespace
}  // namespace lowp
