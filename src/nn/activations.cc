// Fake quantization of the activations entering a linear layer: each row (one
// token's vector, the reduction dimension of the product) quantized exactly as
// a one-row PackedMatrix of the same format stores it, then decoded. The
// scalar schemes go through the bulk kernels (bit-identical to the scalar
// reference PackedMatrix uses); block formats through lowp's block quantizer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "lowp/block/tensor.h"
#include "lowp/format/convert.h"
#include "lowp/kernels.h"
#include "lowp/nn/gpt.h"

namespace lowp::nn {
namespace {

constexpr Format kFp16 = {Kind::kFloat, 16, 5, 10, 15, Specials::kIeee, IntRange::kFull};

float amax_of(const float* v, std::size_t n) {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = std::fabs(v[i]);
    if (a > m) m = a;  // NaN never wins, as PackedMatrix
  }
  return m;
}

// A buffer of code_bytes(f)-wide codes of format f.
class CodeBuffer {
 public:
  CodeBuffer(const Format& f, std::size_t n)
      : f_(f), bytes_(static_cast<std::size_t>(code_bytes(f))), data_(n * bytes_) {}
  void encode(std::span<const float> in, bool saturate) {
    encode_f32(f_, in, data_.data(), {Rounding::kNearestEven, saturate});
  }
  void decode(std::span<float> out) const { decode_to_f32(f_, data_.data(), out); }

 private:
  Format f_;
  std::size_t bytes_;
  std::vector<std::uint8_t> data_;
};

// v[i] -> decode(encode_sat(v[i] / s)) * s over one stretch with one scale;
// a scale that is zero or not finite stores zero codes (as PackedMatrix).
void scaled_roundtrip(float* v, std::size_t n, float s, std::vector<float>& tmp,
                      CodeBuffer& codes) {
  tmp.assign(n, 0.0f);
  if (s > 0.0f && std::isfinite(s)) {
    for (std::size_t i = 0; i < n; ++i) tmp[i] = v[i] / s;
  }
  codes.encode(std::span<const float>(tmp.data(), n), true);
  codes.decode(std::span<float>(tmp.data(), n));
  for (std::size_t i = 0; i < n; ++i) v[i] = tmp[i] * s;
}

}  // namespace

void quantize_activations(const WeightFormat& f, float* x, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0) return;
  switch (f.scheme) {
    case WeightScheme::kPlain: {
      if (f.element.bits == 32) return;  // fp32: nothing to do
      const std::span<float> all(x, rows * cols);
      CodeBuffer codes(f.element, all.size());
      codes.encode(all, false);
      codes.decode(all);
      return;
    }
    case WeightScheme::kTensor:
    case WeightScheme::kChannel: {
      // A one-row matrix has one tensor scale = one row scale: amax / max.
      const float max = static_cast<float>(max_finite(f.element));
      std::vector<float> tmp;
      CodeBuffer codes(f.element, cols);
      for (std::size_t r = 0; r < rows; ++r) {
        float* row = x + r * cols;
        const float amax = amax_of(row, cols);
        scaled_roundtrip(row, cols, amax > 0.0f ? amax / max : 0.0f, tmp, codes);
      }
      return;
    }
    case WeightScheme::kGroup: {
      const float max = static_cast<float>(max_finite(f.element));
      const std::size_t k = static_cast<std::size_t>(f.group);
      std::vector<float> tmp;
      CodeBuffer codes(f.element, std::min(k, cols));
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t b = 0; b < cols; b += k) {
          float* part = x + r * cols + b;
          const std::size_t n = std::min(k, cols - b);
          const float amax = amax_of(part, n);
          // The FP16 group scale (nearest even, saturating), as PackedMatrix.
          const float s = decode_f32(kFp16, encode(kFp16, static_cast<double>(amax / max),
                                                   {Rounding::kNearestEven, true}));
          scaled_roundtrip(part, n, s, tmp, codes);
        }
      }
      return;
    }
    case WeightScheme::kBlock: {
      BlockOptions opt;
      opt.threads = 1;
      // MX blocks lie within a row, so the whole matrix is one call; NVFP4's
      // tensor scale must be a row's own.
      const bool per_row = f.block.family == BlockFamily::kNvfp4;
      const std::size_t n = per_row ? 1 : rows;
      for (std::size_t r = 0; r < rows; r += n) {
        const std::int64_t shape[2] = {static_cast<std::int64_t>(n),
                                       static_cast<std::int64_t>(cols)};
        const std::span<float> part(x + r * cols, n * cols);
        const std::vector<float> q = fake_quantize(f.block, part, shape, 1, opt);
        std::copy(q.begin(), q.end(), part.begin());
      }
      return;
    }
  }
}

}  // namespace lowp::nn
