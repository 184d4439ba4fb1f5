// lowp/block/mx.h — the scalar reference for block quantization: one MX block
// (OCP Microscaling v1.0 §6.3, "conversion from a vector of FP32") and one
// NVFP4 block. Bulk paths and the packed tensor type are built on these.
//
// MX block quantization, for k values V_i with amax = max |V_i| (as fp32):
//  1. Any NaN or ±Inf in the block: the scale is E8M0's NaN (0xFF); the whole
//     block decodes to NaN. Elements hold the element format's encoding of NaN.
//  2. Otherwise the scale code follows the chosen ScaleRule (block_format.h),
//     clamped to E8M0's range [2^-127, 2^127]. An all-zero block has amax 0 and
//     gets the smallest scale, code 0x00.
//  3. Each element is V_i / X (exact: X is a power of two), rounded by the chosen
//     mode and saturated to ±max_elem (MX elements always saturate).
// FP32 subnormal inputs are kept exactly unless flush_subnormals is set (as
// microxcaling's flush_fp32_subnorms), which first replaces them by zero.
//
// NVFP4 (NVIDIA; the operation order is torchao's, all in fp32):
//   tensor_scale = amax(tensor) / 2688            (2688 = 448 * 6)
//   s_b = e4m3(clamp((amax(block) / 6) / tensor_scale, 2^-6, 448)), RNE
//   element_i = e2m1(clamp(V_i / (tensor_scale * s_b), -6, 6)), by the rounding mode
// A block holding NaN or ±Inf gets the E4M3 NaN scale (0x7F) and decodes to NaN;
// the tensor amax is taken over finite values, so one NaN does not poison the
// tensor. An all-zero tensor has tensor_scale 0 and all-zero elements.
#pragma once

#include <cstdint>
#include <span>

#include "lowp/block/block_format.h"
#include "lowp/format/convert.h"

namespace lowp {

struct BlockOptions {
  ScaleRule scale_rule = ScaleRule::kFloor;
  Rounding rounding = Rounding::kNearestEven;  // elements; stochastic uses seed + element index
  std::uint64_t seed = 0;
  bool flush_subnormals = false;
  // Threads for whole-tensor quantization (0: one per core). Results do not
  // depend on it.
  unsigned threads = 0;
};

constexpr std::uint8_t kE8m0Nan = 0xFF;

// The E8M0 scale code for a block whose largest magnitude is `amax` (>= 0, or
// NaN/Inf). `element` is the MX element format.
std::uint8_t mx_scale_code(const Format& element, float amax, ScaleRule rule);

// The shared-scale exponent of an E8M0 code (code - 127).
constexpr int e8m0_exponent(std::uint8_t code) { return static_cast<int>(code) - 127; }

// Quantizes one MX block of n = values.size() (1 <= n <= k) values: writes n
// element codes and returns the scale code. `first_index` is the flat index of
// values[0], the stream position for stochastic rounding.
std::uint8_t mx_quantize_block(const BlockFormat& f, std::span<const float> values,
                               std::span<std::uint32_t> codes, const BlockOptions& opt,
                               std::uint64_t first_index);

// The value of element `code` in a block with scale `scale_code`: X * P, or NaN
// for the NaN scale. Exact as a double. As a float it is exact unless it reaches
// 2^128: that happens for hand-made scales, and for fp32 data within a few ulps
// of FLT_MAX under the ceil, even and rceil rules, where the largest element
// rounds up into the next binade (e.g. FLT_MAX in MXFP8-E4M3 under rceil: X =
// 2^120, FLT_MAX/X rounds to 256, and 2^128 decodes to +Inf in fp32).
double mx_value(const Format& element, std::uint8_t scale_code, std::uint32_t code);

// Element value P of an MX element code (integers are fixed point).
double mx_element_value(const Format& element, std::uint32_t code);

// ---- NVFP4 ----

// tensor_scale from the tensor's largest finite magnitude.
float nvfp4_tensor_scale(float tensor_amax);

// Quantizes one NVFP4 block (1 <= n <= 16 values) under `tensor_scale`:
// writes n E2M1 codes, returns the E4M3 scale code.
std::uint8_t nvfp4_quantize_block(std::span<const float> values, float tensor_scale,
                                  std::span<std::uint32_t> codes, const BlockOptions& opt,
                                  std::uint64_t first_index);

// The value of an E2M1 code in a block with E4M3 scale `scale_code`:
// e2m1 * (tensor_scale * e4m3) as fp32 products (NaN for a NaN scale).
float nvfp4_value(float tensor_scale, std::uint8_t scale_code, std::uint32_t code);

// The value of element `code` in a block of format f with scale `scale_code`
// (tensor_scale: the tensor's FP32 scale where the format has one): mx_value
// rounded to fp32, or nvfp4_value. The one place that branches on the scale kind.
float block_value(const BlockFormat& f, float tensor_scale, std::uint8_t scale_code,
                  std::uint32_t code);

}  // namespace lowp
