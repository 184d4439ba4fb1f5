// tests/oracle/posit_oracle.cc — see posit_oracle.h. Nothing here calls lowp.
#include "oracle/posit_oracle.h"

#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace lowp_oracle {

PositOracle::PositOracle(int n, int es) : n_(n), es_(es) {
  if (n < 2 || n > 32 || es < 0 || es > 3) throw std::invalid_argument("posit oracle: n, es");
  if (n <= 16) {
    const std::uint64_t positives = std::uint64_t{1} << (n - 1);
    values_.resize(positives);
    mids_.resize(positives);
    for (std::uint64_t c = 0; c < positives; ++c) {
      values_[c] = value_of_width(c, n);
      mids_[c] = value_of_width(2 * c + 1, n + 1);
    }
  }
}

double PositOracle::value(std::uint64_t code) const {
  if (!values_.empty() && code < values_.size()) return values_[code];
  return value_of_width(code, n_);
}

double PositOracle::value_of_width(std::uint64_t code, int width) const {
  const std::uint64_t mask = (std::uint64_t{1} << width) - 1;
  code &= mask;
  // The string, most significant bit first (s[0 .. width)).
  const auto w = static_cast<std::size_t>(width);
  std::array<char, 64> s{};
  bool any_one = false, rest_zero = true;
  for (std::size_t i = 0; i < w; ++i) {
    s[i] = ((code >> (w - 1 - i)) & 1) != 0 ? '1' : '0';
    any_one |= s[i] == '1';
    if (i > 0) rest_zero &= s[i] == '0';
  }
  if (!any_one) return 0.0;                                                       // 00..0
  if (s[0] == '1' && rest_zero) return std::numeric_limits<double>::quiet_NaN();  // NaR
  const bool negative = s[0] == '1';
  if (negative) {  // two's complement: invert every bit, add one
    for (std::size_t i = 0; i < w; ++i) s[i] = s[i] == '1' ? '0' : '1';
    for (std::size_t i = w; i-- > 0;) {
      if (s[i] == '0') {
        s[i] = '1';
        break;
      }
      s[i] = '0';
    }
  }
  // Regime: the run of characters equal to s[1].
  std::size_t i = 1;
  const char first = s[1];
  int run = 0;
  while (i < w && s[i] == first) ++run, ++i;
  ++i;  // the terminating bit (if the code has one)
  const int k = first == '1' ? run - 1 : -run;
  // Exponent: es characters, '0' where the string has ended.
  int e = 0;
  for (int b = 0; b < es_; ++b, ++i) e = 2 * e + (i < w && s[i] == '1' ? 1 : 0);
  // Fraction: whatever is left.
  double fraction = 0.0;
  double weight = 0.5;
  for (; i < w; ++i, weight /= 2) fraction += s[i] == '1' ? weight : 0.0;
  const int scale = k * (1 << es_) + e;
  const double v = std::ldexp(1.0 + fraction, scale);
  return negative ? -v : v;
}

std::uint32_t PositOracle::encode(double x, Round r) const {
  if (std::isnan(x) || std::isinf(x)) return nar();
  if (x == 0.0) return 0;
  const bool negative = x < 0;
  const double a = std::fabs(x);
  std::uint32_t code;
  if (a >= value(maxpos_code())) {
    code = maxpos_code();
  } else if (a <= value(1)) {
    code = 1;
  } else {
    // Largest positive code whose value is <= a (value(1) < a < maxpos).
    std::uint32_t lo = 1, hi = maxpos_code();  // value(lo) <= a < value(hi)
    while (hi - lo > 1) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      (value(mid) <= a ? lo : hi) = mid;
    }
    if (value(lo) == a) {
      code = lo;
    } else {
      const double m =
          !mids_.empty() ? mids_[lo] : value_of_width(2 * std::uint64_t{lo} + 1, n_ + 1);
      switch (r) {
        case Round::kNearestEven:
          code = a < m ? lo : a > m ? hi : (lo % 2 == 0 ? lo : hi);
          break;
        case Round::kNearestAway:
          code = a < m ? lo : hi;
          break;
        default:
          code = lo;
          break;
      }
    }
  }
  if (!negative) return code;
  return static_cast<std::uint32_t>(((std::uint64_t{1} << n_) - code) &
                                    ((std::uint64_t{1} << n_) - 1));
}

}  // namespace lowp_oracle
