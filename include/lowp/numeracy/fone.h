// lowp/numeracy/fone.h — FoNE, the Fourier Number Embedding (Zhou, Fu,
// Soltanolkotabi, Jia, Sharan, "FoNE: Precise Single-Token Number Embeddings
// via Fourier Features", arXiv:2502.09741, 2025), with an exact decoder.
//
// A number x with at most `int_digits` integer and `frac_digits` fractional
// decimal digits maps to one (cos, sin) pair per digit position:
//
//   phi(x) = [cos(2 pi x / T_k), sin(2 pi x / T_k)]   for T_k = 10^k,
//            k = -frac_digits + 1, ..., int_digits
//
// (the paper's definition with its base-10 period list, §3; its reference code
// builds the same periods for period_base_list [10]). Pairs are stored smallest
// period first, cos before sin: features [2p], [2p + 1] hold the pair of
// T = 10^(p - frac_digits + 1), whose angle x / T mod 1 is fixed by the digits
// at and below position p (counting from the last fractional digit, p = 0).
//
// Exactness. The features are computed from the scaled integer
// N = x * 10^frac_digits (< 10^19, a uint64): the angle of pair p is
// 2 pi (N mod 10^(p+1)) / 10^(p+1), reduced with integer arithmetic and only
// then turned into a double, so no precision is lost however large x is (a
// direct cos(2 pi x / T) in fp64 loses the low digits past 2^53 / 10^k).
// Decoding reads the digits from the last one up: with the lower digits r
// (N mod 10^p) already known, digit p = round(10 q - r / 10^p) mod 10, where
// q = atan2(sin, cos) / 2 pi mod 1. The rounding absorbs any error below
// 0.05 in q (an angle error below 18 degrees), so decode(encode(x)) == x for
// every representable x, from fp64 features and from the same features
// rounded to fp32 alike (fp32's error is ~1e-7): the position count (up to 19),
// not the magnitude, is the only limit. (Reading each pair alone, as
// floor(10 q), fails where the lower digits are all zero: there 10 q is an
// integer and any rounding error below it flips the digit.)
//
// Negative numbers: with `sign` set, one more feature follows the pairs,
// +1 for x >= 0 and -1 for x < 0, and the pairs encode |x|; without it a
// negative x is refused (lowp::Error). Zero is unsigned (-0 encodes as +0).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lowp::numeracy {

struct FoneConfig {
  int int_digits = 12;
  int frac_digits = 0;
  bool sign = false;  // one more feature, the sign (else negative numbers are refused)
};

// Throws lowp::Error unless 0 <= int_digits, 0 <= frac_digits and
// 1 <= int_digits + frac_digits <= 19.
void check_fone_config(const FoneConfig& c);
// Digit positions (cos/sin pairs): int_digits + frac_digits.
int fone_positions(const FoneConfig& c);
// Features per number: 2 * positions, plus 1 with `sign`.
int fone_width(const FoneConfig& c);
// The exponent k of pair p's period T = 10^k: p - frac_digits + 1.
int fone_period_exponent(const FoneConfig& c, int pair);

// A number FoNE can encode: (-1)^negative * scaled * 10^-frac_digits.
struct FoneNumber {
  bool negative = false;
  std::uint64_t scaled = 0;  // < 10^(int_digits + frac_digits)
  bool operator==(const FoneNumber&) const = default;
};

// Decimal text: an optional sign, digits, optionally '.' and digits ("12",
// "-0.25", "007.500"). Leading zeros of the integer part and trailing zeros of
// the fraction do not count as digits. Throws lowp::Error naming the value
// when it is not such text, has more digits than configured, or is negative
// without `sign`.
FoneNumber fone_parse(std::string_view text, const FoneConfig& c);
// An integer (exact for all of int64).
FoneNumber fone_from_integer(std::int64_t x, const FoneConfig& c);
// A double that is the nearest double to a decimal with at most frac_digits
// fractional digits (checked: N / 10^frac_digits must give x back). Integral
// doubles are taken exactly; a double with a fraction must have
// |x| * 10^frac_digits < 2^50 (larger ones: pass the decimal text). Throws
// lowp::Error naming the value otherwise (NaN, infinity, too many digits).
FoneNumber fone_from_double(double x, const FoneConfig& c);

// The number as decimal text with exactly frac_digits fractional digits.
std::string fone_to_string(const FoneNumber& v, const FoneConfig& c);
// The nearest double (correctly rounded while scaled < 2^53).
double fone_to_double(const FoneNumber& v, const FoneConfig& c);

// phi(v) into `out` (fone_width(c) values), computed in fp64; the fp32 form is
// the fp64 features rounded to nearest.
void fone_encode(const FoneNumber& v, const FoneConfig& c, std::span<double> out);
void fone_encode(const FoneNumber& v, const FoneConfig& c, std::span<float> out);

// The number whose features these are (exact inverse of fone_encode; see
// "Exactness" above). Throws lowp::Error if the width is wrong or a feature
// is not finite.
FoneNumber fone_decode(std::span<const double> features, const FoneConfig& c);
FoneNumber fone_decode(std::span<const float> features, const FoneConfig& c);

}  // namespace lowp::numeracy
