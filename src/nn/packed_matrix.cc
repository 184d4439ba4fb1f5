// The weight formats of the runtime and their matrix products. The products
// run on the vector kernels of src/kernels/gemv.h, which decode codes in
// registers; a matrix gets that path when the kernel's decode is exact for
// every code and scale it holds (checked here, against the scalar reference),
// else its rows are dequantized (the reference) into a small tile first.
#include "lowp/nn/packed_matrix.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <thread>

#include "kernels/gemv.h"
#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace lowp::nn {
namespace {

constexpr Format kFp16 = {Kind::kFloat,   16, 5, 10, 15, Specials::kIeee,
                          IntRange::kFull};

// intN in a scaled spelling means the symmetric range.
Format scaled_element(Format f) {
  if (f.kind == Kind::kInt && f.int_range == IntRange::kFull)
    f.int_range = IntRange::kSymmetric;
  return f;
}

bool is_plain(const Format &f) {
  return f.kind == Kind::kFloat && f.specials == Specials::kIeee &&
         ((f.bits == 32 && f.exp_bits == 8) ||
          (f.bits == 16 && f.exp_bits == 8) ||
          (f.bits == 16 && f.exp_bits == 5 && f.bias == 15));
}

float max_of(const Format &f) { return static_cast<float>(max_finite(f)); }

float amax_of(std::span<const float> v) {
  float m = 0.0f;
  for (float x : v) {
    const float a = std::fabs(x);
    if (a > m)
      m = a; // NaN never wins
  }
  return m;
}

// Encodes v[i] / s (saturating, nearest even) into `count` codes and packs
// them into `out` (a row's bit stream).
void encode_scaled(const Format &f, std::span<const float> v, float s,
                   std::uint8_t *out) {
  std::vector<float> scaled(v.size());
  if (s > 0.0f && std::isfinite(s)) {
    for (std::size_t i = 0; i < v.size(); ++i)
      scaled[i] = v[i] / s;
  }
  std::vector<std::uint32_t> codes(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    codes[i] = encode(f, static_cast<double>(scaled[i]),
                      {Rounding::kNearestEven, true});
  }
  pack_codes(f.bits, codes,
             std::span<std::uint8_t>(out, packed_bytes(f.bits, v.size())));
}

void decode_stream(const Format &f, const std::uint8_t *stream,
                   std::size_t begin, std::size_t count, float scale,
                   float *out) {
  const std::span<const std::uint8_t> s(stream,
                                        packed_bytes(f.bits, begin + count));
  for (std::size_t i = 0; i < count; ++i) {
    out[i] = decode_f32(f, unpack_code(f.bits, s, begin + i)) * scale;
  }
}

template <class Fn>
void parallel_rows(std::size_t rows, unsigned threads, Fn fn) {
  threads = std::max(
      1u, std::min<unsigned>(
              threads, static_cast<unsigned>(std::max<std::size_t>(rows, 1))));
  if (threads == 1) {
    fn(std::size_t{0}, rows);
    return;
  }
  std::vector<std::thread> pool;
  // Pieces of whole 4-row tiles (the kernels' tile height).
  const std::size_t per = ((rows + threads - 1) / threads + 3) / 4 * 4;
  for (unsigned t = 0; t < threads; ++t) {
    const std::size_t b = std::min(rows, std::size_t{t} * per),
                      e = std::min(rows, b + per);
    if (b < e)
      pool.emplace_back([=] { fn(b, e); });
  }
  for (auto &th : pool)
    th.join();
}

} // namespace

WeightFormat parse_weight_format(std::string_view name) {
  WeightFormat w;
  w.name = std::string(name);
  const std::size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && name.substr(0, 3) != "mx:") {
    const std::string_view elem = name.substr(0, colon),
                           how = name.substr(colon + 1);
    w.element = scaled_element(parse_format(elem));
    if (w.element.kind == Kind::kFloat &&
        w.element.specials == Specials::kE8m0) {
      throw Error("weight format " + quoted(std::string(name)) +
                  ": e8m0 cannot hold weights");
    }
    if (how == "channel") {
      w.scheme = WeightScheme::kChannel;
      return w;
    }
    if (how.substr(0, 5) == "group") {
      const std::string digits(how.substr(5));
      int k = 0;
      bool ok = !digits.empty() && digits.size() <= 6;
      for (char c : digits)
        ok = ok && c >= '0' && c <= '9';
      if (ok)
        k = std::stoi(digits);
      if (!ok || k < 1) {
        throw Error(
            "weight format " + quoted(std::string(name)) +
            ": expected <format>:group<K> with K >= 1, e.g. int4:group32");
      }
      w.scheme = WeightScheme::kGroup;
      w.group = k;
      return w;
    }
    throw Error(
        "weight format " + quoted(std::string(name)) + ": unknown scaling " +
        quoted(std::string(how)) +
        " (expected channel or group<K>, e.g. int8:channel, int4:group32)");
  }
  if (parse_block_format(name, w.block)) {
    w.scheme = WeightScheme::kBlock;
    return w;
  }
  const Format f = parse_format(name);
  if (is_plain(f)) {
    w.scheme = WeightScheme::kPlain;
    w.element = f;
    return w;
  }
  if (f.kind == Kind::kFloat && f.specials == Specials::kE8m0) {
    throw Error("weight format " + quoted(std::string(name)) +
                ": e8m0 cannot hold weights");
  }
  w.scheme = WeightScheme::kTensor;
  w.element = scaled_element(f);
  return w;
}

// ---- the vector kernels' view of a matrix ----

constexpr int kRowSegment = 63; // GemvParams::segment_shift for one scale/row

struct PackedMatrix::Kernel {
  kernels::GemvParams params; // the storage pointers are set per call
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
bool exact_multiplier(float s, int k, float &out) {
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
bool nibble_table(const std::array<float, 256> &exact, std::int8_t *table,
                  int &k) {
  for (int kk = 24; kk >= -40; --kk) {
    bool ok = true;
    for (int c = 0; c < 16 && ok; ++c) {
      if (!std::isfinite(exact[static_cast<std::size_t>(c)]))
        continue;
      const double v = std::ldexp(
          static_cast<double>(exact[static_cast<std::size_t>(c)]), -kk);
      ok = v == std::trunc(v) && std::fabs(v) <= 127.0;
    }
    if (!ok)
      continue;
    for (int c = 0; c < 16; ++c) {
      const float e = exact[static_cast<std::size_t>(c)];
      table[c] = std::isfinite(e) ? static_cast<std::int8_t>(
                                        std::ldexp(static_cast<double>(e), -kk))
                                  : 0;
    }
    k = kk;
    return true;
  }
  return false;
}

} // namespace

std::shared_ptr<const PackedMatrix::Kernel>
PackedMatrix::make_kernel(const PackedMatrix &m) {
  using kernels::ScaleSource;
  using kernels::WeightDecode;
  auto kernel = std::make_shared<Kernel>();
  kernels::GemvParams &p = kernel->params;
  const WeightFormat &f = m.format_;
  p.segment_shift = kRowSegment;
  if (f.scheme == WeightScheme::kPlain) {
    p.decode = f.element.bits == 32      ? WeightDecode::kF32
               : f.element.exp_bits == 8 ? WeightDecode::kBf16
                                         : WeightDecode::kF16;
    return kernel;
  }
  const bool block = f.scheme == WeightScheme::kBlock;
  const bool mx = block && f.block.family == BlockFamily::kMx;
  const Format e = block ? f.block.element : f.element;
  if (e.bits != 8 && e.bits != 4)
    return nullptr;

  // 1. The exact element value of every code (as dequantize_row takes it) and
  //    the value the kernel decodes, fast = exact / 2^k.
  const std::size_t count = std::size_t{1} << e.bits;
  std::array<float, 256> exact{}, fast{};
  for (std::size_t c = 0; c < count; ++c) {
    const auto code = static_cast<std::uint32_t>(c);
    exact[c] = mx ? static_cast<float>(mx_element_value(e, code))
                  : decode_f32(e, code);
  }
  int k = 0;
  if (e.bits == 8 && e.kind == Kind::kInt) {
    p.decode = WeightDecode::kInt8;
    for (std::size_t c = 0; c < count; ++c)
      fast[c] = static_cast<float>(static_cast<std::int8_t>(c));
  } else if (e.bits == 8 && e.kind == Kind::kFloat &&
             e.specials != Specials::kE8m0 && e.exp_bits <= 5 &&
             e.exp_bits >= 2 && 1 + e.exp_bits + e.man_bits == 8) {
    p.decode = WeightDecode::kViaF16;
    p.f16_shift = 10 - e.man_bits;
    p.f16_mask = static_cast<std::uint16_t>(0x8000u | (0x7Fu << p.f16_shift));
    for (std::size_t c = 0; c < count; ++c) {
      const auto half = static_cast<std::uint32_t>(
          ((c & 0x80u) << 8) | ((c & 0x7Fu) << p.f16_shift));
      fast[c] = decode_f32(kFp16, half);
    }
  } else if (e.bits == 4) {
    p.decode = WeightDecode::kNibble;
    if (!nibble_table(exact, p.nibble_table, k))
      return nullptr;
    for (std::size_t c = 0; c < 16; ++c)
      fast[c] = p.nibble_table[c];
  } else {
    return nullptr;
  }
  if (p.decode != WeightDecode::kNibble) {
    // k from any code that is finite and nonzero both ways.
    bool found = false;
    for (std::size_t c = 0; c < count && !found; ++c) {
      if (std::isfinite(fast[c]) && std::isfinite(exact[c]) && fast[c] != 0 &&
          exact[c] != 0) {
        k = std::ilogb(static_cast<double>(exact[c]) /
                       static_cast<double>(fast[c]));
        found = true;
      }
    }
    if (!found)
      return nullptr;
  }
  std::copy(fast.begin(), fast.end(), p.fast_value);

  // 2. The codes whose fast value is not exact (NaN codes that the decode
  //    maps to a number, say) must not occur in the matrix.
  std::array<bool, 256> good{};
  for (std::size_t c = 0; c < count; ++c) {
    good[c] = same_value(
        static_cast<float>(std::ldexp(static_cast<double>(fast[c]), k)),
        exact[c]);
  }
  if (!std::all_of(good.begin(), good.begin() + static_cast<long>(count),
                   [](bool g) { return g; })) {
    for (std::uint8_t byte : m.codes_) {
      const bool ok =
          e.bits == 8 ? good[byte] : good[byte & 0xFu] && good[byte >> 4];
      if (!ok)
        return nullptr;
    }
  }

  // 3. The multipliers: scale * 2^k, exact.
  std::size_t segment = m.cols_;
  switch (f.scheme) {
  case WeightScheme::kPlain:
    break;
  case WeightScheme::kTensor:
  case WeightScheme::kChannel: {
    p.scale = ScaleSource::kRow;
    kernel->row_multiplier.resize(m.rows_);
    for (std::size_t r = 0; r < m.rows_; ++r) {
      const float s = f.scheme == WeightScheme::kTensor ? m.tensor_scale_
                                                        : m.row_scales_[r];
      if (!exact_multiplier(s, k, kernel->row_multiplier[r]))
        return nullptr;
    }
    break;
  }
  case WeightScheme::kGroup: {
    for (const std::uint16_t h : m.group_scales_) {
      float unused;
      if (!exact_multiplier(decode_f32(kFp16, h), k, unused))
        return nullptr;
    }
    p.scale = ScaleSource::kF16;
    p.f16_factor = static_cast<float>(std::ldexp(1.0, k));
    segment = static_cast<std::size_t>(f.group);
    break;
  }
  case WeightScheme::kBlock: {
    p.scale = ScaleSource::kU8Table;
    segment = static_cast<std::size_t>(f.block.block_size);
    kernel->u8_table.resize(256);
    std::array<bool, 256> exact_scale{};
    const std::uint32_t one = encode(e, 1.0);
    for (std::size_t s = 0; s < 256; ++s) {
      const auto code = static_cast<std::uint8_t>(s);
      const float scale =
          mx ? static_cast<float>(mx_value(kFp16, code, 0x3C00)) // 2^(s-127)
             : nvfp4_value(m.tensor_scale_, code, one);
      exact_scale[s] = exact_multiplier(scale, k, kernel->u8_table[s]);
      if (mx && code == 0xFF) { // the NaN scale
        kernel->u8_table[s] = std::numeric_limits<float>::quiet_NaN();
        exact_scale[s] = true;
      }
    }
    for (std::uint8_t s : m.block_scales_) {
      if (!exact_scale[s])
        return nullptr;
    }
    break;
  }
  }
  if (segment < m.cols_) {
    if (!std::has_single_bit(segment))
      return nullptr;
    p.segment_shift = std::countr_zero(segment);
    p.segments_per_row = (m.cols_ + segment - 1) / segment;
  }
  return kernel;
}

PackedMatrix PackedMatrix::quantize(const WeightFormat &f,
                                    std::span<const float> w, std::size_t rows,
                                    std::size_t cols) {
  if (w.size() != rows * cols) {
    throw Error("packed matrix: " + std::to_string(w.size()) +
                " values for a " + std::to_string(rows) + "x" +
                std::to_string(cols) + " matrix");
  }
  PackedMatrix m;
  m.format_ = f;
  m.rows_ = rows;
  m.cols_ = cols;
  switch (f.scheme) {
  case WeightScheme::kPlain: {
    m.row_bytes_ = cols * static_cast<std::size_t>(code_bytes(f.element));
    m.codes_.resize(rows * m.row_bytes_);
    if (f.element.bits == 32) {
      if (!w.empty())
        std::memcpy(m.codes_.data(), w.data(), w.size() * sizeof(float));
    } else {
      encode_f32(f.element, w, m.codes_.data(),
                 {Rounding::kNearestEven, false});
    }
    break;
  }
  case WeightScheme::kTensor: {
    const float amax = amax_of(w);
    m.tensor_scale_ = amax > 0.0f ? amax / max_of(f.element) : 0.0f;
    m.row_bytes_ = packed_bytes(f.element.bits, cols);
    m.codes_.assign(rows * m.row_bytes_, 0);
    for (std::size_t r = 0; r < rows; ++r) {
      encode_scaled(f.element, w.subspan(r * cols, cols), m.tensor_scale_,
                    m.codes_.data() + r * m.row_bytes_);
    }
    break;
  }
  case WeightScheme::kChannel: {
    m.row_bytes_ = packed_bytes(f.element.bits, cols);
    m.codes_.assign(rows * m.row_bytes_, 0);
    m.row_scales_.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      const auto row = w.subspan(r * cols, cols);
      const float amax = amax_of(row);
      m.row_scales_[r] = amax > 0.0f ? amax / max_of(f.element) : 0.0f;
      encode_scaled(f.element, row, m.row_scales_[r],
                    m.codes_.data() + r * m.row_bytes_);
    }
    break;
  }
  case WeightScheme::kGroup: {
    const std::size_t k = static_cast<std::size_t>(f.group);
    const std::size_t groups = (cols + k - 1) / k;
    m.row_bytes_ = packed_bytes(f.element.bits, cols);
    m.codes_.assign(rows * m.row_bytes_, 0);
    m.group_scales_.resize(rows * groups);
    std::vector<std::uint32_t> codes(cols);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t b = g * k, n = std::min(k, cols - b);
        const auto part = w.subspan(r * cols + b, n);
        const float amax = amax_of(part);
        const auto sc = static_cast<std::uint16_t>(
            encode(kFp16, static_cast<double>(amax / max_of(f.element)),
                   {Rounding::kNearestEven, true}));
        m.group_scales_[r * groups + g] = sc;
        const float s = decode_f32(kFp16, sc);
        for (std::size_t i = 0; i < n; ++i) {
          const float v = s > 0.0f ? part[i] / s : 0.0f;
          codes[b + i] = encode(f.element, static_cast<double>(v),
                                {Rounding::kNearestEven, true});
        }
      }
      pack_codes(f.element.bits, codes,
                 std::span<std::uint8_t>(m.codes_.data() + r * m.row_bytes_,
                                         m.row_bytes_));
    }
    break;
  }
  case WeightScheme::kBlock: {
    const std::int64_t shape[2] = {static_cast<std::int64_t>(rows),
                                   static_cast<std::int64_t>(cols)};
    BlockOptions opt;
    opt.threads = 0;
    const PackedTensor t = lowp::quantize(f.block, w, shape, 1, opt);
    const int bits = f.block.element.bits;
    m.row_bytes_ = packed_bytes(bits, cols);
    m.codes_.assign(rows * m.row_bytes_, 0);
    if (static_cast<std::size_t>(bits) * cols % 8 == 0) {
      if (!m.codes_.empty())
        std::memcpy(m.codes_.data(), t.elements.data(), m.codes_.size());
    } else {
      // Rows of t's stream do not start on a byte: re-pack each row.
      std::vector<std::uint32_t> codes(cols);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t j = 0; j < cols; ++j)
          codes[j] = t.code(r, j);
        pack_codes(bits, codes,
                   std::span<std::uint8_t>(m.codes_.data() + r * m.row_bytes_,
                                           m.row_bytes_));
      }
    }
    m.block_scales_ = t.scales;
    m.tensor_scale_ = t.tensor_scale;
    break;
  }
  }
  m.kernel_ = make_kernel(m);
  return m;
}

std::size_t PackedMatrix::bytes() const {
  switch (format_.scheme) {
  case WeightScheme::kPlain:
    return codes_.size();
  case WeightScheme::kTensor:
    return codes_.size() + sizeof(float);
  case WeightScheme::kChannel:
    return codes_.size() + row_scales_.size() * sizeof(float);
  case WeightScheme::kGroup:
    return codes_.size() + group_scales_.size() * sizeof(std::uint16_t);
  case WeightScheme::kBlock:
    return codes_.size() + block_scales_.size() +
           (format_.block.family == BlockFamily::kNvfp4 ? sizeof(float) : 0);
  }
  return 0;
}

double PackedMatrix::bits_per_weight() const {
  const std::size_t n = rows_ * cols_;
  return n == 0 ? 0.0
                : 8.0 * static_cast<double>(bytes()) / static_cast<double>(n);
}

void PackedMatrix::dequantize_row(std::size_t row, std::span<float> out) const {
  if (row >= rows_ || out.size() < cols_)
    throw Error("packed matrix: row or buffer out of range");
  const std::uint8_t *codes = codes_.data() + row * row_bytes_;
  switch (format_.scheme) {
  case WeightScheme::kPlain:
    if (format_.element.bits == 32) {
      if (cols_ != 0)
        std::memcpy(out.data(), codes, cols_ * sizeof(float));
    } else {
      decode_to_f32(format_.element, codes, out.first(cols_));
    }
    return;
  case WeightScheme::kTensor:
    decode_stream(format_.element, codes, 0, cols_, tensor_scale_, out.data());
    return;
  case WeightScheme::kChannel:
    decode_stream(format_.element, codes, 0, cols_, row_scales_[row],
                  out.data());
    return;
  case WeightScheme::kGroup: {
    const std::size_t k = static_cast<std::size_t>(format_.group);
    const std::size_t groups = (cols_ + k - 1) / k;
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t b = g * k, n = std::min(k, cols_ - b);
      decode_stream(format_.element, codes, b, n,
                    decode_f32(kFp16, group_scales_[row * groups + g]),
                    out.data() + b);
    }
    return;
  }
  case WeightScheme::kBlock: {
    const BlockFormat &b = format_.block;
    const std::size_t k = static_cast<std::size_t>(b.block_size);
    const std::uint8_t *scales =
        block_scales_.data() + row * ((cols_ + k - 1) / k);
    const int bits = b.element.bits;
    if (b.family == BlockFamily::kNvfp4 || bits > 8) {
      const std::span<const std::uint8_t> stream(codes, row_bytes_);
      for (std::size_t j = 0; j < cols_; ++j) {
        const std::uint32_t c = unpack_code(bits, stream, j);
        out[j] =
            b.family == BlockFamily::kNvfp4
                ? nvfp4_value(tensor_scale_, scales[j / k], c)
                : static_cast<float>(mx_value(b.element, scales[j / k], c));
      }
      return;
    }
    // MX with elements of at most 8 bits: mx_value(element, s, c) is
    // P(c) * 2^(s-127) rounded once to fp32, and that product is exact in
    // double, so a table of P and one of the powers of two give its bits.
    std::array<double, 256> element{};
    for (std::uint32_t c = 0; c < (1u << bits); ++c)
      element[c] = mx_element_value(b.element, c);
    const std::uint32_t mask = (1u << bits) - 1;
    for (std::size_t j0 = 0; j0 < cols_; j0 += k) {
      const std::uint8_t s = scales[j0 / k];
      const double scale = s == kE8m0Nan
                               ? std::numeric_limits<double>::quiet_NaN()
                               : std::ldexp(1.0, static_cast<int>(s) - 127);
      for (std::size_t j = j0; j < std::min(cols_, j0 + k); ++j) {
        const std::size_t bit = j * static_cast<std::size_t>(bits);
        const std::size_t byte = bit / 8;
        std::uint32_t word = codes[byte];
        if (byte + 1 < row_bytes_)
          word |= static_cast<std::uint32_t>(codes[byte + 1]) << 8;
        out[j] =
            static_cast<float>(element[(word >> (bit % 8)) & mask] * scale);
      }
    }
    return;
  }
  }
}

void PackedMatrix::dequantize(std::span<float> out) const {
  if (out.size() != rows_ * cols_)
    throw Error("packed matrix: output size mismatch");
  for (std::size_t r = 0; r < rows_; ++r)
    dequantize_row(r, out.subspan(r * cols_, cols_));
}

void PackedMatrix::gemv(const float *x, float *y, unsigned threads) const {
  gemm(x, 1, y, threads);
}

bool PackedMatrix::vectorized() const {
  if (!kernel_)
    return false;
  const int shift = kernel_->params.segment_shift;
  return shift == kRowSegment ||
         (std::size_t{1} << shift) %
                 kernels::gemv_segment_quantum(kernel_->params.decode) ==
             0;
}

void PackedMatrix::gemm(const float *x, std::size_t n, float *y,
                        unsigned threads) const {
  if (rows_ == 0 || n == 0)
    return;
  if (cols_ == 0) {
    std::fill(y, y + n * rows_, 0.0f);
    return;
  }
  if (!vectorized()) {
    const auto fill = [](const void *self, std::size_t r, float *out) {
      const auto *m = static_cast<const PackedMatrix *>(self);
      m->dequantize_row(r, std::span<float>(out, m->cols_));
    };
    parallel_rows(rows_, threads, [&](std::size_t r0, std::size_t r1) {
      kernels::dense_gemm(fill, this, cols_, x, n, cols_, y, rows_, r0, r1);
    });
    return;
  }
  kernels::GemvParams p = kernel_->params;
  p.codes = codes_.data();
  p.row_bytes = row_bytes_;
  p.rows = rows_;
  p.cols = cols_;
  p.row_multiplier = kernel_->row_multiplier.empty()
                         ? nullptr
                         : kernel_->row_multiplier.data();
  p.u8_scales = block_scales_.data();
  p.u8_table = kernel_->u8_table.data();
  p.f16_scales = group_scales_.data();
  std::vector<float> permuted;
  const float *xs = x;
  if (p.decode == kernels::WeightDecode::kNibble) {
    permuted.resize(n * cols_);
    kernels::permute_x(p, x, n, cols_, permuted.data());
    xs = permuted.data();
  }
  parallel_rows(rows_, threads, [&](std::size_t r0, std::size_t r1) {
    kernels::packed_gemm(p, xs, n, cols_, y, rows_, r0, r1);
  });
}

} // namespace lowp::nn
