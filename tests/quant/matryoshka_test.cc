// Matryoshka slicing (lowp/quant/matryoshka.h) exhaustively against integer
// arithmetic written here, and the sliced matrices' values and bytes.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "lowp/block/tensor.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/quant/matryoshka.h"

namespace lowp {
namespace {

// round(m / 2^shift) for m >= 0, ties to the even quotient, by integer steps.
int round_shift(int m, int shift) {
  if (shift == 0) return m;
  const int step = 1 << shift, q = m >> shift, rem = m & (step - 1);
  if (rem * 2 > step) return q + 1;
  if (rem * 2 == step) return q + (q & 1);
  return q;
}

TEST(Matryoshka, EveryCodeEveryWidth) {
  for (int r = 1; r <= 8; ++r) {
    const int shift = 8 - r;
    for (int q = 0; q < 256; ++q) {
      // Unsigned codes (zero points): clamp to 0 .. 2^r - 1.
      const int u = std::min(round_shift(q, shift), (1 << r) - 1) << shift;
      EXPECT_EQ(matryoshka_code(static_cast<std::uint32_t>(q), r, true),
                static_cast<std::uint32_t>(u))
          << "q " << q << " r " << r;
      // Signed codes (two's complement): magnitude rounded, clamped to 2^(r-1) - 1.
      const int v = static_cast<std::int8_t>(q);
      const int top = r == 1 ? 0 : (1 << (r - 1)) - 1;
      const int mag = std::min(round_shift(v < 0 ? -v : v, shift), top) << shift;
      const int want = v < 0 ? -mag : mag;
      EXPECT_EQ(matryoshka_code(static_cast<std::uint32_t>(q), r, false),
                static_cast<std::uint32_t>(static_cast<std::uint8_t>(want)))
          << "q " << q << " r " << r;
    }
  }
  // The paper's example: 255 sliced to int2 rounds to 4 and clamps to 3.
  EXPECT_EQ(matryoshka_code(255, 2, true), 3u << 6);
  EXPECT_EQ(matryoshka_code(255, 8, true), 255u);
  EXPECT_THROW(matryoshka_code(1, 0, true), Error);
  EXPECT_THROW(matryoshka_code(1, 9, true), Error);
}

TEST(Matryoshka, SlicedMatrixValuesAndBytes) {
  std::mt19937 gen(1);
  std::normal_distribution<float> g;
  const std::size_t rows = 6, cols = 70;
  std::vector<float> w(rows * cols);
  for (float& x : w) x = g(gen) + 0.3f;
  for (const char* name : {"int8:group32:asym", "int8:channel", "int8"}) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    ASSERT_TRUE(matryoshka_applies(f));
    const PackedMatrix m = PackedMatrix::quantize(f, w, rows, cols);
    for (int r : {6, 4, 3, 2}) {
      const MatrixSlice s = matryoshka_slice(m, r);
      // Same scales; codes sliced one by one.
      for (std::size_t i = 0; i < m.codes().size(); ++i) {
        ASSERT_EQ(s.matrix.codes()[i], matryoshka_code(m.codes()[i], r, f.zero_points()));
      }
      EXPECT_EQ(s.matrix.scales().group, m.scales().group);
      EXPECT_EQ(s.matrix.scales().zero, m.scales().zero);
      EXPECT_EQ(s.matrix.scales().row, m.scales().row);
      // Bytes: r-bit codes per row plus the int8 matrix's scales.
      EXPECT_EQ(s.bytes, m.bytes() - rows * cols + rows * packed_bytes(r, cols));
    }
  }
  for (const char* other :
       {"int4:group32", "q8_0", "mxint8", "fp8_e4m3:channel", "uint8:channel"}) {
    EXPECT_FALSE(matryoshka_applies(parse_matrix_format(other))) << other;
  }
  EXPECT_THROW(matryoshka_slice(
                   PackedMatrix::quantize(parse_matrix_format("int4:group32"), w, rows, cols), 4),
               Error);
}

}  // namespace
}  // namespace lowp
