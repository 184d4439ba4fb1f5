// Activation calibrators against hand-computed histograms and brute force,
// SmoothQuant and static activation scales on real checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/nn/model_files.h"
#include "lowp/quant/act_calib.h"
#include "lowp/quant/activations.h"
#include "lowp/quant/aqas.h"
#include "lowp/quant/calibrate.h"
#include "lowp/quant/smooth.h"
#include "lowp/storage/matrix_format.h"
#include "lowp/storage/packed_matrix.h"
#include "model_compare.h"

namespace lowp {
namespace {

TEST(AbsHistogram, BinsGrowAndMerge) {
  AbsHistogram h(8);
  const float a[] = {0.3f, -0.1f, 0.0f};  // range 0.5 (the power of two above 0.3)
  h.add(a, 3);
  EXPECT_EQ(h.range(), 0.5);
  EXPECT_EQ(h.total(), 3u);
  // 0.0 -> bin 0; 0.1 / 0.5 * 8 = 1.6 -> bin 1; 0.3 / 0.5 * 8 = 4.8 -> bin 4.
  std::vector<double> want = {1, 1, 0, 0, 1, 0, 0, 0};
  EXPECT_EQ(std::vector<double>(h.counts().begin(), h.counts().end()), want);
  const float b[] = {1.5f, std::nanf(""), INFINITY};  // doubles twice: range 2
  h.add(b, 3);
  EXPECT_EQ(h.range(), 2.0);
  EXPECT_EQ(h.nonfinite(), 2u);
  EXPECT_EQ(h.max(), 1.5);
  // The old bins merged twice (pairs, then pairs again): bins 0..1 -> 0, 4 -> 1;
  // 1.5 / 2 * 8 = 6 -> bin 6.
  want = {2, 1, 0, 0, 0, 0, 1, 0};
  EXPECT_EQ(std::vector<double>(h.counts().begin(), h.counts().end()), want);
  // Split the same values another way: the same histogram.
  AbsHistogram x(8), y(8);
  x.add(a, 3);
  y.add(b, 3);
  x.merge(y);
  EXPECT_EQ(std::vector<double>(x.counts().begin(), x.counts().end()), want);
  EXPECT_EQ(x.total(), h.total());
  AbsHistogram z(8);
  z.add(b, 1);
  z.add(a, 3);  // a larger value first, then smaller ones: same bins
  EXPECT_EQ(std::vector<double>(z.counts().begin(), z.counts().end()), want);
  EXPECT_THROW(x.merge(AbsHistogram(16)), Error);
}

std::vector<float> laplace(std::size_t n, double b, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<double> e(1.0 / b);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(sign(rng) ? e(rng) : -e(rng));
  return x;
}

TEST(Calibrators, MaxAndPercentile) {
  const std::vector<float> x = laplace(200000, 1.0, 1);
  AbsHistogram h;
  h.add(x.data(), x.size());
  const Format int8 = parse_matrix_format("int8").element;
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  EXPECT_EQ(calibrate_clip(h, int8, parse_calibrator("max")), static_cast<double>(amax));
  // |Laplace(b)| is exponential: the P-th percentile is -b ln(1 - P/100).
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    CalibratorOptions o = parse_calibrator("percentile:" + std::to_string(p));
    const double want = -std::log(1.0 - p / 100.0);
    EXPECT_NEAR(calibrate_clip(h, int8, o), want, 0.03 * want) << p;
  }
  EXPECT_EQ(parse_calibrator("percentile").percentile, 99.99);
  EXPECT_THROW(parse_calibrator("percentile:0"), Error);
  EXPECT_THROW(parse_calibrator("percentile:101"), Error);
  EXPECT_THROW(parse_calibrator("percentile:x"), Error);
  EXPECT_THROW(parse_calibrator("kl"), Error);
  EXPECT_THROW(calibrate_clip(AbsHistogram(), int8, {}), Error);
}

// The clip whose int-N quantize-dequantize error over the samples is least,
// by brute force over a fine grid (fp64).
double brute_force_mse_clip(const std::vector<float>& x, double qmax, double amax) {
  double best = INFINITY, pick = amax;
  for (int k = 1; k <= 400; ++k) {
    const double c = amax * k / 400.0, s = c / qmax;
    double e = 0.0;
    for (float v : x) {
      const double q = std::clamp(std::nearbyint(v / s), -qmax, qmax) * s;
      e += (v - q) * (v - q);
    }
    if (e < best) {
      best = e;
      pick = c;
    }
  }
  return pick;
}

TEST(Calibrators, MseAgreesWithBruteForce) {
  const std::vector<float> x = laplace(20000, 1.0, 2);
  AbsHistogram h;
  h.add(x.data(), x.size());
  for (const char* f : {"int4", "int8"}) {
    SCOPED_TRACE(f);
    const Format e = parse_matrix_format(f).element;
    const double want = brute_force_mse_clip(x, max_finite(e), h.max());
    const double got = calibrate_clip(h, e, parse_calibrator("mse"));
    EXPECT_NEAR(got, want, 0.06 * want);
    EXPECT_LT(got, h.max());  // heavy tails: clipping pays
  }
}

TEST(Calibrators, EntropyClipsOutliersButNotAUniformRange) {
  const Format int8 = parse_matrix_format("int8").element;
  // Uniform on [0, 1): nothing to clip.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(100000);
  for (float& v : x) v = u(rng);
  AbsHistogram h;
  h.add(x.data(), x.size());
  EXPECT_GT(calibrate_clip(h, int8, parse_calibrator("entropy")), 0.9 * h.max());
  // Gaussian with a few far outliers: the threshold sits well below them.
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (float& v : x) v = n(rng);
  for (int i = 0; i < 5; ++i) x[static_cast<std::size_t>(i)] = 60.0f;
  AbsHistogram g;
  g.add(x.data(), x.size());
  const double clip = calibrate_clip(g, int8, parse_calibrator("entropy"));
  EXPECT_LT(clip, 0.5 * g.max());
  EXPECT_GT(clip, 3.0);
}

std::filesystem::path source_dir() {
  const char* s = std::getenv("LOWP_SOURCE_DIR");
  return s != nullptr ? s : LOWP_TEST_SOURCE_DIR;
}

std::vector<std::int32_t> text_tokens(std::size_t n, int vocab) {
  std::ifstream f(source_dir() / "models" / "kjv-char" / "val.txt", std::ios::binary);
  std::vector<std::int32_t> t;
  char c;
  while (t.size() < n && f.get(c)) t.push_back(static_cast<unsigned char>(c) % vocab);
  return t;
}

using lowp_test::max_relative_difference;

TEST(SmoothQuant, FoldingLeavesTheFp32ModelUnchanged) {
  for (const std::filesystem::path& p : {source_dir() / "models" / "kjv-char" / "model.safetensors",
                                         source_dir() / "models" / "kjv-llama"}) {
    SCOPED_TRACE(p.string());
    const nn::Transformer m = nn::load_transformer(p);
    const auto windows =
        calibration_windows(text_tokens(4000, m.config().vocab_size), std::nullopt, 64, 8, 1);
    const SmoothStats stats = smoothing_stats(m, windows, 2);
    for (double alpha : {0.0, 0.5, 0.85}) {
      const nn::TransformerWeights w = smooth_quant(m.config(), m.weights(), stats, alpha);
      const nn::Transformer s(m.config(), w, "smoothed");
      EXPECT_LE(max_relative_difference(m, s, windows[0]), 1e-5) << alpha;
    }
    // The smoothed inputs' channel maxima are the originals divided by s, so
    // their spread across channels shrinks.
    const nn::TransformerWeights w = smooth_quant(m.config(), m.weights(), stats, 0.5);
    const nn::Transformer s(m.config(), w, "smoothed");
    const SmoothStats after = smoothing_stats(s, windows, 2);
    double before_spread = 0.0, after_spread = 0.0;
    for (std::size_t l = 0; l < stats.attention.size(); ++l) {
      const auto spread = [](const std::vector<float>& v) {
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return std::log(double(*hi) / std::max(double(*lo), 1e-9));
      };
      before_spread += spread(stats.attention[l]) + spread(stats.mlp[l]);
      after_spread += spread(after.attention[l]) + spread(after.mlp[l]);
    }
    EXPECT_LT(after_spread, before_spread);  // outlier channels are flattened
    SmoothStats bad = stats;
    bad.mlp.pop_back();
    EXPECT_THROW(smooth_quant(m.config(), m.weights(), bad, 0.5), Error);
    EXPECT_THROW(smooth_quant(m.config(), m.weights(), stats, 1.5), Error);
  }
}

TEST(StaticActivations, ScalesFromCalibrationRunTheModel) {
  const nn::Transformer m =
      nn::load_transformer(source_dir() / "models" / "kjv-char" / "model.safetensors");
  const auto windows = calibration_windows(text_tokens(8000, 256), std::nullopt, 128, 8, 2);
  StaticActivationOptions o;
  o.element = parse_matrix_format("int8").element;
  const nn::ActivationScales sc = calibrate_activation_scales(m, windows, o);
  ASSERT_EQ(sc.scales.size(), 6u);
  EXPECT_EQ(sc.scales[5][static_cast<std::size_t>(nn::LinearInput::kHead)].size(), 1u);
  EXPECT_EQ(sc.scales[0][static_cast<std::size_t>(nn::LinearInput::kMlpOutput)].size(), 1u);
  const nn::Transformer q = m.with_activation_scales(sc);
  const std::vector<std::int32_t> t = text_tokens(100, 256);
  const double d = max_relative_difference(m, q, t);
  EXPECT_GT(d, 0.0);   // the activations are quantized...
  EXPECT_LT(d, 0.05);  // ...with scales that fit them
  o.per_channel = true;
  const nn::ActivationScales pc = calibrate_activation_scales(m, windows, o);
  EXPECT_EQ(pc.scales[0][0].size(), 128u);
  EXPECT_THROW(calibrate_activation_scales(m, {}, o), Error);
  nn::ActivationScales wrong = sc;
  wrong.scales.pop_back();
  EXPECT_THROW(m.with_activation_scales(wrong), Error);
}

// E(alpha) of lowp/quant/aqas.h for block 0's attention input, in fp64 loops
// written here (the quantizers are the library's: the weight format's rule and
// the runtime's per-token activation quantizer).
double attention_error(const nn::Transformer& m, const std::vector<float>& x, std::size_t n,
                       const std::vector<float>& absmax, double alpha, const AqasOptions& o) {
  const auto d = static_cast<std::size_t>(m.config().d_model);
  const nn::TransformerWeights::Layer& L = m.weights().layers[0];
  std::vector<std::span<const float>> reads = {L.q_w, L.k_w, L.v_w};
  if (m.config().fused_qkv) reads = {L.qkv_w};
  const std::vector<double> s = smoothing_factors(absmax, reads, alpha);
  std::vector<float> xq(n * d);
  for (std::size_t i = 0; i < xq.size(); ++i) xq[i] = static_cast<float>(x[i] / s[i % d]);
  fake_quantize_rows(o.activations, xq.data(), n, d);
  double e = 0.0;
  for (std::span<const float> w : reads) {
    const std::size_t rows = w.size() / d;
    std::vector<float> ws(w.size()), wq(w.size());
    for (std::size_t i = 0; i < ws.size(); ++i) ws[i] = static_cast<float>(w[i] * s[i % d]);
    PackedMatrix::quantize(o.weights, ws, rows, d).dequantize(wq);
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t r = 0; r < rows; ++r) {
        double y = 0.0, ref = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
          y += double(xq[t * d + j]) * double(wq[r * d + j]);
          ref += double(x[t * d + j]) * double(w[r * d + j]);
        }
        e += (y - ref) * (y - ref);
      }
    }
  }
  return e;
}

TEST(Aqas, ChoosesTheAlphaOfLeastProductErrorAndKeepsTheFunction) {
  for (const std::filesystem::path& p : {source_dir() / "models" / "kjv-char" / "model.safetensors",
                                         source_dir() / "models" / "kjv-llama"}) {
    SCOPED_TRACE(p.string());
    const nn::Transformer m = nn::load_transformer(p);
    const auto windows =
        calibration_windows(text_tokens(4000, m.config().vocab_size), std::nullopt, 32, 4, 3);
    AqasOptions o;
    o.weights = parse_matrix_format("int4:channel");
    o.activations = parse_matrix_format("int4");  // coarse per-token activations
    o.tokens = 64;
    o.alphas = {0.0, 0.25, 0.5, 0.75, 1.0};
    o.threads = 2;
    const AqasResult r = aqas(m, windows, o);
    const auto layers = static_cast<std::size_t>(m.config().n_layer);
    ASSERT_EQ(r.alphas.attention.size(), layers);
    ASSERT_EQ(r.lines.size(), 2 * layers);
    const nn::Transformer s(m.config(), r.weights, "aqas");
    EXPECT_LE(max_relative_difference(m, s, windows[0]), 1e-5);
    // Block 0's attention input: the first 64 calibration rows, recomputed.
    std::vector<float> x, absmax;
    observe_all(
        m, windows, 1,
        [&](int layer, nn::LinearInput in, const float* v, std::size_t rows, std::size_t cols) {
          if (layer != 0 || in != nn::LinearInput::kAttention) return;
          channel_absmax(absmax, v, rows, cols);
          const std::size_t take = std::min(rows, 64 - x.size() / cols);
          x.insert(x.end(), v, v + take * cols);
        });
    const std::size_t n = x.size() / static_cast<std::size_t>(m.config().d_model);
    ASSERT_EQ(n, 64u);
    const double chosen = attention_error(m, x, n, absmax, r.alphas.attention[0], o);
    const double plain = attention_error(m, x, n, absmax, std::nan(""), o);
    EXPECT_LE(chosen, plain * (1 + 1e-9));
    for (double a : o.alphas) {
      EXPECT_LE(chosen, attention_error(m, x, n, absmax, a, o) * (1 + 1e-6)) << a;
    }
    // Bad options.
    AqasOptions bad = o;
    bad.tokens = 0;
    EXPECT_THROW(aqas(m, windows, bad), Error);
    bad = o;
    bad.alphas = {1.5};
    EXPECT_THROW(aqas(m, windows, bad), Error);
    EXPECT_THROW(aqas(m, std::vector<std::vector<std::int32_t>>{}, o), Error);
    // The two steps give what the one call gives, for a second format too.
    const AqasSamples samples = aqas_samples(m, windows, o.tokens, o.threads);
    EXPECT_EQ(aqas(m, samples, o).lines, aqas(m, windows, o).lines);
    AqasOptions other = o;
    other.weights = parse_matrix_format("int4:channel");
    EXPECT_EQ(aqas(m, samples, other).lines, aqas(m, windows, other).lines);
    AqasSamples wrong = samples;
    wrong.attention.pop_back();
    EXPECT_THROW(aqas(m, wrong, o), Error);
  }
}

TEST(SmoothQuant, PerInputAlphasAndNaNLeavesAnInputAlone) {
  const nn::Transformer m =
      nn::load_transformer(source_dir() / "models" / "kjv-char" / "model.safetensors");
  const auto windows = calibration_windows(text_tokens(4000, 256), std::nullopt, 64, 4, 1);
  const SmoothStats stats = smoothing_stats(m, windows, 2);
  const auto layers = static_cast<std::size_t>(m.config().n_layer);
  SmoothAlphas a;
  a.attention.assign(layers, std::nan(""));
  a.mlp.assign(layers, 0.5);
  a.attention[1] = 0.5;
  const nn::TransformerWeights w = smooth_quant(m.config(), m.weights(), stats, a);
  const nn::TransformerWeights all = smooth_quant(m.config(), m.weights(), stats, 0.5);
  EXPECT_EQ(w.layers[0].norm_1_w, m.weights().layers[0].norm_1_w);  // NaN: untouched
  EXPECT_EQ(w.layers[1].norm_1_w, all.layers[1].norm_1_w);          // 0.5: as the scalar alpha
  EXPECT_EQ(w.layers[0].fc_w, all.layers[0].fc_w);
  // Powers of two (LLM-FP4's pre-shifted exponent biases): each factor is the
  // unrounded one rounded in the log domain, and the FP32 function stays.
  const nn::TransformerWeights::Layer& L = m.weights().layers[2];
  const std::vector<std::span<const float>> reads = {L.fc_w};
  const std::vector<double> exact = smoothing_factors(stats.mlp[2], reads, 0.8);
  const std::vector<double> p2 = smoothing_factors(stats.mlp[2], reads, 0.8, true);
  ASSERT_EQ(exact.size(), p2.size());
  for (std::size_t j = 0; j < p2.size(); ++j) {
    int e = 0;
    EXPECT_EQ(std::frexp(p2[j], &e), 0.5) << j;  // a power of two
    EXPECT_EQ(p2[j], std::exp2(std::round(std::log2(exact[j])))) << j;
  }
  const nn::Transformer s2(m.config(), smooth_quant(m.config(), m.weights(), stats, 1.0, true),
                           "pow2");
  EXPECT_LE(max_relative_difference(m, s2, windows[0]), 1e-5);
  a.mlp.pop_back();
  EXPECT_THROW(smooth_quant(m.config(), m.weights(), stats, a), Error);
}

}  // namespace
}  // namespace lowp
