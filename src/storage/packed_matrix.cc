// The weight formats of the runtime and their matrix products. The products
// run on the vector kernels of include/lowp/gemv_kernels.h, which decode codes in
// registers; a matrix gets that path when the kernel's decode is exact for
// every code and scale it holds (checked here, against the scalar reference),
// else its rows are dequantized (the reference) into a small tile first.
#include "lowp/storage/packed_matrix.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "lowp/block/ggml.h"
#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/gemv_kernels.h"
#include "lowp/kernels.h"
#include "lowp/thread_pool.h"

namespace lowp {
namespace {

float max_of(const Format& f) { return static_cast<float>(max_finite(f)); }

float amax_of(std::span<const float> v) {
  float m = 0.0f;
  for (float x : v) {
    const float a = std::fabs(x);
    if (a > m) m = a;  // NaN never wins
  }
  return m;
}

// The codes of one row, element.bits-bit fields packed into `out` (the
// row's row_bytes): v[i] / s[segment of i] encoded nearest-even, saturating,
// through the bulk kernels (bit for bit the scalar encode). A scale that is
// zero or not finite stores zero codes for its segment.
class RowEncoder {
 public:
  RowEncoder(const Format& f, std::size_t cols)
      : f_(f),
        scaled_(cols),
        bytes_(cols * static_cast<std::size_t>(code_bytes(f))),
        codes_(cols) {}

  // segment: values per scale (cols for one scale); scale(j) the j-th one.
  template <class Scale>
  void encode(std::span<const float> v, std::size_t segment, Scale scale, std::uint8_t* out) {
    for (std::size_t b = 0, j = 0; b < v.size(); b += segment, ++j) {
      const float s = scale(j);
      const std::size_t e = std::min(v.size(), b + segment);
      const bool ok = s > 0.0f && std::isfinite(s);
      for (std::size_t i = b; i < e; ++i) scaled_[i] = ok ? v[i] / s : 0.0f;
    }
    encode_f32(f_, std::span<const float>(scaled_.data(), v.size()), bytes_.data(),
               {Rounding::kNearestEven, true});
    widen_and_pack(v.size(), out);
  }

  // Two scales (AFPQ): a value >= 0 is divided by pos(j), a negative one by
  // neg(j); a scale that is zero or not finite stores a zero code.
  template <class Pos, class Neg>
  void encode_two(std::span<const float> v, std::size_t segment, Pos pos, Neg neg,
                  std::uint8_t* out) {
    for (std::size_t b = 0, j = 0; b < v.size(); b += segment, ++j) {
      const float sp = pos(j), sn = neg(j);
      const bool okp = sp > 0.0f && std::isfinite(sp), okn = sn > 0.0f && std::isfinite(sn);
      for (std::size_t i = b; i < std::min(v.size(), b + segment); ++i) {
        const float x = v[i];
        scaled_[i] = x < 0.0f ? (okn ? x / sn : 0.0f) : (okp ? x / sp : 0.0f);
      }
    }
    encode_f32(f_, std::span<const float>(scaled_.data(), v.size()), bytes_.data(),
               {Rounding::kNearestEven, true});
    widen_and_pack(v.size(), out);
  }

  // Asymmetric integers: code = clamp(round_even(v / s) + z, 0, 2^N - 1).
  template <class Scale, class Zero>
  void encode_asym(std::span<const float> v, std::size_t segment, Scale scale, Zero zero,
                   std::uint8_t* out) {
    const auto top = static_cast<float>(int_max(f_));
    for (std::size_t b = 0, j = 0; b < v.size(); b += segment, ++j) {
      const float s = scale(j), z = static_cast<float>(zero(j));
      const bool ok = s > 0.0f && std::isfinite(s);
      for (std::size_t i = b; i < std::min(v.size(), b + segment); ++i) {
        const float q = ok ? std::nearbyint(v[i] / s) + z : z;
        codes_[i] = static_cast<std::uint32_t>(std::isnan(q) ? z : std::clamp(q, 0.0f, top));
      }
    }
    pack_codes(f_.bits, std::span<const std::uint32_t>(codes_.data(), v.size()),
               std::span<std::uint8_t>(out, packed_bytes(f_.bits, v.size())));
  }

 private:
  void widen_and_pack(std::size_t n, std::uint8_t* out) {
    const int width = code_bytes(f_);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t c = 0;
      std::memcpy(&c, bytes_.data() + i * static_cast<std::size_t>(width),
                  static_cast<std::size_t>(width));  // little-endian hosts only, as the kernels
      codes_[i] = c;
    }
    pack_codes(f_.bits, std::span<const std::uint32_t>(codes_.data(), n),
               std::span<std::uint8_t>(out, packed_bytes(f_.bits, n)));
  }

  Format f_;
  std::vector<float> scaled_;
  std::vector<std::uint8_t> bytes_;
  std::vector<std::uint32_t> codes_;
};

void decode_stream(const Format& f, const std::uint8_t* stream, std::size_t begin,
                   std::size_t count, float scale, float zero, float* out) {
  const std::span<const std::uint8_t> s(stream, packed_bytes(f.bits, begin + count));
  for (std::size_t i = 0; i < count; ++i) {
    const float v = decode_f32(f, unpack_code(f.bits, s, begin + i));
    out[i] = (v - zero) * scale;
  }
}

// Two scales: a negative element value takes `neg`, any other `pos`.
void decode_stream_two(const Format& f, const std::uint8_t* stream, std::size_t begin,
                       std::size_t count, float pos, float neg, float* out) {
  const std::span<const std::uint8_t> s(stream, packed_bytes(f.bits, begin + count));
  for (std::size_t i = 0; i < count; ++i) {
    const float v = decode_f32(f, unpack_code(f.bits, s, begin + i));
    out[i] = v * (v < 0.0f ? neg : pos);
  }
}

// The FP16 scale of a group: fp16(amax / max), nearest even, saturating.
std::uint16_t group_scale(float amax, float max) {
  return static_cast<std::uint16_t>(
      encode(kFp16, static_cast<double>(amax / max), {Rounding::kNearestEven, true}));
}

}  // namespace

// ---- the vector kernels' view of a matrix ----

constexpr int kRowSegment = 63;  // GemvParams::segment_shift for one scale/row

struct PackedMatrix::Kernel {
  kernels::GemvParams params;  // the storage pointers are set per call
  std::vector<float> row_multiplier;
  std::vector<float> u8_table;
};

namespace {

// Equal bits, or both NaN; or both zeros: the nibble tables decode -0 (FP4's
// code 8) as +0, which changes no sum but the sign of an all-zero one.
bool same_value(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || (a == 0.0f && b == 0.0f) ||
         std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// s * 2^k as an fp32 multiplier, if that product is exact (so that
// fast * multiplier rounds the same real number as value * s does).
bool exact_multiplier(float s, int k, float& out) {
  if (!std::isfinite(s)) {
    out = s;
    return true;
  }
  const double m = std::ldexp(static_cast<double>(s), k);
  out = static_cast<float>(m);
  return static_cast<double>(out) == m && (out == 0.0f || std::isnormal(out));
}

// Finds the int8 values that a 4-bit format's codes are, up to one power of
// two 2^k (the largest k that makes every finite value an integer in
// [-127, 127]); false if there is none.
bool nibble_table(const std::array<float, 256>& exact, std::int8_t* table, int& k) {
  for (int kk = 24; kk >= -40; --kk) {
    bool ok = true;
    for (int c = 0; c < 16 && ok; ++c) {
      if (!std::isfinite(exact[static_cast<std::size_t>(c)])) continue;
      const double v = std::ldexp(static_cast<double>(exact[static_cast<std::size_t>(c)]), -kk);
      ok = v == std::trunc(v) && std::fabs(v) <= 127.0;
    }
    if (!ok) continue;
    for (int c = 0; c < 16; ++c) {
      const float e = exact[static_cast<std::size_t>(c)];
      table[c] =
          std::isfinite(e) ? static_cast<std::int8_t>(std::ldexp(static_cast<double>(e), -kk)) : 0;
    }
    k = kk;
    return true;
  }
  return false;
}

}  // namespace

std::shared_ptr<const PackedMatrix::Kernel> PackedMatrix::make_kernel(const PackedMatrix& m) {
  using kernels::ScaleSource;
  using kernels::WeightDecode;
  auto kernel = std::make_shared<Kernel>();
  kernels::GemvParams& p = kernel->params;
  const MatrixFormat& f = m.format_;
  p.segment_shift = kRowSegment;
  if (f.scheme == MatrixScheme::kPlain) {
    if (is_posit(f.element)) return nullptr;  // no GEMV decode for posits: rows are dequantized
    p.decode = f.element.bits == 32      ? WeightDecode::kF32
               : f.element.exp_bits == 8 ? WeightDecode::kBf16
                                         : WeightDecode::kF16;
    return kernel;
  }
  if (f.asymmetric) return nullptr;  // zero points or two scales: the kernels have neither
  const bool block = f.scheme == MatrixScheme::kBlock;
  const bool mx = block && f.block.scale == BlockScale::kUe8m0;
  const Format e = block ? f.block.element : f.element;
  if (e.bits != 8 && e.bits != 4 && !(e.bits == 6 && e.kind == Kind::kFloat)) return nullptr;

  // 1. The exact element value of every code (as dequantize_row takes it) and
  //    the value the kernel decodes, fast = exact / 2^k.
  const std::size_t count = std::size_t{1} << e.bits;
  std::array<float, 256> exact{}, fast{};
  for (std::size_t c = 0; c < count; ++c) {
    const auto code = static_cast<std::uint32_t>(c);
    exact[c] = mx ? static_cast<float>(mx_element_value(e, code)) : decode_f32(e, code);
  }
  int k = 0;
  if (e.bits == 8 && e.kind == Kind::kInt) {
    p.decode = WeightDecode::kInt8;
    for (std::size_t c = 0; c < count; ++c)
      fast[c] = static_cast<float>(static_cast<std::int8_t>(c));
  } else if (e.bits == 8 && e.kind == Kind::kFloat && e.specials != Specials::kE8m0 &&
             e.exp_bits <= 5 && e.exp_bits >= 2 && 1 + e.exp_bits + e.man_bits == 8) {
    if (f.scheme == MatrixScheme::kBlock || f.scheme == MatrixScheme::kGroup) {
      // A multiplier per segment, applied to each weight: the code placed
      // into fp32 bits (no conversion instruction).
      p.decode = WeightDecode::kViaF32;
      p.f32_shift = 23 - e.man_bits;
      p.f32_mask = 0x80000000u | (0x7Fu << p.f32_shift);
      for (std::size_t c = 0; c < count; ++c) {
        const auto code = static_cast<std::uint32_t>(c);
        fast[c] = std::bit_cast<float>(((code & 0x80u) << 24) | ((code & 0x7Fu) << p.f32_shift));
      }
    } else {
      p.decode = WeightDecode::kViaF16;
      p.f16_shift = 10 - e.man_bits;
      p.f16_mask = static_cast<std::uint16_t>(0x8000u | (0x7Fu << p.f16_shift));
      for (std::size_t c = 0; c < count; ++c) {
        const auto half =
            static_cast<std::uint32_t>(((c & 0x80u) << 8) | ((c & 0x7Fu) << p.f16_shift));
        fast[c] = decode_f32(kFp16, half);
      }
    }
  } else if (e.bits == 6) {
    // The element values themselves, whose fp32 bits the kernel builds from
    // their top 16 (every FP6 value has at most 3 significand bits; a format
    // with more has no path).
    p.decode = WeightDecode::kSixBit;
    fast = exact;
    for (std::size_t c = 0; c < 64; ++c) {
      const auto bits = std::bit_cast<std::uint32_t>(fast[c]);
      if ((bits & 0xFFFFu) != 0) return nullptr;
      p.top_half[c] = static_cast<std::uint16_t>(bits >> 16);
    }
  } else if (e.bits == 4) {
    p.decode = WeightDecode::kNibble;
    if (!nibble_table(exact, p.nibble_table, k)) return nullptr;
    for (std::size_t c = 0; c < 16; ++c) fast[c] = p.nibble_table[c];
  } else {
    return nullptr;
  }
  if (p.decode != WeightDecode::kNibble) {
    // k from any code that is finite and nonzero both ways.
    bool found = false;
    for (std::size_t c = 0; c < count && !found; ++c) {
      if (std::isfinite(fast[c]) && std::isfinite(exact[c]) && fast[c] != 0 && exact[c] != 0) {
        k = std::ilogb(static_cast<double>(exact[c]) / static_cast<double>(fast[c]));
        found = true;
      }
    }
    if (!found) return nullptr;
  }
  std::copy(fast.begin(), fast.end(), p.fast_value);

  // 2. The codes whose fast value is not exact (NaN codes that the decode
  //    maps to a number, say) must not occur in the matrix.
  std::array<bool, 256> good{};
  for (std::size_t c = 0; c < count; ++c) {
    good[c] = same_value(static_cast<float>(std::ldexp(static_cast<double>(fast[c]), k)), exact[c]);
  }
  if (!std::all_of(good.begin(), good.begin() + static_cast<long>(count),
                   [](bool g) { return g; })) {
    if (e.bits == 6) return nullptr;
    for (std::uint8_t byte : m.codes_) {
      const bool ok = e.bits == 8 ? good[byte] : good[byte & 0xFu] && good[byte >> 4];
      if (!ok) return nullptr;
    }
  }

  // 3. The multipliers: scale * 2^k, exact.
  std::size_t segment = m.cols_;
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      break;
    case MatrixScheme::kTensor:
    case MatrixScheme::kChannel: {
      p.scale = ScaleSource::kRow;
      kernel->row_multiplier.resize(m.rows_);
      for (std::size_t r = 0; r < m.rows_; ++r) {
        const float s = f.scheme == MatrixScheme::kTensor ? m.scales_.tensor : m.scales_.row[r];
        if (!exact_multiplier(s, k, kernel->row_multiplier[r])) return nullptr;
      }
      break;
    }
    case MatrixScheme::kGroup: {
      for (const std::uint16_t h : m.scales_.group) {
        float unused;
        if (!exact_multiplier(decode_f32(kFp16, h), k, unused)) return nullptr;
      }
      p.scale = ScaleSource::kF16;
      p.f16_factor = static_cast<float>(std::ldexp(1.0, k));
      segment = static_cast<std::size_t>(f.group);
      break;
    }
    case MatrixScheme::kBlock: {
      p.scale = ScaleSource::kU8Table;
      segment = static_cast<std::size_t>(f.block.block_size);
      kernel->u8_table.resize(256);
      std::array<bool, 256> exact_scale{};
      const std::uint32_t one = encode(e, 1.0);
      for (std::size_t s = 0; s < 256; ++s) {
        const auto code = static_cast<std::uint8_t>(s);
        const float scale = mx ? static_cast<float>(mx_value(kFp16, code, 0x3C00))  // 2^(s-127)
                               : nvfp4_value(m.scales_.tensor, code, one);
        exact_scale[s] = exact_multiplier(scale, k, kernel->u8_table[s]);
        if (mx && code == 0xFF) {  // the NaN scale
          kernel->u8_table[s] = std::numeric_limits<float>::quiet_NaN();
          exact_scale[s] = true;
        }
      }
      for (std::uint8_t s : m.scales_.block) {
        if (!exact_scale[s]) return nullptr;
      }
      break;
    }
  }
  if (segment < m.cols_) {
    if (!std::has_single_bit(segment)) return nullptr;
    p.segment_shift = std::countr_zero(segment);
    p.segments_per_row = (m.cols_ + segment - 1) / segment;
  }
  return kernel;
}

std::size_t PackedMatrix::row_bytes(const MatrixFormat& f, std::size_t cols) {
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      return cols * static_cast<std::size_t>(code_bytes(f.element));
    case MatrixScheme::kBlock:
      return packed_bytes(f.block.element.bits, cols);
    default:
      return packed_bytes(f.element.bits, cols);
  }
}

PackedMatrix PackedMatrix::quantize(const MatrixFormat& f, std::span<const float> w,
                                    std::size_t rows, std::size_t cols) {
  PackedMatrix m = quantize_unchecked(f, w, rows, cols);
  m.finish(true);
  return m;
}

PackedMatrix PackedMatrix::quantize_unchecked(const MatrixFormat& f, std::span<const float> w,
                                              std::size_t rows, std::size_t cols) {
  if (w.size() != rows * cols) {
    throw Error("packed matrix: " + std::to_string(w.size()) + " values for a " +
                std::to_string(rows) + "x" + std::to_string(cols) + " matrix");
  }
  PackedMatrix m;
  m.format_ = f;
  m.rows_ = rows;
  m.cols_ = cols;
  m.row_bytes_ = row_bytes(f, cols);
  m.codes_.assign(rows * m.row_bytes_, 0);
  MatrixScales& sc = m.scales_;
  const float max = f.scheme == MatrixScheme::kBlock ? 0.0f : max_of(f.element);
  // Two scales (AFPQ): the positive and the negative values' divisors.
  const float max_pos =
      f.scheme == MatrixScheme::kBlock ? 0.0f : static_cast<float>(max_positive_value(f.element));
  const float max_neg = f.scheme == MatrixScheme::kBlock
                            ? 0.0f
                            : static_cast<float>(max_negative_magnitude(f.element));
  switch (f.scheme) {
    case MatrixScheme::kPlain:
      if (f.element.bits == 32) {
        if (!w.empty()) std::memcpy(m.codes_.data(), w.data(), w.size() * sizeof(float));
      } else {
        encode_f32(f.element, w, m.codes_.data(), {Rounding::kNearestEven, false});
      }
      break;
    case MatrixScheme::kTensor:
    case MatrixScheme::kChannel: {
      const bool tensor = f.scheme == MatrixScheme::kTensor;
      // An infinite value leaves no finite scale (every code would be 0).
      const auto scale_of = [&](std::span<const float> v, std::size_t row) {
        const float amax = amax_of(v);
        if (std::isinf(amax)) {
          throw Error("packed matrix " + f.name + ": " +
                      (tensor ? std::string("the matrix") : "row " + std::to_string(row)) +
                      " holds an infinite value, so its scale amax / max would be infinite");
        }
        return amax > 0.0f ? amax / max : 0.0f;
      };
      if (tensor) {
        sc.tensor = scale_of(w, 0);
      } else {
        sc.row.resize(rows);
      }
      RowEncoder enc(f.element, cols);
      for (std::size_t r = 0; r < rows; ++r) {
        const auto row = w.subspan(r * cols, cols);
        const float s = tensor ? sc.tensor : (sc.row[r] = scale_of(row, r));
        enc.encode(
            row, cols, [s](std::size_t) { return s; }, m.codes_.data() + r * m.row_bytes_);
      }
      break;
    }
    case MatrixScheme::kGroup: {
      const auto k = static_cast<std::size_t>(f.group);
      const std::size_t groups = (cols + k - 1) / k;
      const bool two = f.two_scales();
      sc.group.resize(rows * groups * (two ? 2 : 1));
      if (f.zero_points()) sc.zero.resize(rows * groups);
      RowEncoder enc(f.element, cols);
      std::vector<float> s(groups);
      for (std::size_t r = 0; r < rows; ++r) {
        const auto row = w.subspan(r * cols, cols);
        if (two) {  // AFPQ: the positive and the negative values' own amax
          std::uint16_t* scale = sc.group.data() + 2 * r * groups;
          for (std::size_t g = 0; g < groups; ++g) {
            float hi = 0.0f, lo = 0.0f;
            for (float v : row.subspan(g * k, std::min(k, cols - g * k))) {
              if (v > hi) hi = v;
              if (-v > lo) lo = -v;
            }
            scale[2 * g] = group_scale(hi, max_pos);
            scale[2 * g + 1] = group_scale(lo, max_neg);
          }
          enc.encode_two(
              row, k, [&](std::size_t g) { return decode_f32(kFp16, scale[2 * g]); },
              [&](std::size_t g) { return decode_f32(kFp16, scale[2 * g + 1]); },
              m.codes_.data() + r * m.row_bytes_);
          continue;
        }
        std::uint16_t* scale = sc.group.data() + r * groups;
        if (f.ggml_q8_0) {  // ggml's own rule; a partial last group is padded with zeros
          std::vector<float> padded(groups * k, 0.0f);
          std::copy(row.begin(), row.end(), padded.begin());
          const std::vector<GgmlBlockQ8_0> blocks = ggml_q8_0_quantize(padded);
          auto* codes = reinterpret_cast<std::int8_t*>(m.codes_.data() + r * m.row_bytes_);
          for (std::size_t g = 0; g < groups; ++g) {
            scale[g] = blocks[g].d;
            for (std::size_t j = 0; j < std::min(k, cols - g * k); ++j)
              codes[g * k + j] = blocks[g].qs[j];
          }
          continue;
        }
        for (std::size_t g = 0; g < groups; ++g) {
          const auto part = row.subspan(g * k, std::min(k, cols - g * k));
          if (!f.zero_points()) {
            scale[g] = group_scale(amax_of(part), max);
          } else {
            // The range [lo, hi] always holds 0, so that 0 is a code (z).
            float lo = 0.0f, hi = 0.0f;
            for (float v : part) {
              if (v < lo) lo = v;
              if (v > hi) hi = v;
            }
            scale[g] = group_scale(hi - lo, max);
            const float d = decode_f32(kFp16, scale[g]);
            const float z = d > 0.0f && std::isfinite(d) ? std::nearbyint(-lo / d) : 0.0f;
            sc.zero[r * groups + g] = static_cast<std::uint8_t>(std::clamp(z, 0.0f, max));
          }
          s[g] = decode_f32(kFp16, scale[g]);
        }
        std::uint8_t* out = m.codes_.data() + r * m.row_bytes_;
        const auto scale_of = [&](std::size_t g) { return s[g]; };
        if (f.zero_points()) {
          const std::uint8_t* z = sc.zero.data() + r * groups;
          enc.encode_asym(
              row, k, scale_of, [z](std::size_t g) { return z[g]; }, out);
        } else {
          enc.encode(row, k, scale_of, out);
        }
      }
      break;
    }
    case MatrixScheme::kBlock: {
      const std::int64_t shape[2] = {static_cast<std::int64_t>(rows),
                                     static_cast<std::int64_t>(cols)};
      BlockOptions opt;  // threads only for large matrices (results do not depend on them)
      opt.threads = rows * cols >= (std::size_t{1} << 16) ? 0 : 1;
      const PackedTensor t = lowp::quantize(f.block, w, shape, 1, opt);
      const int bits = f.block.element.bits;
      if (static_cast<std::size_t>(bits) * cols % 8 == 0) {
        if (!m.codes_.empty()) std::memcpy(m.codes_.data(), t.elements.data(), m.codes_.size());
      } else {
        // Rows of t's stream do not start on a byte: re-pack each row.
        std::vector<std::uint32_t> codes(cols);
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t j = 0; j < cols; ++j) codes[j] = t.code(r, j);
          pack_codes(bits, codes,
                     std::span<std::uint8_t>(m.codes_.data() + r * m.row_bytes_, m.row_bytes_));
        }
      }
      sc.block = t.scales;
      sc.tensor = t.tensor_scale;
      break;
    }
  }
  return m;
}

PackedMatrix PackedMatrix::from_codes(const MatrixFormat& f, std::size_t rows, std::size_t cols,
                                      std::vector<std::uint8_t> codes, MatrixScales scales) {
  PackedMatrix m;
  m.format_ = f;
  m.rows_ = rows;
  m.cols_ = cols;
  m.row_bytes_ = row_bytes(f, cols);
  m.codes_ = std::move(codes);
  m.scales_ = std::move(scales);
  m.finish(true);
  return m;
}

void PackedMatrix::finish(bool with_kernel) {
  const auto expect = [&](const char* what, std::size_t got, std::size_t want) {
    if (got != want) {
      throw Error("packed matrix " + format_.name + " [" + std::to_string(rows_) + ", " +
                  std::to_string(cols_) + "]: " + what + " holds " + std::to_string(got) +
                  " entries, expected " + std::to_string(want));
    }
  };
  const auto segments = [&](int k) {
    const auto kk = static_cast<std::size_t>(k);
    return rows_ * ((cols_ + kk - 1) / kk);
  };
  const MatrixScheme scheme = format_.scheme;
  expect("codes", codes_.size(), rows_ * row_bytes_);
  expect("row scales", scales_.row.size(), scheme == MatrixScheme::kChannel ? rows_ : 0);
  expect("group scales", scales_.group.size(),
         scheme == MatrixScheme::kGroup ? segments(format_.group) * (format_.two_scales() ? 2 : 1)
                                        : 0);
  expect("zero points", scales_.zero.size(),
         scheme == MatrixScheme::kGroup && format_.zero_points() ? segments(format_.group) : 0);
  expect("block scales", scales_.block.size(),
         scheme == MatrixScheme::kBlock ? segments(format_.block.block_size) : 0);
  if (format_.zero_points()) {
    for (std::uint8_t z : scales_.zero) {
      if (z > int_max(format_.element)) {
        throw Error("packed matrix " + format_.name + ": zero point " + std::to_string(z) +
                    " is not a code of " + format_name(format_.element));
      }
    }
  }
  kernel_ = with_kernel ? make_kernel(*this) : nullptr;
}

std::size_t PackedMatrix::bytes() const {
  std::size_t n = codes_.size() + scales_.row.size() * sizeof(float) +
                  scales_.group.size() * sizeof(std::uint16_t) + scales_.zero.size() +
                  scales_.block.size();
  if (format_.scheme == MatrixScheme::kTensor ||
      (format_.scheme == MatrixScheme::kBlock && has_tensor_scale(format_.block))) {
    n += sizeof(float);
  }
  return n;
}

double PackedMatrix::bits_per_weight() const {
  const std::size_t n = rows_ * cols_;
  return n == 0 ? 0.0 : 8.0 * static_cast<double>(bytes()) / static_cast<double>(n);
}

void PackedMatrix::dequantize_row(std::size_t row, std::span<float> out) const {
  if (row >= rows_ || out.size() < cols_) throw Error("packed matrix: row or buffer out of range");
  const std::uint8_t* codes = codes_.data() + row * row_bytes_;
  switch (format_.scheme) {
    case MatrixScheme::kPlain:
      if (format_.element.bits == 32) {
        if (cols_ != 0) std::memcpy(out.data(), codes, cols_ * sizeof(float));
      } else {
        decode_to_f32(format_.element, codes, out.first(cols_));
      }
      return;
    case MatrixScheme::kTensor:
      decode_stream(format_.element, codes, 0, cols_, scales_.tensor, 0.0f, out.data());
      return;
    case MatrixScheme::kChannel:
      decode_stream(format_.element, codes, 0, cols_, scales_.row[row], 0.0f, out.data());
      return;
    case MatrixScheme::kGroup: {
      const std::size_t k = static_cast<std::size_t>(format_.group);
      const std::size_t groups = (cols_ + k - 1) / k;
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t b = g * k, n = std::min(k, cols_ - b);
        if (format_.two_scales()) {
          const std::uint16_t* s = scales_.group.data() + 2 * (row * groups + g);
          decode_stream_two(format_.element, codes, b, n, decode_f32(kFp16, s[0]),
                            decode_f32(kFp16, s[1]), out.data() + b);
          continue;
        }
        decode_stream(
            format_.element, codes, b, n, decode_f32(kFp16, scales_.group[row * groups + g]),
            format_.zero_points() ? static_cast<float>(scales_.zero[row * groups + g]) : 0.0f,
            out.data() + b);
      }
      return;
    }
    case MatrixScheme::kBlock: {
      const BlockFormat& b = format_.block;
      const std::size_t k = static_cast<std::size_t>(b.block_size);
      const std::uint8_t* scales = scales_.block.data() + row * ((cols_ + k - 1) / k);
      const int bits = b.element.bits;
      if (b.scale != BlockScale::kUe8m0 || bits > 8) {
        const std::span<const std::uint8_t> stream(codes, row_bytes_);
        for (std::size_t j = 0; j < cols_; ++j) {
          out[j] = block_value(b, scales_.tensor, scales[j / k], unpack_code(bits, stream, j));
        }
        return;
      }
      // MX with elements of at most 8 bits: mx_value(element, s, c) is
      // P(c) * 2^(s-127) rounded once to fp32, and that product is exact in
      // double, so a table of P and one of the powers of two give its bits.
      std::array<double, 256> element{};
      for (std::uint32_t c = 0; c < (1u << bits); ++c) element[c] = mx_element_value(b.element, c);
      const std::uint32_t mask = (1u << bits) - 1;
      for (std::size_t j0 = 0; j0 < cols_; j0 += k) {
        const std::uint8_t s = scales[j0 / k];
        const double scale = s == kE8m0Nan ? std::numeric_limits<double>::quiet_NaN()
                                           : std::ldexp(1.0, static_cast<int>(s) - 127);
        for (std::size_t j = j0; j < std::min(cols_, j0 + k); ++j) {
          const std::size_t bit = j * static_cast<std::size_t>(bits);
          const std::size_t byte = bit / 8;
          std::uint32_t word = codes[byte];
          if (byte + 1 < row_bytes_) word |= static_cast<std::uint32_t>(codes[byte + 1]) << 8;
          out[j] = static_cast<float>(element[(word >> (bit % 8)) & mask] * scale);
        }
      }
      return;
    }
  }
}

void PackedMatrix::dequantize(std::span<float> out) const {
  if (out.size() != rows_ * cols_) throw Error("packed matrix: output size mismatch");
  for (std::size_t r = 0; r < rows_; ++r) dequantize_row(r, out.subspan(r * cols_, cols_));
}

void PackedMatrix::gemv(const float* x, float* y, unsigned threads) const {
  gemm(x, 1, y, threads);
}

bool PackedMatrix::vectorized() const {
  if (!kernel_) return false;
  const int shift = kernel_->params.segment_shift;
  return shift == kRowSegment ||
         (std::size_t{1} << shift) % kernels::gemv_segment_quantum(kernel_->params.decode) == 0;
}

void PackedMatrix::gemm(const PackedTensor& x, float* y, unsigned threads) const {
  if (x.shape.size() != 2 || x.shape[1] != static_cast<std::int64_t>(cols_) || x.axis != 1) {
    std::string shape;
    for (std::size_t i = 0; i < x.shape.size(); ++i)
      shape += (i ? ", " : "") + std::to_string(x.shape[i]);
    throw Error("gemm: packed activations of shape [" + shape + "] along axis " +
                std::to_string(x.axis) + " for a matrix of " + std::to_string(cols_) +
                " columns (need [n, " + std::to_string(cols_) + "] blocked along axis 1)");
  }
  const auto n = static_cast<std::size_t>(x.shape[0]);
  std::vector<float> values(n * cols_);
  lowp::dequantize(x, values);
  gemm(values.data(), n, y, threads);
}

void PackedMatrix::gemm(const float* x, std::size_t n, float* y, unsigned threads) const {
  if (rows_ == 0 || n == 0) return;
  if (cols_ == 0) {
    std::fill(y, y + n * rows_, 0.0f);
    return;
  }
  if (!vectorized()) {
    const auto fill = [](const void* self, std::size_t r, float* out) {
      const auto* m = static_cast<const PackedMatrix*>(self);
      m->dequantize_row(r, std::span<float>(out, m->cols_));
    };
    parallel_for(rows_, threads, 4, [&](std::size_t r0, std::size_t r1) {
      kernels::dense_gemm(fill, this, cols_, x, n, cols_, y, rows_, r0, r1);
    });
    return;
  }
  kernels::GemvParams p = kernel_->params;
  p.codes = codes_.data();
  p.row_bytes = row_bytes_;
  p.rows = rows_;
  p.cols = cols_;
  p.row_multiplier = kernel_->row_multiplier.empty() ? nullptr : kernel_->row_multiplier.data();
  p.u8_scales = scales_.block.data();
  p.u8_table = kernel_->u8_table.data();
  p.f16_scales = scales_.group.data();
  std::vector<float> permuted;
  const float* xs = x;
  if (p.decode == kernels::WeightDecode::kNibble) {
    permuted.resize(n * cols_);
    kernels::permute_x(p, x, n, cols_, permuted.data());
    xs = permuted.data();
  }
  parallel_for(rows_, threads, 4, [&](std::size_t r0, std::size_t r1) {
    kernels::packed_gemm(p, xs, n, cols_, y, rows_, r0, r1);
  });
}

void fake_quantize_rows(const MatrixFormat& f, float* x, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0) return;
  if (f.scheme == MatrixScheme::kPlain && f.element.bits == 32) return;
  // A per-tensor scale (kTensor, NVFP4's) must be each row's own; every other
  // scale lies within a row, so the whole matrix is one call.
  const bool per_row = f.scheme == MatrixScheme::kTensor ||
                       (f.scheme == MatrixScheme::kBlock && has_tensor_scale(f.block));
  const std::size_t step = per_row ? 1 : rows;
  for (std::size_t r = 0; r < rows; r += step) {
    const std::span<float> part(x + r * cols, step * cols);
    const PackedMatrix m = PackedMatrix::quantize_unchecked(f, part, step, cols);
    for (std::size_t i = 0; i < step; ++i) m.dequantize_row(i, part.subspan(i * cols, cols));
  }
}

}  // namespace lowp
