// lowp/storage/matrix_format.h — how a matrix is stored: the one grammar of
// matrix formats that the runtime, activation quantization, `lowp quantize`,
// `lowp fake-quant`, the report and the Python bindings all parse.
//
// A matrix has rows x cols values; every scale runs along a row (the
// reduction dimension of y = W x, and of nn.Linear's [out, in] weight).
//
// Spellings (parse_matrix_format):
//   fp32, bf16, fp16         plain casts (round to nearest even), no scale
//   posit8, posit16, ...     the posits of at most 16 bits (docs/posits.md):
//                            plain casts too (a scaled posit, posit8:channel,
//                            and posit32 are errors)
//   <F>  or  <F>:tensor      any other scalar format: one FP32 scale per tensor,
//                            s = amax / max(F), codes = encode_sat(w / s)
//   <F>:channel              one FP32 scale per row: s = amax_row / max(F)
//   <F>:group<K>             one FP16 scale per K consecutive values of a row:
//                            s = fp16(amax_group / max(F)) (RNE, saturating)
//   <F>:group<K>:asym        integer F: an FP16 scale and an 8-bit zero
//                            point per group, codes = clamp(round(w / s) + z)
//                            over F's unsigned range (the GPTQ/AWQ layout);
//                            signed float F: two FP16 scales per group, s+ =
//                            fp16(max(w) / max(F)) for the values >= 0 and
//                            s- = fp16(max(-w) / max(F)) for the negative ones,
//                            codes = encode_sat(w / s+) or encode_sat(w / s-)
//                            (AFPQ, Zhang et al. 2023); a group with no value of
//                            one sign has a zero scale for it. A code book F
//                            (nf4, nf3, dint4) likewise, with s+ = fp16(max(w) /
//                            max value of F), s- = fp16(max(-w) / -(min value
//                            of F)): AFPQ's NF4-asym and NF3-asym
//   q8_0                     ggml's Q8_0 as a matrix: int8:group32 storage (an
//                            FP16 scale per 32 values of a row) quantized as
//                            ggml's reference does: d = amax / 127, codes
//                            roundf(w * (1/d)) (ties away), fp16(d) stored
//   mxfp8_e4m3, mxfp4, nvfp4, mx:<elem>:<k>, nvfp4:<k>, ...
//                            any block format of the block table
//                            (lowp/block/block_format.h), blocks along a row
// In the scaled spellings (tensor, channel, group) an integer element intN
// means the symmetric range [-(2^(N-1)-1), 2^(N-1)-1]; a zero scale stores
// all-zero codes. Scaled elements always saturate. A code book's max(F) is its
// largest magnitude (nf4, nf3: 1; dint4: 6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lowp/block/block_format.h"
#include "lowp/format/format.h"

namespace lowp {

enum class MatrixScheme : std::uint8_t {
  kPlain,    // fp32 / bf16 / fp16 codes, no scale
  kTensor,   // one FP32 scale
  kBlock,    // a block format of the table
  kChannel,  // one FP32 scale per row
  kGroup,    // one FP16 scale per `group` values of a row (+ a zero point, or a
             // second scale for the negative values, if asymmetric)
};

struct MatrixFormat {
  std::string name;  // canonical spelling, e.g. "int4:group32", "mxfp4", "fp8_e4m3"
  MatrixScheme scheme = MatrixScheme::kPlain;
  Format element;           // the code format (all schemes but kBlock)
  BlockFormat block;        // kBlock only
  int group = 0;            // kGroup only
  bool asymmetric = false;  // kGroup: zero points (integer element) or two scales (float, table)
  bool ggml_q8_0 = false;   // kGroup int8 x 32 quantized by ggml's Q8_0 rule

  // asymmetric with an integer element: a zero point per group.
  bool zero_points() const { return asymmetric && element.kind == Kind::kInt; }
  // asymmetric with a float or code-book element: a positive and a negative
  // scale per group.
  bool two_scales() const {
    return asymmetric && (element.kind == Kind::kFloat || element.kind == Kind::kTable);
  }

  // Bits of storage per value, scales included, for a row of `cols` values
  // (the tensor scale of kTensor and NVFP4 not counted).
  double bits_per_value(std::size_t cols) const;
};

// Throws lowp::Error naming the spelling (and suggesting names) when it is not
// one. The result's name is canonical (matrix_format_name).
MatrixFormat parse_matrix_format(std::string_view name);

// The canonical spelling, which parses back to the same format: "e4m3" and
// "fp8_e4m3:tensor" are "fp8_e4m3", "uint4:group32:asym" is
// "int4:group32:asym", block formats as block_format_name.
std::string matrix_format_name(const MatrixFormat& f);

// Whether `name` parses as a matrix format (no exception).
bool is_matrix_format(std::string_view name);

// Fake-quantizes x [rows, cols] in place, each row exactly as a one-row
// PackedMatrix of format f stores it (quantize, then dequantize); a per-tensor
// scale is then one row's own. The activation quantizer of the runtime.
void fake_quantize_rows(const MatrixFormat& f, float* x, std::size_t rows, std::size_t cols);

}  // namespace lowp
