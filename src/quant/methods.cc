// Weight quantization methods: round to nearest, MSE scale search and GPTQ,
// all through SegmentQuantizer so that any matrix format is a target.
#include "lowp/quant/methods.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>

#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/quant/lowrank.h"
#include "lowp/quant/matryoshka.h"
#include "lowp/quant/power.h"
#include "lowp/quant/vq.h"
#include "lowp/thread_pool.h"
#include "methods_internal.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LOWP_QUANT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LOWP_QUANT_CLONES
#endif

namespace lowp {

std::string_view method_name(QuantMethod m) {
  switch (m) {
    case QuantMethod::kRtn:
      return "rtn";
    case QuantMethod::kMse:
      return "mse";
    case QuantMethod::kGptq:
      return "gptq";
    case QuantMethod::kFpSearch:
      return "fpsearch";
    case QuantMethod::kFpVote:
      return "fpvote";
    case QuantMethod::kPower:
      return "power";
    case QuantMethod::kVq:
      return "vq";
    case QuantMethod::kGptvq:
      return "gptvq";
    case QuantMethod::kMatGptq:
      return "matgptq";
    case QuantMethod::kNupes:
      return "nupes";
  }
  return "?";
}

QuantMethod parse_method(std::string_view name) {
  for (QuantMethod m :
       {QuantMethod::kRtn, QuantMethod::kMse, QuantMethod::kGptq, QuantMethod::kFpSearch,
        QuantMethod::kFpVote, QuantMethod::kPower, QuantMethod::kVq, QuantMethod::kGptvq,
        QuantMethod::kMatGptq, QuantMethod::kNupes}) {
    if (name == method_name(m)) return m;
  }
  throw Error("unknown quantization method '" + std::string(name) +
              "' (expected rtn, mse, gptq, fpsearch, fpvote, power, nupes, vq, gptvq or matgptq)");
}

std::string method_mismatch(QuantMethod m, const MatrixFormat& f) {
  const bool scaled = f.scheme == MatrixScheme::kTensor || f.scheme == MatrixScheme::kChannel ||
                      f.scheme == MatrixScheme::kGroup;
  if (m == QuantMethod::kPower || m == QuantMethod::kNupes) {
    if (scaled && !f.ggml_q8_0) return {};
    return f.name +
           " is not a scaled format; the power map needs one scale per tensor, channel or "
           "group, e.g. int4:channel or int4:group32";
  }
  if (m == QuantMethod::kVq || m == QuantMethod::kGptvq) {
    const bool grouped = f.scheme == MatrixScheme::kGroup || f.scheme == MatrixScheme::kChannel;
    if (grouped && !f.asymmetric && !f.ggml_q8_0 && f.element.kind == Kind::kInt &&
        f.element.bits <= 12) {
      return {};
    }
    return f.name +
           " does not give vector quantization its index bits and group: use int<b>:group<G> "
           "(b index bits per weight, a code book per 256 rows x G columns) or int<b>:channel";
  }
  if (m == QuantMethod::kMatGptq) {
    if (matryoshka_applies(f)) return {};
    return f.name +
           " does not hold int8 codes whose slices are models: use int8, int8:channel, "
           "int8:group<K> or int8:group<K>:asym";
  }
  if (m != QuantMethod::kFpSearch && m != QuantMethod::kFpVote) return {};
  if (scaled && f.element.kind == Kind::kFloat && f.element.bits >= 3 && f.element.bits <= 16) {
    return {};
  }
  return f.name +
         " is not a scaled float format of 3 to 16 bits; the search keeps its scaling and bit "
         "width and chooses the exponent/mantissa split, e.g. fp4_e2m1:channel or "
         "fp8_e4m3:channel";
}

MethodSpec parse_method_spec(std::string_view name) {
  MethodSpec spec;
  std::size_t plus = name.find('+');
  spec.method = parse_method(name.substr(0, plus));
  const auto bad = [&] {
    return Error("method '" + std::string(name) +
                 "': expected <method>[+row][+lorc<R>] (R >= 1), e.g. gptq+lorc8 or gptq+row");
  };
  while (plus != std::string_view::npos) {
    const std::size_t next = name.find('+', plus + 1);
    const std::string_view suffix = name.substr(plus + 1, next - plus - 1);
    if (suffix == "row" && !spec.row_scale && spec.lorc_rank == 0) {
      spec.row_scale = true;
    } else {
      std::size_t rank = 0;
      const char* end = suffix.data() + suffix.size();
      const auto [ptr, ec] = suffix.size() > 4 ? std::from_chars(suffix.data() + 4, end, rank)
                                               : std::from_chars_result{};
      if (!suffix.starts_with("lorc") || ec != std::errc() || ptr != end || rank == 0 ||
          spec.lorc_rank != 0) {
        throw bad();
      }
      spec.lorc_rank = rank;
    }
    plus = next;
  }
  return spec;
}

std::string method_mismatch(const MethodSpec& spec, const MatrixFormat& f) {
  if (spec.row_scale && (f.scheme != MatrixScheme::kBlock || f.block.scale != BlockScale::kUe8m0)) {
    return f.name +
           " has no power-of-two block scales for +row to put under a real row scale: use an "
           "MX format, e.g. mxfp4 or mx:fp4_e2m1:64";
  }
  return method_mismatch(spec.method, f);
}

bool method_needs_data(QuantMethod m) {
  return m == QuantMethod::kGptq || m == QuantMethod::kFpSearch || m == QuantMethod::kGptvq ||
         m == QuantMethod::kMatGptq || m == QuantMethod::kNupes;
}

// ---- the Hessian of a layer input ----

InputHessian::InputHessian(std::size_t cols) : cols_(cols), h_(cols * cols, 0.0) {}

InputHessian InputHessian::from_matrix(std::size_t cols, std::span<const double> h,
                                       std::uint64_t tokens) {
  if (h.size() != cols * cols) {
    throw Error("hessian: " + std::to_string(h.size()) + " values for a " + std::to_string(cols) +
                "x" + std::to_string(cols) + " matrix");
  }
  for (std::size_t i = 0; i < cols; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      if (!std::isfinite(h[i * cols + j]) || h[i * cols + j] != h[j * cols + i]) {
        throw Error("hessian: entry [" + std::to_string(i) + ", " + std::to_string(j) +
                    "] is not finite or not symmetric");
      }
    }
  }
  InputHessian out(cols);
  std::copy(h.begin(), h.end(), out.h_.begin());
  out.tokens_ = tokens;
  return out;
}

void InputHessian::add(const float* x, std::size_t rows, unsigned threads) {
  if (rows == 0 || cols_ == 0) return;
  // X^T X through the fp32 GEMM of PackedMatrix (vector FMAs, threads over
  // rows of the result), one block of columns against each later block (H is
  // symmetric: about half the products of the full square).
  std::vector<float> xt(cols_ * rows);
  for (std::size_t t = 0; t < rows; ++t) {
    for (std::size_t c = 0; c < cols_; ++c) xt[c * rows + t] = x[t * cols_ + c];
  }
  static const MatrixFormat fp32 = parse_matrix_format("fp32");
  constexpr std::size_t kBlock = 256;
  std::vector<float> y;
  for (std::size_t j0 = 0; j0 < cols_; j0 += kBlock) {
    const std::size_t nj = std::min(kBlock, cols_ - j0);
    const PackedMatrix pj = PackedMatrix::quantize(
        fp32, std::span<const float>(xt.data() + j0 * rows, nj * rows), nj, rows);
    for (std::size_t i0 = 0; i0 <= j0; i0 += kBlock) {
      const std::size_t ni = std::min(kBlock, cols_ - i0);
      y.resize(ni * nj);
      pj.gemm(xt.data() + i0 * rows, ni, y.data(), threads);  // y[a][b] = H[i0 + a][j0 + b]
      for (std::size_t a = 0; a < ni; ++a) {
        for (std::size_t b = 0; b < nj; ++b) {
          const auto v = static_cast<double>(y[a * nj + b]);
          h_[(i0 + a) * cols_ + j0 + b] += v;
          if (i0 != j0) h_[(j0 + b) * cols_ + i0 + a] += v;
        }
      }
    }
  }
  tokens_ += rows;
}

namespace {

void check_finite(std::span<const float> w, std::size_t cols, const std::string& name) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i])) {
      throw Error("quantize " + name + ": weight [" + std::to_string(i / cols) + ", " +
                  std::to_string(i % cols) + "] is not finite");
    }
  }
}

// The candidate of `cands` whose weighted squared error over v is least
// (the first on ties).
template <class V>
SegmentScale best_scale(const SegmentQuantizer& sq, std::span<const V> v,
                        const std::vector<SegmentScale>& cands, const double* importance) {
  double best = std::numeric_limits<double>::infinity();
  SegmentScale pick = cands.front();
  for (const SegmentScale& s : cands) {
    double err = 0.0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto x = static_cast<float>(v[i]);
      const double d = static_cast<double>(x) - static_cast<double>(sq.quantize(x, s));
      err += (importance != nullptr ? importance[i] : 1.0) * d * d;
    }
    if (err < best) {
      best = err;
      pick = s;
    }
  }
  return pick;
}

// Scale of one segment by the rule or the search.
template <class V>
SegmentScale choose_scale(const SegmentQuantizer& sq, std::span<const V> v, bool search,
                          const ScaleSearch& opt, const double* importance,
                          std::vector<SegmentScale>& cands, std::vector<float>& tmp) {
  tmp.assign(v.begin(), v.end());
  if (!search) return sq.rule(tmp);
  sq.candidates(tmp, opt, cands);
  return best_scale<float>(sq, tmp, cands, importance);
}

// The tensor scale (kTensor: searched over clips of the rule's when asked;
// NVFP4: the rule's, the block scales absorb the rest).
float choose_tensor_scale(const MatrixFormat& f, std::span<const float> w, std::size_t cols,
                          bool search, const ScaleSearch& opt, const double* importance) {
  const float rule = SegmentQuantizer::rule_tensor_scale(f, w);
  if (!search || f.scheme != MatrixScheme::kTensor || !(rule > 0.0f)) return rule;
  double best = std::numeric_limits<double>::infinity();
  float pick = rule;
  const int steps = std::max(opt.clip_steps, 1);
  for (int i = 0; i <= steps; ++i) {
    const auto s = static_cast<float>(rule * (1.0 - (1.0 - opt.min_clip) * i / steps));
    const SegmentQuantizer sq(f, cols, s);
    const SegmentScale sc = sq.rule({});
    double err = 0.0;
    for (std::size_t k = 0; k < w.size(); ++k) {
      const double d = static_cast<double>(w[k]) - static_cast<double>(sq.quantize(w[k], sc));
      err += (importance != nullptr ? importance[k % cols] : 1.0) * d * d;
    }
    if (err < best) {
      best = err;
      pick = s;
    }
  }
  return pick;
}

WeightQuantization quantize_mse(const MatrixFormat& f, std::span<const float> w, std::size_t rows,
                                std::size_t cols, const MethodOptions& opt,
                                const double* importance) {
  const float ts = choose_tensor_scale(f, w, cols, true, opt.search, importance);
  const SegmentQuantizer sq(f, cols, ts);
  const std::size_t seg = sq.segment(), segs = sq.segments();
  std::vector<std::uint32_t> codes(rows * cols);
  std::vector<SegmentScale> scales(rows * segs);
  parallel_for(rows, opt.threads, [&](std::size_t r0, std::size_t r1) {
    std::vector<SegmentScale> cands;
    std::vector<float> tmp;
    for (std::size_t r = r0; r < r1; ++r) {
      for (std::size_t g = 0; g < segs; ++g) {
        const std::size_t b = g * seg, n = std::min(seg, cols - b);
        const auto v = w.subspan(r * cols + b, n);
        const SegmentScale s = choose_scale<float>(
            sq, v, true, opt.search, importance ? importance + b : nullptr, cands, tmp);
        scales[r * segs + g] = s;
        for (std::size_t i = 0; i < n; ++i) codes[r * cols + b + i] = sq.encode(v[i], s);
      }
    }
  });
  return {sq.pack(rows, codes, scales), 0.0, {}, {}, 0};
}

// ---- dense fp64 linear algebra for GPTQ ----
// Blocked so that each pass streams the big matrix once per block of rows or
// columns, with the inner loops written as axpys (no reassociated sums), so
// that every vector clone computes the same numbers as the scalar code.

// y[0..n) -= a * x[0..n)
LOWP_QUANT_CLONES void axpy_sub(double* y, const double* x, double a, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) y[j] -= a * x[j];
}

constexpr std::size_t kPanel = 64;

// In-place lower Cholesky factor of the n x n symmetric matrix a (row-major;
// only the lower triangle is read and written). Returns false at a pivot not
// larger than `min_pivot` (a matrix that is singular up to rounding).
// Blocked right-looking: factor a panel of kPanel columns, then subtract its
// outer product from the trailing lower triangle.
bool cholesky(std::vector<double>& a, std::size_t n, double min_pivot, unsigned threads) {
  std::vector<double> panel;  // the panel's columns below its diagonal block, transposed
  for (std::size_t k0 = 0; k0 < n; k0 += kPanel) {
    const std::size_t k1 = std::min(n, k0 + kPanel), w = k1 - k0;
    // 1. The panel, unblocked (columns k0..k1 of rows k0..n).
    for (std::size_t k = k0; k < k1; ++k) {
      const double pivot = a[k * n + k];
      if (!(pivot > min_pivot) || !std::isfinite(pivot)) return false;
      const double d = std::sqrt(pivot);
      a[k * n + k] = d;
      for (std::size_t i = k + 1; i < n; ++i) a[i * n + k] /= d;
      // Update the rest of the panel's columns (k+1..k1) for rows below.
      for (std::size_t i = k + 1; i < n; ++i) {
        const double lik = a[i * n + k];
        const std::size_t end = std::min(i + 1, k1);
        for (std::size_t j = k + 1; j < end; ++j) a[i * n + j] -= lik * a[j * n + k];
      }
    }
    if (k1 == n) break;
    // 2. Trailing update: A[i][j] -= sum_k L[i][k] L[j][k], k in the panel,
    // for k1 <= j <= i; the panel transposed so each k is a contiguous row.
    panel.assign(w * n, 0.0);
    for (std::size_t i = k1; i < n; ++i) {
      for (std::size_t k = k0; k < k1; ++k) panel[(k - k0) * n + i] = a[i * n + k];
    }
    parallel_for(n - k1, threads, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t i = k1 + r0; i < k1 + r1; ++i) {
        double* row = a.data() + i * n;
        for (std::size_t k = 0; k < w; ++k) {
          axpy_sub(row + k1, panel.data() + k * n + k1, panel[k * n + i], i + 1 - k1);
        }
      }
    });
  }
  return true;
}

// The inverse of the lower-triangular l (n x n), lower triangular. Row i of
// L^-1 is (e_i - sum_{k<i} L[i][k] Linv[k]) / L[i][i]: blocks of rows take
// the finished rows above them in one pass, then finish among themselves.
std::vector<double> invert_lower(const std::vector<double>& l, std::size_t n, unsigned threads) {
  std::vector<double> inv(n * n, 0.0);
  for (std::size_t i0 = 0; i0 < n; i0 += kPanel) {
    const std::size_t i1 = std::min(n, i0 + kPanel);
    // Rows i0..i1 against the finished rows k < i0.
    parallel_for(i1 - i0, threads, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t i = i0 + r0; i < i0 + r1; ++i) {
        double* out = inv.data() + i * n;
        for (std::size_t k = 0; k < i0; ++k) axpy_sub(out, inv.data() + k * n, l[i * n + k], k + 1);
      }
    });
    // Then among themselves, in order.
    for (std::size_t i = i0; i < i1; ++i) {
      double* out = inv.data() + i * n;
      for (std::size_t k = i0; k < i; ++k) axpy_sub(out, inv.data() + k * n, l[i * n + k], k + 1);
      const double d = l[i * n + i];
      for (std::size_t j = 0; j < i; ++j) out[j] /= d;
      out[i] = 1.0 / d;
    }
  }
  return inv;
}

// The upper Cholesky factor U of H^-1 (H^-1 = U^T U), the matrix GPTQ reads
// its error weights from. With J the reversal permutation, J H J = L L^T gives
// H^-1 = (J L^-T J)(J L^-1 J), so U = J L^-1 J: one factorisation and one
// triangular inverse.
bool inverse_cholesky_upper(const std::vector<double>& h, std::size_t n, double min_pivot,
                            unsigned threads, std::vector<double>& u) {
  std::vector<double> a(n * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) a[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  }
  if (!cholesky(a, n, min_pivot, threads)) return false;
  const std::vector<double> inv = invert_lower(a, n, threads);
  u.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i; j < n; ++j) u[i * n + j] = inv[(n - 1 - i) * n + (n - 1 - j)];
  }
  return true;
}

// U of H + damp * mean_diag * I for a rows x cols layer, the damping raised
// tenfold (with a warning) until the factorisation succeeds; returns the
// damping used.
double damped_inverse_cholesky(const std::vector<double>& hp, std::size_t rows, std::size_t cols,
                               double damp, double mean_diag, unsigned threads,
                               std::vector<double>& u, std::vector<std::string>& warnings) {
  for (int attempt = 0;; ++attempt) {
    std::vector<double> hd = hp;
    for (std::size_t i = 0; i < cols; ++i) hd[i * cols + i] += damp * mean_diag;
    if (inverse_cholesky_upper(hd, cols, 1e-9 * mean_diag, threads, u)) return damp;
    if (attempt == 6) {
      throw Error("gptq: the Hessian of a " + std::to_string(rows) + "x" + std::to_string(cols) +
                  " layer is not positive definite even with damping " + std::to_string(damp));
    }
    damp = damp > 0.0 ? damp * 10.0 : 1e-4;
    warnings.push_back("gptq: the Hessian is singular; damping raised to " + std::to_string(damp) +
                       " of its mean diagonal");
  }
}

// MatGPTQ's joint rounding: the int8 code q whose slices S(q, r) (r in
// `bits`, lowp/quant/matryoshka.h) are together nearest to x, sum over r of
// lambda_r (x - value(S(q, r)))^2, searched within 2^(8 - min r) codes either side of
// the int8 rounding (ties: the code nearer to it, then the lower). The error
// GPTQ pushes on is the lambda-weighted mean of the slices' errors: with the columns not yet
// quantized shared by every slice, it minimizes the sum of their objectives.
class JointSlices {
 public:
  JointSlices(const SegmentQuantizer& sq, const std::vector<int>& bits,
              const std::vector<double>& weights)
      : sq_(sq), unsigned_(sq.format().zero_points()) {
    if (!weights.empty() && weights.size() != bits.size()) {
      throw Error("matgptq: " + std::to_string(weights.size()) + " weights for " +
                  std::to_string(bits.size()) + " slice widths");
    }
    double total = 0.0;
    for (std::size_t i = 0; i < bits.size(); ++i) {
      const double wi = weights.empty() ? 1.0 : weights[i];
      if (!(wi >= 0.0) || !std::isfinite(wi)) {
        throw Error("matgptq: the weight of the " + std::to_string(bits[i]) +
                    "-bit slice is not a finite number >= 0");
      }
      weights_.push_back(wi);
      total += wi;
    }
    if (!(total > 0.0)) throw Error("matgptq: the slices' weights sum to 0");
    for (double& wi : weights_) wi /= total;
    int min_bits = 8;
    for (int b : bits) {
      if (b < 1 || b > 8) {
        throw Error("matgptq: a slice of " + std::to_string(b) + " bits (1 to 8)");
      }
      min_bits = std::min(min_bits, b);
      std::array<std::uint32_t, 256> t{};
      for (std::uint32_t c = 0; c < 256; ++c) t[c] = matryoshka_code(c, b, unsigned_);
      slices_.push_back(t);
    }
    if (slices_.empty()) throw Error("matgptq: no slice widths");
    radius_ = 1 << (8 - min_bits);
  }

  // The code, and the mean error of its slices.
  std::pair<std::uint32_t, double> encode(double x, const SegmentScale& s) const {
    const std::uint32_t c0 = sq_.encode(static_cast<float>(x), s);
    const int k0 =
        unsigned_ ? static_cast<int>(c0) : static_cast<int>(static_cast<std::int8_t>(c0));
    const int lo = unsigned_ ? 0 : -127, hi = unsigned_ ? 255 : 127;
    std::uint32_t best = c0;
    double best_cost = cost(x, c0, s), best_err = err_;
    for (int d = 1; d <= radius_; ++d) {
      for (int k : {k0 - d, k0 + d}) {
        if (k < lo || k > hi) continue;
        const auto c = static_cast<std::uint32_t>(k) & 0xFFu;
        const double e = cost(x, c, s);
        if (e < best_cost) {
          best = c;
          best_cost = e;
          best_err = err_;
        }
      }
    }
    return {best, best_err};
  }

 private:
  // Sum of squared slice errors; leaves their mean in err_.
  double cost(double x, std::uint32_t c, const SegmentScale& s) const {
    double sum = 0.0, sq = 0.0;
    for (std::size_t i = 0; i < slices_.size(); ++i) {
      const double e = x - static_cast<double>(sq_.decode(slices_[i][c], s));
      sum += weights_[i] * e;
      sq += weights_[i] * e * e;
    }
    err_ = sum;
    return sq;
  }

  const SegmentQuantizer& sq_;
  bool unsigned_;
  int radius_ = 0;
  std::vector<std::array<std::uint32_t, 256>> slices_;
  std::vector<double> weights_;  // summing to 1
  mutable double err_ = 0.0;
};

WeightQuantization quantize_gptq(const MatrixFormat& f, std::span<const float> w, std::size_t rows,
                                 std::size_t cols, const MethodOptions& opt,
                                 const InputHessian& hess) {
  const GptqOptions& g = opt.gptq;
  WeightQuantization out;
  std::vector<double> h(hess.matrix().begin(), hess.matrix().end());
  std::vector<double> importance(cols);
  // Dead inputs (never non-zero in the calibration data): their weights
  // cannot matter, so they are quantized as zero... of the format's scale.
  std::vector<bool> dead(cols, false);
  double mean_diag = 0.0;
  for (std::size_t j = 0; j < cols; ++j) {
    if (!(h[j * cols + j] > 0.0)) {
      dead[j] = true;
      h[j * cols + j] = 1.0;
    }
    importance[j] = h[j * cols + j];
    mean_diag += h[j * cols + j];
  }
  mean_diag /= static_cast<double>(std::max<std::size_t>(cols, 1));

  // Column order.
  std::vector<std::size_t> perm(cols);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (g.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) {
      return h[a * cols + a] > h[b * cols + b];
    });
  }
  std::vector<double> hp(cols * cols);
  for (std::size_t i = 0; i < cols; ++i) {
    for (std::size_t j = 0; j < cols; ++j) hp[i * cols + j] = h[perm[i] * cols + perm[j]];
  }
  std::vector<double> u;
  out.damp =
      damped_inverse_cholesky(hp, rows, cols, g.damp, mean_diag, opt.threads, u, out.warnings);

  const float ts = choose_tensor_scale(f, w, cols, g.mse_scales, opt.search, importance.data());
  const SegmentQuantizer sq(f, cols, ts);
  std::optional<JointSlices> joint;
  if (opt.method == QuantMethod::kMatGptq)
    joint.emplace(sq, opt.matryoshka_bits, opt.matryoshka_weights);
  const std::size_t seg = sq.segment(), segs = sq.segments();
  const bool per_segment = f.scheme == MatrixScheme::kGroup || f.scheme == MatrixScheme::kBlock;
  const bool static_scales = !per_segment || g.act_order || g.static_groups;
  std::vector<std::uint32_t> codes(rows * cols);
  std::vector<SegmentScale> scales(rows * segs);
  const std::size_t block = std::max<std::size_t>(g.block, 1);

  // Rows are independent: tiles of rows run the column loop together, so
  // that each row of U is read once per tile.
  constexpr std::size_t kTile = 32;
  const std::size_t tiles = (rows + kTile - 1) / kTile;
  parallel_for(tiles, opt.threads, [&](std::size_t t0, std::size_t t1) {
    std::vector<SegmentScale> cands;
    std::vector<float> tmp;
    std::vector<double> wp(kTile * cols), err(kTile * block);
    for (std::size_t tile = t0; tile < t1; ++tile) {
      const std::size_t r0 = tile * kTile, nr = std::min(kTile, rows - r0);
      for (std::size_t t = 0; t < nr; ++t) {
        const float* wr = w.data() + (r0 + t) * cols;
        SegmentScale* sr = scales.data() + (r0 + t) * segs;
        if (static_scales) {
          for (std::size_t s = 0; s < segs; ++s) {
            const std::size_t b = s * seg, n = std::min(seg, cols - b);
            sr[s] = choose_scale<float>(sq, std::span<const float>(wr + b, n), g.mse_scales,
                                        opt.search, importance.data() + b, cands, tmp);
          }
        }
        for (std::size_t i = 0; i < cols; ++i) {
          wp[t * cols + i] = dead[perm[i]] ? 0.0 : static_cast<double>(wr[perm[i]]);
        }
      }
      for (std::size_t b0 = 0; b0 < cols; b0 += block) {
        const std::size_t b1 = std::min(cols, b0 + block), nb = b1 - b0;
        for (std::size_t i = b0; i < b1; ++i) {
          const std::size_t j = perm[i];
          const std::size_t s = j / seg;
          const double* ui = u.data() + i * cols;
          for (std::size_t t = 0; t < nr; ++t) {
            double* wt = wp.data() + t * cols;
            SegmentScale* sr = scales.data() + (r0 + t) * segs;
            if (!static_scales && j % seg == 0) {  // the loop enters a segment (perm is identity)
              const std::size_t n = std::min(seg, cols - j);
              sr[s] = choose_scale<double>(sq, std::span<const double>(wt + i, n), g.mse_scales,
                                           opt.search, importance.data() + j, cands, tmp);
            }
            double e = 0.0;
            if (joint) {
              const auto [c, je] = joint->encode(wt[i], sr[s]);
              codes[(r0 + t) * cols + j] = c;
              e = je / ui[i];
            } else {
              const std::uint32_t c = sq.encode(static_cast<float>(wt[i]), sr[s]);
              codes[(r0 + t) * cols + j] = c;
              e = (wt[i] - static_cast<double>(sq.decode(c, sr[s]))) / ui[i];
            }
            err[t * block + (i - b0)] = e;
            axpy_sub(wt + i + 1, ui + i + 1, e, b1 - i - 1);
          }
        }
        // The block's errors onto every later column at once.
        if (b1 < cols) {
          for (std::size_t t = 0; t < nr; ++t) {
            double* wt = wp.data() + t * cols;
            for (std::size_t i = 0; i < nb; ++i) {
              axpy_sub(wt + b1, u.data() + (b0 + i) * cols + b1, err[t * block + i], cols - b1);
            }
          }
        }
      }
    }
  });
  out.matrix = sq.pack(rows, codes, scales);
  return out;
}

// The input's second moment per column, diag(H) (clamped at 0), as the
// searches weight the error; empty without statistics.
std::vector<double> diag_importance(const InputHessian* h, std::size_t cols) {
  std::vector<double> out;
  if (h == nullptr || h->tokens() == 0) return out;
  out.resize(cols);
  for (std::size_t j = 0; j < cols; ++j) out[j] = std::max(h->matrix()[j * cols + j], 0.0);
  return out;
}

// The squared error of each row of q against w (fp64), weighted by
// `importance` per column when given.
std::vector<double> row_errors(std::span<const float> w, const PackedMatrix& q,
                               const double* importance, unsigned threads) {
  const std::size_t rows = q.rows(), cols = q.cols();
  std::vector<double> out(rows, 0.0);
  parallel_for(rows, std::max(1u, threads), [&](std::size_t r0, std::size_t r1) {
    std::vector<float> row(cols);
    for (std::size_t r = r0; r < r1; ++r) {
      q.dequantize_row(r, row);
      double e = 0.0;
      for (std::size_t j = 0; j < cols; ++j) {
        const double d = static_cast<double>(w[r * cols + j]) - static_cast<double>(row[j]);
        e += (importance ? importance[j] : 1.0) * d * d;
      }
      out[r] = e;
    }
  });
  return out;
}

// fpsearch and fpvote: every exponent/mantissa split of the element's width,
// each quantized by the mse search; the layer keeps the one its criterion
// picks.
WeightQuantization search_fp_split(const MatrixFormat& f, std::span<const float> w,
                                   std::size_t rows, std::size_t cols, const MethodOptions& opt,
                                   const InputHessian* h) {
  if (const std::string why = method_mismatch(opt.method, f); !why.empty()) {
    throw Error("--method " + std::string(method_name(opt.method)) + ": " + why);
  }
  const std::vector<Format> splits = fp_split_candidates(f.element.bits);
  const std::vector<double> importance = diag_importance(h, cols);
  const double* imp = importance.empty() ? nullptr : importance.data();
  const bool vote = opt.method == QuantMethod::kFpVote;
  std::vector<WeightQuantization> tried;
  std::vector<double> total(splits.size(), 0.0);
  std::vector<std::vector<double>> per_row;
  for (std::size_t i = 0; i < splits.size(); ++i) {
    MatrixFormat g = f;
    g.element = splits[i];
    g.name = matrix_format_name(g);
    tried.push_back(quantize_mse(g, w, rows, cols, opt, imp));
    if (vote) {
      per_row.push_back(row_errors(w, tried.back().matrix, imp, opt.threads));
      for (double e : per_row.back()) total[i] += e;
    } else if (h != nullptr && h->tokens() > 0) {
      total[i] = hessian_error(w, tried.back().matrix, *h, opt.threads);
    } else {
      for (double e : row_errors(w, tried.back().matrix, nullptr, opt.threads)) total[i] += e;
    }
  }
  std::size_t pick = 0;
  std::string detail;
  if (vote) {
    std::vector<std::size_t> votes(splits.size(), 0);
    for (std::size_t r = 0; r < rows; ++r) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < splits.size(); ++i) {
        if (per_row[i][r] < per_row[best][r]) best = i;
      }
      ++votes[best];
    }
    for (std::size_t i = 1; i < splits.size(); ++i) {
      if (votes[i] > votes[pick] || (votes[i] == votes[pick] && total[i] < total[pick])) pick = i;
    }
    for (std::size_t i = 0; i < splits.size(); ++i) {
      detail += (i ? ", " : "") + format_name(splits[i]) + " " + std::to_string(votes[i]);
    }
    detail = "rows voting: " + detail;
  } else {
    for (std::size_t i = 1; i < splits.size(); ++i) {
      if (total[i] < total[pick]) pick = i;
    }
    char buf[64];
    for (std::size_t i = 0; i < splits.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%s%s %.4g", i ? ", " : "", format_name(splits[i]).c_str(),
                    total[i]);
      detail += buf;
    }
    detail = (imp ? "output error: " : "squared error: ") + detail;
  }
  WeightQuantization out = std::move(tried[pick]);
  out.detail = std::move(detail);
  return out;
}

}  // namespace

namespace detail {

PackedMatrix stand_in(std::span<const float> weights, std::size_t rows, std::size_t cols) {
  static const MatrixFormat fp32 = parse_matrix_format("fp32");
  return PackedMatrix::quantize(fp32, weights, rows, cols);
}
double gptq_inverse_factor(const InputHessian& hess, std::size_t rows, double damp,
                           unsigned threads, std::vector<double>& u,
                           std::vector<std::string>& warnings) {
  const std::size_t cols = hess.cols();
  std::vector<double> h(hess.matrix().begin(), hess.matrix().end());
  double mean_diag = 0.0;
  for (std::size_t j = 0; j < cols; ++j) {
    if (!(h[j * cols + j] > 0.0)) h[j * cols + j] = 1.0;  // a dead input
    mean_diag += h[j * cols + j];
  }
  mean_diag /= static_cast<double>(std::max<std::size_t>(cols, 1));
  return damped_inverse_cholesky(h, rows, cols, damp, mean_diag, std::max(1u, threads), u,
                                 warnings);
}
}  // namespace detail

std::vector<Format> fp_split_candidates(int bits) {
  if (bits < 3 || bits > 16) {
    throw Error("exponent/mantissa search: " + std::to_string(bits) +
                "-bit floats are not searched (3 to 16 bits)");
  }
  std::vector<Format> out;
  for (int x = 1; x <= std::min(bits - 1, 5); ++x) {
    const int m = bits - 1 - x;
    out.push_back(parse_format("e" + std::to_string(x) + "m" + std::to_string(m) + "fin"));
  }
  return out;
}

WeightQuantization quantize_weight(const MatrixFormat& f, std::span<const float> w,
                                   std::size_t rows, std::size_t cols, const MethodOptions& opt,
                                   const InputHessian* h) {
  if (w.size() != rows * cols) {
    throw Error("quantize " + f.name + ": " + std::to_string(w.size()) + " values for a " +
                std::to_string(rows) + "x" + std::to_string(cols) + " matrix");
  }
  if (h != nullptr && h->cols() != cols) {
    throw Error("quantize " + f.name + ": a Hessian of " + std::to_string(h->cols()) +
                " inputs for a matrix of " + std::to_string(cols) + " columns");
  }
  if (opt.lorc_rank > 0) {
    MethodOptions base = opt;
    base.lorc_rank = 0;
    WeightQuantization q = quantize_weight(f, w, rows, cols, base, h);
    const LowRankCompensation c = low_rank_compensation(
        w, q.matrix, opt.lorc_rank, parse_matrix_format(opt.lorc_format), opt.threads);
    const std::string stored = q.matrix.format().name;
    const double extra =
        8.0 * static_cast<double>(c.u.bytes() + c.v.bytes()) / static_cast<double>(rows * cols);
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s + LoRC rank %zu in %s (+%.3f bits/weight)", stored.c_str(),
                  opt.lorc_rank, opt.lorc_format.c_str(), extra);
    q.detail = q.detail.empty() ? buf : q.detail + "; " + buf;
    q.matrix = detail::stand_in(c.weights, rows, cols);
    q.stored_bytes = c.bytes;
    return q;
  }
  if (opt.row_scale) {
    // ZeroQuant-FP's second scale layout: W = diag(r) W', r an FP32 scale per
    // row (amax / max(element)) and W' in the MX format, whose block scales
    // are then powers of two relative to the row's.
    if (const std::string why = method_mismatch(MethodSpec{opt.method, 0, true}, f); !why.empty()) {
      throw Error("+row: " + why);
    }
    check_finite(w, cols, f.name);
    const double top = max_finite(f.block.element);
    std::vector<float> r(rows, 1.0f), ws(w.begin(), w.end());
    for (std::size_t i = 0; i < rows; ++i) {
      double amax = 0.0;
      for (std::size_t j = 0; j < cols; ++j)
        amax = std::max(amax, std::fabs(static_cast<double>(w[i * cols + j])));
      if (amax > 0.0) r[i] = static_cast<float>(amax / top);
      for (std::size_t j = 0; j < cols; ++j) {
        ws[i * cols + j] = static_cast<float>(static_cast<double>(w[i * cols + j]) / r[i]);
      }
    }
    MethodOptions base = opt;
    base.row_scale = false;
    WeightQuantization q = quantize_weight(f, ws, rows, cols, base, h);
    std::vector<float> v(rows * cols);
    q.matrix.dequantize(v);
    for (std::size_t i = 0; i < rows * cols; ++i) {
      v[i] = static_cast<float>(static_cast<double>(v[i]) * static_cast<double>(r[i / cols]));
    }
    const std::size_t stored = (q.stored_bytes ? q.stored_bytes : q.matrix.bytes()) + 4 * rows;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s under an FP32 scale per row (+%.3f bits/weight)",
                  q.matrix.format().name.c_str(), 32.0 / static_cast<double>(cols));
    q.detail = q.detail.empty() ? buf : q.detail + "; " + buf;
    q.matrix = detail::stand_in(v, rows, cols);
    q.stored_bytes = stored;
    return q;
  }
  switch (opt.method) {
    case QuantMethod::kRtn:
      return {PackedMatrix::quantize(f, w, rows, cols), 0.0, {}, {}, 0};
    case QuantMethod::kMse: {
      check_finite(w, cols, f.name);
      const std::vector<double> importance = diag_importance(h, cols);
      return quantize_mse(f, w, rows, cols, opt, importance.empty() ? nullptr : importance.data());
    }
    case QuantMethod::kGptq:
    case QuantMethod::kMatGptq:
      if (h == nullptr || h->tokens() == 0) {
        throw Error("quantize " + f.name + ": " + std::string(method_name(opt.method)) +
                    " needs calibration data (the layer's input Hessian), none was given");
      }
      if (const std::string why = method_mismatch(opt.method, f); !why.empty()) {
        throw Error("--method matgptq: " + why);
      }
      check_finite(w, cols, f.name);
      return quantize_gptq(f, w, rows, cols, opt, *h);
    case QuantMethod::kFpSearch:
    case QuantMethod::kFpVote:
      check_finite(w, cols, f.name);
      return search_fp_split(f, w, rows, cols, opt, h);
    case QuantMethod::kVq:
    case QuantMethod::kGptvq: {
      check_finite(w, cols, f.name);
      if (const std::string why = method_mismatch(opt.method, f); !why.empty()) {
        throw Error("--method " + std::string(method_name(opt.method)) + ": " + why);
      }
      if (opt.method == QuantMethod::kGptvq && (h == nullptr || h->tokens() == 0)) {
        throw Error("quantize " + f.name +
                    ": gptvq needs calibration data (the layer's input "
                    "Hessian), none was given");
      }
      VqOptions vo;
      vo.dim = opt.vq_dim;
      vo.update_steps = opt.vq_update;
      vo.bits = static_cast<std::size_t>(f.element.bits);
      vo.group_cols = f.scheme == MatrixScheme::kGroup ? static_cast<std::size_t>(f.group) : cols;
      VqResult r =
          vector_quantize(w, rows, cols, vo, opt.method == QuantMethod::kGptvq ? h : nullptr,
                          opt.gptq.damp, opt.threads);
      WeightQuantization out;
      out.matrix = detail::stand_in(r.weights, rows, cols);
      out.stored_bytes = r.bytes;
      out.damp = r.damp;
      out.warnings = std::move(r.warnings);
      const std::size_t k = std::size_t{1} << (vo.bits * vo.dim);
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "%zu centroids of %zu weights per %zu x %zu group: %.3f bits/weight", k, vo.dim,
                    std::min(rows, vo.group_rows), std::min(cols, vo.group_cols),
                    8.0 * static_cast<double>(r.bytes) / static_cast<double>(rows * cols));
      out.detail = buf;
      return out;
    }
    case QuantMethod::kPower:
    case QuantMethod::kNupes: {
      check_finite(w, cols, f.name);
      const std::string name(method_name(opt.method));
      if (const std::string why = method_mismatch(opt.method, f); !why.empty()) {
        throw Error("--method " + name + ": " + why);
      }
      const bool refine = opt.method == QuantMethod::kNupes;
      if (refine && (h == nullptr || h->tokens() == 0)) {
        throw Error("quantize " + f.name +
                    ": nupes needs calibration data (the layer's input Hessian), none was given");
      }
      const std::vector<double> importance = diag_importance(h, cols);
      PowerQuantization p =
          power_quantize(f, w, rows, cols, importance.empty() ? nullptr : importance.data(),
                         opt.threads, refine ? h : nullptr);
      WeightQuantization out;
      out.matrix = detail::stand_in(p.weights, rows, cols);
      out.stored_bytes = p.stored.bytes() + sizeof(float);  // + the exponent
      char buf[160];
      std::snprintf(buf, sizeof buf, "a = %.3f in %s (%s error %.4g; a = 1: %.4g)", p.exponent,
                    f.name.c_str(), refine ? "output" : "squared", p.error, p.errors.back());
      out.detail = buf;
      return out;
    }
  }
  return {};
}

double hessian_error(std::span<const float> w, const PackedMatrix& q, const InputHessian& h,
                     unsigned threads) {
  const std::size_t rows = q.rows(), cols = q.cols();
  if (w.size() != rows * cols || h.cols() != cols) {
    throw Error("hessian_error: sizes do not match");
  }
  const auto hm = h.matrix();
  // One sum per row, added in row order: the total does not depend on threads.
  std::vector<double> per_row(rows, 0.0);
  parallel_for(rows, std::max(1u, threads), 1, [&](std::size_t r0, std::size_t r1) {
    std::vector<float> row(cols);
    std::vector<double> d(cols);
    for (std::size_t r = r0; r < r1; ++r) {
      q.dequantize_row(r, row);
      for (std::size_t j = 0; j < cols; ++j) {
        d[j] = static_cast<double>(w[r * cols + j]) - static_cast<double>(row[j]);
      }
      double total = 0.0;
      for (std::size_t i = 0; i < cols; ++i) {
        double s = 0.0;
        for (std::size_t j = 0; j < cols; ++j) s += hm[i * cols + j] * d[j];
        total += d[i] * s;
      }
      per_row[r] = total;
    }
  });
  double total = 0.0;
  for (double v : per_row) total += v;
  return total;
}

}  // namespace lowp
