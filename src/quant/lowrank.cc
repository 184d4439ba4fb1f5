// Low-rank compensation (lowp/quant/lowrank.h): a seeded randomized SVD in
// fp64 and the quantized factors of LoRC.
#include "lowp/quant/lowrank.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "lowp/error.h"
#include "lowp/thread_pool.h"

namespace lowp {
namespace {

// splitmix64: a portable stream of 64-bit values (std:: distributions differ
// between standard libraries).
std::uint64_t next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double gaussian(std::uint64_t& state) {  // Box-Muller
  const double u1 = (static_cast<double>(next(state) >> 11) + 1.0) * 0x1p-53;
  const double u2 = static_cast<double>(next(state) >> 11) * 0x1p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// out [rows x p] = e [rows x cols] * z [cols x p].
void times(std::span<const double> e, std::size_t rows, std::size_t cols,
           const std::vector<double>& z, std::size_t p, std::vector<double>& out,
           unsigned threads) {
  out.assign(rows * p, 0.0);
  parallel_for(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t i = r0; i < r1; ++i) {
      double* o = out.data() + i * p;
      for (std::size_t j = 0; j < cols; ++j) {
        const double a = e[i * cols + j];
        const double* zj = z.data() + j * p;
        for (std::size_t k = 0; k < p; ++k) o[k] += a * zj[k];
      }
    }
  });
}

// out [cols x p] = e^T * y, y [rows x p]; each sum runs over rows in order.
void times_transposed(std::span<const double> e, std::size_t rows, std::size_t cols,
                      const std::vector<double>& y, std::size_t p, std::vector<double>& out,
                      unsigned threads) {
  out.assign(cols * p, 0.0);
  parallel_for(cols, threads, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t i = 0; i < rows; ++i) {
      const double* yi = y.data() + i * p;
      for (std::size_t j = c0; j < c1; ++j) {
        const double a = e[i * cols + j];
        double* o = out.data() + j * p;
        for (std::size_t k = 0; k < p; ++k) o[k] += a * yi[k];
      }
    }
  });
}

// Orthonormalizes the p columns of m [n x p] in place (modified Gram-Schmidt,
// twice); a column that vanishes becomes zero.
void orthonormalize(std::vector<double>& m, std::size_t n, std::size_t p) {
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t k = 0; k < p; ++k) {
      for (std::size_t q = 0; q < k; ++q) {
        double dot = 0.0;
        for (std::size_t i = 0; i < n; ++i) dot += m[i * p + k] * m[i * p + q];
        for (std::size_t i = 0; i < n; ++i) m[i * p + k] -= dot * m[i * p + q];
      }
      double norm = 0.0;
      for (std::size_t i = 0; i < n; ++i) norm += m[i * p + k] * m[i * p + k];
      norm = std::sqrt(norm);
      for (std::size_t i = 0; i < n; ++i) m[i * p + k] = norm > 1e-300 ? m[i * p + k] / norm : 0.0;
    }
  }
}

// Eigen-decomposition of the symmetric a [n x n] by cyclic Jacobi: values in
// `values`, vectors as the columns of `vectors`.
void jacobi(std::vector<double> a, std::size_t n, std::vector<double>& values,
            std::vector<double>& vectors) {
  vectors.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        total += a[i * n + j] * a[i * n + j];
        if (i != j) off += a[i * n + j] * a[i * n + j];
      }
    }
    if (off <= 1e-30 * total || off == 0.0) break;
    for (std::size_t p = 0; p + 1 < n; ++p) {
      for (std::size_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  values.resize(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = a[i * n + i];
}

[[noreturn]] void bad_rank(std::size_t rank, std::size_t rows, std::size_t cols) {
  throw Error("--lorc-rank " + std::to_string(rank) +
              ": the rank must be 1 to min(rows, cols) = " + std::to_string(std::min(rows, cols)) +
              " for a " + std::to_string(rows) + "x" + std::to_string(cols) + " matrix");
}

}  // namespace

Svd truncated_svd(std::span<const double> e, std::size_t rows, std::size_t cols, std::size_t rank,
                  std::uint64_t seed, int iterations, unsigned threads) {
  if (rank == 0 || rank > std::min(rows, cols)) bad_rank(rank, rows, cols);
  if (e.size() != rows * cols) throw Error("truncated_svd: the matrix size does not match");
  threads = std::max(1u, threads);
  const std::size_t p = std::min(rank + 8, std::min(rows, cols));
  std::vector<double> omega(cols * p);
  std::uint64_t state = seed;
  for (double& x : omega) x = gaussian(state);
  std::vector<double> y, z;
  times(e, rows, cols, omega, p, y, threads);
  orthonormalize(y, rows, p);
  for (int it = 0; it < iterations; ++it) {
    times_transposed(e, rows, cols, y, p, z, threads);
    orthonormalize(z, cols, p);
    times(e, rows, cols, z, p, y, threads);
    orthonormalize(y, rows, p);
  }
  // B = Y^T E [p x cols] as its transpose bt = E^T Y [cols x p]; B B^T = bt^T bt.
  std::vector<double> bt;
  times_transposed(e, rows, cols, y, p, bt, threads);
  std::vector<double> gram(p * p, 0.0);
  for (std::size_t j = 0; j < cols; ++j) {
    for (std::size_t a = 0; a < p; ++a) {
      for (std::size_t b = 0; b < p; ++b) gram[a * p + b] += bt[j * p + a] * bt[j * p + b];
    }
  }
  std::vector<double> values, vectors;
  jacobi(gram, p, values, vectors);
  std::vector<std::size_t> order(p);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] > values[b]; });
  Svd out;
  out.u.assign(rows * rank, 0.0);
  out.v.assign(cols * rank, 0.0);
  out.s.assign(rank, 0.0);
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t c = order[k];
    const double sigma = std::sqrt(std::max(values[c], 0.0));
    out.s[k] = sigma;
    for (std::size_t i = 0; i < rows; ++i) {  // u = Y w
      double acc = 0.0;
      for (std::size_t a = 0; a < p; ++a) acc += y[i * p + a] * vectors[a * p + c];
      out.u[i * rank + k] = acc;
    }
    for (std::size_t j = 0; j < cols; ++j) {  // v = B^T w / sigma
      double acc = 0.0;
      for (std::size_t a = 0; a < p; ++a) acc += bt[j * p + a] * vectors[a * p + c];
      out.v[j * rank + k] = sigma > 0.0 ? acc / sigma : 0.0;
    }
  }
  return out;
}

LowRankCompensation low_rank_compensation(std::span<const float> w, const PackedMatrix& q,
                                          std::size_t rank, const MatrixFormat& factor_format,
                                          unsigned threads) {
  const std::size_t rows = q.rows(), cols = q.cols();
  if (rank == 0 || rank > std::min(rows, cols)) bad_rank(rank, rows, cols);
  if (w.size() != rows * cols) throw Error("low_rank_compensation: sizes do not match");
  std::vector<float> deq(rows * cols);
  q.dequantize(deq);
  std::vector<double> e(rows * cols);
  for (std::size_t i = 0; i < e.size(); ++i) {
    e[i] = static_cast<double>(w[i]) - static_cast<double>(deq[i]);
  }
  const Svd svd = truncated_svd(e, rows, cols, rank, 0, 4, threads);
  std::vector<float> uf(rows * rank), vf(cols * rank);
  for (std::size_t k = 0; k < rank; ++k) {
    const double root = std::sqrt(svd.s[k]);
    for (std::size_t i = 0; i < rows; ++i) {
      uf[i * rank + k] = static_cast<float>(svd.u[i * rank + k] * root);
    }
    for (std::size_t j = 0; j < cols; ++j) {
      vf[j * rank + k] = static_cast<float>(svd.v[j * rank + k] * root);
    }
  }
  LowRankCompensation out;
  out.u = PackedMatrix::quantize(factor_format, uf, rows, rank);
  out.v = PackedMatrix::quantize(factor_format, vf, cols, rank);
  std::vector<float> ud(rows * rank), vd(cols * rank);
  out.u.dequantize(ud);
  out.v.dequantize(vd);
  out.weights.resize(rows * cols);
  parallel_for(rows, std::max(1u, threads), [&](std::size_t r0, std::size_t r1) {
    for (std::size_t i = r0; i < r1; ++i) {
      for (std::size_t j = 0; j < cols; ++j) {
        double acc = static_cast<double>(deq[i * cols + j]);
        for (std::size_t k = 0; k < rank; ++k) {
          acc += static_cast<double>(ud[i * rank + k]) * static_cast<double>(vd[j * rank + k]);
        }
        out.weights[i * cols + j] = static_cast<float>(acc);
      }
    }
  });
  out.bytes = q.bytes() + out.u.bytes() + out.v.bytes();
  return out;
}

}  // namespace lowp
