// SmoothQuant folding (lowp/quant/smooth.h).
#include "lowp/quant/smooth.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowp/error.h"

namespace lowp {
namespace {

void check(const std::vector<std::vector<float>>& v, std::size_t layers, std::size_t width,
           const char* what) {
  if (v.size() != layers) {
    throw Error(std::string("smoothquant: ") + what + " statistics for " +
                std::to_string(v.size()) + " layers, expected " + std::to_string(layers));
  }
  for (std::size_t l = 0; l < v.size(); ++l) {
    if (v[l].size() != width) {
      throw Error(std::string("smoothquant: ") + what + " statistics of layer " +
                  std::to_string(l) + " have " + std::to_string(v[l].size()) +
                  " channels, expected " + std::to_string(width));
    }
  }
}

// s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), clamped; 1 where either is 0.
std::vector<double> factors_from(const std::vector<float>& x, const std::vector<double>& wmax,
                                 double alpha, bool pow2) {
  std::vector<double> s(x.size(), 1.0);
  if (std::isnan(alpha)) return s;  // not smoothed
  for (std::size_t j = 0; j < x.size(); ++j) {
    const double a = std::fabs(static_cast<double>(x[j]));
    if (!(a > 0.0) || !(wmax[j] > 0.0) || !std::isfinite(a)) continue;
    s[j] = std::clamp(std::pow(a, alpha) / std::pow(wmax[j], 1.0 - alpha), 1e-5, 1e5);
  }
  if (pow2) {
    for (double& v : s) v = std::exp2(std::nearbyint(std::log2(v)));
  }
  return s;
}

std::vector<double> factors(const std::vector<float>& x, const std::vector<std::vector<float>*>& ws,
                            double alpha, bool pow2) {
  std::vector<std::span<const float>> reads;
  for (const std::vector<float>* w : ws) reads.emplace_back(*w);
  return smoothing_factors(x, reads, alpha, pow2);
}

void scale_columns(std::vector<float>& w, const std::vector<double>& s) {
  const std::size_t cols = s.size();
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = static_cast<float>(static_cast<double>(w[i]) * s[i % cols]);
  }
}

void divide(std::vector<float>& v, const std::vector<double>& s) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<float>(static_cast<double>(v[i]) / s[i]);
  }
}

}  // namespace

std::vector<double> smoothing_factors(std::span<const float> absmax,
                                      const std::vector<std::span<const float>>& reads,
                                      double alpha, bool pow2) {
  const std::size_t cols = absmax.size();
  std::vector<double> wmax(cols, 0.0);
  for (std::span<const float> w : reads) {
    for (std::size_t i = 0; i < w.size(); ++i) {
      wmax[i % cols] = std::max(wmax[i % cols], std::fabs(static_cast<double>(w[i])));
    }
  }
  return factors_from(std::vector<float>(absmax.begin(), absmax.end()), wmax, alpha, pow2);
}

nn::TransformerWeights smooth_quant(const nn::TransformerConfig& c, const nn::TransformerWeights& w,
                                    const SmoothStats& stats, double alpha, bool pow2) {
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    throw Error("smoothquant: alpha " + std::to_string(alpha) + " is outside [0, 1]");
  }
  const auto layers = static_cast<std::size_t>(c.n_layer);
  SmoothAlphas a;
  a.attention.assign(layers, alpha);
  a.mlp.assign(layers, alpha);
  if (!stats.attention_output.empty()) a.attention_output.assign(layers, alpha);
  a.pow2 = pow2;
  return smooth_quant(c, w, stats, a);
}

nn::TransformerWeights smooth_quant(const nn::TransformerConfig& c, const nn::TransformerWeights& w,
                                    const SmoothStats& stats, const SmoothAlphas& alphas) {
  const auto layers = static_cast<std::size_t>(c.n_layer);
  const auto check_alphas = [&](const std::vector<double>& v, const char* what) {
    if (v.size() != layers) {
      throw Error(std::string("smoothquant: ") + what + " alphas for " + std::to_string(v.size()) +
                  " layers, expected " + std::to_string(layers));
    }
    for (double x : v) {
      if (!std::isnan(x) && !(x >= 0.0 && x <= 1.0)) {
        throw Error("smoothquant: alpha " + std::to_string(x) + " is outside [0, 1]");
      }
    }
  };
  check_alphas(alphas.attention, "attention");
  check_alphas(alphas.mlp, "mlp");
  const auto d = static_cast<std::size_t>(c.d_model);
  check(stats.attention, layers, d, "attention");
  check(stats.mlp, layers, d, "mlp");
  const bool smooth_o = !stats.attention_output.empty() && !alphas.attention_output.empty();
  if (smooth_o) {
    check(stats.attention_output, layers, static_cast<std::size_t>(c.q_dim()), "o");
    check_alphas(alphas.attention_output, "o");
  }
  nn::TransformerWeights out = w;
  const auto dh = static_cast<std::size_t>(c.head_dim);
  const std::size_t group = static_cast<std::size_t>(c.n_head / c.n_kv_head);
  for (std::size_t l = 0; l < layers; ++l) {
    nn::TransformerWeights::Layer& L = out.layers[l];
    // The attention input: norm_1 -> q, k, v (or the fused qkv).
    std::vector<std::vector<float>*> reads;
    if (c.fused_qkv) {
      reads = {&L.qkv_w};
    } else {
      reads = {&L.q_w, &L.k_w, &L.v_w};
    }
    const std::vector<double> sa =
        factors(stats.attention[l], reads, alphas.attention[l], alphas.pow2);
    divide(L.norm_1_w, sa);
    if (!L.norm_1_b.empty()) divide(L.norm_1_b, sa);
    for (std::vector<float>* m : reads) scale_columns(*m, sa);
    // The MLP input: norm_2 -> fc (up) and gate.
    reads = {&L.fc_w};
    if (c.mlp == nn::MlpKind::kSwiGlu) reads.push_back(&L.gate_w);
    const std::vector<double> sm = factors(stats.mlp[l], reads, alphas.mlp[l], alphas.pow2);
    divide(L.norm_2_w, sm);
    if (!L.norm_2_b.empty()) divide(L.norm_2_b, sm);
    for (std::vector<float>* m : reads) scale_columns(*m, sm);
    if (!smooth_o || std::isnan(alphas.attention_output[l])) continue;
    // o's input: per v channel (kv head g, channel i), the largest absmax over
    // the query heads of its group, so one factor serves them all.
    const auto kv = static_cast<std::size_t>(c.kv_dim());
    std::vector<float> per_v(kv, 0.0f);
    for (std::size_t hq = 0; hq < static_cast<std::size_t>(c.n_head); ++hq) {
      for (std::size_t i = 0; i < dh; ++i) {
        const std::size_t vc = (hq / group) * dh + i;
        per_v[vc] = std::max(per_v[vc], stats.attention_output[l][hq * dh + i]);
      }
    }
    // The factor of o's column (hq, i) is that of v channel (hq / group, i).
    std::vector<double> wmax(kv, 0.0);
    const auto q_dim = static_cast<std::size_t>(c.q_dim());
    for (std::size_t i = 0; i < L.o_w.size(); ++i) {
      const std::size_t col = i % q_dim, vc = (col / dh / group) * dh + col % dh;
      wmax[vc] = std::max(wmax[vc], std::fabs(static_cast<double>(L.o_w[i])));
    }
    const std::vector<double> s =
        factors_from(per_v, wmax, alphas.attention_output[l], alphas.pow2);
    // v's rows divided (in the fused matrix: rows q_dim + kv_dim ..).
    std::vector<float>& vw = c.fused_qkv ? L.qkv_w : L.v_w;
    std::vector<float>& vb = c.fused_qkv ? L.qkv_b : L.v_b;
    const std::size_t v0 = c.fused_qkv ? q_dim + kv : 0;
    for (std::size_t j = 0; j < kv; ++j) {
      for (std::size_t k = 0; k < d; ++k) {
        float& x = vw[(v0 + j) * d + k];
        x = static_cast<float>(static_cast<double>(x) / s[j]);
      }
      if (!vb.empty()) vb[v0 + j] = static_cast<float>(static_cast<double>(vb[v0 + j]) / s[j]);
    }
    for (std::size_t i = 0; i < L.o_w.size(); ++i) {
      const std::size_t col = i % q_dim, vc = (col / dh / group) * dh + col % dh;
      L.o_w[i] = static_cast<float>(static_cast<double>(L.o_w[i]) * s[vc]);
    }
  }
  return out;
}

}  // namespace lowp
