// Activation-quantization-aware scaling (lowp/quant/aqas.h).
#include "lowp/quant/aqas.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <span>

#include "lowp/error.h"
#include "lowp/quant/activations.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp {
namespace {

// ||Y - ref||^2 in fp64.
double squared_distance(const std::vector<float>& y, const std::vector<float>& ref) {
  double e = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double d = static_cast<double>(y[i]) - static_cast<double>(ref[i]);
    e += d * d;
  }
  return e;
}

// E(alpha) of aqas.h for one input: x [n, d], the matrices reading it.
double product_error(const std::vector<float>& x, std::size_t n, std::size_t d,
                     const std::vector<std::span<const float>>& reads,
                     const std::vector<std::vector<float>>& refs, const std::vector<double>& s,
                     const AqasOptions& opt) {
  std::vector<float> xs(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    xs[i] = static_cast<float>(static_cast<double>(x[i]) / s[i % d]);
  }
  fake_quantize_rows(opt.activations, xs.data(), n, d);
  double e = 0.0;
  for (std::size_t m = 0; m < reads.size(); ++m) {
    const std::size_t rows = reads[m].size() / d;
    std::vector<float> ws(reads[m].size());
    for (std::size_t i = 0; i < ws.size(); ++i) {
      ws[i] = static_cast<float>(static_cast<double>(reads[m][i]) * s[i % d]);
    }
    const PackedMatrix q = PackedMatrix::quantize(opt.weights, ws, rows, d);
    std::vector<float> y(n * rows);
    q.gemm(xs.data(), n, y.data(), opt.threads);
    e += squared_distance(y, refs[m]);
  }
  return e;
}

}  // namespace

AqasSamples aqas_samples(const nn::Transformer& model,
                         const std::vector<std::vector<std::int32_t>>& calibration,
                         std::size_t tokens, unsigned threads) {
  if (calibration.empty()) throw Error("aqas needs calibration text (--calib)");
  if (tokens == 0) throw Error("aqas: tokens must be >= 1");
  const nn::TransformerConfig& c = model.config();
  const auto layers = static_cast<std::size_t>(c.n_layer);
  AqasSamples out;
  out.attention.resize(layers);
  out.mlp.resize(layers);
  out.stats.attention.resize(layers);
  out.stats.mlp.resize(layers);
  observe_all(
      model, calibration, threads,
      [&](int layer, nn::LinearInput input, const float* x, std::size_t rows, std::size_t cols) {
        if (layer >= c.n_layer) return;
        const auto l = static_cast<std::size_t>(layer);
        std::vector<float>* keep = nullptr;
        if (input == nn::LinearInput::kAttention) {
          keep = &out.attention[l];
          channel_absmax(out.stats.attention[l], x, rows, cols);
        } else if (input == nn::LinearInput::kMlp) {
          keep = &out.mlp[l];
          channel_absmax(out.stats.mlp[l], x, rows, cols);
        } else {
          return;
        }
        const std::size_t have = keep->size() / cols;
        const std::size_t take = std::min(rows, tokens - std::min(tokens, have));
        keep->insert(keep->end(), x, x + take * cols);
      });
  return out;
}

AqasResult aqas(const nn::Transformer& model,
                const std::vector<std::vector<std::int32_t>>& calibration, const AqasOptions& opt) {
  for (double a : opt.alphas) {  // before the calibration pass
    if (!(a >= 0.0 && a <= 1.0)) {
      throw Error("aqas: alpha " + std::to_string(a) + " is outside [0, 1]");
    }
  }
  return aqas(model, aqas_samples(model, calibration, opt.tokens, opt.threads), opt);
}

AqasResult aqas(const nn::Transformer& model, const AqasSamples& samples, const AqasOptions& opt) {
  for (double a : opt.alphas) {
    if (!(a >= 0.0 && a <= 1.0)) {
      throw Error("aqas: alpha " + std::to_string(a) + " is outside [0, 1]");
    }
  }
  const nn::TransformerConfig& c = model.config();
  const auto layers = static_cast<std::size_t>(c.n_layer);
  const auto d = static_cast<std::size_t>(c.d_model);
  const std::vector<std::vector<float>>& xa = samples.attention;
  const std::vector<std::vector<float>>& xm = samples.mlp;
  const SmoothStats& stats = samples.stats;
  if (xa.size() != layers || xm.size() != layers) {
    throw Error("aqas: the samples are of another model (" + std::to_string(xa.size()) +
                " layers, the model has " + std::to_string(layers) + ")");
  }

  const nn::TransformerWeights& w = model.weights();
  AqasResult out;
  out.alphas.attention.assign(layers, std::nan(""));
  out.alphas.mlp.assign(layers, std::nan(""));
  out.alphas.pow2 = opt.pow2;
  for (std::size_t l = 0; l < layers; ++l) {
    const nn::TransformerWeights::Layer& L = w.layers[l];
    for (int which = 0; which < 2; ++which) {
      std::vector<std::span<const float>> reads;
      if (which == 0) {
        if (c.fused_qkv) {
          reads = {L.qkv_w};
        } else {
          reads = {L.q_w, L.k_w, L.v_w};
        }
      } else {
        reads = {L.fc_w};
        if (c.mlp == nn::MlpKind::kSwiGlu) reads.emplace_back(L.gate_w);
      }
      const std::vector<float>& x = which == 0 ? xa[l] : xm[l];
      const std::vector<float>& absmax = which == 0 ? stats.attention[l] : stats.mlp[l];
      const std::size_t n = x.size() / d;
      if (n == 0) continue;
      // The FP32 products.
      std::vector<std::vector<float>> refs;
      for (std::span<const float> m : reads) {
        const std::size_t rows = m.size() / d;
        const PackedMatrix ref = PackedMatrix::quantize(parse_matrix_format("fp32"), m, rows, d);
        refs.emplace_back(n * rows);
        ref.gemm(x.data(), n, refs.back().data(), opt.threads);
      }
      const double plain = product_error(x, n, d, reads, refs, std::vector<double>(d, 1.0), opt);
      double best = plain, best_alpha = std::nan("");
      for (double a : opt.alphas) {
        const double e =
            product_error(x, n, d, reads, refs, smoothing_factors(absmax, reads, a, opt.pow2), opt);
        if (e < best) {
          best = e;
          best_alpha = a;
        }
      }
      (which == 0 ? out.alphas.attention : out.alphas.mlp)[l] = best_alpha;
      char buf[200];
      if (std::isnan(best_alpha)) {
        std::snprintf(buf, sizeof buf, "layer %zu %s: not smoothed (error %.4g)", l,
                      which == 0 ? "attention" : "mlp", plain);
      } else {
        std::snprintf(buf, sizeof buf, "layer %zu %s: alpha %.2f (error %.4g; not smoothed %.4g)",
                      l, which == 0 ? "attention" : "mlp", best_alpha, best, plain);
      }
      out.lines.emplace_back(buf);
    }
  }
  out.weights = smooth_quant(c, w, stats, out.alphas);
  return out;
}

}  // namespace lowp
