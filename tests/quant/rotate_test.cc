// Hadamard rotations folded into the weights: the transform itself against
// the Sylvester matrix, and rotated models computing the same logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "lowp/error.h"
#include "lowp/nn/model_files.h"
#include "lowp/quant/rotate.h"
#include "model_compare.h"

namespace lowp {
namespace {

TEST(Fwht, IsTheNormalizedSylvesterMatrix) {
  for (std::size_t n : {1u, 2u, 64u, 256u}) {
    std::mt19937 rng(static_cast<std::uint32_t>(n));
    std::normal_distribution<double> g(0.0, 1.0);
    std::vector<double> x(n), y(n, 0.0);
    for (double& v : x) v = g(rng);
    // (x H)_j = sum_i x_i (-1)^popcount(i & j) / sqrt(n)
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < n; ++i) {
        y[j] += x[i] * ((__builtin_popcountll(i & j) & 1) != 0 ? -1.0 : 1.0);
      }
      y[j] /= std::sqrt(static_cast<double>(n));
    }
    std::vector<double> z = x;
    fwht(z.data(), n);
    for (std::size_t j = 0; j < n; ++j) EXPECT_NEAR(z[j], y[j], 1e-12) << n;
    fwht(z.data(), n);  // orthonormal and symmetric: twice is the identity
    for (std::size_t j = 0; j < n; ++j) EXPECT_NEAR(z[j], x[j], 1e-12) << n;
  }
  std::vector<double> x(12);
  EXPECT_THROW(fwht(x.data(), 12), Error);
}

std::filesystem::path source_dir() {
  const char* s = std::getenv("LOWP_SOURCE_DIR");
  return s != nullptr ? s : LOWP_TEST_SOURCE_DIR;
}

using lowp_test::max_relative_difference;

std::vector<std::int32_t> tokens(std::size_t n, int vocab, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int32_t> t(n);
  for (std::int32_t& x : t) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(vocab));
  return t;
}

void check_rotations(const nn::Transformer& m, const char* what) {
  const std::vector<std::int32_t> t =
      tokens(std::min<std::size_t>(48, static_cast<std::size_t>(m.config().n_ctx)),
             m.config().vocab_size, 1);
  for (bool mlp : {false, true}) {
    RotateOptions o;
    o.seed = 7;
    o.mlp = mlp;
    const RotatedModel r = rotate_hadamard(m.config(), m.weights(), o);
    EXPECT_EQ(r.config.down_hadamard, mlp);
    EXPECT_FALSE(r.config.tied_head);
    const nn::Transformer rm(r.config, r.weights, "rotated");
    const double d = max_relative_difference(m, rm, t);
    EXPECT_LE(d, 1e-5) << what << " mlp " << mlp;
    std::printf("%s, mlp %d: max |logit difference| / max |logit| = %.2e\n", what, int(mlp), d);
    // Different seeds, different weights; the same seed, the same.
    RotateOptions other = o;
    other.seed = 8;
    EXPECT_NE(rotate_hadamard(m.config(), m.weights(), other).weights.tok_emb, r.weights.tok_emb);
    EXPECT_EQ(rotate_hadamard(m.config(), m.weights(), o).weights.tok_emb, r.weights.tok_emb);
  }
  RotateOptions o;
  const RotatedModel r = rotate_hadamard(m.config(), m.weights(), o);
  EXPECT_THROW(rotate_hadamard(r.config, r.weights, o), Error);  // rotated twice online
}

TEST(Rotate, KjvModelsComputeTheSameLogits) {
  check_rotations(nn::load_transformer(source_dir() / "models" / "kjv-char" / "model.safetensors"),
                  "kjv-char (LayerNorm, learned positions)");
  check_rotations(nn::load_transformer(source_dir() / "models" / "kjv-llama"),
                  "kjv-llama (RMSNorm, RoPE, GQA, d_ff 704)");
}

// A GPT with every bias, a tied head, d_model 48 (not a power of two: the
// random orthogonal rotation) and head_dim 12 (block Hadamard of 4).
TEST(Rotate, BiasesTiedHeadAndOddSizes) {
  nn::TransformerConfig c;
  c.family = "lowp-gpt";
  c.vocab_size = 64;
  c.n_ctx = 16;
  c.d_model = 48;
  c.n_head = 4;
  c.n_kv_head = 4;
  c.head_dim = 12;
  c.n_layer = 2;
  c.d_ff = 96;
  c.tied_head = true;
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 0.3f);
  const auto fill = [&](std::size_t n, float mean = 0.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = mean + g(rng);
    return v;
  };
  nn::TransformerWeights w;
  w.tok_emb = fill(64 * 48);
  w.pos_emb = fill(16 * 48);
  w.norm_f_w = fill(48, 1.0f);
  w.norm_f_b = fill(48);
  for (int l = 0; l < 2; ++l) {
    nn::TransformerWeights::Layer L;
    L.norm_1_w = fill(48, 1.0f);
    L.norm_1_b = fill(48);
    L.qkv_w = fill(144 * 48);
    L.qkv_b = fill(144);
    L.o_w = fill(48 * 48);
    L.o_b = fill(48);
    L.norm_2_w = fill(48, 1.0f);
    L.norm_2_b = fill(48);
    L.fc_w = fill(96 * 48);
    L.fc_b = fill(96);
    L.down_w = fill(48 * 96);
    L.down_b = fill(48);
    w.layers.push_back(std::move(L));
  }
  check_rotations(nn::Transformer(c, w, "random"), "random GPT (d 48, head_dim 12)");
}

}  // namespace
}  // namespace lowp
