// LoRC (lowp/quant/lowrank.h): the randomized SVD against matrices of known
// singular values, the compensation against its definition recomputed here
// from the stored factors, exact byte accounting, determinism, and the
// method spelling "<method>+lorc<R>".
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/quant/lowrank.h"
#include "lowp/quant/methods.h"

namespace lowp {
namespace {

// n x k with orthonormal columns, from seeded Gaussian columns (Gram-Schmidt).
std::vector<double> orthonormal(std::size_t n, std::size_t k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> g;
  std::vector<double> m(n * k);
  for (double& x : m) x = g(gen);
  for (std::size_t c = 0; c < k; ++c) {
    for (std::size_t q = 0; q < c; ++q) {
      double dot = 0;
      for (std::size_t i = 0; i < n; ++i) dot += m[i * k + c] * m[i * k + q];
      for (std::size_t i = 0; i < n; ++i) m[i * k + c] -= dot * m[i * k + q];
    }
    double norm = 0;
    for (std::size_t i = 0; i < n; ++i) norm += m[i * k + c] * m[i * k + c];
    for (std::size_t i = 0; i < n; ++i) m[i * k + c] /= std::sqrt(norm);
  }
  return m;
}

TEST(TruncatedSvd, RecoversKnownSingularValuesAndVectors) {
  const std::size_t rows = 40, cols = 64, k = 6;
  const std::vector<double> s = {9.0, 5.0, 3.0, 1.5, 0.5, 0.25};
  const std::vector<double> u = orthonormal(rows, k, 1), v = orthonormal(cols, k, 2);
  std::vector<double> e(rows * cols, 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      for (std::size_t c = 0; c < k; ++c) e[i * cols + j] += u[i * k + c] * s[c] * v[j * k + c];
    }
  }
  const Svd svd = truncated_svd(e, rows, cols, 4);
  for (std::size_t c = 0; c < 4; ++c) {
    EXPECT_NEAR(svd.s[c], s[c], 1e-9 * s[0]) << c;
    // Each singular vector pair equals the true one up to a common sign.
    double du = 0, dv = 0;
    for (std::size_t i = 0; i < rows; ++i) du += svd.u[i * 4 + c] * u[i * k + c];
    for (std::size_t j = 0; j < cols; ++j) dv += svd.v[j * 4 + c] * v[j * k + c];
    EXPECT_NEAR(std::fabs(du), 1.0, 1e-9) << c;
    EXPECT_NEAR(du * dv, 1.0, 1e-9) << c;
  }
  // Any thread count, the same bits.
  const Svd t = truncated_svd(e, rows, cols, 4, 0, 4, 3);
  EXPECT_EQ(t.u, svd.u);
  EXPECT_EQ(t.s, svd.s);
  EXPECT_EQ(t.v, svd.v);
  EXPECT_THROW(truncated_svd(e, rows, cols, 0), Error);
  EXPECT_THROW(truncated_svd(e, rows, cols, 41), Error);
}

std::vector<float> gaussian_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g;
  std::vector<float> w(rows * cols);
  for (float& x : w) x = g(gen);
  return w;
}

double error(const std::vector<float>& w, const std::vector<float>& q) {
  double e = 0;
  for (std::size_t i = 0; i < w.size(); ++i) e += (double(w[i]) - q[i]) * (double(w[i]) - q[i]);
  return e;
}

TEST(LowRankCompensation, IsQPlusTheStoredFactors) {
  const std::size_t rows = 48, cols = 96, rank = 8;
  const std::vector<float> w = gaussian_matrix(rows, cols, 3);
  const PackedMatrix q = PackedMatrix::quantize(parse_matrix_format("mxfp4"), w, rows, cols);
  const LowRankCompensation c =
      low_rank_compensation(w, q, rank, parse_matrix_format("int8:channel"));
  ASSERT_EQ(c.u.rows(), rows);
  ASSERT_EQ(c.v.rows(), cols);
  ASSERT_EQ(c.u.cols(), rank);
  // Bytes: Q + int8 codes and an FP32 scale per factor row.
  EXPECT_EQ(c.bytes, q.bytes() + rows * rank + 4 * rows + cols * rank + 4 * cols);
  std::vector<float> qd(rows * cols), ud(rows * rank), vd(cols * rank);
  q.dequantize(qd);
  c.u.dequantize(ud);
  c.v.dequantize(vd);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      double want = qd[i * cols + j];
      for (std::size_t k = 0; k < rank; ++k) want += double(ud[i * rank + k]) * vd[j * rank + k];
      ASSERT_EQ(c.weights[i * cols + j], static_cast<float>(want)) << i << "," << j;
    }
  }
  EXPECT_LT(error(w, c.weights), error(w, qd));
  // At full rank with fp32 factors, Q + U V^T is W again.
  const LowRankCompensation full = low_rank_compensation(w, q, rows, parse_matrix_format("fp32"));
  EXPECT_LT(error(w, full.weights), 1e-9 * error(w, qd));
  try {
    low_rank_compensation(w, q, 49, parse_matrix_format("int8:channel"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--lorc-rank 49"), std::string::npos) << e.what();
  }
}

TEST(LowRankCompensation, AfterAnyMethod) {
  const std::size_t rows = 32, cols = 64;
  const std::vector<float> w = gaussian_matrix(rows, cols, 4);
  const MatrixFormat f = parse_matrix_format("int4:group32");
  MethodOptions o;
  o.method = QuantMethod::kMse;
  const WeightQuantization base = quantize_weight(f, w, rows, cols, o);
  o.lorc_rank = 4;
  const WeightQuantization q = quantize_weight(f, w, rows, cols, o);
  EXPECT_EQ(q.matrix.format().name, "fp32");
  const LowRankCompensation c =
      low_rank_compensation(w, base.matrix, 4, parse_matrix_format("int8:channel"));
  EXPECT_EQ(q.stored_bytes, c.bytes);
  std::vector<float> got(rows * cols);
  q.matrix.dequantize(got);
  EXPECT_EQ(got, c.weights);
  EXPECT_NE(q.detail.find("int4:group32 + LoRC rank 4 in int8:channel (+"), std::string::npos)
      << q.detail;
}

TEST(MethodSpec, Spellings) {
  const MethodSpec g = parse_method_spec("gptq+lorc8");
  EXPECT_EQ(g.method, QuantMethod::kGptq);
  EXPECT_EQ(g.lorc_rank, 8u);
  EXPECT_EQ(parse_method_spec("mse").lorc_rank, 0u);
  for (const char* bad :
       {"rtn+lorc0", "rtn+lora8", "rtn+lorc", "rtn+lorc8x", "awq+lorc8", "+lorc8"}) {
    EXPECT_THROW(parse_method_spec(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace lowp
