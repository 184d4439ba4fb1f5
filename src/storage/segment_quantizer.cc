// A matrix format one scale at a time: the rules and element rounding of
// PackedMatrix::quantize (src/storage/packed_matrix.cc) restated per value,
// so that algorithms can choose their own scales and codes.
#include "lowp/storage/segment_quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

constexpr EncodeOptions kSaturate{Rounding::kNearestEven, true};

float amax_of(std::span<const float> v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::fabs(x));  // NaN never wins
  return m;
}

bool finite_amax(std::span<const float> v, float& amax) {
  amax = 0.0f;
  for (float x : v) {
    if (!std::isfinite(x)) return false;
    amax = std::max(amax, std::fabs(x));
  }
  return true;
}

std::uint16_t fp16_scale(float amax, float max) {
  return static_cast<std::uint16_t>(encode(kFp16, static_cast<double>(amax / max), kSaturate));
}

SegmentScale group_scale(std::uint16_t code) { return {decode_f32(kFp16, code), code, 0}; }

// Two scales (AFPQ): the positive values' and the negative values'.
SegmentScale two_scales(std::uint16_t pos, std::uint16_t neg) {
  SegmentScale s = group_scale(pos);
  s.neg = decode_f32(kFp16, neg);
  s.neg_code = neg;
  return s;
}

// The largest value and the largest magnitude of a negative one (0 if none).
void signed_extents(std::span<const float> v, float& hi, float& lo) {
  hi = lo = 0.0f;
  for (float x : v) {
    hi = std::max(hi, x);
    lo = std::max(lo, -x);
  }
}

bool usable(float s) { return s > 0.0f && std::isfinite(s); }

}  // namespace

bool SegmentQuantizer::has_tensor_scale(const MatrixFormat& f) {
  return f.scheme == MatrixScheme::kTensor ||
         (f.scheme == MatrixScheme::kBlock && f.block.scale == BlockScale::kUe4m3);
}

float SegmentQuantizer::rule_tensor_scale(const MatrixFormat& f, std::span<const float> w) {
  if (f.scheme == MatrixScheme::kTensor) {
    const float amax = amax_of(w);
    if (std::isinf(amax)) {
      throw Error("packed matrix " + f.name +
                  ": the matrix holds an infinite value, so its scale amax / max would be "
                  "infinite");
    }
    return amax > 0.0f ? amax / static_cast<float>(max_finite(f.element)) : 0.0f;
  }
  if (has_tensor_scale(f)) {
    float amax = 0.0f;
    for (float x : w) {
      if (std::isfinite(x)) amax = std::max(amax, std::fabs(x));
    }
    return nvfp4_tensor_scale(amax);
  }
  return 0.0f;
}

SegmentQuantizer::SegmentQuantizer(const MatrixFormat& f, std::size_t cols, float tensor_scale)
    : format_(f), cols_(cols), tensor_scale_(tensor_scale) {
  switch (f.scheme) {
    case MatrixScheme::kGroup:
      segment_ = static_cast<std::size_t>(f.group);
      break;
    case MatrixScheme::kBlock:
      segment_ = static_cast<std::size_t>(f.block.block_size);
      break;
    default:
      segment_ = std::max<std::size_t>(cols, 1);
      break;
  }
  segments_ = cols == 0 ? 0 : (cols + segment_ - 1) / segment_;
  if (f.scheme != MatrixScheme::kBlock && f.scheme != MatrixScheme::kPlain) {
    max_ = static_cast<float>(max_finite(f.element));
    max_pos_ = static_cast<float>(max_positive_value(f.element));
    max_neg_ = static_cast<float>(max_negative_magnitude(f.element));
  }
  // The value table of the element (formats of at most 16 bits).
  const Format& e = f.scheme == MatrixScheme::kBlock ? f.block.element : f.element;
  if (f.scheme != MatrixScheme::kPlain && !f.zero_points() && e.bits <= 16 && !is_table(e)) {
    std::vector<std::pair<double, std::uint32_t>> v;
    for (std::uint32_t c = 0; c < (std::uint32_t{1} << e.bits); ++c) {
      if (is_nan_code(e, c)) continue;
      const double x =
          f.scheme == MatrixScheme::kBlock ? mx_element_value(e, c) : lowp::decode(e, c);
      if (x < 0.0) signed_ = true;
      if (!std::isfinite(x) || x < 0.0 || (x == 0.0 && std::signbit(x))) continue;
      v.emplace_back(x, c);
    }
    std::sort(v.begin(), v.end());
    for (const auto& [x, c] : v) {
      values_.push_back(x);
      value_codes_.push_back(c);
    }
  }
}

double SegmentQuantizer::nearest(double x) const {
  if (!signed_ && x < 0.0) return values_.front();  // unsigned: negatives clamp to 0
  const double m = std::fabs(x);
  const auto it = std::upper_bound(values_.begin(), values_.end(), m);
  double q;
  if (it == values_.end()) {
    q = values_.back();  // saturate
  } else if (it == values_.begin()) {
    q = values_.front();
  } else {
    const auto hi = static_cast<std::size_t>(it - values_.begin()), lo = hi - 1;
    const double dl = m - values_[lo], dh = values_[hi] - m;
    if (dl < dh) {
      q = values_[lo];
    } else if (dh < dl) {
      q = values_[hi];
    } else {
      q = (value_codes_[lo] & 1u) == 0 ? values_[lo] : values_[hi];
    }
  }
  return std::signbit(x) ? -q : q;
}

float SegmentQuantizer::quantize(float v, const SegmentScale& s) const {
  const MatrixFormat& f = format_;
  if (values_.empty() || f.scheme == MatrixScheme::kPlain || f.zero_points() || !std::isfinite(v)) {
    return decode(encode(v, s), s);
  }
  if (f.two_scales()) {
    const float sv = v < 0.0f ? s.neg : s.value;
    if (!usable(sv)) return decode(encode(v, s), s);
    return static_cast<float>(nearest(static_cast<double>(v / sv))) * sv;
  }
  switch (f.scheme) {
    case MatrixScheme::kTensor:
    case MatrixScheme::kChannel:
    case MatrixScheme::kGroup: {
      if (!usable(s.value)) return decode(encode(v, s), s);
      return static_cast<float>(nearest(static_cast<double>(v / s.value))) * s.value;
    }
    case MatrixScheme::kBlock: {
      if (f.block.scale == BlockScale::kUe8m0) {
        if (s.code == kE8m0Nan) return decode(encode(v, s), s);
        // The table holds element values (MX integers as fixed point), so
        // v / 2^e is compared with them directly.
        const int e = e8m0_exponent(static_cast<std::uint8_t>(s.code));
        return static_cast<float>(std::ldexp(nearest(std::ldexp(static_cast<double>(v), -e)), e));
      }
      const float total = tensor_scale_ * decode_f32(kFp8E4m3, s.code);
      if (!usable(total) || is_nan_code(kFp8E4m3, s.code)) return decode(encode(v, s), s);
      return static_cast<float>(nearest(std::clamp(v / total, -6.0f, 6.0f))) * total;
    }
    default:
      break;
  }
  return decode(encode(v, s), s);
}

SegmentScale SegmentQuantizer::rule(std::span<const float> v) const {
  const MatrixFormat& f = format_;
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      return {1.0f, 0, 0};
    case MatrixScheme::kTensor:
      return {tensor_scale_, 0, 0};
    case MatrixScheme::kChannel: {
      const float amax = amax_of(v);
      if (std::isinf(amax)) {
        throw Error("packed matrix " + f.name +
                    ": a row holds an infinite value, so its scale amax / max would be infinite");
      }
      return {amax > 0.0f ? amax / max_ : 0.0f, 0, 0};
    }
    case MatrixScheme::kGroup: {
      if (f.two_scales()) {
        float hi, lo;
        signed_extents(v, hi, lo);
        return two_scales(fp16_scale(hi, max_pos_), fp16_scale(lo, max_neg_));
      }
      if (!f.asymmetric) return group_scale(fp16_scale(amax_of(v), max_));
      float lo = 0.0f, hi = 0.0f;  // the range always holds 0, so that 0 is a code
      for (float x : v) {
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      SegmentScale s = group_scale(fp16_scale(hi - lo, max_));
      const float z = usable(s.value) ? std::nearbyint(-lo / s.value) : 0.0f;
      s.zero = static_cast<std::uint8_t>(std::clamp(z, 0.0f, max_));
      return s;
    }
    case MatrixScheme::kBlock: {
      float amax = 0.0f;
      const bool finite = finite_amax(v, amax);
      if (f.block.scale == BlockScale::kUe8m0) {
        const std::uint8_t code =
            finite ? mx_scale_code(f.block.element, amax, ScaleRule::kFloor) : kE8m0Nan;
        const float value = code == kE8m0Nan ? std::numeric_limits<float>::quiet_NaN()
                                             : std::ldexp(1.0f, e8m0_exponent(code));
        return {value, code, 0};
      }
      if (!finite) return {std::numeric_limits<float>::quiet_NaN(), 0x7F, 0};
      // NVFP4's block rule (mx.h): e4m3(clamp((amax / 6) / tensor_scale, 2^-6, 448)).
      float relative = (amax / 6.0f) / tensor_scale_;
      if (!(relative >= 0x1p-6f)) relative = relative > 448.0f ? 448.0f : 0x1p-6f;
      relative = std::min(relative, 448.0f);
      const auto code = static_cast<std::uint16_t>(lowp::encode(kFp8E4m3, relative, kSaturate));
      return {tensor_scale_ * decode_f32(kFp8E4m3, code), code, 0};
    }
  }
  return {};
}

void SegmentQuantizer::candidates(std::span<const float> v, const ScaleSearch& search,
                                  std::vector<SegmentScale>& out) const {
  out.clear();
  const SegmentScale base = rule(v);
  out.push_back(base);
  const MatrixFormat& f = format_;
  const auto add = [&](const SegmentScale& s) {
    for (const SegmentScale& o : out) {
      if (o.code == s.code && o.zero == s.zero && o.value == s.value && o.neg_code == s.neg_code &&
          o.neg == s.neg) {
        return;
      }
    }
    out.push_back(s);
  };
  switch (f.scheme) {
    case MatrixScheme::kPlain:
    case MatrixScheme::kTensor:
      return;  // nothing per segment (a tensor scale is searched over the whole matrix)
    case MatrixScheme::kBlock: {
      if (!std::isfinite(base.value)) return;
      if (f.block.scale == BlockScale::kUe8m0) {
        for (int d = -search.exponent_radius; d <= search.exponent_radius; ++d) {
          const int code = static_cast<int>(base.code) + d;
          if (d == 0 || code < 0 || code > 254) continue;
          add({std::ldexp(1.0f, code - 127), static_cast<std::uint16_t>(code), 0});
        }
      } else {
        for (int d = -search.e4m3_radius; d <= search.e4m3_radius; ++d) {
          const int code = static_cast<int>(base.code) + d;
          if (d == 0 || code < 1 || code > 0x7E) continue;
          add({tensor_scale_ * decode_f32(kFp8E4m3, static_cast<std::uint32_t>(code)),
               static_cast<std::uint16_t>(code), 0});
        }
      }
      return;
    }
    case MatrixScheme::kChannel:
    case MatrixScheme::kGroup: {
      float lo = 0.0f, hi = 0.0f;
      for (float x : v) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
      const float amax = std::max(-lo, hi);
      if (!(amax > 0.0f) || !std::isfinite(amax)) return;
      const int steps = std::max(search.clip_steps, 1);
      for (int i = 1; i <= steps; ++i) {
        const auto r = static_cast<float>(1.0 - (1.0 - search.min_clip) * i / steps);
        if (f.scheme == MatrixScheme::kChannel) {
          add({r * amax / max_, 0, 0});
        } else if (f.two_scales()) {  // both sides clipped by the same ratio
          add(two_scales(fp16_scale(r * hi, max_pos_), fp16_scale(r * -lo, max_neg_)));
        } else if (!f.asymmetric) {
          add(group_scale(fp16_scale(r * amax, max_)));
        } else {
          SegmentScale s = group_scale(fp16_scale(r * (hi - lo), max_));
          const float z = usable(s.value) ? std::nearbyint(-(r * lo) / s.value) : 0.0f;
          s.zero = static_cast<std::uint8_t>(std::clamp(z, 0.0f, max_));
          add(s);
        }
      }
      return;
    }
  }
}

std::uint32_t SegmentQuantizer::encode(float v, const SegmentScale& s) const {
  const MatrixFormat& f = format_;
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      if (f.element.bits == 32) return std::bit_cast<std::uint32_t>(v);
      return lowp::encode(f.element, static_cast<double>(v), {Rounding::kNearestEven, false});
    case MatrixScheme::kTensor:
    case MatrixScheme::kChannel:
    case MatrixScheme::kGroup:
      if (f.two_scales()) {
        const float sv = v < 0.0f ? s.neg : s.value;
        return lowp::encode(f.element, usable(sv) ? static_cast<double>(v / sv) : 0.0, kSaturate);
      }
      if (f.asymmetric) {
        const auto z = static_cast<float>(s.zero);
        const float q = usable(s.value) ? std::nearbyint(v / s.value) + z : z;
        return static_cast<std::uint32_t>(std::isnan(q) ? z : std::clamp(q, 0.0f, max_));
      }
      return lowp::encode(f.element, usable(s.value) ? static_cast<double>(v / s.value) : 0.0,
                          kSaturate);
    case MatrixScheme::kBlock: {
      const Format& e = f.block.element;
      if (f.block.scale == BlockScale::kUe8m0) {
        if (s.code == kE8m0Nan) return lowp::encode(e, std::numeric_limits<double>::quiet_NaN());
        const int exponent =
            -e8m0_exponent(static_cast<std::uint8_t>(s.code)) + mx_int_fraction_bits(e);
        return lowp::encode(e, std::ldexp(static_cast<double>(v), exponent), kSaturate);
      }
      if (is_nan_code(kFp8E4m3, s.code)) {
        return lowp::encode(e, std::numeric_limits<double>::quiet_NaN());
      }
      const float total = tensor_scale_ * decode_f32(kFp8E4m3, s.code);
      if (!usable(total)) return 0;
      return lowp::encode(e, std::clamp(v / total, -6.0f, 6.0f), kSaturate);
    }
  }
  return 0;
}

float SegmentQuantizer::decode(std::uint32_t code, const SegmentScale& s) const {
  const MatrixFormat& f = format_;
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      return f.element.bits == 32 ? std::bit_cast<float>(code) : decode_f32(f.element, code);
    case MatrixScheme::kTensor:
    case MatrixScheme::kChannel:
    case MatrixScheme::kGroup: {
      const float e = decode_f32(f.element, code);
      if (f.two_scales()) return e * (e < 0.0f ? s.neg : s.value);
      return (e - static_cast<float>(s.zero)) * s.value;
    }
    case MatrixScheme::kBlock:
      return block_value(f.block, tensor_scale_, static_cast<std::uint8_t>(s.code), code);
  }
  return 0.0f;
}

PackedMatrix SegmentQuantizer::pack(std::size_t rows, std::span<const std::uint32_t> codes,
                                    std::span<const SegmentScale> scales) const {
  const MatrixFormat& f = format_;
  if (codes.size() != rows * cols_ || scales.size() != rows * segments_) {
    throw Error("segment quantizer " + f.name + ": " + std::to_string(codes.size()) +
                " codes and " + std::to_string(scales.size()) + " scales for a " +
                std::to_string(rows) + "x" + std::to_string(cols_) + " matrix");
  }
  const std::size_t row_bytes = PackedMatrix::row_bytes(f, cols_);
  std::vector<std::uint8_t> bytes(rows * row_bytes, 0);
  MatrixScales sc;
  if (f.scheme == MatrixScheme::kPlain) {
    const auto width = static_cast<std::size_t>(code_bytes(f.element));
    for (std::size_t i = 0; i < codes.size(); ++i) {
      std::memcpy(bytes.data() + i * width, &codes[i], width);  // little-endian hosts
    }
  } else {
    const int bits = f.scheme == MatrixScheme::kBlock ? f.block.element.bits : f.element.bits;
    for (std::size_t r = 0; r < rows; ++r) {
      pack_codes(bits, codes.subspan(r * cols_, cols_),
                 std::span<std::uint8_t>(bytes.data() + r * row_bytes, row_bytes));
    }
  }
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      break;
    case MatrixScheme::kTensor:
      sc.tensor = tensor_scale_;
      break;
    case MatrixScheme::kChannel:
      sc.row.resize(rows);
      for (std::size_t r = 0; r < rows; ++r) sc.row[r] = scales[r].value;
      break;
    case MatrixScheme::kGroup:
      if (f.two_scales()) {
        sc.group.resize(2 * scales.size());
        for (std::size_t i = 0; i < scales.size(); ++i) {
          sc.group[2 * i] = scales[i].code;
          sc.group[2 * i + 1] = scales[i].neg_code;
        }
        break;
      }
      sc.group.resize(scales.size());
      if (f.asymmetric) sc.zero.resize(scales.size());
      for (std::size_t i = 0; i < scales.size(); ++i) {
        sc.group[i] = scales[i].code;
        if (f.asymmetric) sc.zero[i] = scales[i].zero;
      }
      break;
    case MatrixScheme::kBlock:
      sc.block.resize(scales.size());
      for (std::size_t i = 0; i < scales.size(); ++i) {
        sc.block[i] = static_cast<std::uint8_t>(scales[i].code);
      }
      if (has_tensor_scale(f)) sc.tensor = tensor_scale_;
      break;
  }
  return PackedMatrix::from_codes(f, rows, cols_, std::move(bytes), std::move(sc));
}

}  // namespace lowp
