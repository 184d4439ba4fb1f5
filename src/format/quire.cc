// The quire (lowp/format/quire.h; Posit Standard 2022 §3.3, §5.11).
#include "lowp/format/quire.h"

#include <bit>
#include <cmath>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"

namespace lowp {
namespace {

// A nonzero, non-NaR posit as sig * 2^exp with sig < 2^30 an integer: every
// posit of at most 32 bits has at most 28 significant bits, so frexp's
// mantissa times 2^30 is an integer.
struct Operand {
  bool negative;
  std::uint64_t sig;
  int exp;
};

Operand operand_of(const Format& f, std::uint32_t code) {
  const double v = decode(f, code);
  int e = 0;
  const double m = std::frexp(std::fabs(v), &e);  // |v| = m * 2^e, 0.5 <= m < 1
  return {v < 0, static_cast<std::uint64_t>(std::ldexp(m, 30)), e - 30};
}

// Bit `i` .. `i + 63` of the limbs as one word (bits below 0 or past the top read
// as 0).
std::uint64_t word_at(const std::vector<std::uint64_t>& limbs, int i) {
  std::uint64_t w = 0;
  for (int b = 0; b < 64; ++b) {
    const int at = i + b;
    if (at < 0 || at >= static_cast<int>(limbs.size()) * 64) continue;
    const auto bit = (limbs[static_cast<std::size_t>(at / 64)] >> (at % 64)) & 1;
    w |= bit << b;
  }
  return w;
}

}  // namespace

Quire::Quire(const Format& f) : f_(f) {
  if (!is_posit(f)) throw Error("a quire accumulates posits; " + format_name(f) + " is not one");
  lsb_exp_ = -2 * posit_max_scale(f);
  limbs_.assign(static_cast<std::size_t>(16 * f.bits / 64), 0);
}

void Quire::clear() {
  for (std::uint64_t& l : limbs_) l = 0;
  nar_ = false;
}

void Quire::accumulate(std::uint64_t value, int position, bool subtract) {
  // value * 2^position, position >= 0, spread over the limb at position / 64
  // and the next one, then the carry (or borrow) runs up.
  auto limb = static_cast<std::size_t>(position / 64);
  const int shift = position % 64;
  const std::uint64_t lo = value << shift;
  const std::uint64_t hi = shift == 0 ? 0 : value >> (64 - shift);
  std::uint64_t carry = 0;
  for (std::size_t i = limb; i < limbs_.size(); ++i) {
    const std::uint64_t add = i == limb ? lo : i == limb + 1 ? hi : 0;
    if (add == 0 && carry == 0 && i > limb + 1) break;
    const std::uint64_t old = limbs_[i];
    if (!subtract) {
      const std::uint64_t s = old + add;
      const std::uint64_t t = s + carry;
      carry = static_cast<std::uint64_t>(s < old) + static_cast<std::uint64_t>(t < s);
      limbs_[i] = t;
    } else {
      const std::uint64_t s = old - add;
      const std::uint64_t t = s - carry;
      carry = static_cast<std::uint64_t>(old < add) + static_cast<std::uint64_t>(s < carry);
      limbs_[i] = t;
    }
  }
}

void Quire::add_product(std::uint32_t a, std::uint32_t b) {
  const std::uint32_t nar = posit_nar(f_);
  a &= code_mask(f_);
  b &= code_mask(f_);
  if (a == nar || b == nar) nar_ = true;
  if (nar_ || a == 0 || b == 0) return;
  const Operand x = operand_of(f_, a), y = operand_of(f_, b);
  std::uint64_t p = x.sig * y.sig;  // < 2^60
  int exp = x.exp + y.exp;
  const int tz = std::countr_zero(p);
  p >>= tz;
  exp += tz;
  // Every product is a multiple of minpos^2 = 2^lsb_exp_, so exp >= lsb_exp_.
  accumulate(p, exp - lsb_exp_, x.negative != y.negative);
}

namespace {

// |q| of the two's-complement limbs, and its sign.
std::vector<std::uint64_t> magnitude_of(std::vector<std::uint64_t> limbs, bool& negative) {
  negative = (limbs.back() >> 63) != 0;
  if (negative) {  // negate: invert and add one
    std::uint64_t carry = 1;
    for (std::uint64_t& l : limbs) {
      l = ~l + carry;
      carry = (carry != 0 && l == 0) ? 1 : 0;
    }
  }
  return limbs;
}

// The highest set bit of the limbs, or -1.
int top_bit(const std::vector<std::uint64_t>& limbs) {
  for (std::size_t i = limbs.size(); i-- > 0;) {
    if (limbs[i] != 0) return static_cast<int>(i) * 64 + 63 - std::countl_zero(limbs[i]);
  }
  return -1;
}

// The 64 bits from the top set bit h down, with every lower set bit ORed
// into the last one (a sticky bit: those bits lie far below any rounding
// position of a posit or a double).
std::uint64_t top_word(const std::vector<std::uint64_t>& mag, int h) {
  std::uint64_t w = word_at(mag, h - 63);
  bool sticky = false;
  for (int i = 0; i < h - 63 && !sticky; ++i) {
    sticky = ((mag[static_cast<std::size_t>(i / 64)] >> (i % 64)) & 1) != 0;
  }
  return w | (sticky ? 1 : 0);
}

}  // namespace

std::uint32_t Quire::to_posit() const {
  if (nar_) return posit_nar(f_);
  bool negative = false;
  const std::vector<std::uint64_t> mag = magnitude_of(limbs_, negative);
  const int h = top_bit(mag);
  if (h < 0) return 0;
  detail::Unpacked u;
  u.negative = negative;
  u.cls = detail::Unpacked::kFinite;
  u.exponent = h + lsb_exp_;
  u.significand = top_word(mag, h);
  return detail::encode_posit(f_, u, Rounding::kNearestEven, 0);
}

double Quire::to_double() const {
  if (nar_) return std::nan("");
  bool negative = false;
  const std::vector<std::uint64_t> mag = magnitude_of(limbs_, negative);
  const int h = top_bit(mag);
  if (h < 0) return 0.0;
  const double v = std::ldexp(static_cast<double>(top_word(mag, h)), h - 63 + lsb_exp_);
  return negative ? -v : v;
}

std::uint32_t quire_dot(const Format& f, std::span<const std::uint32_t> a,
                        std::span<const std::uint32_t> b) {
  if (a.size() != b.size()) throw Error("quire_dot: the two vectors differ in length");
  Quire q(f);
  for (std::size_t i = 0; i < a.size(); ++i) q.add_product(a[i], b[i]);
  return q.to_posit();
}

}  // namespace lowp
