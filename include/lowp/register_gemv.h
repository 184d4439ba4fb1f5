// lowp/register_gemv.h — a GEMV y = W x whose weights stay compressed in
// memory (bf16, posit16, posit8) and are decoded to fp32 in vector registers
// just before the FMA: the kernels of `lowp bench posit` (docs/posits.md), which
// asks when compressed storage beats fp32 weights.
//
// Row r of W holds `cols` codes (4, 2 or 1 bytes each) starting at
// weights + r * cols * register_gemv_bytes(decode). Each row is summed as the
// gemv kernels do: two vector accumulators over chunks of two vectors of
// columns, added lane-wise and reduced across lanes at the end of the row,
// then the scalar tail (the columns past the last full chunk) in column order.
// Every weight is decoded exactly (decode_f32 of its code), so only the order
// of the additions differs from a scalar loop.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowp/format/format.h"

namespace lowp::kernels {

enum class RegisterDecode : std::uint8_t {
  kF32,           // fp32 weights: the baseline
  kBf16,          // bf16: the code shifted into fp32's top half
  kPosit16,       // posit16 (any es), decoded arithmetically in SIMD: sign by
                  // negation, the regime's length from the exponent of an exact
                  // int -> fp32 conversion, exponent and fraction by shifts
  kPosit16Table,  // posit16: a gather from a 65,536-entry fp32 table
  kPosit8Table,   // posit8 (any es): a gather from a 256-entry fp32 table
};

struct RegisterGemv {
  RegisterDecode decode = RegisterDecode::kF32;
  Format posit = kPosit16;       // the posit format of kPosit16 / the table kinds
  const float* table = nullptr;  // kPosit16Table / kPosit8Table: decode_f32 of every code
};

// Bytes of one weight code.
constexpr std::size_t register_gemv_bytes(RegisterDecode d) {
  return d == RegisterDecode::kF32 ? 4 : d == RegisterDecode::kPosit8Table ? 1 : 2;
}

// y[r] = sum over c of w(r, c) * x[c], for rows r0 <= r < r1.
void register_gemv(const RegisterGemv& g, const void* weights, std::size_t cols, const float* x,
                   float* y, std::size_t r0, std::size_t r1);

}  // namespace lowp::kernels
