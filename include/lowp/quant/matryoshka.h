// lowp/quant/matryoshka.h — Matryoshka (nested) integers (MatQuant, Nair et
// al. 2025): the most significant bits of an int8 model's codes are
// themselves an int-r model for r < 8, with the same scales and zero points.
//
// Slicing a code q of c = 8 bits to r bits (round to nearest, ties to even,
// then clamp to the r-bit range):
//   unsigned codes (int8:group<K>:asym, 0..255):
//     S(q, r) = clamp(round(q / 2^(8-r)), 0, 2^r - 1) * 2^(8-r)
//     e.g. 255 -> int2: round(3.98) = 4, clamped to 3, code 192
//   signed symmetric codes (int8, int8:channel, int8:group<K>: -127..127):
//     S(q, r) = clamp(round(q / 2^(8-r)), -(2^(r-1) - 1), 2^(r-1) - 1) * 2^(8-r)
// S(q, r) is again a code of the int8 format, so the slice is a matrix of
// that format (its values s * (S(q, r) - z)); stored as a slice it takes r
// bits per code plus the int8 matrix's scales and zero points.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowp/nn/transformer.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp {

// S(q, r) for an int8 code (its 8-bit field as stored: two's complement when
// signed), as the same kind of 8-bit field. r is 1..8 (r = 8 is q itself).
std::uint32_t matryoshka_code(std::uint32_t code, int bits, bool is_unsigned);

// Whether m's format holds int8 codes the slicing applies to (scaled int8 of
// any scheme but ggml's q8_0, symmetric or with zero points).
bool matryoshka_applies(const MatrixFormat& f);

struct MatrixSlice {
  PackedMatrix matrix;    // the int8 format, codes S(q, r)
  std::size_t bytes = 0;  // stored as r-bit codes + the int8 matrix's scales
};
// The r-bit slice of an int8 matrix. Throws lowp::Error for another format
// or r outside 1..8.
MatrixSlice matryoshka_slice(const PackedMatrix& m, int bits);

// Every linear matrix of an int8 model sliced to r bits (stored bytes counted
// as r-bit codes). Throws lowp::Error naming the matrix whose format is not
// int8.
nn::Transformer matryoshka_slice(const nn::Transformer& model, int bits);

}  // namespace lowp
