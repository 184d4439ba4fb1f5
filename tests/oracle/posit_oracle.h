// tests/oracle/posit_oracle.h — an independent reference for posits, written
// from the Posit Standard (2022) and never calling lowp.
//
//  * Decoding (§3.2): the code is written out as a string of '0' and '1'
//    characters; a negative code is negated (two's complement) first; the
//    regime is the run of equal bits after the sign, read off one character
//    at a time; the exponent and fraction are the characters that follow,
//    missing ones read as '0'; the value is ldexp(1 + fraction, scale).
//  * Rounding (§4.1): x between the neighbouring n-bit posits lo < x < hi is
//    compared with the (n+1)-bit posit whose string is lo's followed by a 1
//    (the "bit-string midpoint"); below it gives lo, above it hi, equal to it
//    the one whose string ends in 0. |x| > maxpos gives maxpos and 0 < |x| <
//    minpos gives minpos (posits neither overflow nor underflow); NaN and ±Inf
//    give NaR. Nearest-away takes hi at the midpoint; toward zero takes lo.
//    The neighbours are found by binary search over the codes (a posit's
//    value increases with its code read as a two's-complement integer).
//
// All values are exact in double: a posit of at most 33 bits has at most 30
// significant bits and scales within ±124 for es <= 2.
#pragma once

#include <cstdint>
#include <vector>

namespace lowp_oracle {

class PositOracle {
 public:
  enum class Round : std::uint8_t { kNearestEven, kNearestAway, kTowardZero };

  // n = 2..32 bits, es = 0..3.
  PositOracle(int n, int es);

  int bits() const { return n_; }
  // The value of an n-bit code (NaN for NaR).
  double value(std::uint64_t code) const;
  // The value of a code of `width` bits with this es (used for the
  // (n+1)-bit midpoints; 2 <= width <= 33).
  double value_of_width(std::uint64_t code, int width) const;
  // The code of x rounded to the format.
  std::uint32_t encode(double x, Round r) const;
  std::uint32_t nar() const { return std::uint32_t{1} << (n_ - 1); }
  std::uint32_t maxpos_code() const { return nar() - 1; }

 private:
  int n_;
  int es_;
  // For n <= 16: value(c) and the midpoint above c, for positive codes c
  // (index c; cached so that exhaustive sweeps are fast).
  std::vector<double> values_;
  std::vector<double> mids_;
};

}  // namespace lowp_oracle
