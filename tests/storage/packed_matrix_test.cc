// PackedMatrix (lowp/storage/packed_matrix.h): spellings, storage size, quantize ->
// dequantize against a per-element scalar reference written here from the
// header's rules (lowp::encode / decode_f32, and lowp::quantize for block
// formats), and gemv/gemm against an FP64 product of the dequantized matrix on
// every Highway target, for 1, 2 and 3 threads (which must agree bit for bit),
// with ragged shapes: columns that are not multiples of the blocks, groups or
// vector chunks, row counts that are not multiples of the tile, n = 1..7 and
// beyond the fused path.
#include "lowp/storage/packed_matrix.h"
#include "kernels/targets.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/ggml.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace {

using lowp::kFp16;

using lowp::MatrixFormat;
using lowp::MatrixScheme;
using lowp::PackedMatrix;

// The formats the kernels decode in registers, then others.
const char* const kVectorFormats[] = {"fp32",
                                      "bf16",
                                      "fp16",
                                      "fp8_e4m3",
                                      "fp8_e5m2",
                                      "mxfp4",
                                      "mxfp8_e4m3",
                                      "mxfp8_e5m2",
                                      "mxint8",
                                      "nvfp4",
                                      "int8:channel",
                                      "int4:group32",
                                      "int4:channel",
                                      "int8:group64",
                                      "mx:int4:32",
                                      "fp8_e4m3:channel",
                                      "int8",
                                      "int4",
                                      "fp8_e5m2:group32",
                                      "mx:fp4_e2m1:16",
                                      "mxfp6_e3m2",
                                      "mxfp6_e2m3",
                                      "fp6_e2m3:channel",
                                      "fp6_e3m2:group32"};
const char* const kOtherFormats[] = {"fp6_e3m2",
                                     "int6:group32",
                                     "mx:int8:17",
                                     "int4:group24",
                                     "uint8",
                                     "e3m4:channel",
                                     "int4:group32:asym",
                                     "int3:group24:asym",
                                     "int8:group64:asym",
                                     "fp8_e4m3:tensor",
                                     "fp4_e2m1:group32:asym",
                                     "fp8_e4m3:group16:asym",
                                     "e3m0fin:group24:asym",
                                     "nf4:group64",
                                     "nf4:group32:asym",
                                     "nf3:group32",
                                     "nf3:group24:asym",
                                     "dint4:group32",
                                     "dint4:group16:asym",
                                     "nf4:channel",
                                     "nf3"};

std::vector<float> random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> magnitude(-6.0f, 3.0f);
  std::vector<float> w(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    const float row_scale = std::exp2(magnitude(gen));  // rows of different size
    for (std::size_t c = 0; c < cols; ++c) w[r * cols + c] = normal(gen) * row_scale;
  }
  // A few outliers (they set block and group scales).
  for (std::size_t i = 0; i < w.size(); i += 37) w[i] *= 20.0f;
  return w;
}

float amax(const float* v, std::size_t n) {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}

// codes = encode(f, v / s) saturating (0 when s is 0), values = decode * s.
void scaled_reference(const lowp::Format& f, const float* v, std::size_t n, float s, float* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const float q = s > 0.0f ? v[i] / s : 0.0f;
    const std::uint32_t code =
        lowp::encode(f, static_cast<double>(q), {lowp::Rounding::kNearestEven, true});
    out[i] = lowp::decode_f32(f, code) * s;
  }
}

// The matrix as the header's spelling rules say it is stored.
std::vector<float> reference_dequantized(const MatrixFormat& wf, const std::vector<float>& w,
                                         std::size_t rows, std::size_t cols) {
  std::vector<float> out(w.size());
  switch (wf.scheme) {
    case MatrixScheme::kPlain:
      for (std::size_t i = 0; i < w.size(); ++i) {
        out[i] = lowp::decode_f32(wf.element, lowp::encode(wf.element, static_cast<double>(w[i]),
                                                           {lowp::Rounding::kNearestEven, false}));
      }
      break;
    case MatrixScheme::kTensor: {
      const float a = amax(w.data(), w.size());
      const float s = a > 0.0f ? a / static_cast<float>(lowp::max_finite(wf.element)) : 0.0f;
      scaled_reference(wf.element, w.data(), w.size(), s, out.data());
      break;
    }
    case MatrixScheme::kChannel:
      for (std::size_t r = 0; r < rows; ++r) {
        const float a = amax(&w[r * cols], cols);
        const float s = a > 0.0f ? a / static_cast<float>(lowp::max_finite(wf.element)) : 0.0f;
        scaled_reference(wf.element, &w[r * cols], cols, s, &out[r * cols]);
      }
      break;
    case MatrixScheme::kGroup: {
      const auto k = static_cast<std::size_t>(wf.group);
      if (wf.two_scales()) {
        // AFPQ: s+ = fp16(max(v, 0) / max), s- = fp16(max(-v, 0) / max), each
        // value scaled by its own sign's scale (a zero scale stores 0).
        const auto fmax = static_cast<float>(lowp::max_finite(wf.element));
        const auto fp16 = [&](float x) {
          return lowp::decode_f32(kFp16, lowp::encode(kFp16, static_cast<double>(x / fmax),
                                                      {lowp::Rounding::kNearestEven, true}));
        };
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t b = 0; b < cols; b += k) {
            const std::size_t n = std::min(k, cols - b);
            const float* v = &w[r * cols + b];
            float hi = 0.0f, lo = 0.0f;
            for (std::size_t i = 0; i < n; ++i) hi = std::max(hi, v[i]), lo = std::max(lo, -v[i]);
            const float sp = fp16(hi), sn = fp16(lo);
            for (std::size_t i = 0; i < n; ++i) {
              scaled_reference(wf.element, v + i, 1, v[i] < 0.0f ? sn : sp, &out[r * cols + b + i]);
            }
          }
        }
        break;
      }
      if (wf.asymmetric) {
        // [lo, hi] holds 0; s = fp16((hi - lo) / qmax); z = rint(-lo / s);
        // q = clamp(rint(v / s) + z, 0, qmax); value (q - z) * s.
        const auto qmax = static_cast<float>(lowp::int_max(wf.element));
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t b = 0; b < cols; b += k) {
            const std::size_t n = std::min(k, cols - b);
            const float* v = &w[r * cols + b];
            float lo = 0.0f, hi = 0.0f;
            for (std::size_t i = 0; i < n; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
            const float s =
                lowp::decode_f32(kFp16, lowp::encode(kFp16, static_cast<double>((hi - lo) / qmax),
                                                     {lowp::Rounding::kNearestEven, true}));
            const float z = s > 0.0f ? std::clamp(std::rint(-lo / s), 0.0f, qmax) : 0.0f;
            for (std::size_t i = 0; i < n; ++i) {
              const float q = s > 0.0f ? std::clamp(std::rint(v[i] / s) + z, 0.0f, qmax) : z;
              out[r * cols + b + i] = (q - z) * s;
            }
          }
        }
        break;
      }
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t b = 0; b < cols; b += k) {
          const std::size_t n = std::min(k, cols - b);
          const float* v = &w[r * cols + b];
          const float ratio = amax(v, n) / static_cast<float>(lowp::max_finite(wf.element));
          const float s =
              lowp::decode_f32(lowp::kFp16, lowp::encode(lowp::kFp16, static_cast<double>(ratio),
                                                         {lowp::Rounding::kNearestEven, true}));
          scaled_reference(wf.element, v, n, s, &out[r * cols + b]);
        }
      }
      break;
    }
    case MatrixScheme::kBlock: {
      const std::int64_t shape[2] = {static_cast<std::int64_t>(rows),
                                     static_cast<std::int64_t>(cols)};
      const lowp::PackedTensor t = lowp::quantize(wf.block, w, shape, 1, {});
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] = t.value(r, c);
      }
      break;
    }
  }
  return out;
}

std::size_t expected_bytes(const MatrixFormat& wf, std::size_t rows, std::size_t cols) {
  switch (wf.scheme) {
    case MatrixScheme::kPlain:
      return rows * cols * static_cast<std::size_t>(wf.element.bits / 8);
    case MatrixScheme::kTensor:
      return rows * lowp::packed_bytes(wf.element.bits, cols) + 4;
    case MatrixScheme::kChannel:
      return rows * lowp::packed_bytes(wf.element.bits, cols) + 4 * rows;
    case MatrixScheme::kGroup: {
      const auto k = static_cast<std::size_t>(wf.group);
      return rows * lowp::packed_bytes(wf.element.bits, cols) + (wf.two_scales()    ? 4
                                                                 : wf.zero_points() ? 3
                                                                                    : 2) *
                                                                    rows * ((cols + k - 1) / k);
    }
    case MatrixScheme::kBlock: {
      const auto k = static_cast<std::size_t>(wf.block.block_size);
      return rows * lowp::packed_bytes(wf.block.element.bits, cols) + rows * ((cols + k - 1) / k) +
             (wf.block.scale == lowp::BlockScale::kUe4m3 ? 4 : 0);
    }
  }
  return 0;
}

struct Shape {
  std::size_t rows, cols;
};
const Shape kShapes[] = {{1, 1},    {3, 17},  {5, 31},   {7, 33},  {9, 64},
                         {13, 100}, {4, 129}, {17, 250}, {6, 529}, {2, 1024}};

using lowp_test::for_each_target;

bool same_bits(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b) ||
         (std::isnan(a) && std::isnan(b));
}

// Y = X W^T through gemm (or gemv for n = 1) against the FP64 product of the
// dequantized matrix; threads 1, 2, 3 must give the same bits.
void check_products(const PackedMatrix& m, const std::vector<float>& deq, std::size_t n,
                    std::uint32_t seed) {
  const std::size_t rows = m.rows(), cols = m.cols();
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n * cols);
  for (auto& v : x) v = normal(gen);
  std::vector<float> first;
  for (unsigned threads = 1; threads <= 3; ++threads) {
    std::vector<float> y(n * rows, -1.0f);
    if (n == 1) {
      m.gemv(x.data(), y.data(), threads);
    } else {
      m.gemm(x.data(), n, y.data(), threads);
    }
    if (threads == 1) {
      first = y;
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t r = 0; r < rows; ++r) {
          double sum = 0.0, bound = 0.0;
          for (std::size_t c = 0; c < cols; ++c) {
            const double p =
                static_cast<double>(deq[r * cols + c]) * static_cast<double>(x[i * cols + c]);
            sum += p;
            bound += std::fabs(p);
          }
          ASSERT_NEAR(y[i * rows + r], sum, 1e-5 * bound + 1e-30)
              << "row " << r << " of W, row " << i << " of X, n " << n;
        }
      }
    } else {
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(same_bits(y[i], first[i]))
            << threads << " threads, element " << i << ": " << y[i] << " vs " << first[i];
      }
    }
  }
}

void check_format(const std::string& name) {
  SCOPED_TRACE(name);
  const MatrixFormat wf = lowp::parse_matrix_format(name);
  std::uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.cols));
    const std::vector<float> w = random_matrix(s.rows, s.cols, seed++);
    const PackedMatrix m = PackedMatrix::quantize(wf, w, s.rows, s.cols);
    ASSERT_EQ(m.rows(), s.rows);
    ASSERT_EQ(m.cols(), s.cols);
    EXPECT_EQ(m.bytes(), expected_bytes(wf, s.rows, s.cols));
    std::vector<float> deq(w.size());
    m.dequantize(deq);
    const std::vector<float> ref = reference_dequantized(wf, w, s.rows, s.cols);
    for (std::size_t i = 0; i < deq.size(); ++i) {
      ASSERT_TRUE(same_bits(deq[i], ref[i]))
          << "element " << i << ": " << deq[i] << " vs " << ref[i];
    }
    for_each_target([&] {
      for (std::size_t n : {1, 2, 3, 4, 5, 6, 7, 11}) {
        check_products(m, deq, n, seed * 31 + static_cast<std::uint32_t>(n));
      }
    });
  }
}

TEST(PackedMatrix, VectorFormats) {
  for (const char* name : kVectorFormats) check_format(name);
}

TEST(PackedMatrix, OtherFormats) {
  for (const char* name : kOtherFormats) check_format(name);
}

// The formats the kernels were written for really take the vector path on
// every target (so the products above tested it), and the others do not
// pretend to.
TEST(PackedMatrix, VectorizedFormats) {
  const std::vector<float> w = random_matrix(8, 96, 7);
  for_each_target([&] {
    for (const char* name : kVectorFormats) {
      const PackedMatrix m = PackedMatrix::quantize(lowp::parse_matrix_format(name), w, 8, 96);
      EXPECT_TRUE(m.vectorized()) << name;
    }
    for (const char* name : {"int6:group32", "int4:group24", "mx:int8:17"}) {
      const PackedMatrix m = PackedMatrix::quantize(lowp::parse_matrix_format(name), w, 8, 96);
      EXPECT_FALSE(m.vectorized()) << name;
    }
  });
}

// A NaN weight: E4M3's NaN code cannot be decoded through the half-precision
// path, so the matrix takes the generic one; its row (and only its row, or
// only its MX block's row) is NaN.
TEST(PackedMatrix, NanWeights) {
  for (const char* name : {"fp8_e4m3", "mxfp8_e4m3", "mxfp4", "bf16", "fp32", "int8:channel"}) {
    SCOPED_TRACE(name);
    std::vector<float> w = random_matrix(6, 70, 3);
    w[2 * 70 + 5] = std::numeric_limits<float>::quiet_NaN();
    const PackedMatrix m = PackedMatrix::quantize(lowp::parse_matrix_format(name), w, 6, 70);
    std::vector<float> x(70, 0.5f), y(6);
    for_each_target([&] {
      m.gemv(x.data(), y.data());
      for (std::size_t r = 0; r < 6; ++r) {
        // int8:channel ignores NaN in amax and encodes it as 0.
        const bool nan_row = r == 2 && std::string(name) != "int8:channel";
        EXPECT_EQ(std::isnan(y[r]), nan_row) << "row " << r;
      }
    });
  }
}

// q8_0 is ggml's quantizer on int8:group32 storage: each row's blocks are
// ggml_q8_0_quantize's, bit for bit (a partial last group as if zero-padded),
// and the products take the vector path.
TEST(PackedMatrix, Q8_0IsGgmlsQuantizer) {
  const MatrixFormat q = lowp::parse_matrix_format("q8_0");
  EXPECT_EQ(q.name, "q8_0");
  EXPECT_EQ(q.scheme, MatrixScheme::kGroup);
  EXPECT_DOUBLE_EQ(q.bits_per_value(64), 8.5);
  for (const std::size_t cols : {std::size_t{64}, std::size_t{70}}) {
    const std::size_t rows = 5;
    const std::vector<float> w = random_matrix(rows, cols, 13);
    const PackedMatrix m = PackedMatrix::quantize(q, w, rows, cols);
    EXPECT_TRUE(m.vectorized());  // int8 codes, FP16 scales per 32
    std::vector<float> got(rows * cols);
    m.dequantize(got);
    const std::size_t groups = (cols + 31) / 32;
    for (std::size_t r = 0; r < rows; ++r) {
      std::vector<float> padded(groups * 32, 0.0f);
      std::copy(w.begin() + static_cast<std::ptrdiff_t>(r * cols),
                w.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols), padded.begin());
      const std::vector<lowp::GgmlBlockQ8_0> blocks = lowp::ggml_q8_0_quantize(padded);
      std::vector<float> want(groups * 32);
      lowp::ggml_q8_0_dequantize(blocks, want);
      for (std::size_t c = 0; c < cols; ++c) {
        ASSERT_TRUE(same_bits(got[r * cols + c], want[c]))
            << "cols " << cols << " at " << r << "," << c;
      }
      for (std::size_t g = 0; g < groups; ++g)
        EXPECT_EQ(m.scales().group[r * groups + g], blocks[g].d);
    }
  }
}

// An infinite weight would make a per-tensor or per-row scale infinite and
// store all-zero codes: an error naming the format (and row) instead.
TEST(PackedMatrix, InfiniteValueHasNoScale) {
  std::vector<float> w = random_matrix(4, 40, 5);
  w[2 * 40 + 7] = -std::numeric_limits<float>::infinity();
  for (const char* name : {"fp8_e4m3", "int8:channel", "int8:tensor"}) {
    try {
      (void)PackedMatrix::quantize(lowp::parse_matrix_format(name), w, 4, 40);
      ADD_FAILURE() << name << " quantized a matrix holding -Inf";
    } catch (const lowp::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("infinite"), std::string::npos) << what;
      if (std::string(name) == "int8:channel") {
        EXPECT_NE(what.find("row 2"), std::string::npos) << what;
      }
    }
  }
  // Block and group scales saturate or are NaN by their specs: no error.
  for (const char* name : {"mxfp4", "nvfp4", "int4:group32", "bf16"}) {
    EXPECT_NO_THROW((void)PackedMatrix::quantize(lowp::parse_matrix_format(name), w, 4, 40))
        << name;
  }
}

TEST(PackedMatrix, EmptyAndMismatch) {
  const MatrixFormat wf = lowp::parse_matrix_format("mxfp4");
  const PackedMatrix empty = PackedMatrix::quantize(wf, {}, 3, 0);
  std::vector<float> y(3, 1.0f);
  empty.gemv(nullptr, y.data());
  EXPECT_EQ(y, std::vector<float>(3, 0.0f));
  const std::vector<float> w(10);
  EXPECT_THROW(PackedMatrix::quantize(wf, w, 3, 4), lowp::Error);
}

TEST(MatrixFormat, Spellings) {
  using lowp::parse_matrix_format;
  auto f = parse_matrix_format("fp32");
  EXPECT_EQ(f.scheme, MatrixScheme::kPlain);
  EXPECT_EQ(parse_matrix_format("bf16").scheme, MatrixScheme::kPlain);
  EXPECT_EQ(parse_matrix_format("fp16").scheme, MatrixScheme::kPlain);
  f = parse_matrix_format("fp8_e4m3");
  EXPECT_EQ(f.scheme, MatrixScheme::kTensor);
  EXPECT_EQ(f.element, lowp::parse_format("fp8_e4m3"));
  // intN in a scaled spelling is the symmetric range.
  f = parse_matrix_format("int8");
  EXPECT_EQ(f.scheme, MatrixScheme::kTensor);
  EXPECT_EQ(f.element.int_range, lowp::IntRange::kSymmetric);
  f = parse_matrix_format("int8:channel");
  EXPECT_EQ(f.scheme, MatrixScheme::kChannel);
  EXPECT_EQ(f.element.int_range, lowp::IntRange::kSymmetric);
  f = parse_matrix_format("int4:group32");
  EXPECT_EQ(f.scheme, MatrixScheme::kGroup);
  EXPECT_EQ(f.group, 32);
  EXPECT_EQ(f.element.bits, 4);
  EXPECT_EQ(f.element.int_range, lowp::IntRange::kSymmetric);
  for (const char* name : {"mxfp4", "mxfp8_e4m3", "nvfp4", "mx:int4:32", "mx:fp4_e2m1:16"}) {
    f = parse_matrix_format(name);
    EXPECT_EQ(f.scheme, MatrixScheme::kBlock) << name;
    lowp::BlockFormat b;
    ASSERT_TRUE(lowp::parse_block_format(name, b));
    EXPECT_EQ(f.block, b) << name;
  }
  EXPECT_EQ(parse_matrix_format("int4:group32").name, "int4:group32");
}

TEST(MatrixFormat, BadSpellings) {
  using lowp::parse_matrix_format;
  for (const char* name :
       {"nosuch", "int4:groupX", "int4:group", "int4:group0", "int4:group-1", "e8m0:channel",
        "e8m0", "int8:row", "int8:", "nosuch:channel", "mx:int4:0", "mx:nosuch:32"}) {
    EXPECT_THROW(parse_matrix_format(name), lowp::Error) << name;
  }
  try {
    parse_matrix_format("int4:groupX");
    FAIL();
  } catch (const lowp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("int4:groupX"), std::string::npos) << e.what();
  }
}

// The explicit tensor scale, the asymmetric groups, bits per value.
TEST(MatrixFormat, ScaledAndAsymmetricSpellings) {
  EXPECT_EQ(lowp::parse_matrix_format("bf16").scheme, MatrixScheme::kPlain);
  EXPECT_EQ(lowp::parse_matrix_format("fp8_e4m3").scheme, MatrixScheme::kTensor);
  EXPECT_EQ(lowp::parse_matrix_format("fp8_e4m3:tensor").scheme, MatrixScheme::kTensor);
  EXPECT_EQ(lowp::parse_matrix_format("int8:channel").element.int_range,
            lowp::IntRange::kSymmetric);
  const MatrixFormat g = lowp::parse_matrix_format("int4:group128:asym");
  EXPECT_EQ(g.scheme, MatrixScheme::kGroup);
  EXPECT_EQ(g.group, 128);
  EXPECT_TRUE(g.asymmetric);
  EXPECT_EQ(g.element.int_range, lowp::IntRange::kUnsigned);
  EXPECT_EQ(lowp::parse_matrix_format("nvfp4").scheme, MatrixScheme::kBlock);
  EXPECT_EQ(lowp::parse_matrix_format("mx:int4:32").block.block_size, 32);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("int4:group32").bits_per_value(64), 4.5);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("int4:group32:asym").bits_per_value(64), 4.75);
  EXPECT_DOUBLE_EQ(lowp::parse_matrix_format("mxfp4").bits_per_value(64), 4.25);
  const MatrixFormat afpq = lowp::parse_matrix_format("float4_e2m1fn:group32:asym");
  EXPECT_EQ(afpq.name, "fp4_e2m1:group32:asym");
  EXPECT_TRUE(afpq.two_scales());
  EXPECT_FALSE(afpq.zero_points());
  EXPECT_DOUBLE_EQ(afpq.bits_per_value(64), 5.0);
  for (const char* bad : {"int4:group", "int4:group0", "int4:groupx", "int4:row",
                          "fp8_e4m3:channel:asym", "fp32:group32:asym", "int4:group32:sym", "e8m0",
                          "e8m0:channel", "fp9", "int16:group32:asym", ""}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(lowp::parse_matrix_format(bad), lowp::Error);
    EXPECT_FALSE(lowp::is_matrix_format(bad));
  }
}

// A matrix rebuilt from its own storage is the same matrix, bit for bit, and
// storage that does not fit the format and shape is refused.
TEST(PackedMatrix, FromCodes) {
  for (const char* name :
       {"fp32", "bf16", "fp8_e4m3", "int8:channel", "int4:group32", "int4:group32:asym",
        "fp4_e2m1:group32:asym", "mxfp4", "nvfp4", "mxfp6_e3m2"}) {
    SCOPED_TRACE(name);
    const MatrixFormat wf = lowp::parse_matrix_format(name);
    const std::size_t rows = 5, cols = 96;
    const std::vector<float> w = random_matrix(rows, cols, 7);
    const PackedMatrix m = PackedMatrix::quantize(wf, w, rows, cols);
    const std::vector<std::uint8_t> codes(m.codes().begin(), m.codes().end());
    const PackedMatrix back = PackedMatrix::from_codes(wf, rows, cols, codes, m.scales());
    std::vector<float> a(rows * cols), b(rows * cols);
    m.dequantize(a);
    back.dequantize(b);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(same_bits(a[i], b[i])) << i;
    EXPECT_EQ(back.bytes(), m.bytes());
    EXPECT_EQ(back.vectorized(), m.vectorized());
    std::vector<float> x(cols, 0.5f), y1(rows), y2(rows);
    m.gemv(x.data(), y1.data());
    back.gemv(x.data(), y2.data());
    for (std::size_t r = 0; r < rows; ++r) EXPECT_TRUE(same_bits(y1[r], y2[r]));

    std::vector<std::uint8_t> short_codes = codes;
    short_codes.pop_back();
    EXPECT_THROW(PackedMatrix::from_codes(wf, rows, cols, short_codes, m.scales()), lowp::Error);
    if (wf.scheme != MatrixScheme::kPlain && wf.scheme != MatrixScheme::kTensor) {
      lowp::MatrixScales fewer = m.scales();
      fewer.row.resize(fewer.row.empty() ? 1 : fewer.row.size() - 1);
      fewer.group.resize(fewer.group.empty() ? 0 : fewer.group.size() - 1);
      EXPECT_THROW(PackedMatrix::from_codes(wf, rows, cols, codes, fewer), lowp::Error);
    }
  }
  // A zero point outside int4's codes.
  const MatrixFormat a4 = lowp::parse_matrix_format("int4:group32:asym");
  lowp::MatrixScales s;
  s.group.assign(2, 0x3C00);
  s.zero = {3, 16};
  EXPECT_THROW(PackedMatrix::from_codes(a4, 1, 64, std::vector<std::uint8_t>(32), s), lowp::Error);
}

// The 6-bit decode (four codes in three bytes, a 32-entry magnitude table and
// the sign bit) on every code: MX matrices built from codes where each row
// holds all 64 codes at shifted places, under scales that vary per block, with
// column counts that end inside a byte group and row counts that are not
// multiples of the four-row block; gemv and gemm against the FP64 product of
// dequantize(), and 1, 2 and 3 threads equal.
TEST(PackedMatrix, SixBitCodes) {
  for (const char* name : {"mxfp6_e3m2", "mxfp6_e2m3"}) {
    SCOPED_TRACE(name);
    const MatrixFormat wf = lowp::parse_matrix_format(name);
    for (const std::size_t cols : {64, 65, 66, 67, 95, 131, 200}) {
      for (const std::size_t rows : {1, 3, 6, 9}) {
        SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols));
        const std::size_t k = static_cast<std::size_t>(wf.block.block_size);
        const std::size_t blocks = (cols + k - 1) / k;
        std::vector<std::uint32_t> row_codes(cols);
        std::vector<std::uint8_t> codes(rows * PackedMatrix::row_bytes(wf, cols));
        const std::size_t row_bytes = codes.size() / rows;
        lowp::MatrixScales scales;
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t c = 0; c < cols; ++c) row_codes[c] = (c + 7 * r) % 64;
          lowp::pack_codes(6, row_codes,
                           std::span<std::uint8_t>(codes.data() + r * row_bytes, row_bytes));
          for (std::size_t b = 0; b < blocks; ++b) {
            scales.block.push_back(static_cast<std::uint8_t>(120 + (r + 3 * b) % 15));
          }
        }
        const PackedMatrix m = PackedMatrix::from_codes(wf, rows, cols, codes, scales);
        for_each_target([&] { EXPECT_TRUE(m.vectorized()); });
        std::vector<float> deq(rows * cols);
        m.dequantize(deq);
        for (std::size_t c = 0; c < 64 && c < cols; ++c) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(deq[c]) >> 31, c >> 5) << c;
        }
        for_each_target([&] {
          for (std::size_t n : {1, 2, 4, 5, 9})
            check_products(m, deq, n, static_cast<std::uint32_t>(11 + n));
        });
      }
    }
  }
}

// AFPQ's guard: a group with values of one sign only has a zero scale for
// the other sign, and its values keep their own sign's full range.
TEST(PackedMatrix, TwoScaleGroupsOfOneSign) {
  const MatrixFormat f = lowp::parse_matrix_format("fp4_e2m1:group4:asym");
  const std::vector<float> w = {0.5f,   3.0f,  1.0f,   0.0f,    // positive only: s+ = 0.5
                                -6.0f,  -1.0f, -0.25f, -0.0f,   // negative only: s- = 1
                                -12.0f, 1.5f,  0.7f,   -2.0f};  // s+ = 0.25, s- = 2
  const PackedMatrix m = PackedMatrix::quantize(f, w, 1, 12);
  const std::vector<std::uint16_t>& g = m.scales().group;
  ASSERT_EQ(g.size(), 6u);
  EXPECT_EQ(lowp::decode_f32(kFp16, g[0]), 0.5f);
  EXPECT_EQ(g[1], 0u);
  EXPECT_EQ(g[2], 0u);
  EXPECT_EQ(lowp::decode_f32(kFp16, g[3]), 1.0f);
  EXPECT_EQ(lowp::decode_f32(kFp16, g[4]), 0.25f);
  EXPECT_EQ(lowp::decode_f32(kFp16, g[5]), 2.0f);
  std::vector<float> out(12);
  m.dequantize(out);
  // 0.7 / 0.25 = 2.8 -> 3; -0.25 / 1 -> -0 (0.25 is a tie between 0 and 0.5: even code 0).
  const std::vector<float> want = {0.5f,  3.0f,  1.0f,   0.0f, -6.0f, -1.0f,
                                   -0.0f, -0.0f, -12.0f, 1.5f, 0.75f, -2.0f};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[i], want[i]) << i;
  EXPECT_EQ(m.bytes(), 6u + 12u);
}

// Activations are fake-quantized as a one-row matrix of the format stores
// each row.
TEST(PackedMatrix, FakeQuantizeRowsIsOneRowMatrices) {
  for (const char* name : {"fp16", "fp8_e4m3", "int8:channel", "int4:group32:asym", "mxfp8_e4m3",
                           "nvfp4", "mx:int4:24"}) {
    SCOPED_TRACE(name);
    const MatrixFormat wf = lowp::parse_matrix_format(name);
    const std::size_t rows = 6, cols = 80;
    std::vector<float> x = random_matrix(rows, cols, 11);
    const std::vector<float> original = x;
    lowp::fake_quantize_rows(wf, x.data(), rows, cols);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const float> row(original.data() + r * cols, cols);
      const PackedMatrix one = PackedMatrix::quantize(wf, row, 1, cols);
      std::vector<float> want(cols);
      one.dequantize_row(0, want);
      for (std::size_t c = 0; c < cols; ++c)
        ASSERT_TRUE(same_bits(x[r * cols + c], want[c])) << r << "," << c;
    }
  }
}

// Activations packed in a block format: gemm(X packed) is gemm of X decoded,
// bit for bit, for any thread count; a shape that does not fit is an error.
TEST(PackedMatrix, GemmWithPackedActivations) {
  const std::size_t rows = 12, cols = 96, n = 5;
  const std::vector<float> w = random_matrix(rows, cols, 41);
  const std::vector<float> x = random_matrix(n, cols, 42);
  const std::int64_t shape[2] = {static_cast<std::int64_t>(n), static_cast<std::int64_t>(cols)};
  for (const char* weights : {"mxfp4", "nvfp4", "int8:channel", "fp32"}) {
    SCOPED_TRACE(weights);
    const PackedMatrix m =
        PackedMatrix::quantize(lowp::parse_matrix_format(weights), w, rows, cols);
    for (const char* acts : {"mxfp8_e4m3", "mxfp6_e2m3", "nvfp4"}) {
      SCOPED_TRACE(acts);
      const lowp::PackedTensor xp =
          lowp::quantize(lowp::parse_matrix_format(acts).block, x, shape, -1, {});
      std::vector<float> decoded(n * cols);
      lowp::dequantize(xp, decoded);
      std::vector<float> want(n * rows), got(n * rows);
      m.gemm(decoded.data(), n, want.data(), 1);
      for (unsigned threads : {1u, 3u}) {
        std::fill(got.begin(), got.end(), -1.0f);
        m.gemm(xp, got.data(), threads);
        for (std::size_t i = 0; i < got.size(); ++i) ASSERT_TRUE(same_bits(got[i], want[i])) << i;
      }
    }
  }
  const PackedMatrix m = PackedMatrix::quantize(lowp::parse_matrix_format("mxfp4"), w, rows, cols);
  const std::int64_t wrong[2] = {static_cast<std::int64_t>(n), 64};
  const lowp::PackedTensor xp = lowp::quantize(lowp::parse_matrix_format("mxfp8_e4m3").block,
                                               std::vector<float>(n * 64, 1.0f), wrong, -1, {});
  std::vector<float> y(n * rows);
  EXPECT_THROW(m.gemm(xp, y.data(), 1), lowp::Error);
}

}  // namespace
