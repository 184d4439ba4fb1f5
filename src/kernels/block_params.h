// src/kernels/block_params.h — what the block kernels (block-inl.h) read: the
// constants of one MX or NVFP4 format, derived once per call in block.cc, and
// the scalar per-block scale rules, which mirror lowp::mx_scale_code
// (src/block/mx.cc) on the bits of a block's largest magnitude.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

#include "kernels/params.h"
#include "lowp/block/block_format.h"

namespace lowp::kernels::detail {

// Quantizing full blocks of k (a multiple of 16) fp32 values, nearest-even.
// Elements go through the fast encoder of block-inl.h: a block without NaN/Inf
// holds only finite scaled values, so the only special case left is saturation.
struct BlockQuantParams {
  bool nvfp4 = false;
  int block_size = 32;
  int element_bits = 8;  // 8, 6 or 4
  // MX scale (mx_scale_code's inputs).
  ScaleRule scale_rule = ScaleRule::kFloor;
  int emax_elem = 0;
  int element_mbits = 0;          // the EVEN rule's mantissa width
  float rceil_reciprocal = 0.0f;  // fp32(1 / max_elem)
  int fraction_bits = 0;          // integer elements: N - 2
  // Element encoder (floats; block-inl.h's FastEncode): the fp32 adder rounds
  // |x| at the element's unit of its binade, from 2^emin (subnormals) to the
  // largest magnitude code's.
  bool integer = false;
  int man_bits = 0;
  std::uint32_t min_normal_bits = 0;  // fp32 bits of 2^emin
  std::uint32_t max_magnitude = 0;
  int sign_shift = 24;  // fp32 sign bit -> the element's sign bit
  std::int32_t int_min = 0, int_max = 0;
  std::uint32_t code_mask = 0xFF;
  std::uint32_t nan_code = 0;  // every element of a NaN block
  // NVFP4.
  float tensor_scale = 1.0f;
  // Fake quantization (block-inl.h's FakeQuant*): the elements' rounding,
  // nearest-even or stochastic, and the largest finite element value
  // (mx_element_max; floats, where the rounded magnitude is clamped).
  bool stochastic = false;
  float max_value = 0.0f;
};

// Decoding full blocks: element decoding is convert-inl.h's, then the block's
// scale is applied as in lowp::mx_value / lowp::nvfp4_value.
struct BlockDequantParams {
  bool nvfp4 = false;
  int block_size = 32;
  int element_bits = 8;
  bool integer = false;
  int fraction_bits = 0;
  DecodeParams element;
  float tensor_scale = 1.0f;
  const float* e4m3_values = nullptr;  // NVFP4: decode_f32 of each E4M3 scale code
  bool stream = false;                 // non-temporal stores (an output far larger than the caches)
  // 4-bit float elements: each code's value (decode_f32), for a lane table.
  float nibble_values[16] = {};
};

// lowp::mx_scale_code for a block whose largest |value| has the fp32 bits
// `amax_bits` (finite), step for step.
inline std::uint8_t mx_scale_code_of_bits(const BlockQuantParams& p, std::uint32_t amax_bits) {
  const int exp_field = static_cast<int>(amax_bits >> 23);
  const std::uint32_t mantissa = amax_bits & 0x7FFFFF;
  int shared_exp = -127;
  switch (p.scale_rule) {
    case ScaleRule::kFloor:
      if (amax_bits != 0) {
        const int floor_log2 =
            exp_field != 0 ? exp_field - 127 : (31 - std::countl_zero(mantissa)) - 149;
        shared_exp = floor_log2 - p.emax_elem;
      }
      break;
    case ScaleRule::kCeil:
      shared_exp = exp_field - 127 + (mantissa != 0 ? 1 : 0) - p.emax_elem;
      break;
    case ScaleRule::kEven: {
      std::uint32_t rounded = amax_bits;
      if (p.element_mbits < 23) rounded += std::uint32_t{1} << (23 - p.element_mbits - 1);
      shared_exp = static_cast<int>(rounded >> 23) - 127 - p.emax_elem;
      break;
    }
    case ScaleRule::kRceil: {
      const float t = std::bit_cast<float>(amax_bits) * p.rceil_reciprocal;
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

// 2^e as fp32 bits, for -126 <= e <= 127.
constexpr std::uint32_t pow2_bits(int e) { return static_cast<std::uint32_t>(e + 127) << 23; }

}  // namespace lowp::kernels::detail
