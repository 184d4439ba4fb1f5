// The transformer's configuration checks, weight validation and packed linear
// layers. The forward pass is in transformer_forward.cc; the loaders in
// model_files.cc.
#include "lowp/nn/transformer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "lowp/error.h"

namespace lowp::nn {
namespace {

void check_range(const std::string& source, const char* key, long long v, long long lo,
                 long long hi) {
  if (v < lo || v > hi) {
    throw Error(source + ": " + key + " is " + std::to_string(v) + ", expected " +
                std::to_string(lo) + " to " + std::to_string(hi));
  }
}

}  // namespace

void TransformerConfig::validate(const std::string& source) const {
  check_range(source, "vocab_size", vocab_size, 1, 1 << 24);
  check_range(source, "n_ctx", n_ctx, 1, 1 << 20);
  check_range(source, "d_model", d_model, 1, 1 << 16);
  check_range(source, "n_head", n_head, 1, 1 << 12);
  check_range(source, "n_kv_head", n_kv_head, 1, n_head);
  check_range(source, "head_dim", head_dim, 1, 1 << 12);
  check_range(source, "n_layer", n_layer, 1, 1 << 12);
  check_range(source, "d_ff", d_ff, 1, 1 << 20);
  if (n_head % n_kv_head != 0) {
    throw Error(source + ": n_head (" + std::to_string(n_head) +
                ") is not a multiple of n_kv_head (" + std::to_string(n_kv_head) + ")");
  }
  if (!learned_positions && head_dim % 2 != 0) {
    throw Error(source + ": head_dim " + std::to_string(head_dim) + " is odd; RoPE needs pairs");
  }
  if (!(norm_eps > 0.0f) || !(norm_eps < 1.0f)) {
    throw Error(source + ": the norm epsilon " + std::to_string(norm_eps) +
                " is not between 0 and 1");
  }
  if (!learned_positions && !(rope_theta > 1.0 && std::isfinite(rope_theta))) {
    throw Error(source + ": rope_theta " + std::to_string(rope_theta) +
                " must be a finite number > 1");
  }
  if (rope_scaling != RopeScaling::kNone && !(rope_factor > 0.0 && std::isfinite(rope_factor))) {
    throw Error(source + ": rope_scaling factor " + std::to_string(rope_factor) +
                " must be a finite number > 0");
  }
  if (!rope_divisors.empty() && rope_divisors.size() != static_cast<std::size_t>(head_dim / 2)) {
    throw Error(source + ": " + std::to_string(rope_divisors.size()) +
                " RoPE frequency factors, expected head_dim / 2 = " + std::to_string(head_dim / 2));
  }
  for (double f : rope_divisors) {
    if (!(f > 0.0 && std::isfinite(f)))
      throw Error(source + ": a RoPE frequency factor is " + std::to_string(f) +
                  ", expected a finite number > 0");
  }
  if (rope_scaling == RopeScaling::kLlama3 &&
      !(rope_high_freq_factor > rope_low_freq_factor && rope_low_freq_factor > 0.0 &&
        rope_original_context > 0.0)) {
    throw Error(source +
                ": llama3 rope_scaling needs high_freq_factor > low_freq_factor > 0 and "
                "original_max_position_embeddings > 0");
  }
  if (fused_qkv && n_kv_head != n_head) {
    throw Error(source + ": a fused qkv matrix needs n_kv_head == n_head");
  }
  for (const std::optional<std::int32_t>& t : {bos, eos}) {
    if (t && (*t < 0 || *t >= vocab_size)) {
      throw Error(source + ": special token id " + std::to_string(*t) +
                  " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
  }
}

Transformer::Transformer(TransformerConfig config, TransformerWeights weights,
                         const std::string& source)
    : config_(std::move(config)) {
  const TransformerConfig& c = config_;
  c.validate(source);
  const auto v = static_cast<std::size_t>(c.vocab_size), d = static_cast<std::size_t>(c.d_model),
             ff = static_cast<std::size_t>(c.d_ff), q = static_cast<std::size_t>(c.q_dim()),
             kv = static_cast<std::size_t>(c.kv_dim()), dh = static_cast<std::size_t>(c.head_dim);
  auto check = [&](const std::vector<float>& t, std::size_t n, const std::string& what) {
    if (t.size() != n) {
      throw Error(source + ": " + what + " holds " + std::to_string(t.size()) +
                  " values, expected " + std::to_string(n));
    }
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (!std::isfinite(t[i])) {
        throw Error(source + ": " + what + " holds a non-finite value at index " +
                    std::to_string(i));
      }
    }
  };
  const bool ln = c.norm == NormKind::kLayerNorm;
  const TransformerWeights& w = weights;
  check(w.tok_emb, v * d, "the token embedding");
  check(w.pos_emb, c.learned_positions ? static_cast<std::size_t>(c.n_ctx) * d : 0,
        "the position embedding");
  check(w.norm_f_w, d, "the final norm's weight");
  check(w.norm_f_b, ln ? d : 0, "the final norm's bias");
  check(w.head, c.tied_head ? 0 : v * d, "the output head");
  if (w.layers.size() != static_cast<std::size_t>(c.n_layer)) {
    throw Error(source + ": " + std::to_string(w.layers.size()) + " layers, expected " +
                std::to_string(c.n_layer));
  }
  const bool swiglu = c.mlp == MlpKind::kSwiGlu;
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const TransformerWeights::Layer& l = w.layers[i];
    const std::string p = "layer " + std::to_string(i) + "'s ";
    check(l.norm_1_w, d, p + "first norm weight");
    check(l.norm_1_b, ln ? d : 0, p + "first norm bias");
    check(l.norm_2_w, d, p + "second norm weight");
    check(l.norm_2_b, ln ? d : 0, p + "second norm bias");
    check(l.qkv_w, c.fused_qkv ? (q + 2 * kv) * d : 0, p + "fused qkv matrix");
    check(l.qkv_b, c.fused_qkv && c.qkv_bias ? q + 2 * kv : 0, p + "fused qkv bias");
    check(l.q_w, c.fused_qkv ? 0 : q * d, p + "q matrix");
    check(l.k_w, c.fused_qkv ? 0 : kv * d, p + "k matrix");
    check(l.v_w, c.fused_qkv ? 0 : kv * d, p + "v matrix");
    check(l.q_b, !c.fused_qkv && c.qkv_bias ? q : 0, p + "q bias");
    check(l.k_b, !c.fused_qkv && c.qkv_bias ? kv : 0, p + "k bias");
    check(l.v_b, !c.fused_qkv && c.qkv_bias ? kv : 0, p + "v bias");
    check(l.o_w, d * q, p + "attention output matrix");
    check(l.o_b, c.o_bias ? d : 0, p + "attention output bias");
    check(l.q_norm, c.qk_norm ? dh : 0, p + "q norm");
    check(l.k_norm, c.qk_norm ? dh : 0, p + "k norm");
    check(l.fc_w, ff * d, p + (swiglu ? "up matrix" : "fc matrix"));
    check(l.fc_b, c.mlp_bias ? ff : 0, p + (swiglu ? "up bias" : "fc bias"));
    check(l.gate_w, swiglu ? ff * d : 0, p + "gate matrix");
    check(l.gate_b, swiglu && c.mlp_bias ? ff : 0, p + "gate bias");
    check(l.down_w, d * ff, p + "down matrix");
    check(l.down_b, c.mlp_bias ? d : 0, p + "down bias");
  }
  weights_ = std::make_shared<const TransformerWeights>(std::move(weights));
  build(parse_matrix_format("fp32"));
}

void Transformer::build(const MatrixFormat& f) {
  const TransformerWeights& k = *weights_;
  const TransformerConfig& c = config_;
  const auto d = static_cast<std::size_t>(c.d_model), ff = static_cast<std::size_t>(c.d_ff),
             v = static_cast<std::size_t>(c.vocab_size), q = static_cast<std::size_t>(c.q_dim()),
             kv = static_cast<std::size_t>(c.kv_dim());
  auto linear = [&f](const std::vector<float>& w, const std::vector<float>& b, std::size_t rows,
                     std::size_t cols) {
    return Linear{PackedMatrix::quantize(f, w, rows, cols), b};
  };
  weight_format_ = f;
  layers_.clear();
  layers_.reserve(k.layers.size());
  for (const TransformerWeights::Layer& l : k.layers) {
    Layer out;
    if (c.fused_qkv) {
      out.qkv.push_back(linear(l.qkv_w, l.qkv_b, q + 2 * kv, d));
    } else {
      out.qkv.push_back(linear(l.q_w, l.q_b, q, d));
      out.qkv.push_back(linear(l.k_w, l.k_b, kv, d));
      out.qkv.push_back(linear(l.v_w, l.v_b, kv, d));
    }
    out.o = linear(l.o_w, l.o_b, d, q);
    out.fc = linear(l.fc_w, l.fc_b, ff, d);
    if (c.mlp == MlpKind::kSwiGlu) out.gate = linear(l.gate_w, l.gate_b, ff, d);
    out.down = linear(l.down_w, l.down_b, d, ff);
    layers_.push_back(std::move(out));
  }
  head_ = linear(c.tied_head ? k.tok_emb : k.head, {}, v, d);
}

Transformer Transformer::with_weights(const MatrixFormat& f) const {
  Transformer t;
  t.config_ = config_;
  t.weights_ = weights_;
  t.activations_ = activations_;
  t.static_ = static_;
  t.build(f);
  return t;
}

Transformer Transformer::with_context(int n_ctx) const {
  if (n_ctx < 1 || n_ctx > config_.n_ctx) {
    throw Error("context " + std::to_string(n_ctx) + " is outside 1 to the model's n_ctx " +
                std::to_string(config_.n_ctx));
  }
  Transformer t = *this;
  t.config_.n_ctx = n_ctx;
  return t;
}

Transformer Transformer::with_activations(std::optional<MatrixFormat> f) const {
  Transformer t = *this;
  t.activations_ = std::move(f);
  return t;
}

std::string_view linear_input_name(LinearInput i) {
  switch (i) {
    case LinearInput::kAttention:
      return "attention";
    case LinearInput::kAttentionOutput:
      return "attention_output";
    case LinearInput::kMlp:
      return "mlp";
    case LinearInput::kMlpOutput:
      return "mlp_output";
    case LinearInput::kHead:
      return "head";
  }
  return "?";
}

std::string_view linear_kind_name(LinearKind k) {
  constexpr std::string_view names[] = {"qkv", "q", "k", "v", "o", "fc", "gate", "down", "head"};
  return names[static_cast<std::size_t>(k)];
}

LinearInput linear_input_of(LinearKind k) {
  switch (k) {
    case LinearKind::kQkv:
    case LinearKind::kQ:
    case LinearKind::kK:
    case LinearKind::kV:
      return LinearInput::kAttention;
    case LinearKind::kO:
      return LinearInput::kAttentionOutput;
    case LinearKind::kFc:
    case LinearKind::kGate:
      return LinearInput::kMlp;
    case LinearKind::kDown:
      return LinearInput::kMlpOutput;
    case LinearKind::kHead:
      break;
  }
  return LinearInput::kHead;
}

Transformer Transformer::with_activation_scales(std::optional<ActivationScales> scales) const {
  if (scales) {
    const TransformerConfig& c = config_;
    if (scales->scales.size() != static_cast<std::size_t>(c.n_layer) + 1) {
      throw Error("activation scales: " + std::to_string(scales->scales.size()) +
                  " layers, expected n_layer + 1 = " + std::to_string(c.n_layer + 1));
    }
    const auto d = static_cast<std::size_t>(c.d_model);
    const std::size_t cols[kLinearInputs] = {d, static_cast<std::size_t>(c.q_dim()), d,
                                             static_cast<std::size_t>(c.d_ff), d};
    for (std::size_t l = 0; l < scales->scales.size(); ++l) {
      for (std::size_t i = 0; i < static_cast<std::size_t>(kLinearInputs); ++i) {
        const std::size_t n = scales->scales[l][i].size();
        if (n > 1 && n != cols[i]) {
          throw Error("activation scales of layer " + std::to_string(l) + " " +
                      std::string(linear_input_name(static_cast<LinearInput>(i))) + ": " +
                      std::to_string(n) + " values, expected 1 or " + std::to_string(cols[i]));
        }
      }
    }
  }
  Transformer t = *this;
  t.static_ = std::move(scales);
  return t;
}

std::vector<LinearKind> Transformer::linear_kinds(int layer) const {
  if (layer == config_.n_layer) return {LinearKind::kHead};
  if (layer < 0 || layer > config_.n_layer) {
    throw Error("layer " + std::to_string(layer) + " is outside 0 to " +
                std::to_string(config_.n_layer));
  }
  std::vector<LinearKind> k;
  if (config_.fused_qkv) {
    k.push_back(LinearKind::kQkv);
  } else {
    k.insert(k.end(), {LinearKind::kQ, LinearKind::kK, LinearKind::kV});
  }
  k.push_back(LinearKind::kO);
  if (config_.mlp == MlpKind::kSwiGlu) k.push_back(LinearKind::kGate);
  k.insert(k.end(), {LinearKind::kFc, LinearKind::kDown});
  return k;
}

const Transformer::Linear& Transformer::linear_ref(int layer, LinearKind kind) const {
  const std::vector<LinearKind> kinds = linear_kinds(layer);
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
    throw Error("layer " + std::to_string(layer) + " has no " +
                std::string(linear_kind_name(kind)) + " matrix");
  }
  if (kind == LinearKind::kHead) return head_;
  const Layer& l = layers_[static_cast<std::size_t>(layer)];
  switch (kind) {
    case LinearKind::kQkv:
    case LinearKind::kQ:
      return l.qkv[0];
    case LinearKind::kK:
      return l.qkv[1];
    case LinearKind::kV:
      return l.qkv[2];
    case LinearKind::kO:
      return l.o;
    case LinearKind::kFc:
      return l.fc;
    case LinearKind::kGate:
      return l.gate;
    default:
      return l.down;
  }
}

Transformer::Linear& Transformer::linear_ref(int layer, LinearKind kind) {
  return const_cast<Linear&>(std::as_const(*this).linear_ref(layer, kind));
}

const PackedMatrix& Transformer::linear_weight(int layer, LinearKind kind) const {
  return linear_ref(layer, kind).weight;
}

std::span<const float> Transformer::linear_source(int layer, LinearKind kind) const {
  linear_ref(layer, kind);  // checks the kind
  const TransformerWeights& w = *weights_;
  if (kind == LinearKind::kHead) return config_.tied_head ? w.tok_emb : w.head;
  const TransformerWeights::Layer& l = w.layers[static_cast<std::size_t>(layer)];
  switch (kind) {
    case LinearKind::kQkv:
      return l.qkv_w;
    case LinearKind::kQ:
      return l.q_w;
    case LinearKind::kK:
      return l.k_w;
    case LinearKind::kV:
      return l.v_w;
    case LinearKind::kO:
      return l.o_w;
    case LinearKind::kFc:
      return l.fc_w;
    case LinearKind::kGate:
      return l.gate_w;
    default:
      return l.down_w;
  }
}

Transformer Transformer::with_linear(int layer, LinearKind kind, PackedMatrix m,
                                     std::size_t stored_bytes) const {
  Transformer t = *this;
  t.set_linear(layer, kind, std::move(m), stored_bytes);
  return t;
}

void Transformer::set_linear(int layer, LinearKind kind, PackedMatrix m, std::size_t stored_bytes) {
  Linear& l = linear_ref(layer, kind);
  if (m.rows() != l.weight.rows() || m.cols() != l.weight.cols()) {
    throw Error("layer " + std::to_string(layer) + " " + std::string(linear_kind_name(kind)) +
                ": a " + std::to_string(m.rows()) + "x" + std::to_string(m.cols()) +
                " matrix for a " + std::to_string(l.weight.rows()) + "x" +
                std::to_string(l.weight.cols()) + " one");
  }
  l.weight = std::move(m);
  l.stored_bytes = stored_bytes;
}

namespace {

template <typename Fn>
void for_each_tensor(const TransformerWeights& w, Fn&& fn) {
  for (const std::vector<float>* t : {&w.tok_emb, &w.pos_emb, &w.norm_f_w, &w.norm_f_b, &w.head})
    fn(*t);
  for (const TransformerWeights::Layer& l : w.layers) {
    for (const std::vector<float>* t :
         {&l.norm_1_w, &l.norm_1_b, &l.qkv_w,    &l.qkv_b,    &l.q_w,  &l.q_b,
          &l.k_w,      &l.k_b,      &l.v_w,      &l.v_b,      &l.o_w,  &l.o_b,
          &l.q_norm,   &l.k_norm,   &l.norm_2_w, &l.norm_2_b, &l.fc_w, &l.fc_b,
          &l.gate_w,   &l.gate_b,   &l.down_w,   &l.down_b})
      fn(*t);
  }
}

}  // namespace

std::size_t Transformer::parameter_count() const {
  std::size_t n = 0;
  for_each_tensor(*weights_, [&](const std::vector<float>& t) { n += t.size(); });
  return n;
}

std::size_t Transformer::weight_bytes() const {
  std::size_t fp32 = parameter_count(), packed = head_.bytes();
  if (!config_.tied_head) fp32 -= weights_->head.size();
  for (const Layer& l : layers_) {
    for (const Linear* lin : {&l.qkv[0], &l.o, &l.fc, &l.gate, &l.down}) {
      packed += lin->bytes();
      fp32 -= lin->weight.rows() * lin->weight.cols();
    }
    for (std::size_t i = 1; i < l.qkv.size(); ++i) {
      packed += l.qkv[i].bytes();
      fp32 -= l.qkv[i].weight.rows() * l.qkv[i].weight.cols();
    }
  }
  return packed + 4 * fp32;
}

double Transformer::linear_bits_per_weight() const {
  std::size_t bytes = head_.bytes(), weights = head_.weight.rows() * head_.weight.cols();
  for (const Layer& l : layers_) {
    for (const Linear* lin : {&l.o, &l.fc, &l.gate, &l.down}) {
      bytes += lin->bytes();
      weights += lin->weight.rows() * lin->weight.cols();
    }
    for (const Linear& lin : l.qkv) {
      bytes += lin.bytes();
      weights += lin.weight.rows() * lin.weight.cols();
    }
  }
  return weights == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(weights);
}

}  // namespace lowp::nn
