// lowp/format/quire.h — the quire of the Posit Standard (2022) §3.3 and §5.11:
// a wide two's-complement fixed-point accumulator in which sums of products
// of posits are exact, rounded to a posit once, at the end.
//
// For posit<n, 2> the quire is the standard's: 16n bits (128 for posit8, 256
// for posit16, 512 for posit32) with its least significant bit worth
// minpos^2 = 2^(16 - 8n): every product of two posits is an integer multiple
// of minpos^2 and at most maxpos^2, so it adds exactly, and the 31 bits above
// maxpos^2 (the carry guard) keep any sum of fewer than 2^31 such products
// exact (the standard's "quire sum limit"). lowp uses the same 16n bits, LSB
// minpos^2, for es = 0 and 1, whose products span a smaller range.
//
// NaR: a NaR operand makes the quire NaR until it is cleared, and a NaR quire
// rounds to NaR. Rounding to a posit is lowp::encode's nearest-even on the bit
// string (lowp/format/convert.h), applied to the exact quire value.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowp/format/format.h"

namespace lowp {

class Quire {
 public:
  // Throws lowp::Error unless f is a posit.
  explicit Quire(const Format& f);

  void clear();
  // quire += decode(a) * decode(b), exactly (codes of the quire's posit).
  void add_product(std::uint32_t a, std::uint32_t b);
  // The quire's value rounded to a posit code (nearest even, once).
  std::uint32_t to_posit() const;
  bool is_nar() const { return nar_; }
  // The quire's value as a double (rounded once, to nearest even; NaN if NaR):
  // for tests and diagnostics.
  double to_double() const;
  int bits() const { return static_cast<int>(limbs_.size()) * 64; }

 private:
  // Adds (or subtracts) value * 2^position to the two's-complement limbs.
  void accumulate(std::uint64_t value, int position, bool subtract);
  Format f_;
  int lsb_exp_;                       // the quire's LSB is worth 2^lsb_exp_
  std::vector<std::uint64_t> limbs_;  // little-endian two's complement
  bool nar_ = false;
};

// The posit nearest to the exact sum of a[i] * b[i] (codes of posit f), with
// one rounding: the quire-exact dot product. Throws lowp::Error if f is not a
// posit or the spans differ in length.
std::uint32_t quire_dot(const Format& f, std::span<const std::uint32_t> a,
                        std::span<const std::uint32_t> b);

}  // namespace lowp
