// The scalar reference for MX (OCP Microscaling v1.0 §6.3) and NVFP4 blocks.
// mx.h states the rules; this file follows them step by step.
#include "lowp/block/mx.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace lowp {
namespace {

constexpr std::uint8_t kE4m3Nan = 0x7F;

float flush_if_subnormal(float v, bool flush) {
  return flush && std::fpclassify(v) == FP_SUBNORMAL ? std::copysign(0.0f, v) : v;
}

// Largest magnitude of a block; NaN if any value is NaN or infinite.
float block_amax(std::span<const float> values, bool flush) {
  float amax = 0.0f;
  for (float v : values) {
    v = flush_if_subnormal(v, flush);
    if (!std::isfinite(v)) return std::numeric_limits<float>::quiet_NaN();
    amax = std::max(amax, std::fabs(v));
  }
  return amax;
}

// floor(log2(x)) of a positive finite float, read off its bits (exact, including
// subnormals).
int floor_log2(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x);
  const int exp_field = static_cast<int>(bits >> 23);
  if (exp_field != 0) return exp_field - 127;
  const std::uint32_t mantissa = bits & 0x7FFFFF;
  return (31 - std::countl_zero(mantissa)) - 149;
}

}  // namespace

std::uint8_t mx_scale_code(const Format& element, float amax, ScaleRule rule) {
  if (!std::isfinite(amax)) return kE8m0Nan;
  amax = std::fabs(amax);
  const int emax_elem = mx_element_emax(element);
  const auto bits = std::bit_cast<std::uint32_t>(amax);
  const int exp_field = static_cast<int>(bits >> 23);
  const std::uint32_t mantissa = bits & 0x7FFFFF;
  int shared_exp = -127;  // the unbiased exponent of X, before clamping
  switch (rule) {
    case ScaleRule::kFloor:
      // OCP §6.3: floor(log2(amax)) - emax_elem; amax = 0 takes the smallest scale.
      if (amax > 0.0f) shared_exp = floor_log2(amax) - emax_elem;
      break;
    case ScaleRule::kCeil:
      // torchao CEIL: the fp32 exponent field, plus one if any mantissa bit is set.
      shared_exp = exp_field - 127 + (mantissa != 0 ? 1 : 0) - emax_elem;
      break;
    case ScaleRule::kEven: {
      // torchao EVEN: round amax half-up to the element's mantissa width; the
      // carry (if any) lands in the exponent field, which the floor rule then reads.
      const int element_mbits =
          element.kind == Kind::kInt ? mx_int_fraction_bits(element) : element.man_bits;
      std::uint32_t rounded = bits;
      if (element_mbits < 23) rounded += std::uint32_t{1} << (23 - element_mbits - 1);
      shared_exp = static_cast<int>(rounded >> 23) - 127 - emax_elem;
      break;
    }
    case ScaleRule::kRceil: {
      // NVIDIA: t = amax * fp32(1 / max_elem) in fp32, then E8M0 rounded toward
      // +Inf (cvt.rp.satfinite.ue8m0x2.f32). E8M0 code 0 is 2^-127, the fp32
      // subnormal 0x00400000: a subnormal t rounds up to code 1 only above it.
      const auto reciprocal = static_cast<float>(1.0 / mx_element_max(element));
      const float t = amax * reciprocal;
      const auto t_bits = std::bit_cast<std::uint32_t>(t);
      const int t_exp = static_cast<int>(t_bits >> 23);
      const std::uint32_t t_mantissa = t_bits & 0x7FFFFF;
      const int round_up = t_exp == 0 ? (t_mantissa > 0x400000 ? 1 : 0) : (t_mantissa != 0 ? 1 : 0);
      shared_exp = t_exp + round_up - 127;
      break;
    }
  }
  shared_exp = std::clamp(shared_exp, -127, 127);
  return static_cast<std::uint8_t>(shared_exp + 127);
}

double mx_element_value(const Format& element, std::uint32_t code) {
  const double p = decode(element, code);
  return element.kind == Kind::kInt ? p / exp2i(mx_int_fraction_bits(element)) : p;
}

double mx_value(const Format& element, std::uint8_t scale_code, std::uint32_t code) {
  if (scale_code == kE8m0Nan) return std::numeric_limits<double>::quiet_NaN();
  return std::ldexp(mx_element_value(element, code), e8m0_exponent(scale_code));
}

std::uint8_t mx_quantize_block(const BlockFormat& f, std::span<const float> values,
                               std::span<std::uint32_t> codes, const BlockOptions& opt,
                               std::uint64_t first_index) {
  const Format& element = f.element;
  const float amax = block_amax(values, opt.flush_subnormals);
  const std::uint8_t scale = mx_scale_code(element, amax, opt.scale_rule);
  const EncodeOptions element_opt{opt.rounding, /*saturate=*/true};
  if (scale == kE8m0Nan) {
    const std::uint32_t nan_element = encode(element, std::numeric_limits<double>::quiet_NaN());
    std::fill(codes.begin(), codes.begin() + static_cast<std::ptrdiff_t>(values.size()),
              nan_element);
    return scale;
  }
  // V / X is exact in double (X is a power of two, and the quotient stays far
  // inside double's range); integer elements are fixed point: scale up by 2^(N-2).
  const int exponent = -e8m0_exponent(scale) + mx_int_fraction_bits(element);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double scaled = std::ldexp(
        static_cast<double>(flush_if_subnormal(values[i], opt.flush_subnormals)), exponent);
    codes[i] = encode_at(element, scaled, element_opt, opt.seed, first_index + i);
  }
  return scale;
}

float nvfp4_tensor_scale(float tensor_amax) { return tensor_amax / 2688.0f; }

std::uint8_t nvfp4_quantize_block(std::span<const float> values, float tensor_scale,
                                  std::span<std::uint32_t> codes, const BlockOptions& opt,
                                  std::uint64_t first_index) {
  const auto n = static_cast<std::ptrdiff_t>(values.size());
  const float amax = block_amax(values, opt.flush_subnormals);
  if (std::isnan(amax)) {
    std::fill(codes.begin(), codes.begin() + n,
              encode(kFp4E2m1, std::numeric_limits<double>::quiet_NaN()));
    return kE4m3Nan;
  }
  // Step 1: the block scale relative to the tensor scale, clamped to
  // [2^-6 (E4M3's smallest normal), 448] and rounded to E4M3 (nearest-even).
  float relative = (amax / 6.0f) / tensor_scale;
  if (!(relative >= 0x1p-6f)) relative = relative > 448.0f ? 448.0f : 0x1p-6f;  // NaN (0/0) too
  relative = std::min(relative, 448.0f);
  const auto scale =
      static_cast<std::uint8_t>(encode(kFp8E4m3, relative, {Rounding::kNearestEven, true}));
  // Step 2: elements over the total scale, clamped to ±6, rounded to E2M1.
  const float total = tensor_scale * decode_f32(kFp8E4m3, scale);
  const EncodeOptions element_opt{opt.rounding, /*saturate=*/true};
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = flush_if_subnormal(values[static_cast<std::size_t>(i)], opt.flush_subnormals);
    if (!(total > 0.0f) || !std::isfinite(total)) {  // an all-zero tensor: tensor_scale 0
      codes[static_cast<std::size_t>(i)] = 0;
      continue;
    }
    const float q = std::clamp(v / total, -6.0f, 6.0f);
    codes[static_cast<std::size_t>(i)] =
        encode_at(kFp4E2m1, q, element_opt, opt.seed, first_index + static_cast<std::uint64_t>(i));
  }
  return scale;
}

float nvfp4_value(float tensor_scale, std::uint8_t scale_code, std::uint32_t code) {
  if (is_nan_code(kFp8E4m3, scale_code)) return std::numeric_limits<float>::quiet_NaN();
  const float total = tensor_scale * decode_f32(kFp8E4m3, scale_code);
  return decode_f32(kFp4E2m1, code) * total;
}

float block_value(const BlockFormat& f, float tensor_scale, std::uint8_t scale_code,
                  std::uint32_t code) {
  switch (f.scale) {
    case BlockScale::kUe4m3:
      return nvfp4_value(tensor_scale, scale_code, code);
    case BlockScale::kUe8m0:
      break;
  }
  return static_cast<float>(mx_value(f.element, scale_code, code));
}

}  // namespace lowp
