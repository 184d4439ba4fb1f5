// The register-decode GEMV (lowp/register_gemv.h) on every compiled target:
//  * decoding is exact: every row holds one nonzero code, so its sum is that
//    weight times a power of two, bit for bit, for every code of posit16 (each
//    es), posit8 and bf16 (NaNs compared as NaNs);
//  * sums: on random weights and activations, y is within the bound
//    cols * 2^-23 * sum |w x| of the exact (fp64) dot product, and equal on
//    every path that stores the same values (posit16 arithmetic and table).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/targets.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "lowp/register_gemv.h"

namespace {

using lowp::kernels::RegisterDecode;
using lowp::kernels::RegisterGemv;
using lowp_test::for_each_target;

std::vector<float> table_of(const lowp::Format& f) {
  std::vector<float> t(std::size_t{1} << f.bits);
  for (std::uint32_t c = 0; c < t.size(); ++c) t[c] = lowp::decode_f32(f, c);
  return t;
}

bool same(float a, float b) {
  return std::isnan(a) ? std::isnan(b) : std::memcmp(&a, &b, sizeof(a)) == 0 || (a == 0 && b == 0);
}

// Every code once: a matrix of `codes` rows of `cols` columns in which row r
// holds code r at column r % cols (and zeros elsewhere), times x[c] = 2^c:
// each row's sum is its one weight times a power of two, exact (or the same
// overflow), and a weight decoded into the wrong lane meets the wrong power.
void check_every_code(RegisterGemv g, const lowp::Format& f, std::size_t codes) {
  constexpr std::size_t kCols = 37;  // full chunks and a tail on every target
  const std::size_t bytes = lowp::kernels::register_gemv_bytes(g.decode);
  std::vector<std::uint8_t> w(codes * kCols * bytes, 0);
  for (std::size_t r = 0; r < codes; ++r) {
    const auto code = static_cast<std::uint32_t>(r);
    std::memcpy(w.data() + (r * kCols + r % kCols) * bytes, &code, bytes);  // little-endian
  }
  std::vector<float> x(kCols), y(codes);
  for (std::size_t c = 0; c < kCols; ++c) x[c] = std::ldexp(1.0f, static_cast<int>(c));
  lowp::kernels::register_gemv(g, w.data(), kCols, x.data(), y.data(), 0, codes);
  for (std::size_t r = 0; r < codes; ++r) {
    const float value = lowp::decode_f32(f, static_cast<std::uint32_t>(r));
    const auto want = static_cast<float>(static_cast<double>(value) * x[r % kCols]);
    ASSERT_TRUE(same(y[r], want)) << "code 0x" << std::hex << r << ": " << y[r] << " vs " << want;
  }
}

TEST(RegisterGemv, EveryCodeDecodesExactly) {
  for_each_target([&] {
    for (const char* name : {"posit16", "posit16_es1", "posit16_es0"}) {
      SCOPED_TRACE(name);
      const lowp::Format f = lowp::parse_format(name);
      const std::vector<float> table = table_of(f);
      check_every_code({RegisterDecode::kPosit16, f, nullptr}, f, 65536);
      check_every_code({RegisterDecode::kPosit16Table, f, table.data()}, f, 65536);
    }
    for (const char* name : {"posit8", "posit8_es0", "posit8_es1"}) {
      const lowp::Format f = lowp::parse_format(name);
      const std::vector<float> table = table_of(f);
      check_every_code({RegisterDecode::kPosit8Table, f, table.data()}, f, 256);
    }
    check_every_code({RegisterDecode::kBf16, lowp::kBf16, nullptr}, lowp::kBf16, 65536);
  });
}

TEST(RegisterGemv, SumsWithinTheBound) {
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::size_t cols :
       {std::size_t{1}, std::size_t{31}, std::size_t{256}, std::size_t{1000}}) {
    const std::size_t rows = 17;
    std::vector<float> wf(rows * cols), x(cols);
    for (float& v : wf) v = normal(rng);
    for (float& v : x) v = normal(rng);
    const lowp::Format p16 = lowp::kPosit16, p8 = lowp::kPosit8;
    std::vector<std::uint16_t> w16(wf.size()), wb(wf.size());
    std::vector<std::uint8_t> w8(wf.size());
    lowp::encode_f32(p16, wf, w16.data(), {});
    lowp::encode_f32(p8, wf, w8.data(), {});
    lowp::encode_f32(lowp::kBf16, wf, wb.data(), {});
    const std::vector<float> t16 = table_of(p16), t8 = table_of(p8);
    struct Case {
      RegisterGemv g;
      const void* w;
      lowp::Format f;
    };
    const Case cases[] = {
        {{RegisterDecode::kF32, p16, nullptr}, wf.data(), lowp::kFp32},
        {{RegisterDecode::kBf16, p16, nullptr}, wb.data(), lowp::kBf16},
        {{RegisterDecode::kPosit16, p16, nullptr}, w16.data(), p16},
        {{RegisterDecode::kPosit16Table, p16, t16.data()}, w16.data(), p16},
        {{RegisterDecode::kPosit8Table, p8, t8.data()}, w8.data(), p8},
    };
    for_each_target([&] {
      std::vector<float> y_arith(rows), y_table(rows);
      for (const Case& k : cases) {
        std::vector<float> y(rows);
        lowp::kernels::register_gemv(k.g, k.w, cols, x.data(), y.data(), 0, rows);
        const std::size_t bytes = lowp::kernels::register_gemv_bytes(k.g.decode);
        for (std::size_t r = 0; r < rows; ++r) {
          double exact = 0, magnitude = 0;
          for (std::size_t c = 0; c < cols; ++c) {
            std::uint32_t code = 0;
            std::memcpy(&code, static_cast<const std::uint8_t*>(k.w) + (r * cols + c) * bytes,
                        bytes);
            const double wv = lowp::decode(k.f, code);
            exact += wv * x[c];
            magnitude += std::fabs(wv * x[c]);
          }
          EXPECT_LE(std::fabs(y[r] - exact), static_cast<double>(cols) * 0x1p-23 * magnitude)
              << "cols " << cols << " row " << r << " decode " << static_cast<int>(k.g.decode);
        }
        if (k.g.decode == RegisterDecode::kPosit16) y_arith = y;
        if (k.g.decode == RegisterDecode::kPosit16Table) y_table = y;
      }
      for (std::size_t r = 0; r < rows; ++r) EXPECT_TRUE(same(y_arith[r], y_table[r])) << r;
    });
  }
}

}  // namespace
