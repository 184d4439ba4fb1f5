// Power-function non-uniform quantization (lowp/quant/power.h).
#include "lowp/quant/power.h"

#include <cmath>
#include <string>

#include "lowp/error.h"
#include "lowp/thread_pool.h"
#include "methods_internal.h"

namespace lowp {

std::vector<double> power_exponents() {
  std::vector<double> a;
  for (int i = 5; i <= 20; ++i) a.push_back(i / 20.0);
  return a;
}

std::vector<float> power_forward(std::span<const float> w, double a) {
  std::vector<float> t(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double x = static_cast<double>(w[i]);
    t[i] = static_cast<float>(std::copysign(std::pow(std::fabs(x), a), x));
  }
  return t;
}

std::vector<float> power_inverse(std::span<const float> t, double a) {
  std::vector<float> w(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double x = static_cast<double>(t[i]);
    w[i] = static_cast<float>(std::copysign(std::pow(std::fabs(x), 1.0 / a), x));
  }
  return w;
}

PowerQuantization power_quantize(const MatrixFormat& f, std::span<const float> w, std::size_t rows,
                                 std::size_t cols, const double* importance, unsigned threads,
                                 const InputHessian* h) {
  const bool scaled = f.scheme == MatrixScheme::kTensor || f.scheme == MatrixScheme::kChannel ||
                      f.scheme == MatrixScheme::kGroup;
  if (!scaled || f.ggml_q8_0) {
    throw Error("--method power: " + f.name +
                " is not a scaled format; the power map needs one scale per tensor, channel "
                "or group, e.g. int4:channel or int4:group32");
  }
  PowerQuantization best;
  double best_error = INFINITY;
  // Quantizes t = w^a and measures w - t'^(1/a): the weighted squared error,
  // or with h the layer's output error tr(dW H dW^T).
  auto trial = [&](double a, PackedMatrix& q, std::vector<float>& back) {
    const std::vector<float> t = power_forward(w, a);
    MethodOptions mse;
    mse.method = QuantMethod::kMse;
    mse.threads = threads;
    q = quantize_weight(f, t, rows, cols, mse).matrix;
    std::vector<float> tq(rows * cols);
    q.dequantize(tq);
    back = power_inverse(tq, a);
    if (h != nullptr) {
      return hessian_error(w, detail::stand_in(back, rows, cols), *h, threads);
    }
    std::vector<double> per_row(rows, 0.0);
    parallel_for(rows, std::max(1u, threads), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        double e = 0.0;
        for (std::size_t j = 0; j < cols; ++j) {
          const double d =
              static_cast<double>(w[r * cols + j]) - static_cast<double>(back[r * cols + j]);
          e += (importance ? importance[j] : 1.0) * d * d;
        }
        per_row[r] = e;
      }
    });
    double error = 0.0;
    for (double e : per_row) error += e;
    return error;
  };
  auto keep = [&](double a, double error, PackedMatrix& q, std::vector<float>& back) {
    if (error < best_error) {  // ties keep the exponent found first
      best_error = error;
      best.exponent = a;
      best.stored = std::move(q);
      best.weights = std::move(back);
    }
  };
  for (double a : power_exponents()) {
    PackedMatrix q;
    std::vector<float> back;
    const double error = trial(a, q, back);
    best.errors.push_back(error);
    keep(a, error, q, back);
  }
  best.error = best_error;
  if (h == nullptr) return best;
  // NUPES' refinement on calibration data, derivative-free: golden-section
  // search of the output error over a in [a* - 0.05, a* + 0.05] (within
  // (0, 1]), 12 steps; the grid's best is kept unless a point beats it.
  const double phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double lo = std::max(0.05, best.exponent - 0.05), hi = std::min(1.0, best.exponent + 0.05);
  double x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo);
  PackedMatrix q1, q2;
  std::vector<float> b1, b2;
  double e1 = trial(x1, q1, b1), e2 = trial(x2, q2, b2);
  for (int step = 0; step < 12; ++step) {
    if (e1 <= e2) {
      keep(x1, e1, q1, b1);
      hi = x2;
      x2 = x1;
      e2 = e1;
      x1 = hi - phi * (hi - lo);
      e1 = trial(x1, q1, b1);
    } else {
      keep(x2, e2, q2, b2);
      lo = x1;
      x1 = x2;
      e1 = e2;
      x2 = lo + phi * (hi - lo);
      e2 = trial(x2, q2, b2);
    }
  }
  keep(x1, e1, q1, b1);
  keep(x2, e2, q2, b2);
  best.error = best_error;
  return best;
}

}  // namespace lowp
