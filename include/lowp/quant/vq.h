// lowp/quant/vq.h — vector quantization of weights with per-group code books
// (GPTVQ, van Baalen et al. 2024).
//
// A row of W is cut into d-dimensional vectors (d consecutive columns). A
// code book of k = 2^(b d) centroids (b index bits per weight) serves the
// vectors of one group: `group_rows` rows x `group_cols` columns. It is found
// by weighted k-means (k-means++ seeding from a fixed seed, then Lloyd
// iterations), each coordinate of the distance weighted by the importance
// of its column, and stored as int8 with one FP16 scale per code book
// (s = fp16(max |c| / 127), c' = rint(c / s) s). Every vector stores the
// b d-bit index of its nearest centroid (the weighted distance; ties to the
// lower index).
//
//   vq     data-free: importance 1, vectors assigned once.
//   gptvq  GPTQ's column loop over vectors: with U the upper Cholesky factor
//          of the damped H^-1, column j weighs 1 / U_jj^2; a group's code
//          book is fit when the loop enters its columns, from the weights as
//          updated so far; after a vector's index is chosen, the error of
//          each of its columns is pushed onto the columns to its right
//          (W[:, j+1:] -= (w_j - q_j) / U_jj * U[j, j+1:]).
//
// gptvq's optional code-book update (the paper's, by conjugate gradient
// instead of Adam): once every index of a block of rows is chosen, the
// centroids of its code books are moved toward the least output error
// tr((W - Q) H (W - Q)^T) with the indices fixed — a quadratic in the
// centroids, `update_steps` conjugate-gradient steps — then rounded to int8
// again; the block keeps them only if that lowers its error.
//
// Storage per matrix: rows x ceil(cols / d) indices of b d bits (each row
// starting on a byte), plus k d bytes and 2 bytes of scale per code book.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "lowp/quant/methods.h"

namespace lowp {

struct VqOptions {
  std::size_t dim = 2;           // d: 1, 2 or 4
  std::size_t bits = 4;          // b: index bits per weight
  std::size_t group_cols = 128;  // columns per code book (a multiple of d)
  std::size_t group_rows = 256;  // rows per code book
  int iterations = 20;           // Lloyd iterations
  // gptvq: conjugate-gradient steps of the code-book update (0: none).
  int update_steps = 0;
  std::uint64_t seed = 0;
};

struct VqResult {
  std::vector<float> weights;                 // the centroids each vector took, [rows x cols]
  std::vector<std::uint32_t> indices;         // [rows x cols / d]
  std::vector<std::vector<float>> codebooks;  // per group (row block major): k x d, as stored
  std::size_t bytes = 0;                      // indices + code books + their scales
  double damp = 0;
  std::vector<std::string> warnings;
};

// Throws lowp::Error naming the option for a d other than 1, 2, 4, a column
// count or group not divisible by d, b d above 12 (a code book of more than
// 4096 entries), or a code book bigger than its group (k > vectors per group).
void check_vq(const VqOptions& o, std::size_t rows, std::size_t cols);

// `h` null: vq; else gptvq with GPTQ's damping `damp`.
VqResult vector_quantize(std::span<const float> w, std::size_t rows, std::size_t cols,
                         const VqOptions& o, const InputHessian* h, double damp = 0.01,
                         unsigned threads = 1);

}  // namespace lowp
