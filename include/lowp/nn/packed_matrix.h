// lowp/nn/packed_matrix.h — a weight matrix stored in a low-precision format,
// with the matrix products the runtime needs (y = W x and Y = X W^T) computed
// straight from the packed storage: rows are decoded a tile at a time, never
// expanded to a whole FP32 matrix.
//
// W has rows() = out_features rows of cols() = in_features values (the layout
// of nn.Linear's weight). Scales always run along a row, i.e. along the
// reduction dimension of both products.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/tensor.h"
#include "lowp/format/format.h"

namespace lowp::nn {

// How a matrix is stored. Spellings (parse_weight_format):
//   fp32, bf16, fp16         plain casts (round to nearest even), no scale
//   fp8_e4m3, fp8_e5m2, ...  any other scalar float: one FP32 scale per tensor,
//                            s = amax / max_finite, codes = encode(w / s),
//                            saturating
//   mxfp8_e4m3, mxfp4, nvfp4, mx:<elem>:<k>, ...
//                            any block format, blocks along each row (OCP floor
//                            rule; NVFP4 with its FP32 tensor scale)
//   <F>:channel              one FP32 scale per row: s = amax_row / max(F)
//   <F>:group<K>             one FP16 scale per K consecutive values of a row:
//                            s = fp16(amax_group / max(F)) (RNE)
// In the scaled spellings an integer element intN means the symmetric range
// [-(2^(N-1)-1), 2^(N-1)-1] (intN_sym); a zero scale stores all-zero codes.
enum class WeightScheme : std::uint8_t {
  kPlain,
  kTensor,
  kBlock,
  kChannel,
  kGroup
};

struct WeightFormat {
  std::string
      name; // canonical spelling, e.g. "int4:group32", "mxfp4", "fp8_e4m3"
  WeightScheme scheme = WeightScheme::kPlain;
  Format element;    // the code format (kPlain, kTensor, kChannel, kGroup)
  BlockFormat block; // kBlock only
  int group = 0;     // kGroup only
};

// Throws lowp::Error naming the spelling (and suggesting names) when it is not
// one.
WeightFormat parse_weight_format(std::string_view name);

class PackedMatrix {
public:
  PackedMatrix() = default;
  // Quantizes a row-major rows x cols fp32 matrix (deterministic; uses lowp's
  // bulk kernels and block quantizer).
  static PackedMatrix quantize(const WeightFormat &f, std::span<const float> w,
                               std::size_t rows, std::size_t cols);

  const WeightFormat &format() const { return format_; }
  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  // Storage in bytes: codes + scales (+ 4 for a tensor scale). Every row's
  // codes start on a byte.
  std::size_t bytes() const;
  double bits_per_weight() const;

  // The matrix as the format stores it, row-major fp32 (exact).
  void dequantize(std::span<float> out) const;
  void dequantize_row(std::size_t row, std::span<float> out) const;

  // y[r] = sum_c W[r][c] x[c] for every row; x has cols() entries, y rows().
  void gemv(const float *x, float *y, unsigned threads = 1) const;
  // Y = X W^T: X is n x cols() row-major, Y is n x rows() row-major.
  // Threads split the rows of W; the result does not depend on their number.
  void gemm(const float *x, std::size_t n, float *y,
            unsigned threads = 1) const;

  // Whether gemv/gemm decode this matrix in vector registers on the current
  // Highway target (else they multiply rows from dequantize_row, still with
  // vector FMAs).
  bool vectorized() const;

private:
  WeightFormat format_;
  std::size_t rows_ = 0, cols_ = 0;
  // Codes, code_bytes(element) wide each for kPlain (fp32 stored as its bits),
  // else the little-endian bit stream of element.bits-bit fields (the block
  // element for kBlock), row-major, each row starting on a byte.
  std::vector<std::uint8_t> codes_;
  std::size_t row_bytes_ = 0;     // bytes per row in codes_
  std::vector<float> row_scales_; // kChannel: one per row
  std::vector<std::uint16_t>
      group_scales_;          // kGroup: fp16 codes, rows x ceil(cols/group)
  float tensor_scale_ = 1.0f; // kTensor, and NVFP4's FP32 tensor scale
  // kBlock: one scale byte (E8M0, or E4M3 for NVFP4) per block of a row,
  // rows x ceil(cols / block_size).
  std::vector<std::uint8_t> block_scales_;
  // What the vector kernels need beyond the storage (src/nn/packed_matrix.cc);
  // null when the codes cannot be decoded exactly in registers.
  struct Kernel;
  std::shared_ptr<const Kernel> kernel_;
  static std::shared_ptr<const Kernel> make_kernel(const PackedMatrix &m);
};

} // namespace lowp::nn
