// The weight formats of the runtime and a straightforward implementation of
// their matrix products: each row is decoded into a small fp32 buffer and
// multiplied with fp32 accumulation.
#include "lowp/nn/packed_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>

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
  const std::size_t per = (rows + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t) {
    const std::size_t b = std::min(rows, t * per), e = std::min(rows, b + per);
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
    m.block_ = lowp::quantize(f.block, w, shape, 1, opt);
    break;
  }
  }
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
    return block_.elements.size() + block_.scales.size() +
           (block_.format.family == BlockFamily::kNvfp4 ? sizeof(float) : 0);
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
  case WeightScheme::kBlock:
    for (std::size_t j = 0; j < cols_; ++j)
      out[j] = block_.value(row, j);
    return;
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

void PackedMatrix::gemm(const float *x, std::size_t n, float *y,
                        unsigned threads) const {
  parallel_rows(rows_, threads, [&](std::size_t r0, std::size_t r1) {
    std::vector<float> w(cols_);
    for (std::size_t r = r0; r < r1; ++r) {
      dequantize_row(r, w);
      for (std::size_t i = 0; i < n; ++i) {
        const float *xi = x + i * cols_;
        float acc = 0.0f;
        for (std::size_t c = 0; c < cols_; ++c)
          acc += w[c] * xi[c];
        y[i * rows_ + r] = acc;
      }
    }
  });
}

} // namespace lowp::nn
