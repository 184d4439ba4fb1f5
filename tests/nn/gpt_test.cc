// The GPT runtime against an independent FP64 implementation written here from
// charlm.py's definition, its checkpoint validation, its thread-count
// independence and the KV-cache path.
#include "lowp/block_kernels.h"
#include "lowp/nn/model_files.h"
#include "lowp/nn/transformer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ci.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/quant/model_quantize.h"

namespace lowp::nn {
namespace {

using Shape = std::vector<std::int64_t>;
using Gpt = Transformer;

// The hyperparameters of a lowp GPT checkpoint as the test writes them.
struct GptConfig {
  int vocab_size = 256;
  int n_ctx = 128;
  int d_model = 128;
  int n_head = 4;
  int n_layer = 5;
  int d_ff = 512;
  bool tied_head = false;
  float ln_eps = 1e-5f;
};

// Byte prompts and outputs for the byte-level model.
std::vector<std::uint8_t> generate(const Transformer& g, const std::vector<std::uint8_t>& prompt,
                                   std::size_t count, double temperature, int top_k,
                                   std::uint64_t seed, unsigned threads = 1) {
  const std::vector<std::int32_t> p(prompt.begin(), prompt.end());
  const std::vector<std::int32_t> out =
      lowp::nn::generate(g, p, count, temperature, top_k, seed, threads);
  return std::vector<std::uint8_t>(out.begin(), out.end());
}

struct Tensor {
  Shape shape;
  std::vector<float> values;
};

// A model as a list of named tensors plus metadata: what a checkpoint holds.
struct TinyModel {
  GptConfig config;
  std::map<std::string, Tensor> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
};

GptConfig tiny_config(bool tied) {
  GptConfig c;
  c.n_ctx = 24;
  c.d_model = 32;
  c.n_head = 4;
  c.n_layer = 2;
  c.d_ff = 64;
  c.tied_head = tied;
  return c;
}

TinyModel random_model(const GptConfig& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  TinyModel m;
  m.config = c;
  auto add = [&](const std::string& name, Shape shape, float scale, float offset = 0.0f) {
    std::size_t n = 1;
    for (std::int64_t s : shape) n *= static_cast<std::size_t>(s);
    std::vector<float> v(n);
    for (float& x : v) x = offset + scale * normal(rng);
    m.tensors[name] = Tensor{std::move(shape), std::move(v)};
  };
  const std::int64_t d = c.d_model, ff = c.d_ff, v = c.vocab_size;
  add("wte.weight", {v, d}, 0.5f);
  add("wpe.weight", {c.n_ctx, d}, 0.2f);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    add(p + "ln_1.weight", {d}, 0.1f, 1.0f);
    add(p + "ln_1.bias", {d}, 0.1f);
    add(p + "attn.c_attn.weight", {3 * d, d}, 0.3f);
    add(p + "attn.c_attn.bias", {3 * d}, 0.1f);
    add(p + "attn.c_proj.weight", {d, d}, 0.2f);
    add(p + "attn.c_proj.bias", {d}, 0.1f);
    add(p + "ln_2.weight", {d}, 0.1f, 1.0f);
    add(p + "ln_2.bias", {d}, 0.1f);
    add(p + "mlp.c_fc.weight", {ff, d}, 0.2f);
    add(p + "mlp.c_fc.bias", {ff}, 0.1f);
    add(p + "mlp.c_proj.weight", {d, ff}, 0.15f);
    add(p + "mlp.c_proj.bias", {d}, 0.1f);
  }
  add("ln_f.weight", {d}, 0.1f, 1.0f);
  add("ln_f.bias", {d}, 0.1f);
  if (!c.tied_head) add("lm_head.weight", {v, d}, 0.2f);
  m.metadata = {{"lowp.arch", "gpt"},
                {"vocab_size", std::to_string(c.vocab_size)},
                {"n_ctx", std::to_string(c.n_ctx)},
                {"d_model", std::to_string(c.d_model)},
                {"n_head", std::to_string(c.n_head)},
                {"n_layer", std::to_string(c.n_layer)},
                {"d_ff", std::to_string(c.d_ff)},
                {"tied_head", c.tied_head ? "1" : "0"},
                {"ln_eps", "1e-05"}};
  return m;
}

// A safetensors image of the model, written by hand from the format's
// definition. `dtypes` overrides a tensor's dtype: "BF16" stores the top half
// of each fp32 value, "I32" the values truncated to integers.
std::vector<std::byte> safetensors_image(const TinyModel& m,
                                         const std::map<std::string, std::string>& dtypes = {}) {
  std::string header = "{";
  if (!m.metadata.empty()) {
    header += "\"__metadata__\":{";
    for (std::size_t i = 0; i < m.metadata.size(); ++i) {
      header +=
          (i ? "," : "") + ("\"" + m.metadata[i].first + "\":\"" + m.metadata[i].second + "\"");
    }
    header += "}";
  }
  std::vector<std::byte> data;
  for (const auto& [name, t] : m.tensors) {
    const auto it = dtypes.find(name);
    const std::string dtype = it == dtypes.end() ? "F32" : it->second;
    const std::size_t begin = data.size();
    for (float v : t.values) {
      std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
      int width = 4;
      if (dtype == "BF16") {
        bits >>= 16;
        width = 2;
      } else if (dtype == "I32") {
        bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(v));
      }
      for (int b = 0; b < width; ++b) data.push_back(static_cast<std::byte>(bits >> (8 * b)));
    }
    std::string shape;
    for (std::size_t i = 0; i < t.shape.size(); ++i)
      shape += (i ? "," : "") + std::to_string(t.shape[i]);
    header +=
        (header.size() > 1 ? "," : "") +
        ("\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + shape +
         "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}");
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::vector<std::byte> image(8);
  for (int b = 0; b < 8; ++b)
    image[static_cast<std::size_t>(b)] = static_cast<std::byte>(header.size() >> (8 * b));
  for (char ch : header) image.push_back(static_cast<std::byte>(ch));
  image.insert(image.end(), data.begin(), data.end());
  return image;
}

Gpt load_image(const std::vector<std::byte>& image) {
  const auto reader = io::parse_safetensors(image, "tiny.safetensors");
  return load_transformer(*reader, "tiny.safetensors");
}

Gpt load_model(const TinyModel& m) { return load_image(safetensors_image(m)); }

// ---- the FP64 reference: charlm.py's forward, written out directly ----

// `activations`: the input of every linear layer is rounded to fp32 and
// passed through fake_quantize_rows (the function under test elsewhere).
std::vector<double> reference_logits(const TinyModel& m, const std::vector<std::uint8_t>& tokens,
                                     const MatrixFormat& weights,
                                     const MatrixFormat* activations = nullptr) {
  const GptConfig& c = m.config;
  const std::size_t n = tokens.size(), d = static_cast<std::size_t>(c.d_model),
                    ff = static_cast<std::size_t>(c.d_ff),
                    heads = static_cast<std::size_t>(c.n_head), dh = d / heads,
                    v = static_cast<std::size_t>(c.vocab_size);
  auto t = [&](const std::string& name) -> const std::vector<float>& {
    return m.tensors.at(name).values;
  };
  // A linear weight as the format stores it.
  auto w = [&](const std::string& name) {
    const Tensor& tensor = m.tensors.at(name);
    const auto rows = static_cast<std::size_t>(tensor.shape[0]),
               cols = static_cast<std::size_t>(tensor.shape[1]);
    std::vector<float> q(rows * cols);
    PackedMatrix::quantize(weights, tensor.values, rows, cols).dequantize(q);
    return std::vector<double>(q.begin(), q.end());
  };
  auto linear = [activations](std::vector<double> x, std::size_t rows,
                              const std::vector<double>& wt, const std::vector<float>* bias,
                              std::size_t in, std::size_t out) {
    if (activations != nullptr) {
      std::vector<float> xf(x.begin(), x.end());
      fake_quantize_rows(*activations, xf.data(), rows, in);
      x.assign(xf.begin(), xf.end());
    }
    std::vector<double> y(rows * out);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t o = 0; o < out; ++o) {
        double s = bias ? static_cast<double>((*bias)[o]) : 0.0;
        for (std::size_t i = 0; i < in; ++i) s += x[r * in + i] * wt[o * in + i];
        y[r * out + o] = s;
      }
    }
    return y;
  };
  auto layer_norm = [&](const std::vector<double>& x, const std::vector<float>& g,
                        const std::vector<float>& b) {
    std::vector<double> y(x.size());
    for (std::size_t r = 0; r < n; ++r) {
      double mean = 0, var = 0;
      for (std::size_t i = 0; i < d; ++i) mean += x[r * d + i];
      mean /= static_cast<double>(d);
      for (std::size_t i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
      var /= static_cast<double>(d);
      for (std::size_t i = 0; i < d; ++i) {
        y[r * d + i] = (x[r * d + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
      }
    }
    return y;
  };
  std::vector<double> x(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < d; ++j)
      x[i * d + j] = double{t("wte.weight")[tokens[i] * d + j]} + t("wpe.weight")[i * d + j];
  }
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    std::vector<double> h = layer_norm(x, t(p + "ln_1.weight"), t(p + "ln_1.bias"));
    const std::vector<double> qkv =
        linear(h, n, w(p + "attn.c_attn.weight"), &t(p + "attn.c_attn.bias"), d, 3 * d);
    std::vector<double> y(n * d, 0.0);
    for (std::size_t hd = 0; hd < heads; ++hd) {
      for (std::size_t i = 0; i < n; ++i) {
        std::vector<double> att(i + 1);
        double max = -INFINITY;
        for (std::size_t j = 0; j <= i; ++j) {
          double s = 0;
          for (std::size_t e = 0; e < dh; ++e)
            s += qkv[i * 3 * d + hd * dh + e] * qkv[j * 3 * d + d + hd * dh + e];
          att[j] = s / std::sqrt(static_cast<double>(dh));
          max = std::max(max, att[j]);
        }
        double sum = 0;
        for (double& a : att) sum += (a = std::exp(a - max));
        for (std::size_t j = 0; j <= i; ++j) {
          for (std::size_t e = 0; e < dh; ++e)
            y[i * d + hd * dh + e] += att[j] / sum * qkv[j * 3 * d + 2 * d + hd * dh + e];
        }
      }
    }
    const std::vector<double> a =
        linear(y, n, w(p + "attn.c_proj.weight"), &t(p + "attn.c_proj.bias"), d, d);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += a[i];
    h = layer_norm(x, t(p + "ln_2.weight"), t(p + "ln_2.bias"));
    std::vector<double> f = linear(h, n, w(p + "mlp.c_fc.weight"), &t(p + "mlp.c_fc.bias"), d, ff);
    for (double& z : f) z = 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
    const std::vector<double> o =
        linear(f, n, w(p + "mlp.c_proj.weight"), &t(p + "mlp.c_proj.bias"), ff, d);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
  }
  const std::vector<double> h = layer_norm(x, t("ln_f.weight"), t("ln_f.bias"));
  return linear(h, n, w(c.tied_head ? "wte.weight" : "lm_head.weight"), nullptr, d, v);
}

// max |a - b| / max |b|
double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double err = 0, mag = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    mag = std::max(mag, std::fabs(b[i]));
  }
  return err / mag;
}

std::vector<std::uint8_t> some_text(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> t(n);
  for (auto& b : t) b = static_cast<std::uint8_t>(rng());
  return t;
}

std::vector<float> logits_of(const Gpt& g, const std::vector<std::uint8_t>& tokens,
                             unsigned threads = 1) {
  std::vector<float> out(tokens.size() * 256);
  const std::vector<std::int32_t> ids(tokens.begin(), tokens.end());
  g.forward(ids, out, threads);
  return out;
}

const char* const kReportFormats[] = {"fp32",       "bf16",       "fp8_e4m3",     "fp8_e5m2",
                                      "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3",   "mxfp4",
                                      "mxint8",     "nvfp4",      "int8:channel", "int4:group32"};

// ---- tests ----

TEST(Gpt, LoadsTheConfig) {
  const TinyModel m = random_model(tiny_config(false), 1);
  const Gpt g = load_model(m);
  EXPECT_EQ(g.config().n_ctx, 24);
  EXPECT_EQ(g.config().d_model, 32);
  EXPECT_EQ(g.config().n_head, 4);
  EXPECT_EQ(g.config().n_layer, 2);
  EXPECT_EQ(g.config().d_ff, 64);
  EXPECT_FALSE(g.config().tied_head);
  EXPECT_FLOAT_EQ(g.config().norm_eps, 1e-5f);
  std::size_t params = 0;
  for (const auto& [name, t] : m.tensors) params += t.values.size();
  EXPECT_EQ(g.parameter_count(), params);
  EXPECT_EQ(g.weight_bytes(), 4 * params);  // fp32 everywhere
  EXPECT_DOUBLE_EQ(g.linear_bits_per_weight(), 32.0);
}

TEST(Gpt, ForwardMatchesTheFp64Reference) {
  for (bool tied : {false, true}) {
    const TinyModel m = random_model(tiny_config(tied), 2);
    const Gpt g = load_model(m);
    const std::vector<std::uint8_t> tokens = some_text(24, 3);
    for (const char* name :
         {"fp32", "bf16", "fp8_e4m3", "mxfp4", "nvfp4", "int8:channel", "int4:group32"}) {
      SCOPED_TRACE(std::string(name) + (tied ? " tied" : " untied"));
      const MatrixFormat f = parse_matrix_format(name);
      const std::vector<double> want = reference_logits(m, tokens, f);
      const std::vector<float> got = logits_of(g.with_weights(f), tokens);
      EXPECT_LT(relative_error(got, want), 2e-6);
    }
    // A prefix of the sequence gives the prefix of the logits (causality).
    const std::vector<std::uint8_t> prefix(tokens.begin(), tokens.begin() + 7);
    const std::vector<float> all = logits_of(g, tokens), part = logits_of(g, prefix);
    EXPECT_LT(relative_error(part, std::vector<double>(all.begin(), all.begin() + 7 * 256)), 1e-6);
  }
}

TEST(Gpt, ForwardIsIndependentOfThreads) {
  const Gpt g =
      load_model(random_model(tiny_config(false), 4)).with_weights(parse_matrix_format("mxfp4"));
  const std::vector<std::uint8_t> tokens = some_text(23, 5);
  const std::vector<float> one = logits_of(g, tokens, 1);
  for (unsigned threads : {2u, 3u}) {
    const std::vector<float> many = logits_of(g, tokens, threads);
    EXPECT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0)
        << threads << " threads";
  }
  const std::vector<std::uint8_t> text = some_text(24 * 5 + 7, 6);
  const EvalResult e1 = g.evaluate_bytes(text, 1);
  for (unsigned threads : {2u, 3u}) {
    const EvalResult e = g.evaluate_bytes(text, threads);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(e.nats_per_byte()),
              std::bit_cast<std::uint64_t>(e1.nats_per_byte()));
    EXPECT_EQ(e.tokens, e1.tokens);
  }
  const std::vector<std::uint8_t> prompt = {'I', 'n', ' '};
  const std::vector<std::uint8_t> s1 = generate(g, prompt, 40, 0.8, 20, 7, 1);
  for (unsigned threads : {2u, 3u}) EXPECT_EQ(generate(g, prompt, 40, 0.8, 20, 7, threads), s1);
}

TEST(Gpt, EvaluateUsesNonOverlappingWindows) {
  const Gpt g = load_model(random_model(tiny_config(false), 8));
  const std::size_t ctx = 24;
  // Two full windows and a partial one of 5 bytes; then a partial one of 1
  // byte, which predicts nothing and is left out.
  for (std::size_t size : {2 * ctx + 5, 2 * ctx + 1, ctx, std::size_t{2}}) {
    SCOPED_TRACE(size);
    const std::vector<std::uint8_t> text = some_text(size, 9);
    double total = 0;
    std::size_t count = 0;
    for (std::size_t s = 0; s < size; s += ctx) {
      const std::vector<std::uint8_t> win(
          text.begin() + static_cast<std::ptrdiff_t>(s),
          text.begin() + static_cast<std::ptrdiff_t>(std::min(size, s + ctx)));
      if (win.size() < 2) continue;
      const std::vector<float> l = logits_of(g, win);
      for (std::size_t i = 0; i + 1 < win.size(); ++i) {
        double max = -INFINITY, sum = 0;
        for (std::size_t k = 0; k < 256; ++k) max = std::max(max, double{l[i * 256 + k]});
        for (std::size_t k = 0; k < 256; ++k) sum += std::exp(double{l[i * 256 + k]} - max);
        total += max + std::log(sum) - l[i * 256 + win[i + 1]];
        ++count;
      }
    }
    const EvalResult r = g.evaluate_bytes(text, 2);
    EXPECT_EQ(r.tokens, count);
    EXPECT_NEAR(r.nats_per_byte(), total / static_cast<double>(count), 1e-12);
    EXPECT_NEAR(r.bits_per_byte(), r.nats_per_byte() / std::log(2.0), 1e-12);
  }
  EXPECT_THROW(g.evaluate_bytes(std::vector<std::uint8_t>{'a'}), Error);
}

TEST(Gpt, GeneratorMatchesTheFullForward) {
  for (bool tied : {false, true}) {
    const Gpt base = load_model(random_model(tiny_config(tied), 10));
    for (const char* name : {"fp32", "mxfp4"}) {
      SCOPED_TRACE(name);
      const Gpt g = base.with_weights(parse_matrix_format(name));
      const std::vector<std::uint8_t> tokens = some_text(24, 11);
      const std::vector<float> full = logits_of(g, tokens);
      Generator gen(g, 2);
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        const std::span<const float> step = gen.push(tokens[i]);
        std::vector<double> want(full.begin() + static_cast<std::ptrdiff_t>(i * 256),
                                 full.begin() + static_cast<std::ptrdiff_t>((i + 1) * 256));
        EXPECT_LT(relative_error(std::vector<float>(step.begin(), step.end()), want), 1e-5)
            << "position " << i;
      }
      // The context is full: the next token drops the oldest half (12 tokens).
      const std::span<const float> next = gen.push('x');
      std::vector<std::uint8_t> kept(tokens.begin() + 12, tokens.end());
      kept.push_back('x');
      const std::vector<float> again = logits_of(g, kept);
      EXPECT_EQ(gen.context_length(), 13u);
      EXPECT_LT(relative_error(std::vector<float>(next.begin(), next.end()),
                               std::vector<double>(again.end() - 256, again.end())),
                1e-5);
      // And it goes on from there through the cache.
      const std::span<const float> after = gen.push('y');
      kept.push_back('y');
      const std::vector<float> again2 = logits_of(g, kept);
      EXPECT_LT(relative_error(std::vector<float>(after.begin(), after.end()),
                               std::vector<double>(again2.end() - 256, again2.end())),
                1e-5);
    }
  }
}

TEST(Gpt, GenerateIsGreedyAtTemperatureZeroAndSeeded) {
  const Gpt g = load_model(random_model(tiny_config(false), 12));
  std::vector<std::uint8_t> text = {'a', 'b'};
  const std::vector<std::uint8_t> out = generate(g, text, 5, 0.0, 0, 0);
  ASSERT_EQ(out.size(), 5u);
  for (std::uint8_t b : out) {
    const std::vector<float> l = logits_of(g, text);
    std::size_t best = 0;
    for (std::size_t k = 1; k < 256; ++k) {
      if (l[l.size() - 256 + k] > l[l.size() - 256 + best]) best = k;
    }
    EXPECT_EQ(b, best);
    text.push_back(b);
  }
  const std::vector<std::uint8_t> a = generate(g, text, 30, 1.0, 0, 42),
                                  b = generate(g, text, 30, 1.0, 0, 42),
                                  c = generate(g, text, 30, 1.0, 0, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);  // 30 draws from a near-uniform 256-way distribution
  // top_k = 1 is greedy whatever the temperature.
  EXPECT_EQ(generate(g, text, 10, 5.0, 1, 1), generate(g, text, 10, 0.0, 0, 2));
  EXPECT_THROW(generate(g, std::vector<std::uint8_t>{}, 3, 1.0, 0, 0), Error);
  EXPECT_THROW(generate(g, text, 3, -1.0, 0, 0), Error);
}

TEST(Gpt, EveryReportFormatRuns) {
  const Gpt g = load_model(random_model(tiny_config(false), 13));
  const std::vector<std::uint8_t> text = some_text(24 * 3, 14);
  const double fp32_loss = g.evaluate_bytes(text).nats_per_byte();
  std::size_t fp32_bytes = g.weight_bytes();
  for (const char* name : kReportFormats) {
    SCOPED_TRACE(name);
    const Gpt q = g.with_weights(parse_matrix_format(name));
    EXPECT_EQ(q.weight_format().name, name);
    const EvalResult r = q.evaluate_bytes(text);
    EXPECT_TRUE(std::isfinite(r.nats_per_byte()));
    EXPECT_LT(std::fabs(r.nats_per_byte() - fp32_loss), 0.5);
    EXPECT_LE(q.weight_bytes(), fp32_bytes);
    EXPECT_LE(q.linear_bits_per_weight(), 32.0);
  }
  // Bits per weight with scales: every linear layer's row is a multiple of 32.
  EXPECT_DOUBLE_EQ(g.with_weights(parse_matrix_format("bf16")).linear_bits_per_weight(), 16.0);
  EXPECT_DOUBLE_EQ(g.with_weights(parse_matrix_format("mxfp8_e4m3")).linear_bits_per_weight(),
                   8.25);
  EXPECT_DOUBLE_EQ(g.with_weights(parse_matrix_format("mxfp4")).linear_bits_per_weight(), 4.25);
  EXPECT_DOUBLE_EQ(g.with_weights(parse_matrix_format("int4:group32")).linear_bits_per_weight(),
                   4.5);
  // with_weights quantizes the checkpoint's values, not the current format's.
  const Gpt twice =
      g.with_weights(parse_matrix_format("mxfp4")).with_weights(parse_matrix_format("fp32"));
  const std::vector<std::uint8_t> tokens = some_text(10, 15);
  EXPECT_EQ(logits_of(twice, tokens), logits_of(g, tokens));
}

TEST(Gpt, ActivationsAreQuantizedRowByRow) {
  // Each row round-trips exactly as a one-row PackedMatrix of the format.
  const std::size_t rows = 3, cols = 70;
  std::vector<float> x = [] {
    std::mt19937_64 rng(16);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> v(rows * cols);
    for (float& f : v) f = normal(rng);
    v[5] = 0.0f;
    return v;
  }();
  for (int r = 0; r < 3; ++r)
    x[static_cast<std::size_t>(r) * cols + 3] *= static_cast<float>(1 << (6 * r));
  for (const char* name : kReportFormats) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    std::vector<float> got = x;
    fake_quantize_rows(f, got.data(), rows, cols);
    for (std::size_t r = 0; r < rows; ++r) {
      std::vector<float> want(cols);
      PackedMatrix::quantize(f, std::span<const float>(x).subspan(r * cols, cols), 1, cols)
          .dequantize(want);
      EXPECT_EQ(std::memcmp(want.data(), got.data() + r * cols, cols * sizeof(float)), 0)
          << "row " << r;
    }
  }
  // In the model: fp32 activations change nothing; mxfp4 ones change the
  // logits a little; and the KV-cache path quantizes the same rows.
  const TinyModel m = random_model(tiny_config(false), 17);
  const Gpt g = load_model(m);
  const std::vector<std::uint8_t> tokens = some_text(20, 18);
  EXPECT_EQ(logits_of(g.with_activations(parse_matrix_format("fp32")), tokens),
            logits_of(g, tokens));
  const Gpt a = g.with_activations(parse_matrix_format("mxfp8_e4m3"));
  const std::vector<float> la = logits_of(a, tokens), l = logits_of(g, tokens);
  const double change = relative_error(la, std::vector<double>(l.begin(), l.end()));
  EXPECT_GT(change, 1e-3);
  const MatrixFormat fp32 = parse_matrix_format("fp32"), mx = parse_matrix_format("mxfp8_e4m3");
  const double error = relative_error(la, reference_logits(m, tokens, fp32, &mx));
  EXPECT_LT(error, change / 20) << change;
  Generator gen(a);
  std::span<const float> last;
  for (std::uint8_t t : tokens) last = gen.push(t);
  EXPECT_LT(relative_error(std::vector<float>(last.begin(), last.end()),
                           std::vector<double>(la.end() - 256, la.end())),
            1e-5);
}

TEST(Gpt, LoadsBf16Tensors) {
  TinyModel m = random_model(tiny_config(false), 19);
  const Gpt from_bf16 =
      load_image(safetensors_image(m, {{"wte.weight", "BF16"}, {"h.1.mlp.c_fc.weight", "BF16"}}));
  for (const char* name : {"wte.weight", "h.1.mlp.c_fc.weight"}) {
    for (float& v : m.tensors[name].values)
      v = std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) & 0xFFFF0000u);
  }
  const std::vector<std::uint8_t> tokens = some_text(12, 20);
  EXPECT_EQ(logits_of(from_bf16, tokens), logits_of(load_model(m), tokens));
}

// A checkpoint whose linear weights `lowp quantize` stored as MXFP4 loads
// (read as its decoded values) and runs as the original does in MXFP4.
// Regression: the reader took "lowp.arch" for a packed tensor's description,
// and lowp quantize dropped it.
TEST(Gpt, LoadsALowpQuantizedCheckpoint) {
  const TinyModel m = random_model(tiny_config(false), 27);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("lowp_gpt_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  const std::vector<std::byte> image = safetensors_image(m);
  {
    std::ofstream out(dir / "model.safetensors", std::ios::binary);
    out.write(reinterpret_cast<const char*>(image.data()),
              static_cast<std::streamsize>(image.size()));
  }
  QuantizeRequest req;
  req.format = "mxfp4";
  req.exclude = {"wte.weight", "wpe.weight"};
  req.output_kind = "safetensors";
  const auto in = io::open_model(dir / "model.safetensors");
  quantize_model(*in, dir / "mxfp4.safetensors", req);
  const Gpt q = load_transformer(dir / "mxfp4.safetensors");
  const Gpt want = load_model(m).with_weights(parse_matrix_format("mxfp4"));
  const std::vector<std::uint8_t> tokens = some_text(20, 28);
  const std::vector<float> l = logits_of(want, tokens);
  EXPECT_LT(relative_error(logits_of(q, tokens), std::vector<double>(l.begin(), l.end())), 1e-6);
  // Re-quantizing MXFP4 values to MXFP4 changes nothing.
  EXPECT_EQ(logits_of(q.with_weights(parse_matrix_format("mxfp4")), tokens), l);
  // The same as GGUF (its MXFP4 type; the metadata carried over as strings).
  req.output_kind = "gguf";
  quantize_model(*in, dir / "mxfp4.gguf", req);
  const Gpt from_gguf = load_transformer(dir / "mxfp4.gguf");
  EXPECT_EQ(from_gguf.config().n_layer, 2);
  EXPECT_LT(relative_error(logits_of(from_gguf, tokens), std::vector<double>(l.begin(), l.end())),
            1e-6);
}

// The embedded checkpoint (models/kjv-char, trained by scripts/train_kjv.py),
// when present: direct-cast losses on the start of its validation text order
// as the MX paper reports, fp32 ~ bf16 ~ mxfp8 < mxfp4.
TEST(GptCheckpoint, LossOrderingOnTheEmbeddedModel) {
  const char* source = std::getenv("LOWP_SOURCE_DIR");
  const std::filesystem::path dir =
      std::filesystem::path(source != nullptr ? source : ".") / "models" / "kjv-char";
  if (!std::filesystem::exists(dir / "model.safetensors") ||
      !std::filesystem::exists(dir / "val.txt")) {
    LOWP_SKIP_OR_FAIL_UNDER_CI(dir << " has no model.safetensors and val.txt");
  }
  const Gpt g = load_transformer(dir / "model.safetensors");
  std::ifstream in(dir / "val.txt", std::ios::binary);
  std::vector<std::uint8_t> text(4096);
  in.read(reinterpret_cast<char*>(text.data()), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  auto loss = [&](const char* format) {
    return g.with_weights(parse_matrix_format(format)).evaluate_bytes(text, 2).nats_per_byte();
  };
  const double fp32 = loss("fp32");
  // A trained model is far below ln 256 = 5.5 nats per byte; the ordering of
  // an untrained one means nothing.
  ASSERT_LT(fp32, 2.0) << dir << "/model.safetensors looks untrained";
  const double bf16 = loss("bf16"), mxfp8 = loss("mxfp8_e4m3"), mxfp4 = loss("mxfp4");
  EXPECT_NEAR(bf16, fp32, 0.01);
  EXPECT_NEAR(mxfp8, fp32, 0.03);
  EXPECT_GT(mxfp4, std::max({fp32, bf16, mxfp8}));
}

// ---- checkpoint validation ----

void expect_load_error(const std::vector<std::byte>& image, const std::string& message) {
  try {
    load_image(image);
    ADD_FAILURE() << "loaded; expected: " << message;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(GptLoad, MissingTensor) {
  TinyModel m = random_model(tiny_config(false), 21);
  m.tensors.erase("h.1.attn.c_proj.bias");
  expect_load_error(
      safetensors_image(m),
      "tiny.safetensors: tensor 'h.1.attn.c_proj.bias' is missing (expected shape [32])");
  m = random_model(tiny_config(false), 21);
  m.tensors.erase("lm_head.weight");  // untied per the metadata
  expect_load_error(safetensors_image(m),
                    "tensor 'lm_head.weight' is missing (expected shape [256, 32])");
}

TEST(GptLoad, WrongShape) {
  TinyModel m = random_model(tiny_config(false), 22);
  m.tensors["h.0.attn.c_attn.weight"].shape = {32, 96};
  expect_load_error(
      safetensors_image(m),
      "tiny.safetensors: tensor 'h.0.attn.c_attn.weight' has shape [32, 96], expected [96, 32]");
  m = random_model(tiny_config(false), 22);
  m.tensors["ln_f.bias"].shape = {1, 32};
  expect_load_error(safetensors_image(m), "tensor 'ln_f.bias' has shape [1, 32], expected [32]");
}

TEST(GptLoad, WrongArchitecture) {
  TinyModel m = random_model(tiny_config(false), 23);
  m.metadata[0].second = "llama";
  expect_load_error(safetensors_image(m),
                    "tiny.safetensors: metadata 'lowp.arch' is 'llama', expected 'gpt'");
  m.metadata.erase(m.metadata.begin());
  expect_load_error(safetensors_image(m),
                    "tiny.safetensors: not a lowp gpt checkpoint: metadata 'lowp.arch' is missing");
  m = random_model(tiny_config(false), 23);
  m.metadata[4].second = "5";  // n_head does not divide d_model = 32
  expect_load_error(safetensors_image(m),
                    "metadata 'd_model' (32) is not a multiple of 'n_head' (5)");
  m.metadata[4].second = "four";
  expect_load_error(safetensors_image(m), "metadata 'n_head' is 'four', expected an integer");
  m = random_model(tiny_config(false), 23);
  m.metadata[1].second = "512";
  expect_load_error(safetensors_image(m), "metadata 'vocab_size' is 512, expected 256");
  m = random_model(tiny_config(false), 23);
  m.metadata.erase(m.metadata.begin() + 5);  // n_layer
  expect_load_error(safetensors_image(m), "metadata 'n_layer' is missing");
  m = random_model(tiny_config(false), 23);
  m.metadata[7].second = "yes";
  expect_load_error(safetensors_image(m), "metadata 'tied_head' is 'yes', expected '0' or '1'");
  m.metadata[7].second = "1";  // says tied, but lm_head.weight is there
  expect_load_error(
      safetensors_image(m),
      "unexpected tensor 'lm_head.weight' (not part of a lowp-gpt model with n_layer=2, tied head "
      "yes)");
  m.metadata[8].second = "-1";
  expect_load_error(safetensors_image(m), "metadata 'ln_eps' is '-1'");
}

TEST(GptLoad, InfersTheTiedHeadWhenUnrecorded) {
  for (bool tied : {false, true}) {
    TinyModel m = random_model(tiny_config(tied), 24);
    m.metadata.erase(m.metadata.begin() + 7);
    EXPECT_EQ(load_model(m).config().tied_head, tied);
  }
}

TEST(GptLoad, WrongDtypeUnexpectedTensorAndNonFinite) {
  TinyModel m = random_model(tiny_config(false), 25);
  expect_load_error(
      safetensors_image(m, {{"wpe.weight", "I32"}}),
      "tiny.safetensors: tensor 'wpe.weight' has dtype 'I32', expected a float dtype");
  m.tensors["h.2.ln_1.weight"] = Tensor{{32}, std::vector<float>(32, 1.0f)};
  expect_load_error(safetensors_image(m), "tiny.safetensors: unexpected tensor 'h.2.ln_1.weight'");
  m = random_model(tiny_config(false), 25);
  m.tensors["h.1.mlp.c_fc.bias"].values[3] = NAN;
  expect_load_error(safetensors_image(m),
                    "tensor 'h.1.mlp.c_fc.bias' holds a non-finite value at index 3");
}

TEST(GptLoad, ForwardArgumentErrors) {
  const Gpt g = load_model(random_model(tiny_config(false), 26));
  std::vector<float> logits(25 * 256);
  auto ids = [](const std::vector<std::uint8_t>& t) {
    return std::vector<std::int32_t>(t.begin(), t.end());
  };
  EXPECT_THROW(g.forward(ids(some_text(25, 1)), logits), Error);  // longer than n_ctx
  EXPECT_THROW(g.forward({}, logits), Error);
  EXPECT_THROW(g.forward(ids(some_text(3, 1)), logits), Error);  // wrong logits size
  std::vector<float> one(256);
  EXPECT_THROW(g.forward(std::vector<std::int32_t>{256}, one), Error);  // outside the vocabulary
  EXPECT_THROW(g.forward(std::vector<std::int32_t>{-1}, one), Error);
}

}  // namespace
}  // namespace lowp::nn
