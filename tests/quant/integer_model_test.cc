// Integer-only inference on the two real models of the repository (the KJV
// byte-level GPT: LayerNorm, GELU, learned positions; the KJV Llama: RMSNorm,
// SwiGLU, RoPE, grouped-query attention): the token-by-token path equals the
// whole-window path bit for bit, threads change nothing, and the loss tracks
// the float W8A8 model it mirrors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/nn/model_files.h"
#include "lowp/nn/tokenizer.h"
#include "lowp/quant/integer_model.h"

namespace lowp {
namespace {

std::filesystem::path source_dir() {
  const char* s = std::getenv("LOWP_SOURCE_DIR");
  return s != nullptr ? s : LOWP_TEST_SOURCE_DIR;
}

std::string read_text() {
  std::ifstream f(source_dir() / "models" / "kjv-char" / "val.txt", std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

struct Case {
  nn::Transformer model;
  std::vector<std::int32_t> calib_tokens, eval_tokens;
  std::vector<std::uint32_t> eval_bytes;
  std::optional<std::int32_t> bos;
};

// Under the sanitizers (about ten times slower) the test runs on less text.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kCalibBytes = 6000, kEvalBytes = 2048;
#else
constexpr std::size_t kCalibBytes = 12000, kEvalBytes = 8192;
#endif

// The first kCalibBytes of the held-out text calibrate, the next kEvalBytes
// are evaluated.
Case kjv_char() {
  const std::string text = read_text();
  Case c{nn::load_transformer(source_dir() / "models" / "kjv-char" / "model.safetensors"),
         {},
         {},
         {},
         std::nullopt};
  for (std::size_t i = 0; i < text.size(); ++i) {
    (i < kCalibBytes ? c.calib_tokens : c.eval_tokens)
        .push_back(static_cast<unsigned char>(text[i]));
  }
  c.eval_tokens.resize(std::min<std::size_t>(c.eval_tokens.size(), kEvalBytes));
  c.eval_bytes.assign(c.eval_tokens.size(), 1);
  return c;
}

Case kjv_llama() {
  const std::string text = read_text();
  const auto dir = source_dir() / "models" / "kjv-llama";
  const nn::Tokenizer tok = nn::Tokenizer::from_directory(dir);
  Case c{nn::load_transformer(dir), tok.encode(text.substr(0, kCalibBytes)), {}, {}, tok.bos()};
  const std::string rest = text.substr(kCalibBytes, kEvalBytes);
  c.eval_tokens = tok.encode(rest);
  // Bytes per token: spread the text's bytes over its tokens (the loss per
  // byte needs only their sum).
  c.eval_bytes.assign(c.eval_tokens.size(), 0);
  for (std::size_t i = 0; i < rest.size(); ++i) ++c.eval_bytes[i % c.eval_bytes.size()];
  return c;
}

std::vector<std::vector<std::int32_t>> windows(const std::vector<std::int32_t>& t,
                                               std::size_t len) {
  std::vector<std::vector<std::int32_t>> w;
  for (std::size_t i = 0; i + len <= t.size(); i += len) {
    const auto at = t.begin() + static_cast<std::ptrdiff_t>(i);
    w.emplace_back(at, at + static_cast<std::ptrdiff_t>(len));
  }
  return w;
}

void check_model(Case c, const char* name, double max_loss_increase_vs_w8a8) {
  c.model = c.model.with_context(std::min(c.model.config().n_ctx, 128));
  IntegerModelOptions opt;
  opt.threads = 2;
  const IntegerTransformer im(c.model, windows(c.calib_tokens, 64), opt);
  const std::size_t vocab = static_cast<std::size_t>(c.model.config().vocab_size);

  // Token by token (the KV cache) = the whole window, bit for bit; threads
  // change nothing.
  const std::size_t n = 40;
  const std::span<const std::int32_t> seq(c.eval_tokens.data(), n);
  std::vector<float> whole(n * vocab), two(n * vocab);
  im.forward(seq, whole, 1);
  im.forward(seq, two, 2);
  ASSERT_EQ(whole, two) << name;
  const nn::NextLogits push = im.generator(1);
  for (std::size_t t = 0; t < n; ++t) {
    const std::span<const float> l = push(seq.subspan(t, 1));
    ASSERT_TRUE(
        std::equal(l.begin(), l.end(), whole.begin() + static_cast<std::ptrdiff_t>(t * vocab)))
        << name << " position " << t;
  }

  // The logits follow the float W8A8 model's.
  std::vector<float> ref(n * vocab);
  im.float_int8().forward(seq, ref, 1);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(whole[i] - ref[i])));
    den = std::max(den, static_cast<double>(std::fabs(ref[i])));
  }
  std::printf("%s: max |integer - float W8A8 logit| / max |logit| = %.4f\n", name, num / den);
  EXPECT_LE(num / den, 0.1) << name;

  // The loss per byte: FP32, float W8A8, integer-only.
  const nn::EvalResult fp32 = c.model.evaluate(c.eval_tokens, c.eval_bytes, 2, c.bos);
  const nn::EvalResult w8a8 = im.float_int8().evaluate(c.eval_tokens, c.eval_bytes, 2, c.bos);
  const nn::EvalResult in = im.evaluate(c.eval_tokens, c.eval_bytes, 2, c.bos);
  ASSERT_EQ(in.tokens, fp32.tokens);
  std::printf(
      "%s bits/byte: fp32 %.4f, float W8A8 %.4f (%+.2f%%), integer-only %.4f (%+.2f%% vs "
      "fp32, %+.2f%% vs W8A8)\n",
      name, fp32.bits_per_byte(), w8a8.bits_per_byte(),
      100 * (w8a8.bits_per_byte() / fp32.bits_per_byte() - 1), in.bits_per_byte(),
      100 * (in.bits_per_byte() / fp32.bits_per_byte() - 1),
      100 * (in.bits_per_byte() / w8a8.bits_per_byte() - 1));
  EXPECT_LE(in.bits_per_byte(), w8a8.bits_per_byte() * (1 + max_loss_increase_vs_w8a8)) << name;
  // The same windows give the same loss whatever the threads.
  EXPECT_EQ(im.evaluate(c.eval_tokens, c.eval_bytes, 1, c.bos).nats, in.nats) << name;
  EXPECT_NEAR(im.linear_bits_per_weight(),
              c.model.with_weights(parse_matrix_format("int8:channel")).linear_bits_per_weight(),
              1e-9);
}

TEST(IntegerModel, KjvCharGpt) { check_model(kjv_char(), "kjv-char", 0.005); }
TEST(IntegerModel, KjvLlama) { check_model(kjv_llama(), "kjv-llama", 0.005); }

// Past the context the generator keeps the newest half of its tokens and
// rebuilds its cache from them: its logits are then those of forward() on
// that window, whether tokens come one at a time or in chunks that cross the
// boundary.
TEST(IntegerModel, GeneratorPastTheContext) {
  Case c = kjv_char();
  constexpr std::size_t ctx = 32;
  const IntegerTransformer im(c.model.with_context(static_cast<int>(ctx)),
                              windows(c.calib_tokens, ctx));
  const auto vocab = static_cast<std::size_t>(c.model.config().vocab_size);
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{13}}) {
    const nn::NextLogits push = im.generator(1);
    std::vector<std::int32_t> window;  // what the generator should hold
    std::vector<float> ref;
    for (std::size_t at = 0; at + chunk <= 5 * ctx; at += chunk) {
      const std::span<const std::int32_t> part(c.eval_tokens.data() + at, chunk);
      for (const std::int32_t t : part) {
        if (window.size() == ctx) {
          window.erase(window.begin(), window.begin() + static_cast<std::ptrdiff_t>(ctx - ctx / 2));
        }
        window.push_back(t);
      }
      const std::span<const float> got = push(part);
      ref.resize(window.size() * vocab);
      im.forward(window, ref);
      ASSERT_TRUE(
          std::equal(got.begin(), got.end(), ref.end() - static_cast<std::ptrdiff_t>(vocab)))
          << "chunk " << chunk << " at " << at;
    }
  }
}

TEST(IntegerModel, RefusesWhatItDoesNotCover) {
  Case c = kjv_char();
  const auto w = windows(c.calib_tokens, 64);
  EXPECT_THROW(IntegerTransformer(c.model, {}), Error);
  IntegerModelOptions bad;
  bad.attention_bits = 1;
  EXPECT_THROW(IntegerTransformer(c.model, w, bad), Error);
  bad = {};
  bad.softmax_bits = 17;
  EXPECT_THROW(IntegerTransformer(c.model, w, bad), Error);
  const IntegerTransformer im(c.model.with_context(64), {w.at(0)});
  std::vector<float> logits(256);
  const std::vector<std::int32_t> outside{256};
  EXPECT_THROW(im.forward(outside, logits), Error);
  EXPECT_THROW(im.forward({}, logits), Error);
}

}  // namespace
}  // namespace lowp
