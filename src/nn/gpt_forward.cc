// The GPT forward pass: the GEMM path over a sequence (forward, evaluate), the
// GEMV path with a KV cache (Generator), and sampling (generate). Operation
// order follows python/lowp/examples/charlm.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "gpt_checkpoint.h"
#include "lowp/error.h"
#include "lowp/nn/gpt.h"
#include "lowp/thread_pool.h"

// The attention loops are also compiled for AVX-512 and AVX2, the clone chosen
// when the library loads (GCC on x86-64). They never reorder a sum, and this
// file is compiled with -ffp-contract=off (CMakeLists.txt: no fused
// multiply-adds), so every clone gives the same bits; only the vector width
// differs.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LOWP_NN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LOWP_NN_CLONES
#endif

namespace lowp::nn {
namespace {

// out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias for each row of d
// values (biased variance, as torch.nn.LayerNorm); statistics in fp64.
void layer_norm(const float* x, float* out, std::size_t rows, std::size_t d, const float* weight,
                const float* bias, float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = out + r * d;
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

// GELU with the exact erf: x/2 (1 + erf(x / sqrt 2)).
void gelu(float* x, std::size_t n) {
  constexpr float kRsqrt2 = 0.70710678118654752f;
  for (std::size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kRsqrt2));
}

void add(float* x, const float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] += y[i];
}

// Causal attention for one query of one head, in two halves:
// scores[j] = (q . k_j) * scale for j < n_keys, the dot product summed in
// order i = 0, 1, ..., d_head - 1 whatever the layout of the keys (so the
// forward pass and the generator round identically), then
// out = sum_j softmax(scores)_j v_j with v_j at v + j * v_stride.

// Keys as rows: k_j at k + j * stride (the generator's cache).
LOWP_NN_CLONES void scores_from_rows(const float* q, const float* k, std::size_t stride,
                                     std::size_t n_keys, std::size_t d_head, float scale,
                                     float* scores) {
  for (std::size_t j = 0; j < n_keys; ++j) {
    const float* kj = k + j * stride;
    float dot = 0.0f;
    for (std::size_t i = 0; i < d_head; ++i) dot += q[i] * kj[i];
    scores[j] = dot * scale;
  }
}

// Keys transposed: component i of k_j at kt[i * ld + j] (the forward pass).
// Sixteen keys at a time accumulate in a local array (registers) over i, so
// the loop vectorizes along j without reordering any sum.
LOWP_NN_CLONES void scores_from_columns(const float* q, const float* kt, std::size_t ld,
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

// out = sum_j softmax(scores)_j v_j, summed in order j = 0, 1, ...; sixteen
// components of out at a time stay in a local array (registers).
LOWP_NN_CLONES void softmax_mix(float* scores, std::size_t n_keys, const float* v,
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

// -log softmax(logits)[target], in fp64.
double cross_entropy(const float* logits, std::size_t vocab, std::size_t target) {
  double max = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < vocab; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (std::size_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return max + std::log(sum) - static_cast<double>(logits[target]);
}

}  // namespace

void Gpt::linear(const Linear& l, float* x, std::size_t rows, float* y, unsigned threads) const {
  const std::size_t in = l.weight.cols(), out = l.weight.rows();
  if (activations_) fake_quantize_rows(*activations_, x, rows, in);
  if (rows == 1) {
    l.weight.gemv(x, y, threads);
  } else {
    l.weight.gemm(x, rows, y, threads);
  }
  if (!l.bias.empty()) {
    for (std::size_t r = 0; r < rows; ++r) add(y + r * out, l.bias.data(), out);
  }
}

void Gpt::run(std::span<const std::uint8_t> tokens, float* logits, unsigned threads,
              std::vector<std::vector<float>>* k_cache,
              std::vector<std::vector<float>>* v_cache) const {
  const Checkpoint& ck = *checkpoint_;
  const std::size_t n = tokens.size(), d = static_cast<std::size_t>(config_.d_model),
                    ff = static_cast<std::size_t>(config_.d_ff),
                    heads = static_cast<std::size_t>(config_.n_head), dh = d / heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  std::vector<float> x(n * d), h(n * d), qkv(n * 3 * d), y(n * d), hidden(n * ff), o(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    const float* te = ck.wte.data() + tokens[i] * d;
    const float* pe = ck.wpe.data() + i * d;
    for (std::size_t c = 0; c < d; ++c) x[i * d + c] = te[c] + pe[c];
  }
  for (std::size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    layer_norm(x.data(), h.data(), n, d, l.ln_1_weight.data(), l.ln_1_bias.data(), config_.ln_eps);
    linear(l.c_attn, h.data(), n, qkv.data(), threads);
    if (k_cache != nullptr && v_cache != nullptr) {
      for (std::size_t i = 0; i < n; ++i) {
        std::copy_n(qkv.data() + i * 3 * d + d, d, (*k_cache)[li].data() + i * d);
        std::copy_n(qkv.data() + i * 3 * d + 2 * d, d, (*v_cache)[li].data() + i * d);
      }
    }
    parallel_for(heads, threads, [&](std::size_t h0, std::size_t h1) {
      std::vector<float> scores(n), kt(dh * n);
      for (std::size_t hd = h0; hd < h1; ++hd) {
        const float* base = qkv.data() + hd * dh;
        for (std::size_t j = 0; j < n; ++j) {
          for (std::size_t i = 0; i < dh; ++i) kt[i * n + j] = base[j * 3 * d + d + i];
        }
        for (std::size_t i = 0; i < n; ++i) {
          scores_from_columns(base + i * 3 * d, kt.data(), n, i + 1, dh, scale, scores.data());
          softmax_mix(scores.data(), i + 1, base + 2 * d, 3 * d, dh, y.data() + i * d + hd * dh);
        }
      }
    });
    linear(l.attn_proj, y.data(), n, o.data(), threads);
    add(x.data(), o.data(), n * d);
    layer_norm(x.data(), h.data(), n, d, l.ln_2_weight.data(), l.ln_2_bias.data(), config_.ln_eps);
    linear(l.c_fc, h.data(), n, hidden.data(), threads);
    parallel_for(n, threads, [&](std::size_t r0, std::size_t r1) {
      gelu(hidden.data() + r0 * ff, (r1 - r0) * ff);
    });
    linear(l.mlp_proj, hidden.data(), n, o.data(), threads);
    add(x.data(), o.data(), n * d);
  }
  layer_norm(x.data(), h.data(), n, d, ck.ln_f_weight.data(), ck.ln_f_bias.data(), config_.ln_eps);
  linear(head_, h.data(), n, logits, threads);
}

void Gpt::forward(std::span<const std::uint8_t> tokens, std::span<float> logits,
                  unsigned threads) const {
  const auto vocab = static_cast<std::size_t>(config_.vocab_size);
  if (tokens.empty() || tokens.size() > static_cast<std::size_t>(config_.n_ctx)) {
    throw Error("gpt forward: " + std::to_string(tokens.size()) +
                " tokens, expected 1 to n_ctx = " + std::to_string(config_.n_ctx));
  }
  if (logits.size() != tokens.size() * vocab) {
    throw Error("gpt forward: logits buffer holds " + std::to_string(logits.size()) +
                " values, expected " + std::to_string(tokens.size() * vocab));
  }
  run(tokens, logits.data(), threads, nullptr, nullptr);
}

EvalResult Gpt::evaluate(std::span<const std::uint8_t> text, unsigned threads) const {
  if (text.size() < 2) {
    throw Error("gpt evaluate: the text has " + std::to_string(text.size()) +
                " bytes; at least 2 are needed to predict one");
  }
  const auto start = std::chrono::steady_clock::now();
  const auto ctx = static_cast<std::size_t>(config_.n_ctx),
             vocab = static_cast<std::size_t>(config_.vocab_size);
  std::size_t windows = text.size() / ctx;
  if (text.size() % ctx >= 2) ++windows;  // the last partial window
  std::vector<double> loss(windows, 0.0);
  parallel_for(windows, threads, [&](std::size_t w0, std::size_t w1) {
    std::vector<float> logits(ctx * vocab);
    for (std::size_t w = w0; w < w1; ++w) {
      const std::span<const std::uint8_t> win =
          text.subspan(w * ctx, std::min(ctx, text.size() - w * ctx));
      run(win, logits.data(), 1, nullptr, nullptr);
      double sum = 0.0;
      for (std::size_t i = 0; i + 1 < win.size(); ++i)
        sum += cross_entropy(logits.data() + i * vocab, vocab, win[i + 1]);
      loss[w] = sum;
    }
  });
  EvalResult r;
  double total = 0.0;
  for (std::size_t w = 0; w < windows; ++w) {
    total += loss[w];
    r.tokens += std::min(ctx, text.size() - w * ctx) - 1;
  }
  r.nats_per_byte = total / static_cast<double>(r.tokens);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

// ---- the GEMV path ----

Generator::Generator(const Gpt& model, unsigned threads)
    : model_(model), threads_(std::max(1u, threads)) {
  const GptConfig& c = model.config();
  const auto cache = static_cast<std::size_t>(c.n_ctx) * static_cast<std::size_t>(c.d_model);
  k_cache_.assign(static_cast<std::size_t>(c.n_layer), std::vector<float>(cache));
  v_cache_.assign(static_cast<std::size_t>(c.n_layer), std::vector<float>(cache));
  logits_.resize(static_cast<std::size_t>(c.vocab_size));
}

void Generator::reset() { tokens_.clear(); }

std::span<const float> Generator::push(std::uint8_t token) {
  const auto ctx = static_cast<std::size_t>(model_.config().n_ctx);
  if (tokens_.size() == ctx) {
    tokens_.erase(tokens_.begin(), tokens_.begin() + static_cast<std::ptrdiff_t>(ctx - ctx / 2));
    tokens_.push_back(token);
    rebuild();
  } else {
    tokens_.push_back(token);
    step(token);
  }
  return logits_;
}

void Generator::rebuild() {
  const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
  std::vector<float> all(tokens_.size() * vocab);
  model_.run(tokens_, all.data(), threads_, &k_cache_, &v_cache_);
  std::copy_n(all.data() + (tokens_.size() - 1) * vocab, vocab, logits_.data());
}

void Generator::step(std::uint8_t token) {
  const Gpt& m = model_;
  const GptConfig& c = m.config();
  const Gpt::Checkpoint& ck = *m.checkpoint_;
  const std::size_t pos = tokens_.size() - 1, d = static_cast<std::size_t>(c.d_model),
                    ff = static_cast<std::size_t>(c.d_ff),
                    heads = static_cast<std::size_t>(c.n_head), dh = d / heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  std::vector<float> x(d), h(d), qkv(3 * d), y(d), hidden(ff), o(d), scores(pos + 1);
  for (std::size_t i = 0; i < d; ++i) x[i] = ck.wte[token * d + i] + ck.wpe[pos * d + i];
  for (std::size_t li = 0; li < m.layers_.size(); ++li) {
    const Gpt::Layer& l = m.layers_[li];
    layer_norm(x.data(), h.data(), 1, d, l.ln_1_weight.data(), l.ln_1_bias.data(), c.ln_eps);
    m.linear(l.c_attn, h.data(), 1, qkv.data(), threads_);
    float* kc = k_cache_[li].data();
    float* vc = v_cache_[li].data();
    std::copy_n(qkv.data() + d, d, kc + pos * d);
    std::copy_n(qkv.data() + 2 * d, d, vc + pos * d);
    for (std::size_t hd = 0; hd < heads; ++hd) {
      scores_from_rows(qkv.data() + hd * dh, kc + hd * dh, d, pos + 1, dh, scale, scores.data());
      softmax_mix(scores.data(), pos + 1, vc + hd * dh, d, dh, y.data() + hd * dh);
    }
    m.linear(l.attn_proj, y.data(), 1, o.data(), threads_);
    add(x.data(), o.data(), d);
    layer_norm(x.data(), h.data(), 1, d, l.ln_2_weight.data(), l.ln_2_bias.data(), c.ln_eps);
    m.linear(l.c_fc, h.data(), 1, hidden.data(), threads_);
    gelu(hidden.data(), ff);
    m.linear(l.mlp_proj, hidden.data(), 1, o.data(), threads_);
    add(x.data(), o.data(), d);
  }
  layer_norm(x.data(), h.data(), 1, d, ck.ln_f_weight.data(), ck.ln_f_bias.data(), c.ln_eps);
  m.linear(m.head_, h.data(), 1, logits_.data(), threads_);
}

std::vector<std::uint8_t> generate(const Gpt& model, std::span<const std::uint8_t> prompt,
                                   std::size_t count, double temperature, int top_k,
                                   std::uint64_t seed, unsigned threads) {
  if (prompt.empty()) throw Error("generate: the prompt is empty (at least one byte is needed)");
  if (!(temperature >= 0.0) || !std::isfinite(temperature)) {
    throw Error("generate: temperature " + std::to_string(temperature) +
                " must be finite and >= 0");
  }
  if (top_k < 0)
    throw Error("generate: top_k " + std::to_string(top_k) + " must be >= 0 (0: all tokens)");
  Generator gen(model, threads);
  std::span<const float> logits;
  for (std::uint8_t t : prompt) logits = gen.push(t);
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> out;
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
    const auto byte = static_cast<std::uint8_t>(next);
    out.push_back(byte);
    if (step + 1 < count) logits = gen.push(byte);
  }
  return out;
}

}  // namespace lowp::nn
