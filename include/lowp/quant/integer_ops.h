// lowp/quant/integer_ops.h — the kernels of integer-only transformer inference
// (I-BERT, Kim et al. 2021): requantization by an integer multiply and shift,
// an integer square root, and integer approximations of GELU, exp, softmax,
// sigmoid, LayerNorm and RMSNorm.
//
// Every kernel works on integers q that stand for the reals q * S, with the
// scale S known ahead of time. A kernel's constructor derives its integer
// constants from the scales (once, when a model is prepared); its operator()
// then uses integer arithmetic only: adds, multiplies, shifts, comparisons and
// integer divisions. Products that can pass 63 bits are taken in 128 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowp::integer {

// A real multiplier M > 0 stored as m * 2^-shift with m in [2^30, 2^31)
// (gemmlowp's and TFLite's "quantized multiplier"): apply(v) is v * M rounded
// to the nearest integer, ties away from zero, exact for any int64 v (the
// product is taken in 128 bits) and saturated to int64.
struct Dyadic {
  std::int64_t m = 0;
  int shift = 0;
  // Throws lowp::Error for M not finite or <= 0. M below 2^-90 becomes 0
  // (m = 0): every input maps to 0.
  static Dyadic of(double multiplier);
  double value() const;  // m * 2^-shift
  std::int64_t apply(std::int64_t v) const;
};

// Clamps to the symmetric range of a `bits`-bit integer: [-(2^(bits-1) - 1),
// 2^(bits-1) - 1] (bits 2..32).
std::int32_t saturate(std::int64_t v, int bits);

// floor(a / b) rounded to nearest instead, ties away from zero; b > 0.
std::int64_t round_div(std::int64_t a, std::int64_t b);

// floor(sqrt(n)) by Newton's iteration on integers (I-BERT's Algorithm 4):
// x_{k+1} = (x_k + n / x_k) / 2 from a power of two above sqrt(n), until it
// stops decreasing.
std::uint64_t isqrt(std::uint64_t n);

// i-GELU: GELU(x) = x/2 (1 + erf(x/sqrt2)) with erf replaced by I-BERT's
// second-order polynomial L(x) = sign(x) [a (min(|x|, -b) + b)^2 + 1],
// a = -0.2888, b = -1.769, evaluated on integers. Input scale `scale`;
// the output q * out_scale.
class IGelu {
 public:
  explicit IGelu(double scale);
  double out_scale() const { return out_scale_; }
  std::int64_t operator()(std::int64_t q) const;
  // The real function it computes: x/2 (1 + L(x / sqrt2)), for tests.
  static double reference(double x);

 private:
  std::int64_t q_b_ = 0, q_c_ = 0, q_one_ = 0;
  double out_scale_ = 0;
};

// i-exp for q <= 0: exp(x) = 2^-z exp(p) with x = p - z ln2, p in (-ln2, 0],
// and exp(p) replaced by I-BERT's 0.3585 (p + 1.353)^2 + 0.344; the 2^-z is a
// right shift. Input scale `scale` (ln2 / scale must be at least 1); the
// output q * out_scale. Positive inputs are treated as 0.
class IExp {
 public:
  explicit IExp(double scale);
  double out_scale() const { return out_scale_; }
  std::int64_t operator()(std::int64_t q) const;
  // The integer that stands for exp(0) = 1 (round(1 / out_scale)).
  std::int64_t one() const { return one_; }
  static double reference(double x);  // 2^-z (0.3585 (p + 1.353)^2 + 0.344)

 private:
  std::int64_t q_ln2_ = 0, q_b_ = 0, q_c_ = 0, one_ = 0;
  double out_scale_ = 0;
};

// The scale of softmax's and sigmoid's integer inputs: ln2 / 2^12, so that
// i-exp's range reduction works on 12 fractional bits of z.
inline constexpr double kExpInputScale = 0.69314718055994530942 / 4096.0;

// Integer softmax of n scores at scale kExpInputScale: p[j] =
// round(e_j 2^bits / sum e) with e_j = i-exp(s_j - max s), so p[j] * 2^-bits
// is the probability (the p sum to 2^bits up to rounding). bits 1..16.
void softmax(const std::int64_t* scores, std::size_t n, int bits, std::int32_t* p);

// Integer sigmoid of x = q * kExpInputScale through i-exp of -|x|:
// round(2^bits e(0) / (e(0) + e(-|x|))) with e = i-exp for x >= 0, 2^bits
// minus that for x < 0 (so sigmoid(0) is exactly 2^(bits-1)).
// bits 1..30.
std::int64_t sigmoid(std::int64_t q, int bits);

// Integer LayerNorm / RMSNorm of one row of d residual values (scale `scale`)
// into `out_bits`-bit integers at scale out_scale:
//   LayerNorm  y = (x - mean) / sqrt(var + eps) * weight + bias
//   RMSNorm    y = x / sqrt(mean(x^2) + eps) * weight
// The mean rounds to an integer, the variance is an integer division of the
// sum of squares (128-bit) by d, the standard deviation isqrt of it plus eps
// in the input's units squared; the normalized value takes 16 fractional
// bits; weight and bias fold into one per-channel multiplier and offset with
// 32 fractional bits, and a rounding shift gives the output.
class IntNorm {
 public:
  // weight: d values; bias: d values or null (RMSNorm: null).
  IntNorm(bool rms, std::size_t d, const float* weight, const float* bias, float eps, double scale,
          double out_scale, int out_bits);
  void operator()(const std::int32_t* x, std::int32_t* y) const;
  std::size_t size() const { return gain_.size(); }

 private:
  bool rms_ = false;
  int out_bits_ = 8;
  std::int64_t eps_ = 0;
  std::vector<std::int64_t> gain_, offset_;
};

}  // namespace lowp::integer
