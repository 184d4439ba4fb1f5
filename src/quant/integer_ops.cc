// Integer-only kernels (lowp/quant/integer_ops.h).
#include "lowp/quant/integer_ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "lowp/error.h"

namespace lowp::integer {
namespace {

__extension__ using i128 = __int128;
__extension__ using u128 = unsigned __int128;

constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();

std::int64_t clamp_i64(i128 v) {
  if (v > static_cast<i128>(kI64Max)) return kI64Max;
  if (v < -static_cast<i128>(kI64Max)) return -kI64Max;
  return static_cast<std::int64_t>(v);
}

// v / 2^s rounded to nearest, ties away from zero (s >= 1).
i128 round_shift(i128 v, int s) {
  const bool neg = v < 0;
  const u128 mag = neg ? static_cast<u128>(-v) : static_cast<u128>(v);
  const u128 r = (mag + (static_cast<u128>(1) << (s - 1))) >> s;
  return neg ? -static_cast<i128>(r) : static_cast<i128>(r);
}

// llround of a finite double known to fit (checked by the callers' ranges).
std::int64_t to_int(double x, const char* what) {
  if (!std::isfinite(x) || std::fabs(x) > 0x1p62) {
    throw Error(std::string("integer kernel: the constant ") + what + " (" + std::to_string(x) +
                ") does not fit 62 bits; the scale is out of range");
  }
  return std::llround(x);
}
std::int64_t to_floor(double x, const char* what) {
  if (!std::isfinite(x) || std::fabs(x) > 0x1p62) {
    throw Error(std::string("integer kernel: the constant ") + what + " (" + std::to_string(x) +
                ") does not fit 62 bits; the scale is out of range");
  }
  return static_cast<std::int64_t>(std::floor(x));
}

void check_scale(double s, const char* what) {
  if (!(s > 0) || !std::isfinite(s)) {
    throw Error(std::string(what) + ": scale " + std::to_string(s) + " must be finite and > 0");
  }
}

}  // namespace

Dyadic Dyadic::of(double multiplier) {
  check_scale(multiplier, "requantization multiplier");
  if (multiplier >= 0x1p32) {
    throw Error("requantization multiplier " + std::to_string(multiplier) + " is 2^32 or more");
  }
  int e = 0;
  const double f = std::frexp(multiplier, &e);  // multiplier = f 2^e, f in [0.5, 1)
  auto m = static_cast<std::int64_t>(std::llround(std::ldexp(f, 31)));
  if (m == (std::int64_t{1} << 31)) {
    m >>= 1;
    ++e;
  }
  Dyadic d;
  d.shift = 31 - e;
  d.m = m;
  if (d.shift > 120) {  // below 2^-89: nothing survives
    d.m = 0;
    d.shift = 0;
  }
  return d;
}

double Dyadic::value() const { return std::ldexp(static_cast<double>(m), -shift); }

std::int64_t Dyadic::apply(std::int64_t v) const {
  const i128 p = static_cast<i128>(v) * m;
  if (shift > 0) return clamp_i64(round_shift(p, shift));
  return clamp_i64(p * (static_cast<i128>(1) << -shift));
}

std::int32_t saturate(std::int64_t v, int bits) {
  const std::int64_t hi = (std::int64_t{1} << (bits - 1)) - 1;
  return static_cast<std::int32_t>(std::clamp(v, -hi, hi));
}

std::int64_t round_div(std::int64_t a, std::int64_t b) {
  const bool neg = a < 0;
  const u128 mag = neg ? static_cast<u128>(-static_cast<i128>(a)) : static_cast<u128>(a);
  const auto q = static_cast<std::int64_t>((mag + static_cast<u128>(b) / 2) / static_cast<u128>(b));
  return neg ? -q : q;
}

std::uint64_t isqrt(std::uint64_t n) {
  if (n < 2) return n;
  // A power of two at or above sqrt(n): 2^ceil(bits / 2).
  std::uint64_t x = std::uint64_t{1} << ((std::bit_width(n) + 1) / 2);
  for (;;) {
    const std::uint64_t y = (x + n / x) / 2;
    if (y >= x) return x;
    x = y;
  }
}

// ---- i-GELU ----

namespace {
constexpr double kGeluA = -0.2888, kGeluB = -1.769;
constexpr double kExpA = 0.3585, kExpB = 1.353, kExpC = 0.344;
constexpr double kLn2 = 0.69314718055994530942;
}  // namespace

IGelu::IGelu(double scale) {
  check_scale(scale, "i-GELU");
  const double s = scale / std::sqrt(2.0);  // erf's argument x / sqrt 2
  q_b_ = to_floor(kGeluB / s, "i-GELU b / S");
  q_c_ = to_floor(1.0 / (kGeluA * s * s), "i-GELU 1 / (a S^2)");
  const double s_l = kGeluA * s * s;  // L's scale (negative, as a)
  q_one_ = to_floor(1.0 / s_l, "i-GELU 1 / S_L");
  // The output is negated so that its scale is positive.
  out_scale_ = -scale * s_l / 2.0;
  if (q_b_ >= 0) throw Error("i-GELU: scale " + std::to_string(scale) + " is too coarse");
}

std::int64_t IGelu::operator()(std::int64_t q) const {
  const std::int64_t sign = q < 0 ? -1 : 1;
  const std::int64_t clipped = std::min<std::int64_t>(q < 0 ? -q : q, -q_b_);
  const std::int64_t t = clipped + q_b_;
  const std::int64_t l = sign * (t * t + q_c_);
  return clamp_i64(-static_cast<i128>(q) * (l + q_one_));
}

double IGelu::reference(double x) {
  const double u = x / std::sqrt(2.0);
  const double c = std::min(std::fabs(u), -kGeluB) + kGeluB;
  const double l = (u < 0 ? -1.0 : 1.0) * (kGeluA * c * c + 1.0);
  return x / 2.0 * (1.0 + l);
}

// ---- i-exp ----

IExp::IExp(double scale) {
  check_scale(scale, "i-exp");
  q_ln2_ = to_floor(kLn2 / scale, "i-exp ln2 / S");
  if (q_ln2_ < 1) throw Error("i-exp: scale " + std::to_string(scale) + " exceeds ln 2");
  q_b_ = to_floor(kExpB / scale, "i-exp b / S");
  q_c_ = to_floor(kExpC / (kExpA * scale * scale), "i-exp c / (a S^2)");
  out_scale_ = kExpA * scale * scale;
  one_ = to_int(1.0 / out_scale_, "i-exp 1 / S_out");
}

std::int64_t IExp::operator()(std::int64_t q) const {
  if (q > 0) q = 0;
  const std::int64_t z = (q == std::numeric_limits<std::int64_t>::min() ? kI64Max : -q) / q_ln2_;
  if (z >= 62) return 0;
  const std::int64_t p = q + z * q_ln2_;  // in (-q_ln2, 0]
  const std::int64_t t = p + q_b_;
  return (t * t + q_c_) >> z;
}

double IExp::reference(double x) {
  if (x > 0) x = 0;
  const double z = std::floor(-x / kLn2);
  const double p = x + z * kLn2;
  return std::ldexp(kExpA * (p + kExpB) * (p + kExpB) + kExpC, -static_cast<int>(z));
}

namespace {
const IExp& exp_kernel() {
  static const IExp e(kExpInputScale);
  return e;
}
}  // namespace

void softmax(const std::int64_t* scores, std::size_t n, int bits, std::int32_t* p) {
  if (n == 0) return;
  const IExp& ex = exp_kernel();
  const std::int64_t max = *std::max_element(scores, scores + n);
  std::int64_t sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const std::int64_t d = scores[j] - max;  // <= 0
    sum += ex(d);
  }
  for (std::size_t j = 0; j < n; ++j) {
    const std::int64_t e = ex(scores[j] - max);
    p[j] = static_cast<std::int32_t>(round_div(e << bits, sum));
  }
}

std::int64_t sigmoid(std::int64_t q, int bits) {
  const IExp& ex = exp_kernel();
  const std::int64_t mag =
      q < 0 ? (q == std::numeric_limits<std::int64_t>::min() ? kI64Max : -q) : q;
  const std::int64_t e = ex(-mag);
  // i-exp(0) rather than one(): the polynomial's exp(0) is 1.0003, and
  // e(0) / (e(0) + e(-|x|)) keeps sigmoid(0) at exactly one half.
  const std::int64_t one = ex(0);  // < 2^27, bits <= 30
  const std::int64_t pos = round_div(one << bits, one + e);
  return q >= 0 ? pos : (std::int64_t{1} << bits) - pos;
}

// ---- LayerNorm / RMSNorm ----

namespace {
constexpr int kNormFrac = 16;   // fractional bits of the normalized value
constexpr int kNormShift = 32;  // fractional bits of gain * normalized + offset
}  // namespace

IntNorm::IntNorm(bool rms, std::size_t d, const float* weight, const float* bias, float eps,
                 double scale, double out_scale, int out_bits)
    : rms_(rms), out_bits_(out_bits), gain_(d), offset_(d) {
  check_scale(scale, "integer norm input");
  check_scale(out_scale, "integer norm output");
  if (d == 0) throw Error("integer norm: no channels");
  if (out_bits < 2 || out_bits > 32) throw Error("integer norm: output bits must be 2..32");
  eps_ = to_int(static_cast<double>(eps) / (scale * scale), "norm eps / S^2");
  for (std::size_t i = 0; i < d; ++i) {
    gain_[i] =
        to_int(static_cast<double>(weight[i]) * std::ldexp(1.0, kNormShift - kNormFrac) / out_scale,
               "norm weight / S_out");
    offset_[i] =
        bias ? to_int(static_cast<double>(bias[i]) * std::ldexp(1.0, kNormShift) / out_scale,
                      "norm bias / S_out")
             : 0;
  }
}

void IntNorm::operator()(const std::int32_t* x, std::int32_t* y) const {
  const std::size_t d = gain_.size();
  std::int64_t mean = 0;
  if (!rms_) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < d; ++i) sum += x[i];
    mean = round_div(sum, static_cast<std::int64_t>(d));
  }
  u128 ss = 0;
  for (std::size_t i = 0; i < d; ++i) {
    const std::int64_t c = x[i] - mean;
    ss += static_cast<u128>(static_cast<i128>(c) * c);
  }
  const u128 var128 = ss / d;
  const std::uint64_t cap = std::uint64_t{1} << 62;
  const std::uint64_t var = var128 > cap ? cap : static_cast<std::uint64_t>(var128);
  const auto sd = static_cast<std::int64_t>(isqrt(var + static_cast<std::uint64_t>(eps_)));
  for (std::size_t i = 0; i < d; ++i) {
    const std::int64_t c = x[i] - mean;
    const std::int64_t n = sd == 0 ? 0 : round_div(c * (std::int64_t{1} << kNormFrac), sd);
    const i128 v = static_cast<i128>(n) * gain_[i] + offset_[i];
    y[i] = saturate(clamp_i64(round_shift(v, kNormShift)), out_bits_);
  }
}

}  // namespace lowp::integer
