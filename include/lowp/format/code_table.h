// lowp/format/code_table.h — the code books: element formats whose 2^bits codes
// index a fixed list of values instead of encoding a sign, exponent and
// mantissa. A Format of Kind::kTable names its list by CodeTable.
//
// Each value is stored as the nearest fp32 to the published decimal (the float
// literals below round it once, to nearest), held in a double, so that every
// value, and the midpoint of any two, is exact in double.
//
//  * nf4 — NormalFloat4 of QLoRA (Dettmers et al. 2023, "QLoRA: Efficient
//    Finetuning of Quantized LLMs", §3): quantiles of N(0, 1) normalised to
//    [-1, 1], 8 positive and 7 negative values and an exact 0. Codes in
//    bitsandbytes' index order (its NF4 code book, code 7 = 0).
//  * nf3 — the 3-bit NormalFloat of AFPQ (Zhang et al. 2023, "AFPQ: Asymmetric
//    Floating Point Quantization for LLMs"), as its code lists it
//    (github.com/zhangsichengsjtu/AFPQ, auto_gptq/quantization/quantizer_nf4.py,
//    the bit == 3 code book): 4 positive values, 3 negative and 0, code 3 = 0.
//  * dint4 — lowp's reading of the "dINT" 4-bit format of Lee et al. 2023
//    ("Enhancing Computation Efficiency in Large Language Models through Weight
//    and Activation Quantization", EMNLP 2023), an integer grid with one
//    denormal step so that small weights do not underflow to 0 in W4A8. The
//    paper's code table was not available to us; lowp uses sign-magnitude,
//    code = s << 3 | m, |value| = 0, 0.5, 1, 2, 3, 4, 5, 6 for m = 0 .. 7, so
//    the values are ±0, ±0.5, ±1, ±2, ±3, ±4, ±5, ±6 and code 8 is -0.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace lowp {

enum class CodeTable : std::uint8_t { kNone, kNf4, kNf3, kDint4 };

inline constexpr std::array<double, 16> kNf4Table = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

inline constexpr std::array<double, 8> kNf3Table = {
    -1.0f,
    -0.5350227355957031f,
    -0.2469314038753510f,
    0.0f,
    0.1833375245332718f,
    0.3819939494132996f,
    0.6229856610298157f,
    1.0f,
};

inline constexpr std::array<double, 16> kDint4Table = {
    0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -0.0, -0.5, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0,
};

// The values of a code book, in code order (empty for kNone).
constexpr std::span<const double> code_table_values(CodeTable t) {
  switch (t) {
    case CodeTable::kNf4:
      return kNf4Table;
    case CodeTable::kNf3:
      return kNf3Table;
    case CodeTable::kDint4:
      return kDint4Table;
    case CodeTable::kNone:
      break;
  }
  return {};
}

// Bits of a code: log2 of the number of values.
constexpr int code_table_bits(CodeTable t) {
  int bits = 0;
  while ((std::size_t{1} << bits) < code_table_values(t).size()) ++bits;
  return bits;
}

}  // namespace lowp
