// lowp/block/block_format.h — block-scaled formats: OCP Microscaling (MX) v1.0
// and NVIDIA's NVFP4.
//
// An MX block is k elements that share one E8M0 scale X = 2^s (OCP MX v1.0 §5):
// value_i = X * P_i, with P_i in the element format. NVFP4 is 16 E2M1 elements
// sharing an unsigned E4M3 scale, under one FP32 scale for the whole tensor.
//
// Element formats. Any scalar float of the registry (or eXmY spelling) can be an
// MX element. Integer elements are symmetric fixed point: an N-bit integer
// element holds code * 2^-(N-2), clamped to ±(2^(N-1)-1), so its largest power of
// two is 2^0 (emax_elem = 0). For N = 8 this is MXINT8 of the spec (§5.3.3:
// 6 fraction bits, -128 unused).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "lowp/format/format.h"

namespace lowp {

// How an MX block's shared exponent is chosen from the block's largest
// magnitude amax (an fp32 value). emax_elem is the exponent of the element
// format's largest binade, max_elem its largest finite value.
enum class ScaleRule : std::uint8_t {
  // OCP MX v1.0 §6.3: X = 2^(floor(log2(amax)) - emax_elem). The default.
  // Elements may saturate (e.g. amax 957 in E4M3: 957/2 = 478.5 -> 448).
  kFloor,
  // NVIDIA's rule (cuBLAS block quantization; PTX cvt.rp.satfinite.ue8m0x2.f32):
  // X = amax * fp32(1/max_elem), computed in fp32 and rounded up to a power of
  // two, so elements do not saturate -- up to the rounding of that fp32
  // product: for MXINT8 (and some eXmY elements) an amax a few ulps above
  // max_elem * 2^k can land on 2^k and saturate by less than 2^-22 relative.
  // For the OCP float elements the product gives the same scale as exact division.
  kRceil,
  // torchao's CEIL: X = 2^(ceil(log2(amax)) - emax_elem), with the ceiling
  // read off amax's fp32 bits (exponent field + 1 if any mantissa bit is set).
  kCeil,
  // torchao's EVEN: first round amax's fp32 significand to the element's
  // mantissa width (half up); if that carries into the next binade, the floor
  // rule uses the larger exponent.
  kEven,
};

std::string_view scale_rule_name(ScaleRule r);
// "floor", "rceil", "ceil" or "even"; throws lowp::Error otherwise.
ScaleRule parse_scale_rule(std::string_view name);

// How a block's shared scale is stored and what it multiplies. Each kind's
// facts are one row of block_scale_info()'s table.
enum class BlockScale : std::uint8_t {
  kUe8m0,  // OCP MX: a power of two 2^(s-127) chosen by a ScaleRule; 0xFF is NaN
  kUe4m3,  // NVFP4: an unsigned E4M3 code, times the tensor's FP32 scale
};

// A block format: k elements of one element format sharing one scale. The
// named ones are rows of block_registry(); any element and k are allowed.
struct BlockFormat {
  BlockScale scale = BlockScale::kUe8m0;
  Format element;       // the element format (E2M1 for NVFP4)
  int block_size = 32;  // k: elements per shared scale

  friend bool operator==(const BlockFormat&, const BlockFormat&) = default;
};

struct BlockScaleInfo {
  BlockScale kind;
  std::string_view name;               // "e8m0", "ue4m3"
  std::string_view description;        // for `lowp formats --json` and lowp.formats()
  std::string_view short_description;  // for the `lowp formats` table
  int bits;                            // bits per block scale
  bool tensor_scale;                   // one FP32 scale per tensor on top (NVFP4)
  std::string_view prefix;             // spelling of an unnamed format: "mx" -> mx:<elem>:<k>,
                                       // "nvfp4" -> nvfp4:<k> (its element is always E2M1)
};
const BlockScaleInfo& block_scale_info(BlockScale kind);
inline bool has_tensor_scale(const BlockFormat& f) {
  return block_scale_info(f.scale).tensor_scale;
}

// Fraction bits of an integer MX element (N - 2); 0 for floats.
constexpr int mx_int_fraction_bits(const Format& element) {
  return element.kind == Kind::kInt ? element.bits - 2 : 0;
}
// emax_elem: exponent of the element's largest binade (E4M3 8, E5M2 15, E3M2 4,
// E2M3 2, E2M1 2, integers 0).
constexpr int mx_element_emax(const Format& element) {
  return element.kind == Kind::kInt ? 0 : emax(element);
}
// max_elem: the element's largest finite value (448, 57344, 28, 7.5, 6, 127/64).
constexpr double mx_element_max(const Format& element) {
  return element.kind == Kind::kInt
             ? static_cast<double>(int_max(element)) / exp2i(mx_int_fraction_bits(element))
             : max_finite(element);
}

// Storage cost per value, scales included: element bits + scale bits / k
// (NVFP4: 4 + 8/16 = 4.5; its one FP32 per tensor is not counted).
double bits_per_value(const BlockFormat& f);

// Named block formats, in display order.
struct NamedBlockFormat {
  std::string_view name;
  BlockFormat format;
  std::string_view summary;
};
std::span<const NamedBlockFormat> block_registry();

// Parses mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8, nvfp4,
// mx:<element>:<k> with any scalar element name of the registry (or eXmY
// spelling) and any k >= 1, e.g. mx:int4:32, mx:fp4_e2m1:16, mx:e3m4:32, or
// nvfp4:<k> (NVFP4 with k elements per scale).
// Returns false if `name` does not name a block format; throws lowp::Error
// if it is a malformed mx: spelling.
bool parse_block_format(std::string_view name, BlockFormat& out);

// mxfp4 etc. for the named ones, else mx:<element>:<k> or nvfp4:<k>; always a
// spelling that parse_block_format takes back.
std::string block_format_name(const BlockFormat& f);

}  // namespace lowp
