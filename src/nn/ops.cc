// The transformer runtime's operations (lowp/nn/ops.h).
//
// The attention loops are also compiled for AVX-512 and AVX2, the clone chosen
// when the library loads (GCC on x86-64). They never reorder a sum, and this
// file is compiled with -ffp-contract=off (CMakeLists.txt: no fused
// multiply-adds), so every clone gives the same bits; only the vector width
// differs.
#include "lowp/nn/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LOWP_NN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LOWP_NN_CLONES
#endif

namespace lowp::nn {

LOWP_NN_CLONES void hadamard_rows(float* x, std::size_t rows, std::size_t n) {
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  for (std::size_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    for (std::size_t h = 1; h < n; h *= 2) {
      for (std::size_t i = 0; i < n; i += 2 * h) {
        for (std::size_t j = i; j < i + h; ++j) {
          const float a = v[j], b = v[j + h];
          v[j] = a + b;
          v[j + h] = a - b;
        }
      }
    }
    for (std::size_t i = 0; i < n; ++i) v[i] *= scale;
  }
}

void layer_norm(const float* x, float* y, std::size_t rows, std::size_t d, const float* weight,
                const float* bias, float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double sum = 0.0;
    for (std::size_t i = 0; i < d; ++i) sum += static_cast<double>(xr[i]);
    const double mean = sum / static_cast<double>(d);
    double sq = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
      const double c = static_cast<double>(xr[i]) - mean;
      sq += c * c;
    }
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(d) + static_cast<double>(eps));
    const auto m = static_cast<float>(mean), s = static_cast<float>(inv);
    for (std::size_t i = 0; i < d; ++i) yr[i] = (xr[i] - m) * s * weight[i] + bias[i];
  }
}

void rms_norm(const float* x, float* y, std::size_t rows, std::size_t d, const float* weight,
              float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double sq = 0.0;
    for (std::size_t i = 0; i < d; ++i) sq += static_cast<double>(xr[i]) * xr[i];
    const auto s =
        static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(d) + static_cast<double>(eps)));
    for (std::size_t i = 0; i < d; ++i) yr[i] = xr[i] * s * weight[i];
  }
}

void gelu(float* x, std::size_t n) {
  constexpr float kRsqrt2 = 0.70710678118654752f;
  for (std::size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kRsqrt2));
}

void gelu_tanh(float* x, std::size_t n) {
  constexpr float kSqrt2OverPi = 0.79788456080286536f;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

void silu_mul(float* gate, const float* up, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add(float* x, const float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] += y[i];
}

void rope(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) {
  const std::size_t half = head_dim / 2;
  for (std::size_t h = 0; h < heads; ++h) {
    float* xh = x + h * head_dim;
    for (std::size_t i = 0; i < half; ++i) {
      const float a = xh[i], b = xh[i + half];
      xh[i] = a * cos[i] - b * sin[i];
      xh[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

void rope_angles(std::size_t pos, std::size_t head_dim, double theta, std::span<const double> scale,
                 float* cos, float* sin) {
  const std::size_t half = head_dim / 2;
  for (std::size_t i = 0; i < half; ++i) {
    const double inv_freq =
        std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim)) /
        (scale.empty() ? 1.0 : scale[i]);
    const double a = static_cast<double>(pos) * inv_freq;
    cos[i] = static_cast<float>(std::cos(a));
    sin[i] = static_cast<float>(std::sin(a));
  }
}

LOWP_NN_CLONES void attention_scores_rows(const float* q, const float* k, std::size_t stride,
                                          std::size_t n_keys, std::size_t d_head, float scale,
                                          float* scores) {
  for (std::size_t j = 0; j < n_keys; ++j) {
    const float* kj = k + j * stride;
    float dot = 0.0f;
    for (std::size_t i = 0; i < d_head; ++i) dot += q[i] * kj[i];
    scores[j] = dot * scale;
  }
}

// Sixteen keys at a time accumulate in a local array (registers) over i, so
// the loop vectorizes along j without reordering any sum.
LOWP_NN_CLONES void attention_scores_columns(const float* q, const float* kt, std::size_t ld,
                                             std::size_t n_keys, std::size_t d_head, float scale,
                                             float* scores) {
  constexpr std::size_t kLanes = 16;
  std::size_t j0 = 0;
  for (; j0 + kLanes <= n_keys; j0 += kLanes) {
    float acc[kLanes] = {};
    for (std::size_t i = 0; i < d_head; ++i) {
      const float qi = q[i];
      const float* row = kt + i * ld + j0;
      for (std::size_t l = 0; l < kLanes; ++l) acc[l] += qi * row[l];
    }
    for (std::size_t l = 0; l < kLanes; ++l) scores[j0 + l] = acc[l] * scale;
  }
  for (std::size_t j = j0; j < n_keys; ++j) {
    float dot = 0.0f;
    for (std::size_t i = 0; i < d_head; ++i) dot += q[i] * kt[i * ld + j];
    scores[j] = dot * scale;
  }
}

// Sixteen components of out at a time stay in a local array (registers).
LOWP_NN_CLONES void attention_mix(float* scores, std::size_t n_keys, const float* v,
                                  std::size_t v_stride, std::size_t d_head, float* out) {
  float max = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < n_keys; ++j) max = std::max(max, scores[j]);
  float sum = 0.0f;
  for (std::size_t j = 0; j < n_keys; ++j) {
    scores[j] = std::exp(scores[j] - max);
    sum += scores[j];
  }
  const float inv = 1.0f / sum;
  for (std::size_t j = 0; j < n_keys; ++j) scores[j] *= inv;
  constexpr std::size_t kLanes = 16;
  std::size_t i0 = 0;
  for (; i0 + kLanes <= d_head; i0 += kLanes) {
    float acc[kLanes] = {};
    for (std::size_t j = 0; j < n_keys; ++j) {
      const float p = scores[j];
      const float* vj = v + j * v_stride + i0;
      for (std::size_t l = 0; l < kLanes; ++l) acc[l] += p * vj[l];
    }
    for (std::size_t l = 0; l < kLanes; ++l) out[i0 + l] = acc[l];
  }
  for (std::size_t i = i0; i < d_head; ++i) {
    float acc = 0.0f;
    for (std::size_t j = 0; j < n_keys; ++j) acc += scores[j] * v[j * v_stride + i];
    out[i] = acc;
  }
}

double cross_entropy(const float* logits, std::size_t vocab, std::size_t target) {
  double max = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < vocab; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (std::size_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return max + std::log(sum) - static_cast<double>(logits[target]);
}

}  // namespace lowp::nn
