// tests/oracle/oracle.h — an independent reference for lowp's scalar formats.
//
// The oracle re-derives every format from its definition, using nothing of lowp
// but the raw fields of `lowp::Format` (kind, bits, exp_bits, man_bits, bias,
// specials, int_range). It never calls convert.h or the derived helpers of
// format.h: the value of each code, the special codes, the overflow threshold
// and the tie rule are written here again, from the specs:
//   * OCP 8-bit Floating Point Specification (OFP8) v1.0 §5.1 (E4M3, E5M2);
//   * OCP Microscaling Formats (MX) v1.0 §5.3 (FP6 E3M2/E2M3, FP4 E2M1) and
//     §5.4 (E8M0 scale);
//   * FNUZ (ml_dtypes / ONNX): bias + 1, no Inf, no -0, the one NaN is 0x80;
//   * IEEE 754-2019 §3.4 (binary interchange layout) and §4.3.1 (ties to even).
// Rounding follows the rules stated in the header comment of
// lowp/format/convert.h (overflow, NaN, zero, E8M0, integers).
//
// Rounding is done by search in the sorted list of a format's finite
// magnitudes with plain fp64 comparisons, which are exact: every value and every
// midpoint of every format here is a double, so the oracle is exact for any
// double input (fp32 inputs included).
#pragma once

#include <cstdint>
#include <vector>

#include "lowp/format/format.h"

namespace lowp_oracle {

// The deterministic rounding modes (the oracle has its own names so that it
// does not depend on convert.h).
enum class Round : std::uint8_t { kNearestEven, kNearestAway, kTowardZero };

struct Mode {
  Round round = Round::kNearestEven;
  bool saturate = false;
};

// What a code means.
struct CodeInfo {
  double value = 0;  // the exact value (±Inf for Inf codes; NaN for NaN codes)
  bool is_nan = false;
  bool is_inf = false;
  bool unused = false;  // int*_sym's most negative code: not a value of the format
};

class Oracle {
 public:
  // Formats of up to 24 bits (every minifloat lowp parses has at most 19).
  explicit Oracle(const lowp::Format& f);

  const lowp::Format& format() const { return f_; }
  std::uint32_t num_codes() const { return static_cast<std::uint32_t>(codes_.size()); }
  const CodeInfo& code(std::uint32_t c) const { return codes_.at(c); }

  // The finite magnitudes a float format can round to, ascending (0 first where
  // the format has a zero). For integers: the values lo..hi.
  const std::vector<double>& magnitudes() const { return mag_; }
  // The "virtual next value" beyond the largest finite magnitude: the value the
  // code formula gives to the code after the largest finite one. For integers:
  // max + 1.
  double virtual_next() const { return is_int_ ? max_finite_ + 1 : ladder_.back(); }
  double max_finite() const { return max_finite_; }
  // The code that a NaN input gets (see convert.h: the format's NaN, keeping
  // the sign where the NaN is signed; the negative-zero code where the format
  // has no NaN; 0 for integers).
  std::uint32_t nan_input_code(bool negative) const;
  // Does the format have a NaN code at all (by its definition)?
  bool has_nan() const { return has_nan_; }
  bool has_inf() const { return has_inf_; }

  // The code of x rounded into the format.
  std::uint32_t encode(double x, Mode m) const;

  // The same, for a stream of inputs of nondecreasing magnitude: a cursor into
  // the magnitude ladder makes each call O(1) amortised. The cursor is on |x|,
  // so +x and -x may be asked in turn.
  class Cursor {
   public:
    explicit Cursor(const Oracle& o) : o_(&o) {}
    // Requires |x| >= the |x| of the previous call (NaN excepted).
    std::uint32_t encode(double x, Mode m);

   private:
    const Oracle* o_;
    std::size_t i_ = 0;
  };

 private:
  // Ladder index of the rounded magnitude of finite a > 0 given the bracket
  // ladder_[i] <= a < ladder_[i+1]; ladder_.size()-1 means "overflow".
  std::size_t round_in_bracket(double a, std::size_t i, Round r) const;
  std::uint32_t finish_float(bool negative, std::size_t idx, Mode m) const;
  std::uint32_t overflow_code(bool negative, bool finite_input, Mode m) const;
  std::uint32_t encode_int(double x, Round r) const;
  std::size_t bracket(double a) const;  // binary search

  lowp::Format f_;
  bool is_int_ = false;
  bool e8m0_ = false;
  bool has_nan_ = false;
  bool has_inf_ = false;
  bool has_neg_zero_ = false;
  std::uint32_t sign_bit_ = 0;  // 0 for unsigned formats
  std::uint32_t max_code_ = 0;  // magnitude code of the largest finite value
  std::uint32_t nan_code_ = 0;  // canonical NaN (sign clear), if has_nan_
  std::uint32_t inf_code_ = 0;  // +Inf, if has_inf_
  double max_finite_ = 0;
  std::int64_t int_lo_ = 0, int_hi_ = 0;
  std::vector<CodeInfo> codes_;
  std::vector<double> mag_;              // finite magnitudes, ascending
  std::vector<double> ladder_;           // mag_ plus the virtual next value
  std::vector<std::uint64_t> sig_;       // significand of each ladder entry
  std::vector<std::uint32_t> mag_code_;  // magnitude code of each mag_ entry
};

// A piecewise-constant map from fp32 magnitude bit patterns (0 .. 0x7FFFFFFF)
// to the expected codes of +x and -x: the exhaustive test walks it with a
// cursor. Built from Oracle::encode by binary search over the bit patterns
// (rounding is monotone in |x|), then checked at both ends of every segment.
struct Segment {
  std::uint32_t first;  // first magnitude bit pattern of the segment
  std::uint32_t pos;    // expected code of +x
  std::uint32_t neg;    // expected code of -x
};
std::vector<Segment> fp32_segments(const Oracle& o, Mode m);

}  // namespace lowp_oracle
