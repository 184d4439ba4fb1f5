// lowp/storage/segment_quantizer.h — a matrix format one scale at a time, for
// the algorithms that choose scales and codes themselves (scale search, GPTQ).
//
// A row of a matrix is cut into segments, the values that share one scale:
//   kPlain            the whole row, no scale (value 1)
//   kTensor           the whole row; every row shares the matrix's FP32 scale
//   kChannel          the whole row, one FP32 scale
//   kGroup            `group` values, an FP16 scale (and a zero point, or a
//                     negative values' scale, if asymmetric)
//   kBlock            `block_size` values, an E8M0 scale (MX) or an E4M3 scale
//                     under the matrix's FP32 tensor scale (NVFP4)
// rule() gives the scale PackedMatrix::quantize would choose for a segment,
// encode() the code it would store for a value under a given scale, so that
// rule() + encode() + pack() reproduce PackedMatrix::quantize byte for byte
// (q8_0 excepted: there the scale search treats it as int8:group32, whose
// storage it shares, and rule() is int8:group32's, not ggml's rounding).
// Any other choice of scales is still a valid matrix of the format, and
// decode() is exactly what the packed matrix's dequantize() returns for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowp/storage/packed_matrix.h"

namespace lowp {

struct SegmentScale {
  float value = 0.0f;      // what an element value is multiplied by (FP32, FP16 or 2^e)
  std::uint16_t code = 0;  // the stored scale: FP16 bits (group), E8M0 / E4M3 code (block)
  std::uint8_t zero = 0;   // asymmetric integer groups: the zero point
  // Asymmetric float groups (two scales): `value`/`code` scale the values >= 0,
  // these the negative ones.
  float neg = 0.0f;
  std::uint16_t neg_code = 0;
};

// How far a search looks around the rule's scale.
struct ScaleSearch {
  int exponent_radius = 1;  // MX: shared exponents e - r .. e + r
  int e4m3_radius = 8;      // NVFP4: E4M3 block-scale codes c - r .. c + r
  double min_clip = 0.5;    // scaled formats: clip ratios 1, 1 - step, ..., min_clip
  int clip_steps = 50;
};

class SegmentQuantizer {
 public:
  // `tensor_scale` is the matrix's FP32 scale of kTensor, or NVFP4's tensor
  // scale; it is ignored by the other schemes (see rule_tensor_scale).
  SegmentQuantizer(const MatrixFormat& f, std::size_t cols, float tensor_scale = 0.0f);

  // The tensor scale PackedMatrix::quantize derives from the whole matrix
  // (kTensor: amax / max; NVFP4: finite amax / 2688), 0 for the others.
  // Throws lowp::Error for an infinite value under kTensor.
  static float rule_tensor_scale(const MatrixFormat& f, std::span<const float> w);
  // Whether the format has a per-matrix scale (kTensor, NVFP4).
  static bool has_tensor_scale(const MatrixFormat& f);

  const MatrixFormat& format() const { return format_; }
  std::size_t cols() const { return cols_; }
  std::size_t segment() const { return segment_; }    // values per scale in a row
  std::size_t segments() const { return segments_; }  // scales per row
  float tensor_scale() const { return tensor_scale_; }

  // The format's own scale for the values of one segment.
  SegmentScale rule(std::span<const float> v) const;
  // Scales to try for a segment, the rule's first (no duplicates).
  void candidates(std::span<const float> v, const ScaleSearch& search,
                  std::vector<SegmentScale>& out) const;

  std::uint32_t encode(float v, const SegmentScale& s) const;
  float decode(std::uint32_t code, const SegmentScale& s) const;
  // decode(encode(v, s)), faster (a table of the element's values), for the
  // searches that try many scales.
  float quantize(float v, const SegmentScale& s) const;

  // The packed matrix of `rows` rows from one code per value (row-major) and
  // one scale per segment (rows x segments()).
  PackedMatrix pack(std::size_t rows, std::span<const std::uint32_t> codes,
                    std::span<const SegmentScale> scales) const;

 private:
  MatrixFormat format_;
  std::size_t cols_ = 0, segment_ = 0, segments_ = 0;
  float tensor_scale_ = 0.0f;
  float max_ = 0.0f;  // largest finite element magnitude (scaled schemes)
  // Two scales: the divisors of the positive and of the negative values'
  // scale (max_ both, but for a code book; max_positive_value, format.h).
  float max_pos_ = 0.0f, max_neg_ = 0.0f;
  // The element's non-negative finite values in increasing order (MX
  // integers as fixed point), with their codes. Empty for a code book, whose
  // negative values need not mirror its positive ones: quantize() then
  // encodes through the scalar reference.
  std::vector<double> values_;
  std::vector<std::uint32_t> value_codes_;
  bool signed_ = false;  // whether the element has negative values
  // The element value nearest to x (ties to the even code), saturating.
  double nearest(double x) const;
};

}  // namespace lowp
