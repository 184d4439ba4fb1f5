// Randomized Hadamard rotations folded into the weights (lowp/quant/rotate.h).
#include "lowp/quant/rotate.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"

namespace lowp {

void fwht(double* x, std::size_t n) {
  if (n == 0 || (n & (n - 1)) != 0) {
    throw Error("fwht: " + std::to_string(n) + " values, expected a power of two");
  }
  for (std::size_t h = 1; h < n; h *= 2) {
    for (std::size_t i = 0; i < n; i += 2 * h) {
      for (std::size_t j = i; j < i + h; ++j) {
        const double a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const double s = 1.0 / std::sqrt(static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i) x[i] *= s;
}

namespace {

// The orthogonal d x d rotation, applied to row vectors.
class Rotation {
 public:
  Rotation(std::size_t d, std::uint64_t seed, bool keep_mean) : d_(d) {
    std::mt19937_64 rng(seed);
    if ((d & (d - 1)) == 0) {
      signs_.resize(d);
      for (double& s : signs_) s = (rng() & 1u) != 0 ? 1.0 : -1.0;
    } else {
      // Gram-Schmidt (twice, for accuracy) of a Gaussian matrix: rows orthonormal.
      std::normal_distribution<double> n(0.0, 1.0);
      r_.resize(d * d);
      for (double& v : r_) v = n(rng);
      for (std::size_t i = 0; i < d; ++i) {
        double* ri = r_.data() + i * d;
        for (int pass = 0; pass < 2; ++pass) {
          for (std::size_t k = 0; k < i; ++k) {
            const double* rk = r_.data() + k * d;
            double dot = 0.0;
            for (std::size_t j = 0; j < d; ++j) dot += ri[j] * rk[j];
            for (std::size_t j = 0; j < d; ++j) ri[j] -= dot * rk[j];
          }
        }
        double norm = 0.0;
        for (std::size_t j = 0; j < d; ++j) norm += ri[j] * ri[j];
        norm = std::sqrt(norm);
        for (std::size_t j = 0; j < d; ++j) ri[j] /= norm;
      }
    }
    if (keep_mean) {
      // u = 1^T K; G reflects u onto 1^T (both have norm sqrt(d)).
      std::vector<double> u(d, 1.0);
      apply_k(u.data());
      double norm = 0.0;
      w_.resize(d);
      for (std::size_t j = 0; j < d; ++j) {
        w_[j] = u[j] - 1.0;
        norm += w_[j] * w_[j];
      }
      norm = std::sqrt(norm);
      if (norm > 1e-12) {
        for (double& v : w_) v /= norm;
      } else {
        w_.clear();  // K already keeps the mean
      }
    }
  }

  // x <- x Q (x has d values).
  void apply(double* x) const {
    apply_k(x);
    if (!w_.empty()) {
      double dot = 0.0;
      for (std::size_t j = 0; j < d_; ++j) dot += x[j] * w_[j];
      for (std::size_t j = 0; j < d_; ++j) x[j] -= 2.0 * dot * w_[j];
    }
  }

 private:
  void apply_k(double* x) const {
    if (!signs_.empty()) {
      for (std::size_t j = 0; j < d_; ++j) x[j] *= signs_[j];
      fwht(x, d_);
      return;
    }
    std::vector<double> y(d_, 0.0);
    for (std::size_t i = 0; i < d_; ++i) {  // (x R)_j = sum_i x_i R[i][j]
      const double* ri = r_.data() + i * d_;
      for (std::size_t j = 0; j < d_; ++j) y[j] += x[i] * ri[j];
    }
    std::copy(y.begin(), y.end(), x);
  }

  std::size_t d_;
  std::vector<double> signs_, r_, w_;
};

// W [rows, d] (reads the residual): W <- W diag(g) Q, row by row.
void rotate_reader(std::vector<float>& w, std::size_t d, const std::vector<float>& g,
                   const Rotation& q) {
  std::vector<double> row(d);
  for (std::size_t r = 0; r < w.size() / d; ++r) {
    for (std::size_t j = 0; j < d; ++j) {
      row[j] = static_cast<double>(w[r * d + j]) * (g.empty() ? 1.0 : g[j]);
    }
    q.apply(row.data());
    for (std::size_t j = 0; j < d; ++j) w[r * d + j] = static_cast<float>(row[j]);
  }
}

// W [d, cols] (writes the residual): W <- Q^T W, i.e. each column c <- c Q.
void rotate_writer(std::vector<float>& w, std::size_t d, std::vector<float>& bias,
                   const Rotation& q) {
  const std::size_t cols = w.size() / d;
  std::vector<double> col(d);
  for (std::size_t c = 0; c < cols; ++c) {
    for (std::size_t i = 0; i < d; ++i) col[i] = w[i * cols + c];
    q.apply(col.data());
    for (std::size_t i = 0; i < d; ++i) w[i * cols + c] = static_cast<float>(col[i]);
  }
  if (!bias.empty()) {
    std::vector<double> b(bias.begin(), bias.end());
    q.apply(b.data());
    for (std::size_t i = 0; i < d; ++i) bias[i] = static_cast<float>(b[i]);
  }
}

// Rows of x [n, d] <- row Q.
void rotate_rows(std::vector<float>& x, std::size_t d, const Rotation& q) {
  rotate_reader(x, d, {}, q);
}

// A norm becomes weight 1 and (LayerNorm) bias (b / g) Q.
void reset_norm(std::vector<float>& g, std::vector<float>& b, std::size_t d, const Rotation& q,
                const std::string& name) {
  if (!b.empty()) {
    std::vector<double> nb(d);
    for (std::size_t j = 0; j < d; ++j) {
      if (g[j] == 0.0f && b[j] != 0.0f) {
        throw Error("rotate: " + name + " has weight 0 but bias " + std::to_string(b[j]) +
                    " at channel " + std::to_string(j) + ", which cannot be folded");
      }
      nb[j] = g[j] == 0.0f ? 0.0 : static_cast<double>(b[j]) / g[j];
    }
    q.apply(nb.data());
    for (std::size_t j = 0; j < d; ++j) b[j] = static_cast<float>(nb[j]);
  }
  std::fill(g.begin(), g.end(), 1.0f);
}

}  // namespace

RotatedModel rotate_hadamard(const nn::TransformerConfig& c, const nn::TransformerWeights& w,
                             const RotateOptions& opt) {
  c.validate("rotate");
  if (c.down_hadamard && opt.mlp) {
    throw Error("rotate: the model's MLP is already rotated (down_hadamard)");
  }
  RotatedModel out{c, w};
  nn::TransformerConfig& oc = out.config;
  nn::TransformerWeights& ow = out.weights;
  const auto d = static_cast<std::size_t>(c.d_model);
  const bool layer_norm = c.norm == nn::NormKind::kLayerNorm;
  const Rotation q(d, opt.seed, layer_norm);
  if (ow.layers.size() != static_cast<std::size_t>(c.n_layer)) {
    throw Error("rotate: " + std::to_string(ow.layers.size()) + " layers of weights for " +
                std::to_string(c.n_layer));
  }
  // The head first, from the unrotated embedding when tied.
  if (c.tied_head) {
    ow.head = w.tok_emb;
    oc.tied_head = false;
  }
  rotate_reader(ow.head, d, ow.norm_f_w, q);
  reset_norm(ow.norm_f_w, ow.norm_f_b, d, q, "the final norm");
  rotate_rows(ow.tok_emb, d, q);
  if (!ow.pos_emb.empty()) rotate_rows(ow.pos_emb, d, q);
  for (std::size_t l = 0; l < ow.layers.size(); ++l) {
    nn::TransformerWeights::Layer& L = ow.layers[l];
    const std::string name = "layer " + std::to_string(l);
    for (std::vector<float>* m : {&L.qkv_w, &L.q_w, &L.k_w, &L.v_w}) {
      if (!m->empty()) rotate_reader(*m, d, L.norm_1_w, q);
    }
    reset_norm(L.norm_1_w, L.norm_1_b, d, q, name + " norm_1");
    for (std::vector<float>* m : {&L.fc_w, &L.gate_w}) {
      if (!m->empty()) rotate_reader(*m, d, L.norm_2_w, q);
    }
    reset_norm(L.norm_2_w, L.norm_2_b, d, q, name + " norm_2");
    rotate_writer(L.o_w, d, L.o_b, q);
    rotate_writer(L.down_w, d, L.down_b, q);
    if (opt.mlp) {
      // o's input, head by head: v's rows of each head (and its bias) become
      // H v, o's columns of each query head W_o H, exactly (attention mixes
      // v linearly; H symmetric and orthonormal). Heads whose size is not a
      // power of two take the block Hadamard of its largest power-of-two
      // divisor.
      const auto dh = static_cast<std::size_t>(c.head_dim);
      const std::size_t hb = dh & (~dh + 1);
      const auto q_dim = static_cast<std::size_t>(c.q_dim());
      const auto kv = static_cast<std::size_t>(c.kv_dim());
      std::vector<float>& vw = c.fused_qkv ? L.qkv_w : L.v_w;
      std::vector<float>& vb = c.fused_qkv ? L.qkv_b : L.v_b;
      const std::size_t v0 = c.fused_qkv ? q_dim + kv : 0;
      std::vector<double> seg(hb);
      for (std::size_t r0 = 0; r0 < kv; r0 += hb) {  // blocks of v's rows
        for (std::size_t col = 0; col < d; ++col) {
          for (std::size_t j = 0; j < hb; ++j) seg[j] = vw[(v0 + r0 + j) * d + col];
          fwht(seg.data(), hb);
          for (std::size_t j = 0; j < hb; ++j)
            vw[(v0 + r0 + j) * d + col] = static_cast<float>(seg[j]);
        }
        if (!vb.empty()) {
          for (std::size_t j = 0; j < hb; ++j) seg[j] = vb[v0 + r0 + j];
          fwht(seg.data(), hb);
          for (std::size_t j = 0; j < hb; ++j) vb[v0 + r0 + j] = static_cast<float>(seg[j]);
        }
      }
      for (std::size_t r = 0; r < d; ++r) {  // blocks of o's columns
        for (std::size_t k = 0; k < q_dim; k += hb) {
          for (std::size_t j = 0; j < hb; ++j) seg[j] = L.o_w[r * q_dim + k + j];
          fwht(seg.data(), hb);
          for (std::size_t j = 0; j < hb; ++j)
            L.o_w[r * q_dim + k + j] = static_cast<float>(seg[j]);
        }
      }
      // down's columns through the block Hadamard the runtime applies online.
      const auto ff = static_cast<std::size_t>(c.d_ff);
      const std::size_t b = c.down_hadamard_block();
      seg.assign(b, 0.0);
      for (std::size_t r = 0; r < d; ++r) {
        for (std::size_t k = 0; k < ff; k += b) {
          for (std::size_t j = 0; j < b; ++j) seg[j] = L.down_w[r * ff + k + j];
          fwht(seg.data(), b);
          for (std::size_t j = 0; j < b; ++j) L.down_w[r * ff + k + j] = static_cast<float>(seg[j]);
        }
      }
    }
  }
  if (opt.mlp) oc.down_hadamard = true;
  return out;
}

}  // namespace lowp
