// FoNE encode/decode with exact range reduction (lowp/numeracy/fone.h).
#include "lowp/numeracy/fone.h"

#include <array>
#include <cmath>
#include <numbers>
#include <string>

#include "lowp/error.h"

namespace lowp::numeracy {
namespace {

constexpr int kMaxPositions = 19;  // 10^19 - 1 < 2^64

constexpr std::array<std::uint64_t, 20> kPow10 = [] {
  std::array<std::uint64_t, 20> p{};
  p[0] = 1;
  for (std::size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
  return p;
}();

std::string config_text(const FoneConfig& c) {
  return "int_digits " + std::to_string(c.int_digits) + ", frac_digits " +
         std::to_string(c.frac_digits);
}

std::string double_text(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

template <typename F>
void encode_into(const FoneNumber& v, const FoneConfig& c, std::span<F> out) {
  check_fone_config(c);
  if (out.size() != static_cast<std::size_t>(fone_width(c))) {
    throw Error("fone: the output holds " + std::to_string(out.size()) + " features, not " +
                std::to_string(fone_width(c)) + " (" + config_text(c) + ")");
  }
  const int positions = fone_positions(c);
  if (v.scaled >= kPow10[static_cast<std::size_t>(positions)]) {
    throw Error("fone: the scaled value " + std::to_string(v.scaled) + " has more than " +
                std::to_string(positions) + " digits (" + config_text(c) + ")");
  }
  for (int p = 0; p < positions; ++p) {
    // Pair p: period 10^(p - frac + 1), angle 2 pi x / T = 2 pi N / 10^(p+1)
    // (mod 2 pi) = 2 pi (N mod 10^(p+1)) / 10^(p+1); the residue is exact.
    const std::uint64_t modulus = kPow10[static_cast<std::size_t>(p + 1)];
    const double q = static_cast<double>(v.scaled % modulus) / static_cast<double>(modulus);
    const double angle = 2 * std::numbers::pi * q;
    out[static_cast<std::size_t>(2 * p)] = static_cast<F>(std::cos(angle));
    out[static_cast<std::size_t>(2 * p + 1)] = static_cast<F>(std::sin(angle));
  }
  if (c.sign) out[static_cast<std::size_t>(2 * positions)] = v.negative ? F(-1) : F(1);
}

template <typename F>
FoneNumber decode_from(std::span<const F> f, const FoneConfig& c) {
  check_fone_config(c);
  if (f.size() != static_cast<std::size_t>(fone_width(c))) {
    throw Error("fone: " + std::to_string(f.size()) + " features given, " +
                std::to_string(fone_width(c)) + " expected (" + config_text(c) +
                (c.sign ? ", sign" : "") + ")");
  }
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (!std::isfinite(f[i])) {
      throw Error("fone: feature " + std::to_string(i) + " is not finite");
    }
  }
  const int positions = fone_positions(c);
  std::uint64_t lower = 0;  // N mod 10^p: the digits decoded so far
  for (int p = 0; p < positions; ++p) {
    const double cos_v = static_cast<double>(f[static_cast<std::size_t>(2 * p)]);
    const double sin_v = static_cast<double>(f[static_cast<std::size_t>(2 * p + 1)]);
    // q = (N mod 10^(p+1)) / 10^(p+1) = (digit + lower / 10^p) / 10, up to
    // the features' error; atan2 gives (-pi, pi], so q is in (-0.5, 0.5].
    const double q = std::atan2(sin_v, cos_v) / (2 * std::numbers::pi);
    const double digit_estimate =
        10 * q -
        static_cast<double>(lower) / static_cast<double>(kPow10[static_cast<std::size_t>(p)]);
    // Rounded, then taken mod 10 (q < 0 stands for q + 1).
    long long digit = std::llround(digit_estimate) % 10;
    if (digit < 0) digit += 10;
    lower += static_cast<std::uint64_t>(digit) * kPow10[static_cast<std::size_t>(p)];
  }
  FoneNumber v;
  v.scaled = lower;
  v.negative = c.sign && lower != 0 && f[static_cast<std::size_t>(2 * positions)] < 0;
  return v;
}

}  // namespace

void check_fone_config(const FoneConfig& c) {
  if (c.int_digits < 0 || c.frac_digits < 0 || c.int_digits + c.frac_digits < 1 ||
      c.int_digits + c.frac_digits > kMaxPositions) {
    throw Error("fone: " + config_text(c) +
                " is not a digit layout (each >= 0, together 1 to 19 digits)");
  }
}

int fone_positions(const FoneConfig& c) { return c.int_digits + c.frac_digits; }

int fone_width(const FoneConfig& c) { return 2 * fone_positions(c) + (c.sign ? 1 : 0); }

int fone_period_exponent(const FoneConfig& c, int pair) { return pair - c.frac_digits + 1; }

FoneNumber fone_parse(std::string_view text, const FoneConfig& c) {
  check_fone_config(c);
  const auto bad = [&](const std::string& why) {
    return Error("fone: value " + quoted(text) + " " + why);
  };
  std::size_t i = 0;
  FoneNumber v;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
    v.negative = text[i] == '-';
    ++i;
  }
  const std::size_t int_begin = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  std::string_view int_part = text.substr(int_begin, i - int_begin);
  std::string_view frac_part;
  if (i < text.size() && text[i] == '.') {
    const std::size_t frac_begin = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac_part = text.substr(frac_begin, i - frac_begin);
  }
  if (i != text.size() || (int_part.empty() && frac_part.empty())) {
    throw bad("is not a decimal number (digits with an optional sign and '.')");
  }
  while (!int_part.empty() && int_part.front() == '0') int_part.remove_prefix(1);
  while (!frac_part.empty() && frac_part.back() == '0') frac_part.remove_suffix(1);
  if (int_part.size() > static_cast<std::size_t>(c.int_digits)) {
    throw bad("has " + std::to_string(int_part.size()) + " integer digits, more than int_digits " +
              std::to_string(c.int_digits));
  }
  if (frac_part.size() > static_cast<std::size_t>(c.frac_digits)) {
    throw bad("has " + std::to_string(frac_part.size()) +
              " fractional digits, more than frac_digits " + std::to_string(c.frac_digits));
  }
  std::uint64_t n = 0;
  for (const char d : int_part) n = n * 10 + static_cast<std::uint64_t>(d - '0');
  for (int k = 0; k < c.frac_digits; ++k) {
    const std::size_t ks = static_cast<std::size_t>(k);
    n = n * 10 + (ks < frac_part.size() ? static_cast<std::uint64_t>(frac_part[ks] - '0') : 0);
  }
  v.scaled = n;
  if (n == 0) v.negative = false;
  if (v.negative && !c.sign) {
    throw bad("is negative (FoNE encodes magnitudes; ask for the sign feature)");
  }
  return v;
}

FoneNumber fone_from_integer(std::int64_t x, const FoneConfig& c) {
  check_fone_config(c);
  FoneNumber v;
  v.negative = x < 0;
  const std::uint64_t magnitude =
      v.negative ? std::uint64_t{0} - static_cast<std::uint64_t>(x) : static_cast<std::uint64_t>(x);
  if (c.int_digits < kMaxPositions && magnitude >= kPow10[static_cast<std::size_t>(c.int_digits)]) {
    throw Error("fone: value " + std::to_string(x) + " has more than int_digits " +
                std::to_string(c.int_digits) + " integer digits");
  }
  if (v.negative && !c.sign) {
    throw Error("fone: value " + std::to_string(x) +
                " is negative (FoNE encodes magnitudes; ask for the sign feature)");
  }
  v.scaled = magnitude * kPow10[static_cast<std::size_t>(c.frac_digits)];
  return v;
}

FoneNumber fone_from_double(double x, const FoneConfig& c) {
  check_fone_config(c);
  if (!std::isfinite(x)) throw Error("fone: value " + double_text(x) + " is not finite");
  FoneNumber v;
  v.negative = std::signbit(x) && x != 0;
  if (v.negative && !c.sign) {
    throw Error("fone: value " + double_text(x) +
                " is negative (FoNE encodes magnitudes; ask for the sign feature)");
  }
  const double a = std::fabs(x);
  // 10^int_digits as a double is exact up to 10^22; int_digits <= 19.
  const double int_limit = static_cast<double>(kPow10[static_cast<std::size_t>(c.int_digits)]);
  if (a >= int_limit) {
    throw Error("fone: value " + double_text(x) + " has more than int_digits " +
                std::to_string(c.int_digits) + " integer digits");
  }
  const std::uint64_t frac_scale = kPow10[static_cast<std::size_t>(c.frac_digits)];
  if (a == std::trunc(a)) {
    v.scaled = static_cast<std::uint64_t>(a) * frac_scale;  // a < 10^int_digits: no overflow
    return v;
  }
  const auto too_many = [&] {
    return Error("fone: value " + double_text(x) + " has more than frac_digits " +
                 std::to_string(c.frac_digits) + " fractional digits");
  };
  if (c.frac_digits == 0) throw too_many();
  // s = a * 10^frac is within 1.5 ulp(s) of the decimal's N; below 2^50 that is
  // < 0.5, so rounding s finds N, and N / 10^frac (one correctly rounded
  // division, both exact doubles) gives a back exactly when a is N's double.
  const double s = a * static_cast<double>(frac_scale);
  if (s >= 0x1p50) {
    throw Error("fone: value " + double_text(x) + " has too many significant digits to read " +
                "from a double; pass it as decimal text");
  }
  const double n = std::nearbyint(s);
  if (n / static_cast<double>(frac_scale) != a) throw too_many();
  v.scaled = static_cast<std::uint64_t>(n);
  return v;
}

std::string fone_to_string(const FoneNumber& v, const FoneConfig& c) {
  const std::uint64_t frac_scale = kPow10[static_cast<std::size_t>(c.frac_digits)];
  std::string out = v.negative ? "-" : "";
  out += std::to_string(v.scaled / frac_scale);
  if (c.frac_digits > 0) {
    std::string frac = std::to_string(v.scaled % frac_scale);
    out += '.';
    out += std::string(static_cast<std::size_t>(c.frac_digits) - frac.size(), '0');
    out += frac;
  }
  return out;
}

double fone_to_double(const FoneNumber& v, const FoneConfig& c) {
  const double magnitude = static_cast<double>(v.scaled) /
                           static_cast<double>(kPow10[static_cast<std::size_t>(c.frac_digits)]);
  return v.negative ? -magnitude : magnitude;
}

void fone_encode(const FoneNumber& v, const FoneConfig& c, std::span<double> out) {
  encode_into(v, c, out);
}
void fone_encode(const FoneNumber& v, const FoneConfig& c, std::span<float> out) {
  encode_into(v, c, out);
}
FoneNumber fone_decode(std::span<const double> features, const FoneConfig& c) {
  return decode_from(features, c);
}
FoneNumber fone_decode(std::span<const float> features, const FoneConfig& c) {
  return decode_from(features, c);
}

}  // namespace lowp::numeracy
