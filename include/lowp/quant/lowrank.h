// lowp/quant/lowrank.h — low-rank compensation of a quantized matrix's error
// (LoRC, ZeroQuant-V2 / ZeroQuant-FP, Yao et al. 2023): the error E = W - Q
// of any method is approximated by its rank-r truncated SVD, E ~ U S V^T,
// whose factors U S^1/2 [rows x r] and V S^1/2 [cols x r] are stored
// quantized (int8 per row by default) beside Q; the layer computes
// Q x + U' (V'^T x).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowp/storage/packed_matrix.h"

namespace lowp {

// The top `rank` singular triplets of e [rows x cols] (row-major, fp64) by
// seeded randomized subspace iteration (oversampling 8, `iterations` power
// steps), singular values decreasing: u [rows x rank], s [rank], v [cols x
// rank], both column sets orthonormal. The same seed gives the same result on
// every machine and for any `threads`. Throws lowp::Error for rank 0 or a
// rank above min(rows, cols).
struct Svd {
  std::vector<double> u, s, v;
};
Svd truncated_svd(std::span<const double> e, std::size_t rows, std::size_t cols, std::size_t rank,
                  std::uint64_t seed = 0, int iterations = 4, unsigned threads = 1);

struct LowRankCompensation {
  PackedMatrix u;  // [rows x rank]: U S^1/2, in the factor format
  PackedMatrix v;  // [cols x rank]: V S^1/2
  // Q + U' V'^T as the layer applies it (each entry fp64, rounded once to fp32).
  std::vector<float> weights;
  std::size_t bytes = 0;  // Q's bytes + both factors'
};

// LoRC of q, the quantized w [rows x cols], at `rank`, the factors stored in
// `factor_format` (a scaled matrix format; every scale runs along the rank).
// Throws lowp::Error naming --lorc-rank for a rank of 0 or above
// min(rows, cols).
LowRankCompensation low_rank_compensation(std::span<const float> w, const PackedMatrix& q,
                                          std::size_t rank, const MatrixFormat& factor_format,
                                          unsigned threads = 1);

}  // namespace lowp
