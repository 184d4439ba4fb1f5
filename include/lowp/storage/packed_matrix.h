// lowp/storage/packed_matrix.h — a weight matrix stored in a low-precision format,
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

#include "lowp/block/tensor.h"
#include "lowp/storage/matrix_format.h"

namespace lowp {

// The scales of a packed matrix, by scheme (the others stay empty):
//   kTensor        tensor (one FP32)
//   kChannel       row: one FP32 per row
//   kGroup         group: FP16 bits, rows x ceil(cols / group), row-major;
//                  zero: with an asymmetric integer, one unsigned code per
//                  group; with an asymmetric float (two scales), group holds
//                  two FP16 scales per group: the positive values', then the
//                  negative values' (rows x 2 ceil(cols / group))
//   kBlock         block: one scale byte per block (E8M0, or unsigned E4M3
//                  for NVFP4), rows x ceil(cols / block_size); tensor: NVFP4's
//                  FP32 tensor scale
struct MatrixScales {
  float tensor = 1.0f;
  std::vector<float> row;
  std::vector<std::uint16_t> group;
  std::vector<std::uint8_t> zero;
  std::vector<std::uint8_t> block;
};

class PackedMatrix {
 public:
  PackedMatrix() = default;
  // Quantizes a row-major rows x cols fp32 matrix (deterministic; uses lowp's
  // bulk kernels and block quantizer).
  static PackedMatrix quantize(const MatrixFormat& f, std::span<const float> w, std::size_t rows,
                               std::size_t cols);
  // A matrix from given storage: `codes` holds each row's codes as row_bytes(f,
  // cols) bytes (code_bytes(element)-wide codes for the plain formats, else the
  // little-endian bit stream of element.bits-bit fields, each row starting on
  // a byte), `scales` what the scheme needs. Throws lowp::Error on any size
  // that does not fit the format and shape.
  static PackedMatrix from_codes(const MatrixFormat& f, std::size_t rows, std::size_t cols,
                                 std::vector<std::uint8_t> codes, MatrixScales scales);
  // Bytes of one row's codes.
  static std::size_t row_bytes(const MatrixFormat& f, std::size_t cols);

  const MatrixFormat& format() const { return format_; }
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
  void gemv(const float* x, float* y, unsigned threads = 1) const;
  // Y = X W^T: X is n x cols() row-major, Y is n x rows() row-major.
  // Threads split the rows of W; the result does not depend on their number.
  void gemm(const float* x, std::size_t n, float* y, unsigned threads = 1) const;
  // The same with X given packed in a block format (e.g. activations in
  // mxfp8_e4m3: x.shape = {n, cols()}, blocks along the last axis): X is
  // decoded exactly (lowp::dequantize) and multiplied as above, so
  // Y = dequantize(X) W^T. Throws lowp::Error when x's shape does not fit.
  void gemm(const PackedTensor& x, float* y, unsigned threads = 1) const;

  // The storage (as from_codes takes it).
  std::span<const std::uint8_t> codes() const { return codes_; }
  const MatrixScales& scales() const { return scales_; }

  // Whether gemv/gemm decode this matrix in vector registers on the current
  // Highway target (else they multiply rows from dequantize_row, still with
  // vector FMAs).
  bool vectorized() const;

 private:
  MatrixFormat format_;
  std::size_t rows_ = 0, cols_ = 0;
  // Codes, code_bytes(element) wide each for kPlain (fp32 stored as its bits),
  // else the little-endian bit stream of element.bits-bit fields (the block
  // element for kBlock), row-major, each row starting on a byte.
  std::vector<std::uint8_t> codes_;
  std::size_t row_bytes_ = 0;  // bytes per row in codes_
  MatrixScales scales_;
  // What the vector kernels need beyond the storage (src/storage/packed_matrix.cc);
  // null when the codes cannot be decoded exactly in registers.
  struct Kernel;
  std::shared_ptr<const Kernel> kernel_;
  static std::shared_ptr<const Kernel> make_kernel(const PackedMatrix& m);
  // The storage alone, no kernel view (fake_quantize_rows needs no more).
  static PackedMatrix quantize_unchecked(const MatrixFormat& f, std::span<const float> w,
                                         std::size_t rows, std::size_t cols);
  // Checks the storage's sizes and builds the kernel view.
  void finish(bool with_kernel);
  friend void fake_quantize_rows(const MatrixFormat&, float*, std::size_t, std::size_t);
};

}  // namespace lowp
