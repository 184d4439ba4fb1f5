// lowp/block/dot.h — OCP MX v1.0 §6 dot products on MX blocks, and a reference
// matrix product of two MX matrices built on them.
//
//   Dot(A, B) = X_A * X_B * sum_i P_A,i * P_B,i      (one pair of blocks)
//   DotGeneral(A, B) = sum over block pairs j of Dot(A_j, B_j), in FP32
//
// Implementation (the accuracy contract): inside Dot every element product is
// exact and the sum is accumulated exactly (in a 128-bit fixed-point integer
// when the element formats' products fit, which holds for every registered MX
// element format; otherwise in double, in index order), and the scaled sum is
// rounded once to FP32 (nearest-even). DotGeneral adds the block results in
// FP32 in block order (j = 0, 1, ...). A NaN scale on either side, or a NaN
// element, makes the result NaN.
//
// Details (the OCP spec leaves them open; lowp follows IEEE 754 arithmetic on
// the exact values): an Inf element (E5M2, or an IEEE-style eXmY) times a
// nonzero finite gives ±Inf by the signs, Inf * 0 gives NaN, +Inf and -Inf in
// one block give NaN. A block sum that is exactly zero is -0 only when every
// product is -0 (else +0); an empty block (or K = 0 in mx_matmul) gives +0.
// The element formats of A and B may differ (e.g. MXFP8 x MXFP4). The double
// fallback covers element formats whose values need more than 63 bits of fixed
// point (E8M0, bf16, fp32 or a wide eXmY used as elements): there the sum can
// be rounded twice (to double, then to FP32).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowp/block/tensor.h"

namespace lowp {

// Dot of two MX blocks of equal length (element codes + E8M0 scale codes);
// throws lowp::Error if the lengths differ.
float mx_dot(const Format& element_a, std::uint8_t scale_a, std::span<const std::uint32_t> codes_a,
             const Format& element_b, std::uint8_t scale_b, std::span<const std::uint32_t> codes_b);

// DotGeneral of row `row_a` of A's blocked view and row `row_b` of B's (same
// row length and block size; both MX). Throws lowp::Error otherwise, or for a
// row out of range.
float mx_dot_general(const PackedTensor& a, std::size_t row_a, const PackedTensor& b,
                     std::size_t row_b);

// C = A · B for MX matrices: A is M×K quantized along K (axis 1), B is K×N
// quantized along K (axis 0), C is M×N fp32 (row-major), each entry one
// DotGeneral. Throws lowp::Error on mismatched shapes, axes or block sizes.
std::vector<float> mx_matmul(const PackedTensor& a, const PackedTensor& b);

}  // namespace lowp
