// Power-function quantization (lowp/quant/power.h): the map and its inverse
// against the formula in fp64, the search against a brute force written
// here, the byte accounting, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/quant/power.h"

namespace lowp {
namespace {

std::vector<float> laplace_matrix(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::exponential_distribution<float> e(1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> w(n);
  for (float& x : w) x = sign(gen) ? e(gen) : -e(gen);
  return w;
}

TEST(Power, MapAndInverse) {
  const std::vector<float> w = {0.0f, -0.0f, 0.25f, -4.0f, 1e-6f, -3.5f};
  for (double a : {0.25, 0.5, 0.75, 1.0}) {
    const std::vector<float> t = power_forward(w, a);
    const std::vector<float> back = power_inverse(t, a);
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double x = w[i];
      EXPECT_EQ(t[i], static_cast<float>(std::copysign(std::pow(std::fabs(x), a), x)));
      EXPECT_EQ(std::signbit(t[i]), std::signbit(w[i]));
      EXPECT_NEAR(back[i], w[i], 4e-7 * std::fabs(w[i]));
    }
  }
  const std::vector<double> a = power_exponents();
  ASSERT_EQ(a.size(), 16u);
  EXPECT_EQ(a.front(), 0.25);
  EXPECT_EQ(a.back(), 1.0);
}

TEST(Power, SearchIsTheBruteForceMinimum) {
  const std::size_t rows = 8, cols = 64;
  const std::vector<float> w = laplace_matrix(rows * cols, 1);
  const MatrixFormat f = parse_matrix_format("int4:group32");
  const PowerQuantization p = power_quantize(f, w, rows, cols, nullptr);
  MethodOptions mse;
  mse.method = QuantMethod::kMse;
  double best = INFINITY, best_a = 0;
  std::vector<double> errors;
  for (double a : power_exponents()) {
    const PackedMatrix q = quantize_weight(f, power_forward(w, a), rows, cols, mse).matrix;
    std::vector<float> t(rows * cols);
    q.dequantize(t);
    const std::vector<float> back = power_inverse(t, a);
    double e = 0;
    for (std::size_t i = 0; i < w.size(); ++i)
      e += (double(w[i]) - back[i]) * (double(w[i]) - back[i]);
    errors.push_back(e);
    if (e < best) best = e, best_a = a;
  }
  ASSERT_EQ(p.errors.size(), errors.size());
  for (std::size_t i = 0; i < errors.size(); ++i)
    EXPECT_NEAR(p.errors[i], errors[i], 1e-12 * errors[i]);
  EXPECT_EQ(p.exponent, best_a);
  EXPECT_LT(p.exponent, 1.0);  // Laplace weights want a denser grid near zero
  std::vector<float> t(rows * cols);
  p.stored.dequantize(t);
  EXPECT_EQ(p.weights, power_inverse(t, p.exponent));

  MethodOptions o;
  o.method = QuantMethod::kPower;
  const WeightQuantization q = quantize_weight(f, w, rows, cols, o);
  EXPECT_EQ(q.stored_bytes, p.stored.bytes() + 4);
  std::vector<float> got(rows * cols);
  q.matrix.dequantize(got);
  EXPECT_EQ(got, p.weights);
  EXPECT_NE(q.detail.find("in int4:group32"), std::string::npos) << q.detail;
}

TEST(Power, NeedsAScaledFormat) {
  MethodOptions o;
  o.method = QuantMethod::kPower;
  const std::vector<float> w(64, 0.5f);
  for (const char* name : {"mxfp4", "bf16", "q8_0"}) {
    try {
      quantize_weight(parse_matrix_format(name), w, 2, 32, o);
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--method power"), std::string::npos) << e.what();
    }
  }
}

// nupes: with a Hessian the exponent is judged by the output error, refined
// near the grid's best, and never worse than it.
TEST(Power, NupesRefinesTheExponentOnTheOutputError) {
  const std::size_t rows = 12, cols = 32;
  const std::vector<float> w = laplace_matrix(rows * cols, 21);
  std::mt19937 gen(22);
  std::normal_distribution<float> n;
  std::vector<float> x(200 * cols);
  for (std::size_t t = 0; t < 200; ++t) {
    const float z = n(gen);
    for (std::size_t c = 0; c < cols; ++c) {
      x[t * cols + c] = (1.0f + float(c % 4)) * (n(gen) + z);
    }
  }
  InputHessian h(cols);
  h.add(x.data(), 200);
  const MatrixFormat f = parse_matrix_format("int3:channel");
  const PowerQuantization p = power_quantize(f, w, rows, cols, nullptr, 2, &h);
  // The output error of the returned weights, in fp64 here.
  double e = 0.0;
  const std::span<const double> hm = h.matrix();
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < cols; ++i) {
      for (std::size_t j = 0; j < cols; ++j) {
        const double di = double(w[r * cols + i]) - double(p.weights[r * cols + i]);
        const double dj = double(w[r * cols + j]) - double(p.weights[r * cols + j]);
        e += di * hm[i * cols + j] * dj;
      }
    }
  }
  EXPECT_NEAR(p.error, e, 1e-9 * std::max(1.0, e));
  const double grid_best = *std::min_element(p.errors.begin(), p.errors.end());
  EXPECT_LE(p.error, grid_best);
  const std::vector<double> grid = power_exponents();
  const double a_grid =
      grid[std::size_t(std::min_element(p.errors.begin(), p.errors.end()) - p.errors.begin())];
  EXPECT_LE(std::fabs(p.exponent - a_grid), 0.05 + 1e-12);
  // Through quantize_weight: the method needs the data.
  MethodOptions o;
  o.method = QuantMethod::kNupes;
  EXPECT_THROW(quantize_weight(f, w, rows, cols, o), Error);
  const WeightQuantization q = quantize_weight(f, w, rows, cols, o, &h);
  EXPECT_NE(q.detail.find("output error"), std::string::npos) << q.detail;
  EXPECT_EQ(q.stored_bytes, p.stored.bytes() + 4);
  EXPECT_TRUE(method_needs_data(QuantMethod::kNupes));
}

}  // namespace
}  // namespace lowp
