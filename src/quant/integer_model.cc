// Integer-only transformer inference (lowp/quant/integer_model.h).
#include "lowp/quant/integer_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/kernels.h"
#include "lowp/nn/ops.h"
#include "lowp/quant/activations.h"
#include "lowp/quant/integer_ops.h"
#include "lowp/storage/matrix_format.h"
#include "lowp/thread_pool.h"

namespace lowp {

using integer::Dyadic;
using nn::LinearInput;
using nn::LinearKind;

namespace {

constexpr int kResidualBits = 20;  // the residual stream's calibrated absmax -> 2^20
constexpr std::int64_t kResidualLimit = std::int64_t{1} << 30;
constexpr int kFineBits = 14;  // the MLP's and q/k's int32 domains: absmax -> 2^14
constexpr int kRopeFrac = 14;  // cos/sin tables in Q14
constexpr int kSigmoidBits = 15;

// A multiplier that may be 0 (a zero weight row): maps everything to 0.
Dyadic dyadic(double m) { return m > 0 ? Dyadic::of(m) : Dyadic{}; }

// A scale for a calibrated absmax mapped to `top` (a positive fallback for a
// domain that saw only zeros).
double scale_for(double absmax, double top) {
  return absmax > 0 && std::isfinite(absmax) ? absmax / top : 1.0 / top;
}

std::int64_t clamp_residual(std::int64_t v) {
  return std::clamp(v, -kResidualLimit, kResidualLimit);
}

// Saturates to [-128, 127], as lowp's int8 (two's complement) does.
std::int8_t to_i8(std::int64_t v) {
  return static_cast<std::int8_t>(std::clamp<std::int64_t>(v, -128, 127));
}

// An int8 linear layer: y = requant(x W^T + b), per output row.
struct IntLinear {
  std::size_t rows = 0, cols = 0;
  std::vector<std::int8_t> w;      // rows x cols
  std::vector<float> w_scale;      // per row
  std::vector<std::int32_t> bias;  // per row at S_in * w_scale, or empty
  double in_scale = 1.0;
  std::vector<Dyadic> out;  // per row: accumulator -> the consumer's scale

  std::size_t bytes() const { return w.size() + 4 * w_scale.size() + 4 * bias.size(); }

  // acc[t * rows + r] for n rows of x (int8), biases added.
  void run(const std::int8_t* x, std::size_t n, std::int32_t* acc, unsigned threads) const {
    kernels::gemm_i8(x, n, w.data(), rows, cols, acc, threads);
    if (bias.empty()) return;
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t r = 0; r < rows; ++r) {
        const std::int64_t v = std::int64_t{acc[t * rows + r]} + bias[r];
        acc[t * rows + r] =
            static_cast<std::int32_t>(std::clamp<std::int64_t>(v, INT32_MIN, INT32_MAX));
      }
    }
  }
};

IntLinear make_linear(const PackedMatrix& m, std::span<const float> bias, double in_scale) {
  const MatrixFormat& f = m.format();
  if (f.element.kind != Kind::kInt || f.element.bits != 8 || f.scheme != MatrixScheme::kChannel) {
    throw Error("integer model: expected an int8:channel matrix, got " + f.name);
  }
  IntLinear l;
  l.rows = m.rows();
  l.cols = m.cols();
  l.in_scale = in_scale;
  l.w.resize(l.rows * l.cols);
  const std::span<const std::uint8_t> codes = m.codes();
  for (std::size_t i = 0; i < l.w.size(); ++i) {
    l.w[i] = static_cast<std::int8_t>(decode(f.element, codes[i]));
  }
  l.w_scale = m.scales().row;
  if (!bias.empty()) {
    l.bias.resize(l.rows);
    for (std::size_t r = 0; r < l.rows; ++r) {
      const double s = in_scale * static_cast<double>(l.w_scale[r]);
      const double q = s > 0 ? std::round(static_cast<double>(bias[r]) / s) : 0.0;
      l.bias[r] = static_cast<std::int32_t>(std::clamp(q, -2147483647.0, 2147483647.0));
    }
  }
  return l;
}

// Per-row requantization from the accumulator's scale (in * w_scale[r]) to
// out_scale(r).
template <class OutScale>
void set_out(IntLinear& l, OutScale out_scale) {
  l.out.resize(l.rows);
  for (std::size_t r = 0; r < l.rows; ++r) {
    l.out[r] = dyadic(l.in_scale * static_cast<double>(l.w_scale[r]) / out_scale(r));
  }
}

std::int64_t max_abs_code(int bits) { return (std::int64_t{1} << (bits - 1)) - 1; }

// Absmax of the float model's values at the integer model's intermediate
// domains, per layer.
struct Ranges {
  double residual = 0;
  struct Layer {
    double q_pair = 0, k_pair = 0, q = 0, k = 0, v = 0;
    double fc = 0, gate = 0;
  };
  std::vector<Layer> layers;
};

}  // namespace

struct IntegerTransformer::Impl {
  nn::TransformerConfig config;
  std::optional<nn::Transformer> float_int8;  // set by the constructor
  IntegerModelOptions opt;
  double s_res = 1;
  std::vector<std::int32_t> tok_emb, pos_emb;  // at s_res
  struct Layer {
    std::unique_ptr<integer::IntNorm> norm_1, norm_2;
    IntLinear qkv;                     // fused [q; k; v] rows (the separate matrices stacked)
    Dyadic q_to_att, k_to_att;         // fine q/k domain -> attention_bits
    double s_q = 1, s_k = 1, s_v = 1;  // attention operands' scales
    Dyadic score;                      // q.k -> kExpInputScale (1/sqrt(d) folded in)
    Dyadic mix;                        // probabilities x v -> int8 at o's input scale
    IntLinear o;                       // -> s_res
    IntLinear fc, gate;                // -> fine domains
    std::unique_ptr<integer::IGelu> gelu;
    Dyadic act_out;      // GELU / SwiGLU output -> int8 at down's input scale
    Dyadic gate_to_exp;  // SwiGLU: gate's fine domain -> kExpInputScale
    IntLinear down;      // -> s_res
  };
  std::vector<Layer> layers;
  std::unique_ptr<integer::IntNorm> norm_f;
  IntLinear head;
  std::vector<std::int32_t> cos_q, sin_q;  // [n_ctx][head_dim / 2] in Q14

  struct Cache {
    std::vector<std::vector<std::int32_t>> k, v;  // per layer [positions][kv_dim]
    std::size_t length = 0;
  };

  void block(std::size_t li, std::int32_t* x, std::size_t n, Cache& cache, unsigned threads) const;
  void run(std::span<const std::int32_t> tokens, Cache& cache, float* logits,
           std::size_t logit_rows, unsigned threads) const;
  Cache make_cache() const {
    Cache c;
    c.k.resize(layers.size());
    c.v.resize(layers.size());
    return c;
  }
};

namespace {

// The float model's ranges at the integer domains, observed on the
// calibration windows (the linear layers' outputs recomputed from their
// observed inputs).
Ranges observe_ranges(const nn::Transformer& m,
                      const std::vector<std::vector<std::int32_t>>& calibration, unsigned threads) {
  const nn::TransformerConfig& c = m.config();
  const nn::TransformerWeights& w = m.weights();
  Ranges r;
  r.layers.resize(static_cast<std::size_t>(c.n_layer));
  const auto absmax = [](const std::vector<float>& v, std::size_t rows, std::size_t stride,
                         std::size_t begin, std::size_t end, double& out) {
    for (std::size_t t = 0; t < rows; ++t) {
      for (std::size_t j = begin; j < end; ++j) {
        out = std::max(out, static_cast<double>(std::fabs(v[t * stride + j])));
      }
    }
  };
  // The largest norm of a rotate-half pair (i, i + half) of any head: RoPE
  // keeps it, so it bounds every component after rotation.
  const auto pair_max = [&](const std::vector<float>& v, std::size_t rows, std::size_t stride,
                            std::size_t begin, std::size_t heads, double& out) {
    const auto dh = static_cast<std::size_t>(c.head_dim);
    for (std::size_t t = 0; t < rows; ++t) {
      for (std::size_t h = 0; h < heads; ++h) {
        const float* p = v.data() + t * stride + begin + h * dh;
        for (std::size_t i = 0; i < dh / 2; ++i) {
          const double a = p[i], b = p[i + dh / 2];
          out = std::max(out, std::sqrt(a * a + b * b));
        }
      }
    }
  };
  const auto run_linear = [&](int layer, LinearKind kind, const float* x, std::size_t rows,
                              std::span<const float> bias, std::vector<float>& y) {
    const PackedMatrix& pm = m.linear_weight(layer, kind);
    y.resize(rows * pm.rows());
    pm.gemm(x, rows, y.data(), threads);
    if (!bias.empty()) {
      for (std::size_t t = 0; t < rows; ++t) {
        for (std::size_t j = 0; j < pm.rows(); ++j) y[t * pm.rows() + j] += bias[j];
      }
    }
    return pm.rows();
  };
  const auto q_dim = static_cast<std::size_t>(c.q_dim()),
             kv_dim = static_cast<std::size_t>(c.kv_dim());
  std::vector<float> y;
  const nn::LinearObserver observe = [&](int layer, LinearInput input, const float* x,
                                         std::size_t rows, std::size_t) {
    if (layer >= c.n_layer) return;
    Ranges::Layer& rl = r.layers[static_cast<std::size_t>(layer)];
    const nn::TransformerWeights::Layer& lw = w.layers[static_cast<std::size_t>(layer)];
    if (input == LinearInput::kAttention) {
      if (c.fused_qkv) {
        const std::size_t width = run_linear(layer, LinearKind::kQkv, x, rows, lw.qkv_b, y);
        absmax(y, rows, width, 0, q_dim, rl.q);
        absmax(y, rows, width, q_dim, q_dim + kv_dim, rl.k);
        absmax(y, rows, width, q_dim + kv_dim, width, rl.v);
        pair_max(y, rows, width, 0, static_cast<std::size_t>(c.n_head), rl.q_pair);
        pair_max(y, rows, width, q_dim, static_cast<std::size_t>(c.n_kv_head), rl.k_pair);
      } else {
        std::size_t width = run_linear(layer, LinearKind::kQ, x, rows, lw.q_b, y);
        absmax(y, rows, width, 0, width, rl.q);
        pair_max(y, rows, width, 0, static_cast<std::size_t>(c.n_head), rl.q_pair);
        width = run_linear(layer, LinearKind::kK, x, rows, lw.k_b, y);
        absmax(y, rows, width, 0, width, rl.k);
        pair_max(y, rows, width, 0, static_cast<std::size_t>(c.n_kv_head), rl.k_pair);
        width = run_linear(layer, LinearKind::kV, x, rows, lw.v_b, y);
        absmax(y, rows, width, 0, width, rl.v);
      }
    } else if (input == LinearInput::kMlp) {
      std::size_t width = run_linear(layer, LinearKind::kFc, x, rows, lw.fc_b, y);
      absmax(y, rows, width, 0, width, rl.fc);
      if (c.mlp == nn::MlpKind::kSwiGlu) {
        width = run_linear(layer, LinearKind::kGate, x, rows, lw.gate_b, y);
        absmax(y, rows, width, 0, width, rl.gate);
      }
    }
  };
  for (const std::vector<std::int32_t>& seq : calibration) {
    std::vector<float> x = m.embed(seq);
    const auto track = [&] {
      for (const float v : x) r.residual = std::max(r.residual, static_cast<double>(std::fabs(v)));
    };
    track();
    for (int layer = 0; layer < c.n_layer; ++layer) {
      m.run_block(layer, x, observe, threads);
      track();
    }
  }
  return r;
}

std::span<const float> bias_of(const nn::TransformerWeights::Layer& lw, LinearKind k) {
  switch (k) {
    case LinearKind::kQkv:
      return lw.qkv_b;
    case LinearKind::kQ:
      return lw.q_b;
    case LinearKind::kK:
      return lw.k_b;
    case LinearKind::kV:
      return lw.v_b;
    case LinearKind::kO:
      return lw.o_b;
    case LinearKind::kFc:
      return lw.fc_b;
    case LinearKind::kGate:
      return lw.gate_b;
    case LinearKind::kDown:
      return lw.down_b;
    case LinearKind::kHead:
      return {};
  }
  return {};
}

// Stacks the rows of b under a (same cols, same input scale).
void stack(IntLinear& a, const IntLinear& b) {
  if (a.rows == 0) {
    a = b;
    return;
  }
  a.w.insert(a.w.end(), b.w.begin(), b.w.end());
  a.w_scale.insert(a.w_scale.end(), b.w_scale.begin(), b.w_scale.end());
  if (!a.bias.empty() || !b.bias.empty()) {
    a.bias.resize(a.rows, 0);
    std::vector<std::int32_t> bb = b.bias;
    bb.resize(b.rows, 0);
    a.bias.insert(a.bias.end(), bb.begin(), bb.end());
  }
  a.rows += b.rows;
}

}  // namespace

IntegerTransformer::IntegerTransformer(const nn::Transformer& model,
                                       const std::vector<std::vector<std::int32_t>>& calibration,
                                       const IntegerModelOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  const nn::TransformerConfig& c = model.config();
  if (c.qk_norm) throw Error("integer-only inference does not cover Qwen3's q/k norms");
  if (c.down_hadamard) {
    throw Error("integer-only inference does not cover the online Hadamard rotation of the MLP");
  }
  if (opt.attention_bits < 2 || opt.attention_bits > 16) {
    throw Error("integer model: attention bits must be 2..16, got " +
                std::to_string(opt.attention_bits));
  }
  if (opt.softmax_bits < 1 || opt.softmax_bits > 16) {
    throw Error("integer model: softmax bits must be 1..16, got " +
                std::to_string(opt.softmax_bits));
  }
  if (calibration.empty()) throw Error("integer-only inference needs calibration text (--calib)");
  im.config = c;
  im.opt = opt;

  // The float W8A8 model it mirrors: int8:channel weights, static int8
  // activation scales calibrated on it.
  const nn::Transformer w8 = model.with_activations(std::nullopt)
                                 .with_activation_scales(std::nullopt)
                                 .with_weights(parse_matrix_format("int8:channel"));
  StaticActivationOptions so;
  so.element = kInt8;
  so.calibrator = opt.calibrator;
  so.threads = opt.threads;
  const nn::ActivationScales acts = calibrate_activation_scales(w8, calibration, so);
  im.float_int8 = w8.with_activation_scales(acts);
  const Ranges ranges = observe_ranges(*im.float_int8, calibration, opt.threads);

  const auto act_scale = [&](std::size_t layer, LinearInput in) {
    const std::vector<float>& s = acts.scales[layer][static_cast<std::size_t>(in)];
    const double v = s.empty() ? 0.0 : static_cast<double>(s[0]);
    return v > 0 ? v : 1.0 / 127.0;
  };

  const auto d = static_cast<std::size_t>(c.d_model), dh = static_cast<std::size_t>(c.head_dim),
             q_dim = static_cast<std::size_t>(c.q_dim()),
             kv_dim = static_cast<std::size_t>(c.kv_dim());
  const nn::TransformerWeights& w = model.weights();
  const bool rms = c.norm == nn::NormKind::kRmsNorm;
  im.s_res = scale_for(ranges.residual, std::ldexp(1.0, kResidualBits));
  const auto to_residual = [&](const std::vector<float>& table, std::vector<std::int32_t>& out) {
    out.resize(table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
      const double q = std::round(static_cast<double>(table[i]) / im.s_res);
      out[i] = static_cast<std::int32_t>(
          std::clamp(q, -static_cast<double>(kResidualLimit), static_cast<double>(kResidualLimit)));
    }
  };
  to_residual(w.tok_emb, im.tok_emb);
  if (c.learned_positions) to_residual(w.pos_emb, im.pos_emb);
  if (!c.learned_positions) {
    im.cos_q.resize(static_cast<std::size_t>(c.n_ctx) * dh / 2);
    im.sin_q.resize(im.cos_q.size());
    const std::vector<double> div = nn::rope_frequency_divisors(c);
    std::vector<float> cs(dh / 2), sn(dh / 2);
    for (std::size_t p = 0; p < static_cast<std::size_t>(c.n_ctx); ++p) {
      nn::rope_angles(p, dh, c.rope_theta, div, cs.data(), sn.data());
      for (std::size_t i = 0; i < dh / 2; ++i) {
        im.cos_q[p * dh / 2 + i] = static_cast<std::int32_t>(
            std::lround(std::ldexp(static_cast<double>(cs[i]), kRopeFrac)));
        im.sin_q[p * dh / 2 + i] = static_cast<std::int32_t>(
            std::lround(std::ldexp(static_cast<double>(sn[i]), kRopeFrac)));
      }
    }
  }

  const double att_top = static_cast<double>(max_abs_code(opt.attention_bits));
  const double fine_top = std::ldexp(1.0, kFineBits);
  im.layers.resize(static_cast<std::size_t>(c.n_layer));
  for (std::size_t li = 0; li < im.layers.size(); ++li) {
    Impl::Layer& L = im.layers[li];
    const nn::TransformerWeights::Layer& lw = w.layers[li];
    const Ranges::Layer& rl = ranges.layers[li];
    const int layer = static_cast<int>(li);
    const double s_att_in = act_scale(li, LinearInput::kAttention);
    L.norm_1 = std::make_unique<integer::IntNorm>(rms, d, lw.norm_1_w.data(),
                                                  rms ? nullptr : lw.norm_1_b.data(), c.norm_eps,
                                                  im.s_res, s_att_in, 8);
    for (LinearKind k : im.float_int8->linear_kinds(layer)) {
      if (k != LinearKind::kQkv && k != LinearKind::kQ && k != LinearKind::kK &&
          k != LinearKind::kV)
        continue;
      stack(L.qkv, make_linear(im.float_int8->linear_weight(layer, k), bias_of(lw, k), s_att_in));
    }
    // q and k to their fine domains (RoPE runs there), v straight to the
    // attention operand.
    const double rot_q = c.learned_positions ? rl.q : rl.q_pair;
    const double rot_k = c.learned_positions ? rl.k : rl.k_pair;
    const double s_qf = scale_for(rl.q, fine_top), s_kf = scale_for(rl.k, fine_top);
    L.s_q = scale_for(rot_q, att_top);
    L.s_k = scale_for(rot_k, att_top);
    L.s_v = scale_for(rl.v, att_top);
    set_out(L.qkv, [&](std::size_t r) {
      return r < q_dim ? s_qf : r < q_dim + kv_dim ? s_kf : L.s_v;
    });
    L.q_to_att = dyadic(s_qf / L.s_q);
    L.k_to_att = dyadic(s_kf / L.s_k);
    L.score = dyadic(L.s_q * L.s_k / std::sqrt(static_cast<double>(dh)) / integer::kExpInputScale);
    const double s_ao = act_scale(li, LinearInput::kAttentionOutput);
    L.mix = dyadic(std::ldexp(L.s_v, -opt.softmax_bits) / s_ao);
    L.o = make_linear(im.float_int8->linear_weight(layer, LinearKind::kO), lw.o_b, s_ao);
    set_out(L.o, [&](std::size_t) { return im.s_res; });

    const double s_mlp = act_scale(li, LinearInput::kMlp);
    L.norm_2 = std::make_unique<integer::IntNorm>(rms, d, lw.norm_2_w.data(),
                                                  rms ? nullptr : lw.norm_2_b.data(), c.norm_eps,
                                                  im.s_res, s_mlp, 8);
    const double s_down = act_scale(li, LinearInput::kMlpOutput);
    const double s_fc = scale_for(rl.fc, fine_top);
    L.fc = make_linear(im.float_int8->linear_weight(layer, LinearKind::kFc), lw.fc_b, s_mlp);
    set_out(L.fc, [&](std::size_t) { return s_fc; });
    if (c.mlp == nn::MlpKind::kSwiGlu) {
      const double s_gate = scale_for(rl.gate, fine_top);
      L.gate =
          make_linear(im.float_int8->linear_weight(layer, LinearKind::kGate), lw.gate_b, s_mlp);
      set_out(L.gate, [&](std::size_t) { return s_gate; });
      L.gate_to_exp = dyadic(s_gate / integer::kExpInputScale);
      // silu(g) u: (g sigmoid >> 15) at s_gate, times u at s_fc.
      L.act_out = dyadic(s_gate * s_fc / s_down);
    } else {
      L.gelu = std::make_unique<integer::IGelu>(s_fc);
      L.act_out = dyadic(L.gelu->out_scale() / s_down);
    }
    L.down = make_linear(im.float_int8->linear_weight(layer, LinearKind::kDown), lw.down_b, s_down);
    set_out(L.down, [&](std::size_t) { return im.s_res; });
  }
  const auto last = static_cast<std::size_t>(c.n_layer);
  const double s_head = act_scale(last, LinearInput::kHead);
  im.norm_f = std::make_unique<integer::IntNorm>(rms, d, w.norm_f_w.data(),
                                                 rms ? nullptr : w.norm_f_b.data(), c.norm_eps,
                                                 im.s_res, s_head, 8);
  im.head = make_linear(im.float_int8->linear_weight(c.n_layer, LinearKind::kHead), {}, s_head);
}

IntegerTransformer::~IntegerTransformer() = default;
IntegerTransformer::IntegerTransformer(IntegerTransformer&&) noexcept = default;
IntegerTransformer& IntegerTransformer::operator=(IntegerTransformer&&) noexcept = default;

const nn::TransformerConfig& IntegerTransformer::config() const { return impl_->config; }
const nn::Transformer& IntegerTransformer::float_int8() const { return *impl_->float_int8; }

std::size_t IntegerTransformer::weight_bytes() const {
  const Impl& im = *impl_;
  std::size_t b = 4 * (im.tok_emb.size() + im.pos_emb.size()) + im.head.bytes();
  b += 16 * im.norm_f->size();
  for (const Impl::Layer& L : im.layers) {
    b += L.qkv.bytes() + L.o.bytes() + L.fc.bytes() + L.gate.bytes() + L.down.bytes();
    b += 16 * (L.norm_1->size() + L.norm_2->size());
  }
  return b;
}

double IntegerTransformer::linear_bits_per_weight() const {
  const Impl& im = *impl_;
  double bits = 0, weights = 0;
  const auto add = [&](const IntLinear& l) {
    bits += 8.0 * static_cast<double>(l.w.size()) + 32.0 * static_cast<double>(l.w_scale.size());
    weights += static_cast<double>(l.w.size());
  };
  for (const Impl::Layer& L : im.layers) {
    add(L.qkv);
    add(L.o);
    add(L.fc);
    if (L.gate.rows) add(L.gate);
    add(L.down);
  }
  add(im.head);
  return bits / weights;
}

void IntegerTransformer::Impl::block(std::size_t li, std::int32_t* x, std::size_t n, Cache& cache,
                                     unsigned threads) const {
  const nn::TransformerConfig& c = config;
  const Layer& L = layers[li];
  const std::size_t p0 = cache.length, total = p0 + n;
  const auto d = static_cast<std::size_t>(c.d_model), ff = static_cast<std::size_t>(c.d_ff),
             heads = static_cast<std::size_t>(c.n_head),
             kv_heads = static_cast<std::size_t>(c.n_kv_head),
             dh = static_cast<std::size_t>(c.head_dim), q_dim = heads * dh, kv_dim = kv_heads * dh,
             group = heads / kv_heads, width = q_dim + 2 * kv_dim, half = dh / 2;
  const int ab = opt.attention_bits;
  std::vector<std::int32_t> tmp(n * std::max(d, ff));
  std::vector<std::int8_t> in8(n * std::max({d, ff, q_dim}));
  std::vector<std::int32_t> acc(n * std::max({width, ff, d}));
  const auto norm_to_i8 = [&](const integer::IntNorm& norm) {
    for (std::size_t t = 0; t < n; ++t) {
      norm(x + t * d, tmp.data() + t * d);
      for (std::size_t j = 0; j < d; ++j) in8[t * d + j] = static_cast<std::int8_t>(tmp[t * d + j]);
    }
  };
  const auto add_residual = [&](const IntLinear& l) {
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t j = 0; j < d; ++j) {
        const std::int64_t v = std::int64_t{x[t * d + j]} + l.out[j].apply(acc[t * d + j]);
        x[t * d + j] = static_cast<std::int32_t>(clamp_residual(v));
      }
    }
  };

  // ---- attention ----
  norm_to_i8(*L.norm_1);
  L.qkv.run(in8.data(), n, acc.data(), threads);
  if (cache.k[li].size() < total * kv_dim) {
    cache.k[li].resize(total * kv_dim);
    cache.v[li].resize(total * kv_dim);
  }
  std::vector<std::int32_t> q(n * q_dim), fine(std::max(q_dim, kv_dim));
  const auto rotate_to = [&](const std::int32_t* a, std::size_t nh, std::size_t pos,
                             const Dyadic& to_att, std::int32_t* out) {
    // a: nh heads of fine-domain values; RoPE in Q14, then to attention bits.
    for (std::size_t h = 0; h < nh; ++h) {
      const std::int32_t* ah = a + h * dh;
      std::int32_t* oh = out + h * dh;
      for (std::size_t i = 0; i < (c.learned_positions ? dh : half); ++i) {
        if (c.learned_positions) {
          oh[i] = integer::saturate(to_att.apply(ah[i]), ab);
          continue;
        }
        const std::int64_t cs = cos_q[pos * half + i], sn = sin_q[pos * half + i];
        const std::int64_t x1 = ah[i], x2 = ah[i + half];
        const std::int64_t r1 = integer::round_div(x1 * cs - x2 * sn, std::int64_t{1} << kRopeFrac);
        const std::int64_t r2 = integer::round_div(x2 * cs + x1 * sn, std::int64_t{1} << kRopeFrac);
        oh[i] = integer::saturate(to_att.apply(r1), ab);
        oh[i + half] = integer::saturate(to_att.apply(r2), ab);
      }
    }
  };
  for (std::size_t t = 0; t < n; ++t) {
    const std::int32_t* a = acc.data() + t * width;
    for (std::size_t j = 0; j < q_dim; ++j)
      fine[j] = static_cast<std::int32_t>(L.qkv.out[j].apply(a[j]));
    rotate_to(fine.data(), heads, p0 + t, L.q_to_att, q.data() + t * q_dim);
    for (std::size_t j = 0; j < kv_dim; ++j)
      fine[j] = static_cast<std::int32_t>(L.qkv.out[q_dim + j].apply(a[q_dim + j]));
    rotate_to(fine.data(), kv_heads, p0 + t, L.k_to_att, cache.k[li].data() + (p0 + t) * kv_dim);
    std::int32_t* vt = cache.v[li].data() + (p0 + t) * kv_dim;
    for (std::size_t j = 0; j < kv_dim; ++j) {
      const std::size_t r = q_dim + kv_dim + j;
      vt[j] = integer::saturate(L.qkv.out[r].apply(a[r]), ab);
    }
  }
  const std::int32_t* kc = cache.k[li].data();
  const std::int32_t* vc = cache.v[li].data();
  // y: the heads' mixed values as int8 at o's input scale (in in8).
  parallel_for(heads, threads, [&](std::size_t h0, std::size_t h1) {
    std::vector<std::int64_t> scores(total);
    std::vector<std::int32_t> p(total);
    for (std::size_t hd = h0; hd < h1; ++hd) {
      const std::size_t g = hd / group;
      for (std::size_t t = 0; t < n; ++t) {
        const std::size_t keys = p0 + t + 1;
        const std::int32_t* qt = q.data() + t * q_dim + hd * dh;
        for (std::size_t j = 0; j < keys; ++j) {
          const std::int32_t* kj = kc + j * kv_dim + g * dh;
          std::int64_t s = 0;
          for (std::size_t i = 0; i < dh; ++i) s += std::int64_t{qt[i]} * kj[i];
          scores[j] = L.score.apply(s);
        }
        integer::softmax(scores.data(), keys, opt.softmax_bits, p.data());
        for (std::size_t i = 0; i < dh; ++i) {
          std::int64_t s = 0;
          for (std::size_t j = 0; j < keys; ++j)
            s += std::int64_t{p[j]} * vc[j * kv_dim + g * dh + i];
          in8[t * q_dim + hd * dh + i] = to_i8(L.mix.apply(s));
        }
      }
    }
  });
  L.o.run(in8.data(), n, acc.data(), threads);
  add_residual(L.o);

  // ---- MLP ----
  norm_to_i8(*L.norm_2);
  std::vector<std::int32_t> up(n * ff);
  L.fc.run(in8.data(), n, up.data(), threads);
  for (std::size_t t = 0; t < n * ff; ++t)
    up[t] = static_cast<std::int32_t>(L.fc.out[t % ff].apply(up[t]));
  if (L.gelu) {
    for (std::size_t t = 0; t < n * ff; ++t) in8[t] = to_i8(L.act_out.apply((*L.gelu)(up[t])));
  } else {
    L.gate.run(in8.data(), n, acc.data(), threads);
    for (std::size_t t = 0; t < n * ff; ++t) {
      const std::int64_t g = L.gate.out[t % ff].apply(acc[t]);
      const std::int64_t sg = integer::sigmoid(L.gate_to_exp.apply(g), kSigmoidBits);
      const std::int64_t silu = integer::round_div(g * sg, std::int64_t{1} << kSigmoidBits);
      in8[t] = to_i8(L.act_out.apply(silu * up[t]));
    }
  }
  L.down.run(in8.data(), n, acc.data(), threads);
  add_residual(L.down);
}

void IntegerTransformer::Impl::run(std::span<const std::int32_t> tokens, Cache& cache,
                                   float* logits, std::size_t logit_rows, unsigned threads) const {
  const nn::TransformerConfig& c = config;
  const std::size_t n = tokens.size(), p0 = cache.length;
  const auto d = static_cast<std::size_t>(c.d_model);
  std::vector<std::int32_t> x(n * d);
  for (std::size_t t = 0; t < n; ++t) {
    const std::int32_t* te = tok_emb.data() + static_cast<std::size_t>(tokens[t]) * d;
    for (std::size_t j = 0; j < d; ++j) {
      std::int64_t v = te[j];
      if (c.learned_positions) v += pos_emb[(p0 + t) * d + j];
      x[t * d + j] = static_cast<std::int32_t>(clamp_residual(v));
    }
  }
  for (std::size_t li = 0; li < layers.size(); ++li) block(li, x.data(), n, cache, threads);
  cache.length = p0 + n;
  if (logit_rows == 0) return;
  std::vector<std::int32_t> h(d);
  std::vector<std::int8_t> in8(logit_rows * d);
  for (std::size_t t = 0; t < logit_rows; ++t) {
    (*norm_f)(x.data() + (n - logit_rows + t) * d, h.data());
    for (std::size_t j = 0; j < d; ++j) in8[t * d + j] = static_cast<std::int8_t>(h[j]);
  }
  const std::size_t vocab = head.rows;
  std::vector<std::int32_t> acc(logit_rows * vocab);
  head.run(in8.data(), logit_rows, acc.data(), threads);
  // The one conversion to floating point: the logits.
  for (std::size_t t = 0; t < logit_rows; ++t) {
    for (std::size_t r = 0; r < vocab; ++r) {
      logits[t * vocab + r] =
          static_cast<float>(static_cast<double>(acc[t * vocab + r]) * head.in_scale *
                             static_cast<double>(head.w_scale[r]));
    }
  }
}

void IntegerTransformer::forward(std::span<const std::int32_t> tokens, std::span<float> logits,
                                 unsigned threads) const {
  const nn::TransformerConfig& c = impl_->config;
  if (tokens.empty() || tokens.size() > static_cast<std::size_t>(c.n_ctx)) {
    throw Error("forward: " + std::to_string(tokens.size()) +
                " tokens, expected 1 to n_ctx = " + std::to_string(c.n_ctx));
  }
  nn::check_token_ids(tokens, c.vocab_size, "forward");
  if (logits.size() != tokens.size() * static_cast<std::size_t>(c.vocab_size)) {
    throw Error("forward: the logits span has the wrong size");
  }
  Impl::Cache cache = impl_->make_cache();
  impl_->run(tokens, cache, logits.data(), tokens.size(), threads);
}

nn::EvalResult IntegerTransformer::evaluate(std::span<const std::int32_t> tokens,
                                            std::span<const std::uint32_t> token_bytes,
                                            unsigned threads,
                                            std::optional<std::int32_t> bos) const {
  const nn::TransformerConfig& c = impl_->config;
  const Impl* im = impl_.get();
  return nn::evaluate_windows(static_cast<std::size_t>(c.n_ctx),
                              static_cast<std::size_t>(c.vocab_size), tokens, token_bytes, threads,
                              bos,
                              [im](std::span<const std::int32_t> input, std::span<float> logits) {
                                Impl::Cache cache = im->make_cache();
                                im->run(input, cache, logits.data(), input.size(), 1);
                              });
}

nn::NextLogits IntegerTransformer::generator(unsigned threads) const {
  struct State {
    const Impl* im;
    unsigned threads;
    Impl::Cache cache;
    std::vector<std::int32_t> tokens;
    std::vector<float> logits;
  };
  auto s = std::make_shared<State>();
  s->im = impl_.get();
  s->threads = std::max(1u, threads);
  s->cache = impl_->make_cache();
  s->logits.resize(static_cast<std::size_t>(impl_->config.vocab_size));
  return [s](std::span<const std::int32_t> tokens) -> std::span<const float> {
    if (tokens.empty()) throw Error("generator: no tokens to push");
    nn::check_token_ids(tokens, s->im->config.vocab_size, "generator");
    const auto ctx = static_cast<std::size_t>(s->im->config.n_ctx);
    std::size_t i = 0;
    while (i < tokens.size()) {
      // A full context keeps its newest half, and the cache is rebuilt from it.
      const bool rebuild = s->tokens.size() == ctx;
      if (rebuild) {
        s->tokens.erase(s->tokens.begin(),
                        s->tokens.begin() + static_cast<std::ptrdiff_t>(ctx - ctx / 2));
        s->cache = s->im->make_cache();
      }
      const std::span<const std::int32_t> part =
          tokens.subspan(i, std::min(tokens.size() - i, ctx - s->tokens.size()));
      s->tokens.insert(s->tokens.end(), part.begin(), part.end());
      s->im->run(rebuild ? std::span<const std::int32_t>(s->tokens) : part, s->cache,
                 s->logits.data(), 1, s->threads);
      i += part.size();
    }
    return s->logits;
  };
}

}  // namespace lowp
