// The transformer's forward pass: one block function for the whole-sequence
// path (forward, evaluate, prompt processing) and the token-by-token path
// (Generator), and sampling (generate).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <string>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/nn/ops.h"
#include "lowp/nn/transformer.h"
#include "lowp/thread_pool.h"

namespace lowp::nn {

std::vector<double> rope_frequency_divisors(const TransformerConfig& c) {
  const auto half = static_cast<std::size_t>(c.head_dim / 2);
  if (!c.rope_divisors.empty()) return c.rope_divisors;
  switch (c.rope_scaling) {
    case RopeScaling::kNone:
      return {};
    case RopeScaling::kLinear:
      return std::vector<double>(half, c.rope_factor);
    case RopeScaling::kLlama3: {
      // Llama 3.1's rule: long wavelengths are slowed by `factor`, short ones
      // kept, and the band between interpolated smoothly.
      std::vector<double> s(half);
      const double low_wavelen = c.rope_original_context / c.rope_low_freq_factor;
      const double high_wavelen = c.rope_original_context / c.rope_high_freq_factor;
      for (std::size_t i = 0; i < half; ++i) {
        const double inv_freq = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / c.head_dim);
        const double wavelen = 2.0 * M_PI / inv_freq;
        if (wavelen < high_wavelen) {
          s[i] = 1.0;
        } else if (wavelen > low_wavelen) {
          s[i] = c.rope_factor;
        } else {
          const double smooth = (c.rope_original_context / wavelen - c.rope_low_freq_factor) /
                                (c.rope_high_freq_factor - c.rope_low_freq_factor);
          // inv_freq' = (1 - smooth) inv_freq / factor + smooth inv_freq
          s[i] = 1.0 / ((1.0 - smooth) / c.rope_factor + smooth);
        }
      }
      return s;
    }
  }
  return {};
}

double EvalResult::nats_per_token() const {
  return tokens == 0 ? 0.0 : nats / static_cast<double>(tokens);
}
double EvalResult::nats_per_byte() const {
  return bytes == 0 ? 0.0 : nats / static_cast<double>(bytes);
}
double EvalResult::bits_per_byte() const { return nats_per_byte() / std::log(2.0); }
double EvalResult::perplexity() const { return std::exp(nats_per_token()); }

void Transformer::linear(const Linear& l, float* x, std::size_t rows, float* y,
                         unsigned threads) const {
  const std::size_t out = l.weight.rows();
  if (rows == 1) {
    l.weight.gemv(x, y, threads);
  } else {
    l.weight.gemm(x, rows, y, threads);
  }
  if (!l.bias.empty()) {
    for (std::size_t r = 0; r < rows; ++r) add(y + r * out, l.bias.data(), out);
  }
}

Transformer::KvCache Transformer::make_cache(std::size_t capacity) const {
  KvCache c;
  c.k.resize(layers_.size());
  c.v.resize(layers_.size());
  const std::size_t size = capacity * static_cast<std::size_t>(config_.kv_dim());
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    c.k[i].reserve(size);
    c.v[i].reserve(size);
  }
  return c;
}

void check_token_ids(std::span<const std::int32_t> tokens, int vocab_size, const char* what) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size) {
      throw Error(std::string(what) + ": token " + std::to_string(tokens[i]) + " at position " +
                  std::to_string(i) + " is outside the vocabulary [0, " +
                  std::to_string(vocab_size) + ")");
    }
  }
}

void Transformer::check_tokens(std::span<const std::int32_t> tokens, const char* what) const {
  check_token_ids(tokens, config_.vocab_size, what);
}

namespace {

// RoPE's cos/sin tables of positions p0 .. p0 + n - 1 (empty with learned
// positions).
void rope_tables(const TransformerConfig& c, std::size_t p0, std::size_t n, std::vector<float>& cos,
                 std::vector<float>& sin) {
  if (c.learned_positions) return;
  const auto dh = static_cast<std::size_t>(c.head_dim);
  const std::vector<double> scales = rope_frequency_divisors(c);
  cos.resize(n * dh / 2);
  sin.resize(n * dh / 2);
  for (std::size_t i = 0; i < n; ++i) {
    rope_angles(p0 + i, dh, c.rope_theta, scales, cos.data() + i * dh / 2, sin.data() + i * dh / 2);
  }
}

}  // namespace

struct Transformer::BlockBuffers {
  std::vector<float> h, y, o, hidden, up, qkv;
  void resize(const TransformerConfig& c, std::size_t n) {
    const auto d = static_cast<std::size_t>(c.d_model), ff = static_cast<std::size_t>(c.d_ff),
               q_dim = static_cast<std::size_t>(c.q_dim()),
               kv_dim = static_cast<std::size_t>(c.kv_dim());
    h.resize(n * d);
    y.resize(n * q_dim);
    o.resize(n * d);
    hidden.resize(n * ff);
    up.resize(c.mlp == MlpKind::kSwiGlu ? n * ff : 0);
    qkv.resize(n * (q_dim + 2 * kv_dim));
  }
};

void Transformer::quantize_input(std::size_t layer, LinearInput input, float* x, std::size_t rows,
                                 std::size_t cols) const {
  if (static_) {
    const std::vector<float>& s = static_->scales[layer][static_cast<std::size_t>(input)];
    if (!s.empty()) {
      const Format& e = static_->element;
      for (std::size_t r = 0; r < rows; ++r) {
        float* row = x + r * cols;
        for (std::size_t j = 0; j < cols; ++j) {
          const float sc = s.size() == 1 ? s[0] : s[j];
          if (!(sc > 0.0f) || !std::isfinite(sc)) {
            row[j] = 0.0f;
            continue;
          }
          const std::uint32_t code =
              encode(e, static_cast<double>(row[j] / sc), {Rounding::kNearestEven, true});
          row[j] = decode_f32(e, code) * sc;
        }
      }
      return;
    }
  }
  if (activations_) fake_quantize_rows(*activations_, x, rows, cols);
}

void Transformer::block(std::size_t li, float* x, std::size_t n, KvCache& cache, const float* cos,
                        const float* sin, BlockBuffers& buf, unsigned threads,
                        const LinearObserver& observer) const {
  const TransformerConfig& c = config_;
  const TransformerWeights& w = *weights_;
  const std::size_t p0 = cache.length, total = p0 + n;
  const auto d = static_cast<std::size_t>(c.d_model), ff = static_cast<std::size_t>(c.d_ff),
             heads = static_cast<std::size_t>(c.n_head),
             kv_heads = static_cast<std::size_t>(c.n_kv_head),
             dh = static_cast<std::size_t>(c.head_dim), q_dim = heads * dh, kv_dim = kv_heads * dh,
             group = heads / kv_heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  const bool swiglu = c.mlp == MlpKind::kSwiGlu;
  if (cache.k[li].size() < total * kv_dim) {
    cache.k[li].resize(total * kv_dim);
    cache.v[li].resize(total * kv_dim);
  }
  float* h = buf.h.data();
  float* y = buf.y.data();
  float* o = buf.o.data();
  float* hidden = buf.hidden.data();
  float* up = buf.up.data();
  const std::size_t qkv_width = q_dim + 2 * kv_dim;
  // Views of q, k and v per token: one fused buffer, or three side by side.
  float *q = buf.qkv.data(), *k = nullptr, *v = nullptr;
  std::size_t q_stride = qkv_width, kv_stride = qkv_width;
  if (c.fused_qkv) {
    k = q + q_dim;
    v = k + kv_dim;
  } else {
    k = q + n * q_dim;
    v = k + n * kv_dim;
    q_stride = q_dim;
    kv_stride = kv_dim;
  }
  auto norm = [&](const std::vector<float>& weight, const std::vector<float>& bias, float* out) {
    if (c.norm == NormKind::kLayerNorm) {
      layer_norm(x, out, n, d, weight.data(), bias.data(), c.norm_eps);
    } else {
      rms_norm(x, out, n, d, weight.data(), c.norm_eps);
    }
  };
  // The input of every linear layer is quantized once (in place), observed,
  // then each matrix reading it runs.
  auto prepare = [&](LinearInput input, float* in, std::size_t cols) {
    quantize_input(li, input, in, n, cols);
    if (observer) observer(static_cast<int>(li), input, in, n, cols);
  };

  const Layer& l = layers_[li];
  const TransformerWeights::Layer& lw = w.layers[li];
  norm(lw.norm_1_w, lw.norm_1_b, h);
  prepare(LinearInput::kAttention, h, d);
  if (c.fused_qkv) {
    linear(l.qkv[0], h, n, buf.qkv.data(), threads);
  } else {
    linear(l.qkv[0], h, n, q, threads);
    linear(l.qkv[1], h, n, k, threads);
    linear(l.qkv[2], h, n, v, threads);
  }
  for (std::size_t i = 0; i < n; ++i) {
    float* qi = q + i * q_stride;
    float* ki = k + i * kv_stride;
    if (c.qk_norm) {
      rms_norm(qi, qi, heads, dh, lw.q_norm.data(), c.norm_eps);
      rms_norm(ki, ki, kv_heads, dh, lw.k_norm.data(), c.norm_eps);
    }
    if (!c.learned_positions) {
      rope(qi, heads, dh, cos + i * dh / 2, sin + i * dh / 2);
      rope(ki, kv_heads, dh, cos + i * dh / 2, sin + i * dh / 2);
    }
    std::copy_n(ki, kv_dim, cache.k[li].data() + (p0 + i) * kv_dim);
    std::copy_n(v + i * kv_stride, kv_dim, cache.v[li].data() + (p0 + i) * kv_dim);
  }
  const float* kc = cache.k[li].data();
  const float* vc = cache.v[li].data();
  if (n == 1) {
    std::vector<float> scores(total);
    for (std::size_t hd = 0; hd < heads; ++hd) {
      const std::size_t g = hd / group;
      attention_scores_rows(q + hd * dh, kc + g * dh, kv_dim, total, dh, scale, scores.data());
      attention_mix(scores.data(), total, vc + g * dh, kv_dim, dh, y + hd * dh);
    }
  } else {
    // Per key/value head: its keys transposed once, then every query head
    // of its group.
    parallel_for(kv_heads, threads, [&](std::size_t g0, std::size_t g1) {
      std::vector<float> scores(total), kt(dh * total);
      for (std::size_t g = g0; g < g1; ++g) {
        for (std::size_t j = 0; j < total; ++j) {
          for (std::size_t i = 0; i < dh; ++i) kt[i * total + j] = kc[j * kv_dim + g * dh + i];
        }
        for (std::size_t hd = g * group; hd < (g + 1) * group; ++hd) {
          for (std::size_t i = 0; i < n; ++i) {
            const std::size_t keys = p0 + i + 1;
            attention_scores_columns(q + i * q_stride + hd * dh, kt.data(), total, keys, dh, scale,
                                     scores.data());
            attention_mix(scores.data(), keys, vc + g * dh, kv_dim, dh, y + i * q_dim + hd * dh);
          }
        }
      }
    });
  }
  prepare(LinearInput::kAttentionOutput, y, q_dim);
  linear(l.o, y, n, o, threads);
  add(x, o, n * d);
  norm(lw.norm_2_w, lw.norm_2_b, h);
  prepare(LinearInput::kMlp, h, d);
  if (swiglu) {
    linear(l.gate, h, n, hidden, threads);
    linear(l.fc, h, n, up, threads);
    parallel_for(n, threads, [&](std::size_t r0, std::size_t r1) {
      silu_mul(hidden + r0 * ff, up + r0 * ff, (r1 - r0) * ff);
    });
  } else {
    linear(l.fc, h, n, hidden, threads);
    const bool tanh = c.mlp == MlpKind::kGeluTanh;
    parallel_for(n, threads, [&](std::size_t r0, std::size_t r1) {
      if (tanh) {
        gelu_tanh(hidden + r0 * ff, (r1 - r0) * ff);
      } else {
        gelu(hidden + r0 * ff, (r1 - r0) * ff);
      }
    });
  }
  if (c.down_hadamard) {
    const std::size_t b = c.down_hadamard_block();
    parallel_for(n, threads, [&](std::size_t r0, std::size_t r1) {
      hadamard_rows(hidden + r0 * ff, (r1 - r0) * (ff / b), b);
    });
  }
  prepare(LinearInput::kMlpOutput, hidden, ff);
  linear(l.down, hidden, n, o, threads);
  add(x, o, n * d);
}

void Transformer::run(std::span<const std::int32_t> tokens, KvCache& cache, float* logits,
                      std::size_t logit_rows, unsigned threads) const {
  const TransformerConfig& c = config_;
  const TransformerWeights& w = *weights_;
  const std::size_t n = tokens.size(), p0 = cache.length;
  const auto d = static_cast<std::size_t>(c.d_model);
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    const float* te = w.tok_emb.data() + static_cast<std::size_t>(tokens[i]) * d;
    float* xi = x.data() + i * d;
    if (c.learned_positions) {
      const float* pe = w.pos_emb.data() + (p0 + i) * d;
      for (std::size_t j = 0; j < d; ++j) xi[j] = te[j] + pe[j];
    } else {
      std::copy_n(te, d, xi);
    }
  }
  std::vector<float> cos, sin;
  rope_tables(c, p0, n, cos, sin);
  BlockBuffers buf;
  buf.resize(c, n);
  for (std::size_t li = 0; li < layers_.size(); ++li) {
    block(li, x.data(), n, cache, cos.data(), sin.data(), buf, threads, {});
  }
  cache.length = p0 + n;
  if (logit_rows == 0) return;
  float* h = buf.h.data();
  if (c.norm == NormKind::kLayerNorm) {
    layer_norm(x.data(), h, n, d, w.norm_f_w.data(), w.norm_f_b.data(), c.norm_eps);
  } else {
    rms_norm(x.data(), h, n, d, w.norm_f_w.data(), c.norm_eps);
  }
  float* last = h + (n - logit_rows) * d;
  quantize_input(layers_.size(), LinearInput::kHead, last, logit_rows, d);
  linear(head_, last, logit_rows, logits, threads);
}

std::vector<float> Transformer::embed(std::span<const std::int32_t> tokens) const {
  if (tokens.empty() || tokens.size() > static_cast<std::size_t>(config_.n_ctx)) {
    throw Error("embed: " + std::to_string(tokens.size()) +
                " tokens, expected 1 to n_ctx = " + std::to_string(config_.n_ctx));
  }
  check_tokens(tokens, "embed");
  const TransformerWeights& w = *weights_;
  const auto d = static_cast<std::size_t>(config_.d_model);
  std::vector<float> x(tokens.size() * d);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const float* te = w.tok_emb.data() + static_cast<std::size_t>(tokens[i]) * d;
    for (std::size_t j = 0; j < d; ++j) {
      x[i * d + j] = te[j] + (config_.learned_positions ? w.pos_emb[i * d + j] : 0.0f);
    }
  }
  return x;
}

void Transformer::run_block(int layer, std::span<float> x, const LinearObserver& observer,
                            unsigned threads) const {
  const TransformerConfig& c = config_;
  const auto d = static_cast<std::size_t>(c.d_model);
  if (layer < 0 || layer >= c.n_layer) {
    throw Error("run_block: layer " + std::to_string(layer) + " is outside 0 to " +
                std::to_string(c.n_layer - 1));
  }
  const std::size_t n = x.size() / d;
  if (x.size() % d != 0 || n == 0 || n > static_cast<std::size_t>(c.n_ctx)) {
    throw Error("run_block: " + std::to_string(x.size()) + " values are not 1 to n_ctx rows of " +
                std::to_string(d));
  }
  std::vector<float> cos, sin;
  rope_tables(c, 0, n, cos, sin);
  KvCache cache;
  cache.k.resize(layers_.size());
  cache.v.resize(layers_.size());
  BlockBuffers buf;
  buf.resize(c, n);
  block(static_cast<std::size_t>(layer), x.data(), n, cache, cos.data(), sin.data(), buf, threads,
        observer);
}

void Transformer::observe_head(std::span<const float> x, const LinearObserver& observer) const {
  const TransformerConfig& c = config_;
  const TransformerWeights& w = *weights_;
  const auto d = static_cast<std::size_t>(c.d_model);
  const std::size_t n = x.size() / d;
  std::vector<float> h(x.size());
  if (c.norm == NormKind::kLayerNorm) {
    layer_norm(x.data(), h.data(), n, d, w.norm_f_w.data(), w.norm_f_b.data(), c.norm_eps);
  } else {
    rms_norm(x.data(), h.data(), n, d, w.norm_f_w.data(), c.norm_eps);
  }
  quantize_input(layers_.size(), LinearInput::kHead, h.data(), n, d);
  if (observer) observer(c.n_layer, LinearInput::kHead, h.data(), n, d);
}

void Transformer::forward(std::span<const std::int32_t> tokens, std::span<float> logits,
                          unsigned threads) const {
  const auto vocab = static_cast<std::size_t>(config_.vocab_size);
  if (tokens.empty() || tokens.size() > static_cast<std::size_t>(config_.n_ctx)) {
    throw Error("forward: " + std::to_string(tokens.size()) +
                " tokens, expected 1 to n_ctx = " + std::to_string(config_.n_ctx));
  }
  if (logits.size() != tokens.size() * vocab) {
    throw Error("forward: logits buffer holds " + std::to_string(logits.size()) +
                " values, expected " + std::to_string(tokens.size() * vocab));
  }
  check_tokens(tokens, "forward");
  KvCache cache = make_cache(tokens.size());
  run(tokens, cache, logits.data(), tokens.size(), threads);
}

EvalResult Transformer::evaluate(std::span<const std::int32_t> tokens,
                                 std::span<const std::uint32_t> token_bytes, unsigned threads,
                                 std::optional<std::int32_t> bos) const {
  return evaluate_windows(static_cast<std::size_t>(config_.n_ctx),
                          static_cast<std::size_t>(config_.vocab_size), tokens, token_bytes,
                          threads, bos,
                          [this](std::span<const std::int32_t> input, std::span<float> logits) {
                            KvCache cache = make_cache(input.size());
                            run(input, cache, logits.data(), input.size(), 1);
                          });
}

EvalResult evaluate_windows(std::size_t ctx, std::size_t vocab,
                            std::span<const std::int32_t> tokens,
                            std::span<const std::uint32_t> token_bytes, unsigned threads,
                            std::optional<std::int32_t> bos, const WindowLogits& window_logits) {
  if (token_bytes.size() != tokens.size()) {
    throw Error("evaluate: " + std::to_string(tokens.size()) + " tokens but " +
                std::to_string(token_bytes.size()) + " byte counts");
  }
  check_token_ids(tokens, static_cast<int>(vocab), "evaluate");
  if (bos)
    check_token_ids(std::span<const std::int32_t>(&*bos, 1), static_cast<int>(vocab),
                    "evaluate (bos)");
  // Window w covers tokens [w * stride, w * stride + len) of the text; with a
  // bos it runs bos + those and predicts all of them, else it predicts all but
  // its first.
  const std::size_t stride = bos ? ctx - 1 : ctx, first = bos ? 0 : 1;
  if (stride == 0) throw Error("evaluate: n_ctx 1 leaves no room after the bos token");
  std::size_t windows = tokens.size() / stride;
  if (tokens.size() % stride > first) ++windows;
  if (windows == 0) {
    throw Error("evaluate: " + std::to_string(tokens.size()) + " tokens leave nothing to predict");
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<double> loss(windows, 0.0);
  parallel_for(windows, threads, [&](std::size_t w0, std::size_t w1) {
    std::vector<float> logits(ctx * vocab);
    std::vector<std::int32_t> input;
    for (std::size_t w = w0; w < w1; ++w) {
      const std::size_t len = std::min(stride, tokens.size() - w * stride);
      const std::span<const std::int32_t> win = tokens.subspan(w * stride, len);
      input.clear();
      if (bos) input.push_back(*bos);
      input.insert(input.end(), win.begin(), win.end());
      window_logits(input, std::span<float>(logits.data(), input.size() * vocab));
      double sum = 0.0;
      for (std::size_t i = 0; i + 1 < input.size(); ++i)
        sum +=
            cross_entropy(logits.data() + i * vocab, vocab, static_cast<std::size_t>(input[i + 1]));
      loss[w] = sum;
    }
  });
  EvalResult r;
  for (std::size_t w = 0; w < windows; ++w) {
    r.nats += loss[w];
    const std::size_t len = std::min(stride, tokens.size() - w * stride);
    for (std::size_t i = first; i < len; ++i) {
      ++r.tokens;
      r.bytes += token_bytes[w * stride + i];
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

EvalResult Transformer::evaluate_bytes(std::span<const std::uint8_t> text, unsigned threads) const {
  if (text.size() < 2) {
    throw Error("evaluate: the text has " + std::to_string(text.size()) +
                " bytes; at least 2 are needed to predict one");
  }
  const std::vector<std::int32_t> tokens(text.begin(), text.end());
  const std::vector<std::uint32_t> ones(text.size(), 1);
  return evaluate(tokens, ones, threads);
}

// ---- token by token ----

Generator::Generator(const Transformer& model, unsigned threads)
    : model_(model),
      threads_(std::max(1u, threads)),
      cache_(model.make_cache(0)),
      logits_(static_cast<std::size_t>(model.config().vocab_size)) {}

void Generator::reset() {
  tokens_.clear();
  cache_.length = 0;
}

std::span<const float> Generator::push(std::int32_t token) {
  return push(std::span<const std::int32_t>(&token, 1));
}

std::span<const float> Generator::push(std::span<const std::int32_t> tokens) {
  if (tokens.empty()) throw Error("generator: no tokens to push");
  model_.check_tokens(tokens, "generator");
  const auto ctx = static_cast<std::size_t>(model_.config().n_ctx);
  std::size_t i = 0;
  while (i < tokens.size()) {
    if (tokens_.size() == ctx) {
      // Keep the newest half, append what fits, and recompute the cache of
      // all of it at positions 0, 1, ... in one pass.
      tokens_.erase(tokens_.begin(), tokens_.begin() + static_cast<std::ptrdiff_t>(ctx - ctx / 2));
      const std::size_t take = std::min(tokens.size() - i, ctx - tokens_.size());
      tokens_.insert(tokens_.end(), tokens.begin() + static_cast<std::ptrdiff_t>(i),
                     tokens.begin() + static_cast<std::ptrdiff_t>(i + take));
      cache_.length = 0;
      model_.run(tokens_, cache_, logits_.data(), 1, threads_);
      i += take;
      continue;
    }
    const std::size_t take = std::min(tokens.size() - i, ctx - tokens_.size());
    const std::span<const std::int32_t> part = tokens.subspan(i, take);
    tokens_.insert(tokens_.end(), part.begin(), part.end());
    model_.run(part, cache_, logits_.data(), 1, threads_);
    i += take;
  }
  return logits_;
}

std::vector<std::int32_t> generate(const Transformer& model, std::span<const std::int32_t> prompt,
                                   std::size_t count, double temperature, int top_k,
                                   std::uint64_t seed, unsigned threads,
                                   std::optional<std::int32_t> stop) {
  if (prompt.empty()) throw Error("generate: the prompt is empty (at least one token is needed)");
  auto gen = std::make_shared<Generator>(model, threads);
  return generate_with([gen](std::span<const std::int32_t> t) { return gen->push(t); }, prompt,
                       count, temperature, top_k, seed, stop);
}

std::vector<std::int32_t> generate_with(const NextLogits& push,
                                        std::span<const std::int32_t> prompt, std::size_t count,
                                        double temperature, int top_k, std::uint64_t seed,
                                        std::optional<std::int32_t> stop) {
  if (prompt.empty()) throw Error("generate: the prompt is empty (at least one token is needed)");
  if (!(temperature >= 0.0) || !std::isfinite(temperature)) {
    throw Error("generate: temperature " + std::to_string(temperature) +
                " must be finite and >= 0");
  }
  if (top_k < 0)
    throw Error("generate: top_k " + std::to_string(top_k) + " must be >= 0 (0: all tokens)");
  // The prompt one token at a time (the GEMV path of Generator).
  std::span<const float> logits;
  for (const std::int32_t& t : prompt) logits = push(std::span<const std::int32_t>(&t, 1));
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> out;
  out.reserve(count);
  const std::size_t vocab = logits.size();
  std::vector<std::size_t> order(vocab);
  std::vector<double> p(vocab);
  for (std::size_t step = 0; step < count; ++step) {
    std::size_t next = 0;
    if (temperature == 0.0) {
      for (std::size_t i = 1; i < vocab; ++i) {
        if (logits[i] > logits[next]) next = i;
      }
    } else {
      // Candidates by descending logit (ties: lower index first), cut to top_k.
      for (std::size_t i = 0; i < vocab; ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
      const std::size_t keep =
          top_k == 0 ? vocab : std::min(vocab, static_cast<std::size_t>(top_k));
      const double max = static_cast<double>(logits[order[0]]);
      double sum = 0.0;
      for (std::size_t i = 0; i < keep; ++i) {
        p[i] = std::exp((static_cast<double>(logits[order[i]]) - max) / temperature);
        sum += p[i];
      }
      // A uniform draw in [0, sum) from the top 53 bits (the same on every
      // platform, unlike std::uniform_real_distribution).
      const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
      double acc = 0.0;
      next = order[keep - 1];
      for (std::size_t i = 0; i < keep; ++i) {
        acc += p[i];
        if (u < acc) {
          next = order[i];
          break;
        }
      }
    }
    const auto token = static_cast<std::int32_t>(next);
    out.push_back(token);
    if (stop && token == *stop) break;
    if (step + 1 < count) logits = push(std::span<const std::int32_t>(&token, 1));
  }
  return out;
}

}  // namespace lowp::nn
