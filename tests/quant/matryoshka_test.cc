// Matryoshka slicing (lowp/quant/matryoshka.h) exhaustively against integer
// arithmetic written here, and the sliced matrices' values and bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "lowp/block/tensor.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/quant/matryoshka.h"
#include "lowp/quant/methods.h"
#include "lowp/storage/segment_quantizer.h"

namespace lowp {
namespace {

// round(m / 2^shift) for m >= 0, ties to the even quotient, by integer steps.
int round_shift(int m, int shift) {
  if (shift == 0) return m;
  const int step = 1 << shift, q = m >> shift, rem = m & (step - 1);
  if (rem * 2 > step) return q + 1;
  if (rem * 2 == step) return q + (q & 1);
  return q;
}

TEST(Matryoshka, EveryCodeEveryWidth) {
  for (int r = 1; r <= 8; ++r) {
    const int shift = 8 - r;
    for (int q = 0; q < 256; ++q) {
      // Unsigned codes (zero points): clamp to 0 .. 2^r - 1.
      const int u = std::min(round_shift(q, shift), (1 << r) - 1) << shift;
      EXPECT_EQ(matryoshka_code(static_cast<std::uint32_t>(q), r, true),
                static_cast<std::uint32_t>(u))
          << "q " << q << " r " << r;
      // Signed codes (two's complement): magnitude rounded, clamped to 2^(r-1) - 1.
      const int v = static_cast<std::int8_t>(q);
      const int top = r == 1 ? 0 : (1 << (r - 1)) - 1;
      const int mag = std::min(round_shift(v < 0 ? -v : v, shift), top) << shift;
      const int want = v < 0 ? -mag : mag;
      EXPECT_EQ(matryoshka_code(static_cast<std::uint32_t>(q), r, false),
                static_cast<std::uint32_t>(static_cast<std::uint8_t>(want)))
          << "q " << q << " r " << r;
    }
  }
  // The paper's example: 255 sliced to int2 rounds to 4 and clamps to 3.
  EXPECT_EQ(matryoshka_code(255, 2, true), 3u << 6);
  EXPECT_EQ(matryoshka_code(255, 8, true), 255u);
  EXPECT_THROW(matryoshka_code(1, 0, true), Error);
  EXPECT_THROW(matryoshka_code(1, 9, true), Error);
}

TEST(Matryoshka, SlicedMatrixValuesAndBytes) {
  std::mt19937 gen(1);
  std::normal_distribution<float> g;
  const std::size_t rows = 6, cols = 70;
  std::vector<float> w(rows * cols);
  for (float& x : w) x = g(gen) + 0.3f;
  for (const char* name : {"int8:group32:asym", "int8:channel", "int8"}) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    ASSERT_TRUE(matryoshka_applies(f));
    const PackedMatrix m = PackedMatrix::quantize(f, w, rows, cols);
    for (int r : {6, 4, 3, 2}) {
      const MatrixSlice s = matryoshka_slice(m, r);
      // Same scales; codes sliced one by one.
      for (std::size_t i = 0; i < m.codes().size(); ++i) {
        ASSERT_EQ(s.matrix.codes()[i], matryoshka_code(m.codes()[i], r, f.zero_points()));
      }
      EXPECT_EQ(s.matrix.scales().group, m.scales().group);
      EXPECT_EQ(s.matrix.scales().zero, m.scales().zero);
      EXPECT_EQ(s.matrix.scales().row, m.scales().row);
      // Bytes: r-bit codes per row plus the int8 matrix's scales.
      EXPECT_EQ(s.bytes, m.bytes() - rows * cols + rows * packed_bytes(r, cols));
    }
  }
  for (const char* other :
       {"int4:group32", "q8_0", "mxint8", "fp8_e4m3:channel", "uint8:channel"}) {
    EXPECT_FALSE(matryoshka_applies(parse_matrix_format(other))) << other;
  }
  EXPECT_THROW(matryoshka_slice(
                   PackedMatrix::quantize(parse_matrix_format("int4:group32"), w, rows, cols), 4),
               Error);
}

// ---- MatGPTQ: GPTQ with the joint objective over the slices ----

std::vector<float> layer(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::student_t_distribution<float> t(4.0f);
  std::vector<float> w(rows * cols);
  for (float& x : w) x = 0.05f * t(gen);
  return w;
}

InputHessian correlated_hessian(std::size_t cols, std::size_t tokens, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> n;
  std::vector<float> x(tokens * cols);
  for (std::size_t t = 0; t < tokens; ++t) {
    const float z = n(gen);
    for (std::size_t c = 0; c < cols; ++c) {
      x[t * cols + c] = (1.0f + static_cast<float>(c % 5)) * (0.6f * n(gen) + 0.8f * z);
    }
  }
  InputHessian h(cols);
  h.add(x.data(), tokens);
  return h;
}

MethodOptions matgptq(std::vector<int> bits, std::vector<double> weights = {}) {
  MethodOptions o;
  o.method = QuantMethod::kMatGptq;
  o.matryoshka_bits = std::move(bits);
  o.matryoshka_weights = std::move(weights);
  return o;
}

std::vector<float> values(const PackedMatrix& m) {
  std::vector<float> out(m.rows() * m.cols());
  m.dequantize(out);
  return out;
}

TEST(MatGptq, WithOnlyTheInt8WidthItIsGptq) {
  const std::size_t rows = 7, cols = 48;
  const std::vector<float> w = layer(rows, cols, 3);
  const InputHessian h = correlated_hessian(cols, 300, 4);
  for (const char* name : {"int8:channel", "int8:group16:asym", "int8:group16"}) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    MethodOptions g;
    g.method = QuantMethod::kGptq;
    const PackedMatrix a = quantize_weight(f, w, rows, cols, g, &h).matrix;
    const PackedMatrix b = quantize_weight(f, w, rows, cols, matgptq({8}), &h).matrix;
    EXPECT_EQ(a.codes().size(), b.codes().size());
    EXPECT_TRUE(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin()));
    EXPECT_EQ(values(a), values(b));
  }
}

// With H diagonal no error is pushed on, so each code is the joint rounding of
// its own weight: checked against every one of the 255 (256) codes, sliced
// here in integer arithmetic, with the scales the format's rule gives.
TEST(MatGptq, JointRoundingIsTheBestCodeOfAll) {
  const std::size_t rows = 5, cols = 24;
  const std::vector<float> w = layer(rows, cols, 9);
  std::vector<double> eye(cols * cols, 0.0);
  for (std::size_t i = 0; i < cols; ++i) eye[i * cols + i] = 1.0 + static_cast<double>(i % 3);
  const InputHessian h = InputHessian::from_matrix(cols, eye, 10);
  const std::vector<int> bits = {8, 4, 2};
  const std::vector<double> lambda = {1.0, 2.0, 3.0};
  for (const char* name : {"int8:channel", "int8:group8:asym"}) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    MethodOptions o = matgptq(bits, lambda);
    o.gptq.mse_scales = false;  // the rule's scales, to recompute here
    const PackedMatrix q = quantize_weight(f, w, rows, cols, o, &h).matrix;
    const SegmentQuantizer sq(f, cols);
    const bool uns = f.zero_points();
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        const std::size_t g = c / sq.segment(), b = g * sq.segment();
        const std::size_t n = std::min(sq.segment(), cols - b);
        const SegmentScale s = sq.rule(std::span<const float>(w.data() + r * cols + b, n));
        const double x = w[r * cols + c];
        double best = std::numeric_limits<double>::infinity();
        std::vector<std::uint32_t> argmin;
        for (int k = uns ? 0 : -127; k <= (uns ? 255 : 127); ++k) {
          double cost = 0.0;
          for (std::size_t i = 0; i < bits.size(); ++i) {
            const int shift = 8 - bits[i];
            int m = uns ? k : std::abs(k);
            m = std::min(round_shift(m, shift), uns ? (1 << bits[i]) - 1 : (1 << (bits[i] - 1)) - 1)
                << shift;
            const int sliced = uns || k >= 0 ? m : -m;
            const auto field = static_cast<std::uint32_t>(sliced) & 0xFFu;
            const double e = x - static_cast<double>(sq.decode(field, s));
            cost += lambda[i] * e * e;
          }
          if (cost < best - 1e-18) {
            best = cost;
            argmin.clear();
          }
          if (std::fabs(cost - best) <= 1e-18)
            argmin.push_back(static_cast<std::uint32_t>(k) & 0xFFu);
        }
        const std::uint32_t got = q.codes()[r * cols + c];
        EXPECT_NE(std::find(argmin.begin(), argmin.end(), got), argmin.end())
            << "row " << r << " col " << c << " x " << x << " code " << got;
      }
    }
  }
}

// The method's purpose: its slices together err less, on the layer's output,
// than the slices of GPTQ's int8 codes; and threads change nothing.
TEST(MatGptq, SlicesTogetherBeatGptqsSlices) {
  const std::size_t rows = 16, cols = 64;
  const std::vector<float> w = layer(rows, cols, 5);
  const InputHessian h = correlated_hessian(cols, 400, 6);
  const MatrixFormat f = parse_matrix_format("int8:channel");
  MethodOptions g;
  g.method = QuantMethod::kGptq;
  const PackedMatrix a = quantize_weight(f, w, rows, cols, g, &h).matrix;
  MethodOptions o = matgptq({8, 4, 2});
  const PackedMatrix b = quantize_weight(f, w, rows, cols, o, &h).matrix;
  double ea = 0.0, eb = 0.0;
  for (int r : {8, 4, 2}) {
    ea += hessian_error(w, matryoshka_slice(a, r).matrix, h);
    eb += hessian_error(w, matryoshka_slice(b, r).matrix, h);
  }
  EXPECT_LT(eb, 0.9 * ea);
  o.threads = 3;
  const PackedMatrix c = quantize_weight(f, w, rows, cols, o, &h).matrix;
  EXPECT_TRUE(std::equal(b.codes().begin(), b.codes().end(), c.codes().begin()));
}

TEST(MatGptq, BadInput) {
  const std::vector<float> w = layer(4, 16, 1);
  const InputHessian h = correlated_hessian(16, 50, 2);
  auto message = [&](const char* format, const MethodOptions& o, const InputHessian* hp) {
    try {
      quantize_weight(parse_matrix_format(format), w, 4, 16, o, hp);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("int4:channel", matgptq({8, 4}), &h).find("matgptq"), std::string::npos);
  EXPECT_NE(message("int8:channel", matgptq({8, 4}), nullptr).find("calibration"),
            std::string::npos);
  EXPECT_NE(message("int8:channel", matgptq({8, 4}, {1.0}), &h).find("weights"), std::string::npos);
  EXPECT_NE(message("int8:channel", matgptq({8, 9}), &h).find("9 bits"), std::string::npos);
  EXPECT_EQ(parse_method("matgptq"), QuantMethod::kMatGptq);
  EXPECT_TRUE(method_needs_data(QuantMethod::kMatGptq));
  EXPECT_FALSE(method_mismatch(QuantMethod::kMatGptq, parse_matrix_format("int4:group32")).empty());
}

}  // namespace
}  // namespace lowp
