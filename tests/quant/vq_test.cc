// Vector quantization (lowp/quant/vq.h): assignments against a brute force,
// int8 code books, exact byte accounting, determinism, GPTVQ's objective, and
// bad input.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/quant/vq.h"

namespace lowp {
namespace {

std::vector<float> gaussian(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g;
  std::vector<float> w(n);
  for (float& x : w) x = g(gen);
  return w;
}

TEST(Vq, AssignmentsAreNearestInt8Centroids) {
  const std::size_t rows = 64, cols = 32;
  const std::vector<float> w = gaussian(rows * cols, 1);
  VqOptions o;
  o.dim = 2;
  o.bits = 3;  // 64 centroids
  o.group_cols = 16;
  o.group_rows = 32;
  const VqResult r = vector_quantize(w, rows, cols, o, nullptr);
  ASSERT_EQ(r.codebooks.size(), 2u * 2u);
  for (const std::vector<float>& cb : r.codebooks) {
    ASSERT_EQ(cb.size(), 64u * 2u);
    // int8 multiples of one FP16 scale, the largest |c| = 127 s.
    float amax = 0;
    for (float c : cb) amax = std::max(amax, std::fabs(c));
    const float s =
        lowp::decode_f32(kFp16, lowp::encode(kFp16, amax / 127.0, {Rounding::kNearestEven, true}));
    for (float c : cb) {
      const float q = c / s;
      EXPECT_EQ(q, std::nearbyint(q));
      EXPECT_LE(std::fabs(q), 127.0f);
    }
  }
  for (std::size_t row = 0; row < rows; ++row) {
    for (std::size_t j = 0; j < cols; j += 2) {
      const std::vector<float>& cb = r.codebooks[(row / 32) * 2 + j / 16];
      const std::uint32_t idx = r.indices[row * (cols / 2) + j / 2];
      EXPECT_EQ(r.weights[row * cols + j], cb[idx * 2]);
      EXPECT_EQ(r.weights[row * cols + j + 1], cb[idx * 2 + 1]);
      // No centroid is strictly nearer (distances in fp64).
      const auto dist = [&](std::size_t c) {
        const double a = double(w[row * cols + j]) - cb[c * 2];
        const double b = double(w[row * cols + j + 1]) - cb[c * 2 + 1];
        return a * a + b * b;
      };
      for (std::size_t c = 0; c < 64; ++c) ASSERT_GE(dist(c), dist(idx) * (1 - 1e-12));
    }
  }
  // 64 x 16 indices of 6 bits + 4 code books of 64 x 2 bytes and an FP16 scale.
  EXPECT_EQ(r.bytes, 64u * (16u * 6u / 8u) + 4u * (128u + 2u));
  const VqResult t = vector_quantize(w, rows, cols, o, nullptr, 0.01, 3);
  EXPECT_EQ(t.weights, r.weights);
  EXPECT_EQ(t.indices, r.indices);
}

TEST(Vq, FindsEveryDistinctVector) {
  // 16 distinct 2-vectors of integers (|x| <= 127, one of them 127): a code book
  // of 16 holds each exactly, so vq loses nothing.
  std::vector<float> base;
  for (int i = 0; i < 16; ++i) {
    base.push_back(static_cast<float>(i * 8 - 60));
    base.push_back(i == 0 ? 127.0f : static_cast<float>((i * 37) % 101 - 50));
  }
  const std::size_t rows = 16, cols = 8;
  std::vector<float> w(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < cols; j += 2) {
      const std::size_t v = (r * 5 + j * 3) % 16;
      w[r * cols + j] = base[v * 2];
      w[r * cols + j + 1] = base[v * 2 + 1];
    }
  }
  // Every vector appears.
  VqOptions o;
  o.dim = 2;
  o.bits = 2;
  o.group_cols = 8;
  const VqResult r = vector_quantize(w, rows, cols, o, nullptr);
  EXPECT_EQ(r.weights, w);
}

TEST(Vq, GptvqLowersTheLayerObjective) {
  const std::size_t rows = 32, cols = 64, tokens = 512;
  std::mt19937 gen(3);
  std::normal_distribution<float> g;
  std::vector<float> x(tokens * cols);
  std::vector<float> mix(4 * cols);
  for (float& m : mix) m = g(gen);
  for (std::size_t t = 0; t < tokens; ++t) {
    float z[4] = {g(gen), g(gen), g(gen), g(gen)};
    for (std::size_t c = 0; c < cols; ++c) {
      float v = 0.3f * g(gen);
      for (int k = 0; k < 4; ++k) v += z[k] * mix[k * cols + c];
      x[t * cols + c] = v;
    }
  }
  InputHessian h(cols);
  h.add(x.data(), tokens);
  const std::vector<float> w = gaussian(rows * cols, 4);
  VqOptions o;
  o.dim = 2;
  o.bits = 2;
  o.group_cols = 32;
  const VqResult plain = vector_quantize(w, rows, cols, o, nullptr);
  const VqResult gptvq = vector_quantize(w, rows, cols, o, &h);
  const auto objective = [&](const std::vector<float>& q) {
    std::vector<double> d(cols);
    double total = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) d[c] = double(w[r * cols + c]) - q[r * cols + c];
      for (std::size_t i = 0; i < cols; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < cols; ++j) s += h.matrix()[i * cols + j] * d[j];
        total += d[i] * s;
      }
    }
    return total;
  };
  EXPECT_LT(objective(gptvq.weights), 0.8 * objective(plain.weights));
  EXPECT_EQ(gptvq.bytes, plain.bytes);
  // The code-book update: the same indices, int8 code books still, and an
  // objective no higher (here lower: the centroids were fit before the later
  // columns' updates moved the weights they serve).
  o.update_steps = 10;
  const VqResult updated = vector_quantize(w, rows, cols, o, &h);
  EXPECT_EQ(updated.indices, gptvq.indices);
  EXPECT_EQ(updated.bytes, gptvq.bytes);
  EXPECT_LT(objective(updated.weights), objective(gptvq.weights));
  for (const std::vector<float>& cb : updated.codebooks) {
    float amax = 0;
    for (float c : cb) amax = std::max(amax, std::fabs(c));
    const double s = amax / 127.0;  // every centroid a multiple of the book's step
    for (float c : cb) {
      const double m = c / (amax > 0 ? amax / 127.0 : 1.0);
      EXPECT_NEAR(m, std::nearbyint(m), 1e-3) << c << " " << s;
    }
  }
  // Each weight is the centroid its index names.
  const std::size_t nv = cols / o.dim;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t v = 0; v < nv; ++v) {
      const std::vector<float>& cb = updated.codebooks[(v * o.dim) / o.group_cols];
      for (std::size_t t = 0; t < o.dim; ++t) {
        ASSERT_EQ(updated.weights[r * cols + v * o.dim + t],
                  cb[updated.indices[r * nv + v] * o.dim + t]);
      }
    }
  }
}

TEST(Vq, BadOptionsNameTheOption) {
  const std::vector<float> w(64 * 64, 1.0f);
  const auto fails = [&](VqOptions o, std::size_t rows, std::size_t cols, const char* words) {
    try {
      check_vq(o, rows, cols);
      ADD_FAILURE() << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  VqOptions o;
  o.dim = 3;
  fails(o, 64, 64, "--vq-dim 3");
  o.dim = 4;
  o.bits = 4;
  fails(o, 64, 64, "2^16 entries");
  o.dim = 4;
  o.bits = 2;
  fails(o, 64, 66, "multiples of the vector size");
  o.dim = 2;
  o.bits = 6;  // 4096 centroids for a group of 8 x 64 / 2 = 256 vectors
  fails(o, 8, 64, "bigger than its group");
}

}  // namespace
}  // namespace lowp
