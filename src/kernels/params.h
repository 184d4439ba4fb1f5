// src/kernels/params.h — the per-format constants the vector kernels read,
// derived once per call from a lowp::Format (convert.cc) so that the per-target
// code (convert-inl.h) holds no format logic of its own.
#pragma once

#include <cstdint>

namespace lowp {
struct Format;
struct EncodeOptions;
}  // namespace lowp

namespace lowp::kernels::detail {

// Rounding as the addend whose carry out of 32 bits rounds the magnitude up
// (see convert-inl.h step 4).
enum class RoundKind : std::uint8_t { kNearestEven, kNearestAway, kTowardZero, kStochastic };

// Encoding fp32 into a float format with bits <= 16, emin >= -126, man_bits <= 10
// (not E8M0), or into E8M0 with bias 127. Codes for the special cases are given
// for both signs.
struct EncodeParams {
  std::int32_t man_bits = 0;
  std::int32_t emin = 0;
  std::uint32_t sign_mask = 0;
  std::uint32_t max_magnitude = 0;  // largest finite magnitude code
  std::uint32_t zero[2] = {};       // [negative]
  std::uint32_t overflow[2] = {};   // finite input beyond max
  std::uint32_t inf[2] = {};        // ±Inf input
  std::uint32_t nan[2] = {};        // NaN input (by its sign)
  RoundKind round = RoundKind::kNearestEven;
  int code_bytes = 1;  // 1 or 2
  // E8M0 with bias 127 (the OCP MX scale) takes its own kernel; it also needs
  // the code of a negative nonzero input (NaN, or 2^-127 with saturate).
  bool e8m0 = false;
  std::uint32_t e8m0_negative = 0;
  // Integer formats of at most 16 bits take a third kernel.
  bool integer = false;
  std::int32_t int_min = 0;
  std::int32_t int_max = 0;
  std::uint32_t code_mask = 0;
};

// Decoding a float format with the same limits into fp32.
struct DecodeParams {
  std::int32_t man_bits = 0;
  std::uint32_t sign_mask = 0;
  std::uint32_t magnitude_mask = 0;
  std::uint32_t exp_rebias = 0;  // 127 - bias, added to a normal exponent field
  // A subnormal code's value mantissa * 2^(emin - man_bits) as fp32 bits: the
  // mantissa shifted left by subnormal_shift where all those values lie below
  // 2^-125 (fp32's bit patterns are linear in the value there), else computed
  // as float(mantissa) * subnormal_scale (no fp32 subnormal products, which
  // are slow on x86).
  std::int32_t subnormal_shift = -1;  // -1: multiply
  float subnormal_scale = 0;          // 2^(emin - man_bits)
  std::uint32_t nan_above = 0;        // magnitudes > this are NaN (0xFFFFFFFF: none)
  std::uint32_t nan_code = 0;         // the one signless NaN code (FNUZ), else 0xFFFFFFFF
  bool nan_signed = true;             // NaN keeps the code's sign
  bool e8m0 = false;                  // E8M0 with bias 127 (its own kernel)
  std::uint32_t code_mask = 0;        // only a code's low f.bits bits are read
  bool integer = false;               // integer formats (their own kernel)
  int int_bits = 0;
  bool int_signed = false;
  std::uint32_t inf_magnitude = 0;  // magnitude of Inf (0xFFFFFFFF: none)
  int code_bytes = 1;
  // Every finite value is a bf16 (at most 7 mantissa bits and no binade below
  // 2^-126, or E8M0, or integers of at most 8 bits), and NaN decodes to
  // 0x7FC00000 | sign: decode_to_bf16 keeps the top half of the fp32 bits.
  bool bf16_exact = false;
  // A faster route for some float formats (DecodeFast in convert-inl.h):
  // kNone, or 8-bit codes placed into an IEEE half (kViaF16: the magnitude
  // bits shifted left by f16_shift = 10 - man_bits, the sign to bit 15),
  // converted and multiplied by f16_scale = 2^(15 - bias); IEEE half itself
  // (kF16); bf16 (kBf16: the code is fp32's top half). The fp32 result's
  // magnitude bits are then fixed up: == fast_inf_bits is Inf, above
  // fast_nan_above is NaN (quiet, with the sign), and for FNUZ -0 is NaN.
  enum class Fast : std::uint8_t { kNone, kViaF16, kF16, kBf16 } fast = Fast::kNone;
  int f16_shift = 0;
  float f16_scale = 1.0f;
  std::uint32_t fast_inf_bits = 0x7FFFFFFF;   // none
  std::uint32_t fast_nan_above = 0x7FFFFFFF;  // none
  bool fast_fnuz = false;
  // Non-temporal stores (an output too large to stay in cache; set by the
  // caller, decode_stream_bytes in convert.cc).
  bool stream = false;
};

// Fake quantization of fp32 by a float format, nearest-even, in one pass
// (convert-inl.h's FakeQuantRne): the format's grid, and the fp32 values that
// the special cases' codes (EncodeParams' zero, overflow, inf, nan) decode
// to. For float formats of the vector path whose binades' units stay normal
// fp32 numbers up to 2^(emax + 1 + 23 - M) (not bf16).
struct FakeQuantRneParams {
  std::int32_t man_bits = 0;
  std::uint32_t min_normal_bits = 0;  // fp32 bits of 2^emin
  std::uint32_t top_bits = 0;         // fp32 bits of 2^(emax + 1)
  float max_value = 0;                // the largest finite value
  std::uint32_t zero[2] = {}, overflow[2] = {}, inf[2] = {}, nan[2] = {};  // [negative]
};

// The parameters of a format (convert.cc); the vector path must cover it
// (kernels::encode_is_vectorized / decode_is_vectorized).
EncodeParams encode_params(const Format& f, const EncodeOptions& opt);
DecodeParams decode_params(const Format& f);
// FakeQuantRne's parameters for f, whose EncodeParams (nearest-even) are
// `encode`; false where FakeQuantRne does not cover f.
bool fake_quant_rne_params(const Format& f, const EncodeParams& encode, FakeQuantRneParams& p);

}  // namespace lowp::kernels::detail
