// lowp/format/format.h — the runtime descriptor of a scalar number format.
//
// Every scalar format lowp knows (the OCP FP8 formats, the MX element formats,
// fp16/bf16/fp32, E8M0, narrow integers, any user-spelled minifloat eXmY, and
// the code books nf4, nf3, dint4, and the posits posit<n, es>) is one `Format`
// value: a handful of bit counts and a special-value policy, or the name of a
// code book's table.
// Everything else (limits, special encodings, the value of each code) is derived
// from those fields by the constexpr functions below, so no fact is written twice.
//
// Code layout. A float code holds, from the most significant bit down: the sign
// (absent for E8M0), `exp_bits` exponent bits and `man_bits` mantissa bits, in the
// low `bits` bits of a uint32_t. An integer code is the two's complement (or
// unsigned) value in the low `bits` bits. A code-book (table) code is an index
// into a fixed list of 2^bits values (lowp/format/code_table.h). A posit code
// (Kind::kPosit, Posit Standard 2022 §3) is an n-bit two's-complement string:
// 0 is zero, 100..0 is NaR (not a real), a negative value's code is the two's
// complement of its magnitude's; a positive code holds, after the sign bit 0,
// the regime (a run of m equal bits ended by the opposite bit or the end of the
// code: k = m - 1 for a run of ones, k = -m for zeros), then `exp_bits` (= es)
// exponent bits e and the fraction f, either cut short where the code ends
// (missing bits are 0); value = 2^(k * 2^es + e) * (1 + f).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <span>

#include "lowp/format/code_table.h"

namespace lowp {

enum class Kind : std::uint8_t { kFloat, kInt, kTable, kPosit };

// How a float format spends its top codes. The names follow the conventions of
// the OCP FP8 spec and ml_dtypes.
enum class Specials : std::uint8_t {
  // IEEE 754 style: the all-ones exponent holds ±Inf (mantissa 0) and NaNs.
  // OCP E5M2, fp16, bf16, fp32.
  kIeee,
  // "Finite + NaN": no Inf; the one all-ones code S.11..1.11..1 is NaN and the
  // rest of the top binade holds numbers. OCP E4M3 (E4M3FN).
  kFn,
  // "Finite, unsigned zero": no Inf, no -0; the negative-zero code 1.00..0.00..0
  // is the only NaN. Default bias is one more than IEEE's. E4M3FNUZ, E5M2FNUZ.
  kFnuz,
  // Every code is a number: no Inf, no NaN. OCP FP6 (E3M2, E2M3), FP4 (E2M1).
  kFinite,
  // OCP MX scale: unsigned, 8 exponent bits, no mantissa, no zero, no
  // subnormals; value 2^(code-127); 0xFF is NaN.
  kE8m0,
};

// Integer ranges.
enum class IntRange : std::uint8_t {
  kFull,       // two's complement: [-2^(b-1), 2^(b-1)-1]
  kSymmetric,  // [-(2^(b-1)-1), 2^(b-1)-1]: the most negative code is unused
  kUnsigned,   // [0, 2^b - 1]
};

struct Format {
  Kind kind = Kind::kFloat;
  int bits = 0;      // total bits of a code
  int exp_bits = 0;  // floats; posits: es, the exponent field's width
  int man_bits = 0;  // floats only (explicit mantissa bits)
  int bias = 0;      // floats only
  Specials specials = Specials::kIeee;
  IntRange int_range = IntRange::kFull;  // integers only
  CodeTable table = CodeTable::kNone;    // code books (Kind::kTable) only

  friend constexpr bool operator==(const Format&, const Format&) = default;
};

// A float format: a sign bit (none for E8M0), `exp_bits` exponent bits and
// `man_bits` mantissa bits.
constexpr Format float_format(int exp_bits, int man_bits, int bias, Specials specials) {
  return Format{Kind::kFloat,   (specials == Specials::kE8m0 ? 0 : 1) + exp_bits + man_bits,
                exp_bits,       man_bits,
                bias,           specials,
                IntRange::kFull};
}
constexpr Format int_format(int bits, IntRange range) {
  return Format{Kind::kInt, bits, 0, 0, 0, Specials::kIeee, range};
}
// A code book: code c means code_table_values(table)[c].
constexpr Format table_format(CodeTable table) {
  return Format{Kind::kTable,    code_table_bits(table), 0,    0, 0,
                Specials::kIeee, IntRange::kFull,        table};
}

// A posit of `bits` bits (n) with `es` exponent bits (Posit Standard 2022 §3;
// the standard fixes es = 2, the 2017 draft used es = 0, 1, 2 for n = 8, 16, 32).
constexpr Format posit_format(int bits, int es) {
  return Format{Kind::kPosit, bits, es, 0, 0, Specials::kIeee, IntRange::kFull};
}

// ---- the named formats ----
// Each registered format (lowp/format/registry.h gives its name, aliases and
// source) as a constant, for code that means that one format.
inline constexpr Format kFp32 = float_format(8, 23, 127, Specials::kIeee);
inline constexpr Format kBf16 = float_format(8, 7, 127, Specials::kIeee);
inline constexpr Format kFp16 = float_format(5, 10, 15, Specials::kIeee);
inline constexpr Format kFp8E4m3 = float_format(4, 3, 7, Specials::kFn);  // OCP E4M3FN
inline constexpr Format kFp8E5m2 = float_format(5, 2, 15, Specials::kIeee);
inline constexpr Format kFp8E4m3Fnuz = float_format(4, 3, 8, Specials::kFnuz);
inline constexpr Format kFp8E5m2Fnuz = float_format(5, 2, 16, Specials::kFnuz);
inline constexpr Format kFp6E3m2 = float_format(3, 2, 3, Specials::kFinite);
inline constexpr Format kFp6E2m3 = float_format(2, 3, 1, Specials::kFinite);
inline constexpr Format kFp4E2m1 = float_format(2, 1, 1, Specials::kFinite);
inline constexpr Format kE8m0 = float_format(8, 0, 127, Specials::kE8m0);  // the MX scale
inline constexpr Format kInt8 = int_format(8, IntRange::kFull);
inline constexpr Format kInt7 = int_format(7, IntRange::kFull);
inline constexpr Format kInt6 = int_format(6, IntRange::kFull);
inline constexpr Format kInt5 = int_format(5, IntRange::kFull);
inline constexpr Format kInt4 = int_format(4, IntRange::kFull);
inline constexpr Format kInt3 = int_format(3, IntRange::kFull);
inline constexpr Format kInt2 = int_format(2, IntRange::kFull);
inline constexpr Format kInt8Sym = int_format(8, IntRange::kSymmetric);
inline constexpr Format kInt7Sym = int_format(7, IntRange::kSymmetric);
inline constexpr Format kInt6Sym = int_format(6, IntRange::kSymmetric);
inline constexpr Format kInt5Sym = int_format(5, IntRange::kSymmetric);
inline constexpr Format kInt4Sym = int_format(4, IntRange::kSymmetric);
inline constexpr Format kInt3Sym = int_format(3, IntRange::kSymmetric);
inline constexpr Format kInt2Sym = int_format(2, IntRange::kSymmetric);
inline constexpr Format kUint8 = int_format(8, IntRange::kUnsigned);
inline constexpr Format kUint7 = int_format(7, IntRange::kUnsigned);
inline constexpr Format kUint6 = int_format(6, IntRange::kUnsigned);
inline constexpr Format kUint5 = int_format(5, IntRange::kUnsigned);
inline constexpr Format kUint4 = int_format(4, IntRange::kUnsigned);
inline constexpr Format kUint3 = int_format(3, IntRange::kUnsigned);
inline constexpr Format kUint2 = int_format(2, IntRange::kUnsigned);
inline constexpr Format kNf4 = table_format(CodeTable::kNf4);
inline constexpr Format kNf3 = table_format(CodeTable::kNf3);
inline constexpr Format kDint4 = table_format(CodeTable::kDint4);
// Posits: posit8, posit16, posit32 are the 2022 standard's (es = 2).
inline constexpr Format kPosit8 = posit_format(8, 2);
inline constexpr Format kPosit16 = posit_format(16, 2);
inline constexpr Format kPosit32 = posit_format(32, 2);
inline constexpr Format kPosit8Es0 = posit_format(8, 0);
inline constexpr Format kPosit8Es1 = posit_format(8, 1);
inline constexpr Format kPosit16Es0 = posit_format(16, 0);
inline constexpr Format kPosit16Es1 = posit_format(16, 1);
inline constexpr Format kPosit32Es0 = posit_format(32, 0);
inline constexpr Format kPosit32Es1 = posit_format(32, 1);
static_assert(kNf4.bits == 4 && kNf3.bits == 3 && kDint4.bits == 4);

// ---- derived properties (all constexpr, all from the fields above) ----

constexpr bool is_float(const Format& f) { return f.kind == Kind::kFloat; }
constexpr bool is_table(const Format& f) { return f.kind == Kind::kTable; }
constexpr bool is_posit(const Format& f) { return f.kind == Kind::kPosit; }
// A posit's NaR code 100..0 (two's complement's most negative number).
constexpr std::uint32_t posit_nar(const Format& f) { return std::uint32_t{1} << (f.bits - 1); }
// A posit's largest and smallest positive value, maxpos = 2^((n - 2) * 2^es) and
// minpos = 1 / maxpos (codes 011..1 and 00..01).
constexpr int posit_max_scale(const Format& f) { return (f.bits - 2) << f.exp_bits; }
// The values of a code book's codes, in code order (empty for other kinds).
constexpr std::span<const double> table_values(const Format& f) {
  return is_table(f) ? code_table_values(f.table) : std::span<const double>();
}
// The smallest and the largest value of a code book.
constexpr double table_min(const Format& f) {
  double m = 0.0;
  for (double v : table_values(f)) m = v < m ? v : m;
  return m;
}
constexpr double table_max(const Format& f) {
  double m = 0.0;
  for (double v : table_values(f)) m = v > m ? v : m;
  return m;
}
constexpr bool is_signed(const Format& f) {
  if (is_table(f)) return table_min(f) < 0.0;
  if (is_posit(f)) return true;
  return is_float(f) ? f.specials != Specials::kE8m0 : f.int_range != IntRange::kUnsigned;
}
constexpr std::uint32_t code_mask(const Format& f) {
  return f.bits >= 32 ? 0xFFFFFFFFu : (std::uint32_t{1} << f.bits) - 1;
}
// Sign bit of a float code (0 for unsigned formats).
constexpr std::uint32_t sign_mask(const Format& f) {
  return is_float(f) && is_signed(f) ? std::uint32_t{1} << (f.bits - 1) : 0;
}
// Mask of the magnitude bits (exponent and mantissa) of a float code.
constexpr std::uint32_t magnitude_mask(const Format& f) { return code_mask(f) & ~sign_mask(f); }
constexpr bool has_inf(const Format& f) { return is_float(f) && f.specials == Specials::kIeee; }
// (A posit's NaR counts as its NaN.)
constexpr bool has_nan(const Format& f) {
  return is_posit(f) || (is_float(f) && f.specials != Specials::kFinite);
}
constexpr bool has_negative_zero(const Format& f) {
  if (is_table(f)) {
    for (double v : table_values(f)) {
      if (v == 0.0 && std::bit_cast<std::uint64_t>(v) != 0) return true;
    }
    return false;
  }
  return is_float(f) && (f.specials == Specials::kIeee || f.specials == Specials::kFn ||
                         f.specials == Specials::kFinite);
}
constexpr bool has_subnormals(const Format& f) {
  return is_float(f) && f.specials != Specials::kE8m0;
}
// Unbiased exponent of the smallest normal binade (also the exponent of the
// subnormals' scale): 1 - bias, or -bias for E8M0 whose code 0 is 2^-127.
constexpr int emin(const Format& f) { return f.specials == Specials::kE8m0 ? -f.bias : 1 - f.bias; }
// The largest finite magnitude code (sign bit clear).
// (A posit's: maxpos, 011..1.)
constexpr std::uint32_t max_magnitude_code(const Format& f) {
  if (is_posit(f)) return code_mask(f) >> 1;
  const std::uint32_t all = magnitude_mask(f);
  switch (f.specials) {
    case Specials::kIeee:
      return all - (std::uint32_t{1} << f.man_bits);  // exponent 11..10, mantissa all ones
    case Specials::kFn:
    case Specials::kE8m0:
      return all - 1;  // all ones is NaN
    case Specials::kFnuz:
    case Specials::kFinite:
      return all;
  }
  return all;
}
// Canonical NaN code, or 0 where the format has none (check has_nan first).
constexpr std::uint32_t nan_code(const Format& f) {
  if (is_posit(f)) return posit_nar(f);
  if (!has_nan(f)) return 0;
  switch (f.specials) {
    case Specials::kIeee:  // quiet NaN: all-ones exponent, mantissa MSB set
      return (magnitude_mask(f) >> f.man_bits << f.man_bits) |
             (f.man_bits > 0 ? std::uint32_t{1} << (f.man_bits - 1) : 0);
    case Specials::kFn:
    case Specials::kE8m0:
      return magnitude_mask(f);
    case Specials::kFnuz:
      return sign_mask(f);
    case Specials::kFinite:
      return 0;
  }
  return 0;
}
// +Inf code, or 0 where the format has none (check has_inf first).
constexpr std::uint32_t inf_code(const Format& f) {
  return has_inf(f) ? magnitude_mask(f) >> f.man_bits << f.man_bits : 0;
}
// Is `code` (in the low bits) a NaN of this format?
constexpr bool is_nan_code(const Format& f, std::uint32_t code) {
  if (!has_nan(f)) return false;
  code &= code_mask(f);
  if (is_posit(f)) return code == posit_nar(f);
  switch (f.specials) {
    case Specials::kIeee:
      return (code & magnitude_mask(f)) > inf_code(f);
    case Specials::kFn:
      return (code & magnitude_mask(f)) == magnitude_mask(f);
    case Specials::kFnuz:
    case Specials::kE8m0:
      return code == nan_code(f);
    case Specials::kFinite:
      return false;
  }
  return false;
}
constexpr bool is_inf_code(const Format& f, std::uint32_t code) {
  return has_inf(f) && (code & magnitude_mask(f)) == inf_code(f);
}

// Smallest and largest integer value of an integer format.
constexpr std::int64_t int_min(const Format& f) {
  switch (f.int_range) {
    case IntRange::kFull:
      return -(std::int64_t{1} << (f.bits - 1));
    case IntRange::kSymmetric:
      return -(std::int64_t{1} << (f.bits - 1)) + 1;
    case IntRange::kUnsigned:
      return 0;
  }
  return 0;
}
constexpr std::int64_t int_max(const Format& f) {
  return f.int_range == IntRange::kUnsigned ? (std::int64_t{1} << f.bits) - 1
                                            : (std::int64_t{1} << (f.bits - 1)) - 1;
}

// 2^e as a double, exact for -1074 <= e <= 1023 (constexpr, no <cmath>).
constexpr double exp2i(int e) {
  double r = 1.0;
  double b = e >= 0 ? 2.0 : 0.5;
  for (int n = e >= 0 ? e : -e; n > 0; n >>= 1, b *= b) {
    if (n & 1) r *= b;
  }
  return r;
}

// Value of a finite magnitude code (sign bit clear) of a float format.
constexpr double magnitude_value(const Format& f, std::uint32_t mag) {
  if (f.specials == Specials::kE8m0) return exp2i(static_cast<int>(mag) - f.bias);
  const std::uint32_t exp_field = mag >> f.man_bits;
  const std::uint32_t mantissa = mag & ((std::uint32_t{1} << f.man_bits) - 1);
  if (exp_field == 0) {  // subnormal (or zero): mantissa * 2^(emin - M)
    return static_cast<double>(mantissa) * exp2i(emin(f) - f.man_bits);
  }
  const std::uint32_t significand = (std::uint32_t{1} << f.man_bits) | mantissa;
  return static_cast<double>(significand) *
         exp2i(static_cast<int>(exp_field) - f.bias - f.man_bits);
}

// The largest magnitude of a value (a code book's largest |value|, a posit's
// maxpos).
constexpr double max_finite(const Format& f) {
  if (is_posit(f)) return exp2i(posit_max_scale(f));
  if (is_table(f)) return table_max(f) > -table_min(f) ? table_max(f) : -table_min(f);
  return is_float(f) ? magnitude_value(f, max_magnitude_code(f)) : static_cast<double>(int_max(f));
}
// The divisors of AFPQ's two scales: the largest positive value, and the
// largest magnitude of a negative value (both max_finite but for a code book,
// whose two ends may differ).
constexpr double max_positive_value(const Format& f) {
  return is_table(f) ? table_max(f) : max_finite(f);
}
constexpr double max_negative_magnitude(const Format& f) {
  return is_table(f) ? -table_min(f) : max_finite(f);
}
// The smallest positive value of a code book (0 if it has none).
constexpr double table_min_positive(const Format& f) {
  double m = 0.0;
  for (double v : table_values(f)) m = v > 0.0 && (m == 0.0 || v < m) ? v : m;
  return m;
}
// Smallest positive normal value (floats), 1 for integers, a code book's
// smallest positive value, a posit's minpos.
constexpr double min_normal(const Format& f) {
  if (is_posit(f)) return exp2i(-posit_max_scale(f));
  if (is_table(f)) return table_min_positive(f);
  if (!is_float(f)) return 1.0;
  return exp2i(emin(f));
}
// Smallest positive value (the smallest subnormal where there are any).
constexpr double min_positive(const Format& f) {
  if (is_posit(f)) return exp2i(-posit_max_scale(f));
  if (is_table(f)) return table_min_positive(f);
  if (!is_float(f)) return 1.0;
  return has_subnormals(f) ? exp2i(emin(f) - f.man_bits) : exp2i(emin(f));
}
// Exponent of the largest finite binade (emax of the OCP/MX specs; a posit's
// maxpos exponent).
constexpr int emax(const Format& f) {
  if (is_posit(f)) return posit_max_scale(f);
  if (!is_float(f)) return 0;
  const std::uint32_t mag = max_magnitude_code(f);
  if (f.specials == Specials::kE8m0) return static_cast<int>(mag) - f.bias;
  return static_cast<int>(mag >> f.man_bits) - f.bias;
}

// Bytes of the smallest unsigned integer holding one code: 1, 2 or 4.
constexpr int code_bytes(const Format& f) { return f.bits <= 8 ? 1 : f.bits <= 16 ? 2 : 4; }

}  // namespace lowp
