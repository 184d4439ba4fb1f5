// Power-function non-uniform quantization (lowp/quant/power.h).
#include "lowp/quant/power.h"

#include <cmath>
#include <string>

#include "lowp/error.h"
#include "lowp/thread_pool.h"

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
                                 std::size_t cols, const double* importance, unsigned threads) {
  const bool scaled = f.scheme == MatrixScheme::kTensor || f.scheme == MatrixScheme::kChannel ||
                      f.scheme == MatrixScheme::kGroup;
  if (!scaled || f.ggml_q8_0) {
    throw Error("--method power: " + f.name +
                " is not a scaled format; the power map needs one scale per tensor, channel "
                "or group, e.g. int4:channel or int4:group32");
  }
  PowerQuantization best;
  double best_error = INFINITY;
  for (double a : power_exponents()) {
    const std::vector<float> t = power_forward(w, a);
    MethodOptions mse;
    mse.method = QuantMethod::kMse;
    mse.threads = threads;
    PackedMatrix q = quantize_weight(f, t, rows, cols, mse).matrix;
    std::vector<float> tq(rows * cols);
    q.dequantize(tq);
    std::vector<float> back = power_inverse(tq, a);
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
    best.errors.push_back(error);
    if (error < best_error) {  // ties keep the smaller exponent found first
      best_error = error;
      best.exponent = a;
      best.stored = std::move(q);
      best.weights = std::move(back);
    }
  }
  return best;
}

}  // namespace lowp
