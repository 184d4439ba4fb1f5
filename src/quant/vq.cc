// Vector quantization with per-group code books: vq and gptvq
// (lowp/quant/vq.h).
#include "lowp/quant/vq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/format.h"
#include "lowp/thread_pool.h"
#include "methods_internal.h"

namespace lowp {
namespace {

std::uint64_t next(std::uint64_t& state) {  // splitmix64
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double uniform(std::uint64_t& state) { return static_cast<double>(next(state) >> 11) * 0x1p-53; }

// The weighted squared distance of the d-vector v to centroid c.
double distance(const double* v, const double* c, const double* weight, std::size_t d) {
  double s = 0.0;
  for (std::size_t t = 0; t < d; ++t) {
    const double x = v[t] - c[t];
    s += weight[t] * x * x;
  }
  return s;
}

// The nearest of k centroids (ties: the lower index).
std::size_t nearest(const double* v, const std::vector<double>& c, std::size_t k,
                    const double* weight, std::size_t d) {
  std::size_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < k; ++i) {
    const double x = distance(v, c.data() + i * d, weight, d);
    if (x < best_d) {
      best_d = x;
      best = i;
    }
  }
  return best;
}

// A code book rounded to int8 with one FP16 scale: s = fp16(max |c| / 127).
void round_codebook(std::vector<double>& c) {
  double amax = 0.0;
  for (double x : c) amax = std::max(amax, std::fabs(x));
  const double s = static_cast<double>(
      decode_f32(kFp16, encode(kFp16, amax / 127.0, {Rounding::kNearestEven, true})));
  for (double& x : c) x = s > 0.0 ? std::clamp(std::nearbyint(x / s), -127.0, 127.0) * s : 0.0;
}

// Weighted k-means of n d-vectors (points [n x d], each with its coordinate
// weights [n x d]) into k centroids, then rounded to int8 with one FP16 scale.
std::vector<double> fit_codebook(const std::vector<double>& points,
                                 const std::vector<double>& weights, std::size_t n, std::size_t d,
                                 std::size_t k, int iterations, std::uint64_t seed) {
  std::vector<double> c(k * d, 0.0);
  if (n == 0) return c;
  // k-means++: the first centroid uniformly, then each in proportion to the
  // weighted distance to the nearest one chosen so far.
  std::uint64_t state = seed;
  std::vector<double> dist(n, std::numeric_limits<double>::infinity());
  std::size_t pick = std::min<std::size_t>(
      n - 1, static_cast<std::size_t>(uniform(state) * static_cast<double>(n)));
  for (std::size_t i = 0; i < k; ++i) {
    std::copy_n(points.data() + pick * d, d, c.data() + i * d);
    double total = 0.0;
    for (std::size_t p = 0; p < n; ++p) {
      dist[p] = std::min(
          dist[p], distance(points.data() + p * d, c.data() + i * d, weights.data() + p * d, d));
      total += dist[p];
    }
    if (i + 1 == k) break;
    if (!(total > 0.0)) {  // every point already a centroid: repeat them in order
      pick = (i + 1) % n;
      continue;
    }
    double target = uniform(state) * total;
    pick = n - 1;
    for (std::size_t p = 0; p < n; ++p) {
      target -= dist[p];
      if (target < 0.0) {
        pick = p;
        break;
      }
    }
  }
  // Lloyd: assign, then each coordinate of a centroid the weighted mean of
  // its points' coordinates (an empty cluster keeps its centroid).
  std::vector<std::size_t> assign(n);
  std::vector<double> sum(k * d), wsum(k * d);
  for (int it = 0; it < iterations; ++it) {
    bool moved = false;
    for (std::size_t p = 0; p < n; ++p) {
      const std::size_t a = nearest(points.data() + p * d, c, k, weights.data() + p * d, d);
      moved |= it == 0 || a != assign[p];
      assign[p] = a;
    }
    if (!moved) break;
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(wsum.begin(), wsum.end(), 0.0);
    for (std::size_t p = 0; p < n; ++p) {
      for (std::size_t t = 0; t < d; ++t) {
        sum[assign[p] * d + t] += weights[p * d + t] * points[p * d + t];
        wsum[assign[p] * d + t] += weights[p * d + t];
      }
    }
    for (std::size_t i = 0; i < k * d; ++i) {
      if (wsum[i] > 0.0) c[i] = sum[i] / wsum[i];
    }
  }
  round_codebook(c);
  return c;
}

// The layer's output error tr(R H R^T) of a row block's residual R [nr x cols].
double output_error(const std::vector<double>& r, std::size_t nr, std::size_t cols,
                    std::span<const double> h) {
  double e = 0.0;
  std::vector<double> rh(cols);
  for (std::size_t i = 0; i < nr; ++i) {
    const double* ri = r.data() + i * cols;
    std::fill(rh.begin(), rh.end(), 0.0);
    for (std::size_t a = 0; a < cols; ++a) {
      if (ri[a] == 0.0) continue;
      const double* ha = h.data() + a * cols;
      for (std::size_t b = 0; b < cols; ++b) rh[b] += ri[a] * ha[b];
    }
    for (std::size_t b = 0; b < cols; ++b) e += rh[b] * ri[b];
  }
  return e;
}

// GPTVQ's code-book update: with every vector's index fixed, the centroids of
// a row block's code books (all its column groups, `cbs`) are moved toward the
// least output error tr((W - Q) H (W - Q)^T) by `steps` conjugate-gradient
// steps on that quadratic, then rounded to int8 again; kept only if the
// rounded result errs less. `index(r, v)` is row r's index of vector v.
void update_codebooks(const double* w, std::size_t nr, std::size_t cols, std::size_t d,
                      std::size_t group_cols, const std::uint32_t* index, std::span<const double> h,
                      int steps, std::vector<std::vector<double>>& cbs) {
  const std::size_t nv = cols / d;
  const auto group_of = [&](std::size_t v) { return (v * d) / group_cols; };
  // Q = A(C): every vector's centroid in place.
  const auto apply = [&](const std::vector<std::vector<double>>& c, std::vector<double>& q) {
    q.assign(nr * cols, 0.0);
    for (std::size_t r = 0; r < nr; ++r) {
      for (std::size_t v = 0; v < nv; ++v) {
        const double* cv = c[group_of(v)].data() + index[r * nv + v] * d;
        for (std::size_t t = 0; t < d; ++t) q[r * cols + v * d + t] = cv[t];
      }
    }
  };
  // A^T(Y H): the gradient's scatter of Y H onto the centroids.
  const auto adjoint = [&](const std::vector<double>& y, std::vector<std::vector<double>>& g) {
    for (auto& x : g) std::fill(x.begin(), x.end(), 0.0);
    std::vector<double> yh(cols);
    for (std::size_t r = 0; r < nr; ++r) {
      std::fill(yh.begin(), yh.end(), 0.0);
      for (std::size_t a = 0; a < cols; ++a) {
        const double ya = y[r * cols + a];
        if (ya == 0.0) continue;
        const double* ha = h.data() + a * cols;
        for (std::size_t b = 0; b < cols; ++b) yh[b] += ya * ha[b];
      }
      for (std::size_t v = 0; v < nv; ++v) {
        double* gv = g[group_of(v)].data() + index[r * nv + v] * d;
        for (std::size_t t = 0; t < d; ++t) gv[t] += yh[v * d + t];
      }
    }
  };
  const auto dot = [](const std::vector<std::vector<double>>& a,
                      const std::vector<std::vector<double>>& b) {
    double s = 0.0;
    for (std::size_t g = 0; g < a.size(); ++g) {
      for (std::size_t i = 0; i < a[g].size(); ++i) s += a[g][i] * b[g][i];
    }
    return s;
  };
  std::vector<double> q, resid(nr * cols);
  apply(cbs, q);
  for (std::size_t i = 0; i < nr * cols; ++i) resid[i] = w[i] - q[i];
  const double before = output_error(resid, nr, cols, h);
  std::vector<std::vector<double>> x = cbs, res = cbs, p, ap = cbs;
  adjoint(resid, res);  // b - M x
  p = res;
  double rr = dot(res, res);
  for (int step = 0; step < steps && rr > 0.0; ++step) {
    std::vector<double> qp;
    apply(p, qp);
    adjoint(qp, ap);
    const double pap = dot(p, ap);
    if (!(pap > 0.0)) break;
    const double alpha = rr / pap;
    for (std::size_t g = 0; g < x.size(); ++g) {
      for (std::size_t i = 0; i < x[g].size(); ++i) {
        x[g][i] += alpha * p[g][i];
        res[g][i] -= alpha * ap[g][i];
      }
    }
    const double rr_next = dot(res, res);
    const double beta = rr_next / rr;
    rr = rr_next;
    for (std::size_t g = 0; g < p.size(); ++g) {
      for (std::size_t i = 0; i < p[g].size(); ++i) p[g][i] = res[g][i] + beta * p[g][i];
    }
  }
  for (auto& c : x) round_codebook(c);
  apply(x, q);
  for (std::size_t i = 0; i < nr * cols; ++i) resid[i] = w[i] - q[i];
  if (output_error(resid, nr, cols, h) < before) cbs = std::move(x);
}

}  // namespace

void check_vq(const VqOptions& o, std::size_t rows, std::size_t cols) {
  const std::string d = std::to_string(o.dim);
  if (o.dim != 1 && o.dim != 2 && o.dim != 4) {
    throw Error("--vq-dim " + d + ": vectors of 1, 2 or 4 weights");
  }
  if (o.bits < 1 || o.bits * o.dim > 12) {
    throw Error("--vq-dim " + d + " with " + std::to_string(o.bits) +
                "-bit indices per weight: a code book of 2^" + std::to_string(o.bits * o.dim) +
                " entries (at most 2^12 = 4096)");
  }
  if (cols % o.dim != 0 || o.group_cols % o.dim != 0 || o.group_cols == 0 || o.group_rows == 0) {
    throw Error("--vq-dim " + d + ": the columns (" + std::to_string(cols) +
                ") and the code-book group (" + std::to_string(o.group_cols) +
                " columns) must be multiples of the vector size");
  }
  const std::size_t k = std::size_t{1} << (o.bits * o.dim);
  const std::size_t vectors = std::min(rows, o.group_rows) * std::min(cols, o.group_cols) / o.dim;
  if (k > vectors) {
    throw Error("--vq-dim " + d + ": a code book of " + std::to_string(k) +
                " entries is bigger than its group of " + std::to_string(vectors) + " vectors");
  }
}

VqResult vector_quantize(std::span<const float> w, std::size_t rows, std::size_t cols,
                         const VqOptions& o, const InputHessian* h, double damp, unsigned threads) {
  check_vq(o, rows, cols);
  if (w.size() != rows * cols) throw Error("vector_quantize: sizes do not match");
  if (h != nullptr && h->cols() != cols) throw Error("vector_quantize: the Hessian's size");
  threads = std::max(1u, threads);
  const std::size_t d = o.dim, k = std::size_t{1} << (o.bits * d);
  VqResult out;
  std::vector<double> u;
  std::vector<double> importance(cols, 1.0);
  if (h != nullptr) {
    out.damp = detail::gptq_inverse_factor(*h, rows, damp, threads, u, out.warnings);
    for (std::size_t j = 0; j < cols; ++j)
      importance[j] = 1.0 / (u[j * cols + j] * u[j * cols + j]);
  }
  const std::size_t row_blocks = (rows + o.group_rows - 1) / o.group_rows;
  const std::size_t col_groups = (cols + o.group_cols - 1) / o.group_cols;
  out.weights.assign(rows * cols, 0.0f);
  out.indices.assign(rows * (cols / d), 0);
  out.codebooks.assign(row_blocks * col_groups, {});
  // Row blocks are independent (their own code books and rows).
  parallel_for(row_blocks, threads, [&](std::size_t b0, std::size_t b1) {
    std::vector<double> points, weights, vec(d), wt(d);
    for (std::size_t rb = b0; rb < b1; ++rb) {
      const std::size_t r0 = rb * o.group_rows, nr = std::min(o.group_rows, rows - r0);
      std::vector<double> cur(nr * cols);  // this block's weights as GPTQ updates them
      std::vector<std::vector<double>> blocks(col_groups);  // the code books
      for (std::size_t i = 0; i < nr * cols; ++i) cur[i] = w[r0 * cols + i];
      for (std::size_t g = 0; g < col_groups; ++g) {
        const std::size_t c0 = g * o.group_cols, nc = std::min(o.group_cols, cols - c0);
        points.clear();
        weights.clear();
        for (std::size_t r = 0; r < nr; ++r) {
          for (std::size_t j = c0; j < c0 + nc; ++j) {
            points.push_back(cur[r * cols + j]);
            weights.push_back(importance[j]);
          }
        }
        blocks[g] = fit_codebook(points, weights, nr * nc / d, d, k, o.iterations,
                                 o.seed + 0x100000001ull * (rb * col_groups + g));
        const std::vector<double>& cb = blocks[g];
        for (std::size_t j = c0; j < c0 + nc; j += d) {
          for (std::size_t r = 0; r < nr; ++r) {
            double* row = cur.data() + r * cols;
            const std::size_t idx = nearest(row + j, cb, k, importance.data() + j, d);
            out.indices[(r0 + r) * (cols / d) + j / d] = static_cast<std::uint32_t>(idx);
            for (std::size_t t = 0; t < d; ++t) {
              const double q = cb[idx * d + t];
              out.weights[(r0 + r) * cols + j + t] = static_cast<float>(q);
              if (h == nullptr) continue;
              // GPTQ: this column's error onto the columns to its right.
              const std::size_t jj = j + t;
              const double e = (row[jj] - q) / u[jj * cols + jj];
              const double* ur = u.data() + jj * cols;
              for (std::size_t c = jj + 1; c < cols; ++c) row[c] -= e * ur[c];
            }
          }
        }
      }
      if (h != nullptr && o.update_steps > 0) {
        std::vector<double> wb(w.begin() + static_cast<std::ptrdiff_t>(r0 * cols),
                               w.begin() + static_cast<std::ptrdiff_t>((r0 + nr) * cols));
        update_codebooks(wb.data(), nr, cols, d, o.group_cols, out.indices.data() + r0 * (cols / d),
                         h->matrix(), o.update_steps, blocks);
        const std::size_t nv = cols / d;
        for (std::size_t r = 0; r < nr; ++r) {
          for (std::size_t v = 0; v < nv; ++v) {
            const double* cv =
                blocks[(v * d) / o.group_cols].data() + out.indices[(r0 + r) * nv + v] * d;
            for (std::size_t t = 0; t < d; ++t) {
              out.weights[(r0 + r) * cols + v * d + t] = static_cast<float>(cv[t]);
            }
          }
        }
      }
      for (std::size_t g = 0; g < col_groups; ++g) {
        out.codebooks[rb * col_groups + g].assign(blocks[g].begin(), blocks[g].end());
      }
    }
  });
  const std::size_t index_bytes = rows * ((cols / d * o.bits * d + 7) / 8);
  out.bytes = index_bytes + out.codebooks.size() * (k * d + 2);
  return out;
}

}  // namespace lowp
