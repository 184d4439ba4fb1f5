// Bulk kernels on 16-bit arrays (lowp/kernels.h encode_bf16 / encode_f16 /
// decode_to_bf16, lowp/block_kernels.h quantize_blocked_bf16 / _f16 /
// dequantize_blocked_to_bf16) against the scalar reference, bit for bit, on
// every Highway target this machine supports:
//  * encode: all 65536 bf16 and all 65536 fp16 bit patterns into every
//    registered scalar format of at most 16 bits (and eXmY spellings on the
//    vector path and on the scalar fallback, and fp32), in every rounding mode
//    with and without saturate; the reference is lowp::encode of the input's
//    exact value (lowp::decode of the bf16 / fp16 code), with stochastic bits at
//    first_index + i;
//  * decode to bf16: every code, against lowp::encode(bf16, lowp::decode(f, c));
//  * blocks: random and edge blocks (as block_kernels_test) rounded to bf16 /
//    fp16, against the scalar block reference on the widened values, and
//    dequantization to bf16 against the fp32 reference value rounded by
//    lowp::encode(bf16, ...);
//  * thread counts 1, 2 and 3 give the same output.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/targets.h"
#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace {

using lowp::BlockFormat;
using lowp::BlockOptions;
using lowp::BlockScale;
using lowp::EncodeOptions;
using lowp::Format;
using lowp::Rounding;

constexpr std::uint64_t kSeed = 0x5EEDF00DCAFEull;
// Just below a multiple of 2^32, so that stochastic runs cross the key change.
constexpr std::uint64_t kFirstIndex = (std::uint64_t{7} << 32) - 1000;

constexpr Rounding kRoundings[] = {Rounding::kNearestEven, Rounding::kNearestAway,
                                   Rounding::kTowardZero, Rounding::kStochastic};

enum class Input { kBF16, kF16 };

const Format& input_format(Input in) {
  static const Format bf16 = lowp::kBf16, fp16 = lowp::kFp16;
  return in == Input::kBF16 ? bf16 : fp16;
}

std::string describe(const Format& f, Input in, const EncodeOptions& opt) {
  static const char* names[] = {"even", "away", "zero", "stochastic"};
  return lowp::format_name(f) + (in == Input::kBF16 ? " from bf16 " : " from fp16 ") +
         names[static_cast<int>(opt.rounding)] + (opt.saturate ? "+sat" : "");
}

using lowp_test::for_each_target;

// Every 16-bit pattern, then `extra` more (a length that is not a multiple of
// any vector width, so the tail path runs too).
std::vector<std::uint16_t> all_patterns(std::size_t extra = 13) {
  std::vector<std::uint16_t> out(65536 + extra);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint16_t>(i * 40503u);
  return out;  // 40503 is odd: i * 40503 mod 2^16 is a permutation
}

std::vector<std::uint32_t> run_encode(const Format& f, Input in,
                                      const std::vector<std::uint16_t>& x, const EncodeOptions& opt,
                                      unsigned threads) {
  const auto w = static_cast<std::size_t>(lowp::code_bytes(f));
  std::vector<unsigned char> raw(x.size() * w + 1);
  if (in == Input::kBF16) {
    lowp::encode_bf16(f, x, raw.data(), opt, kSeed, kFirstIndex, threads);
  } else {
    lowp::encode_f16(f, x, raw.data(), opt, kSeed, kFirstIndex, threads);
  }
  std::vector<std::uint32_t> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::uint32_t c = 0;
    std::memcpy(&c, raw.data() + i * w, w);  // little-endian host
    out[i] = c;
  }
  return out;
}

std::vector<std::uint32_t> reference_encode(const Format& f, Input in,
                                            const std::vector<std::uint16_t>& x,
                                            const EncodeOptions& opt) {
  std::vector<std::uint32_t> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint32_t r =
        opt.rounding == Rounding::kStochastic ? lowp::stochastic_bits(kSeed, kFirstIndex + i) : 0;
    out[i] = lowp::encode(f, lowp::decode(input_format(in), x[i]), opt, r);
  }
  return out;
}

template <typename In, typename T>
std::size_t compare(const std::vector<In>& in, const std::vector<T>& want,
                    const std::vector<T>& got, const std::string& what) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == got[i]) continue;
    if (++bad <= 5) {
      ADD_FAILURE() << what << ": input 0x" << std::hex << +in[i] << " index " << std::dec << i
                    << ": expected 0x" << std::hex << +want[i] << ", got 0x" << +got[i];
    }
  }
  return bad;
}

std::vector<Format> formats_under_test() {
  std::vector<Format> out;
  for (const auto& nf : lowp::registry()) {
    if (nf.format.bits <= 16) out.push_back(nf.format);
  }
  // Vector-path spellings, then the scalar fallback (emin < -126, 32 bits).
  for (const char* name : {"e8m7", "e5m10", "e3m0fn", "e2m0fin", "e4m3b3fnuz", "e8m2b128fn",
                           "e2m1b-5", "e8m3b130", "fp32"}) {
    out.push_back(lowp::parse_format(name));
  }
  return out;
}

TEST(Kernels16, EncodeEveryBf16AndFp16Input) {
  const std::vector<std::uint16_t> x = all_patterns();
  std::size_t checked = 0;
  for (const Format& f : formats_under_test()) {
    for (Input in : {Input::kBF16, Input::kF16}) {
      for (Rounding r : kRoundings) {
        for (bool sat : {false, true}) {
          const EncodeOptions opt{r, sat};
          const auto want = reference_encode(f, in, x, opt);
          for_each_target(
              [&] {
                EXPECT_EQ(compare(x, want, run_encode(f, in, x, opt, 1), describe(f, in, opt)), 0u);
                checked += x.size();
              },
              lowp::kernels::encode_is_vectorized(f));
        }
      }
    }
  }
  std::string names;
  for (auto t : lowp::kernels::available_targets()) names += lowp::kernels::target_name(t) + " ";
  std::printf("checked %zu encodes on targets %s\n", checked, names.c_str());
}

TEST(Kernels16, EncodeThreadCountsGiveIdenticalOutput) {
  // 3 * 65549 elements: pieces of at least 2^14 each for 2 and 3 threads.
  std::vector<std::uint16_t> x;
  for (int rep = 0; rep < 3; ++rep) {
    const auto p = all_patterns();
    x.insert(x.end(), p.begin(), p.end());
  }
  for (const char* name : {"fp8_e4m3", "fp8_e5m2", "fp16", "bf16", "int8", "e8m3b130"}) {
    const Format f = lowp::parse_format(name);
    for (Input in : {Input::kBF16, Input::kF16}) {
      for (Rounding r : {Rounding::kNearestEven, Rounding::kStochastic}) {
        const EncodeOptions opt{r, false};
        const auto want = reference_encode(f, in, x, opt);
        for (unsigned threads : {1u, 2u, 3u}) {
          EXPECT_EQ(compare(x, want, run_encode(f, in, x, opt, threads),
                            describe(f, in, opt) + " threads " + std::to_string(threads)),
                    0u);
        }
      }
    }
  }
}

// The codes of f, each code repeated over a length that splits across threads.
std::vector<std::uint32_t> codes_of(const Format& f, std::size_t min_count) {
  std::vector<std::uint32_t> out;
  if (f.bits <= 16) {
    const std::uint32_t n = std::uint32_t{1} << f.bits;
    while (out.size() < min_count) {
      for (std::uint32_t c = 0; c < n; ++c) out.push_back(c);
    }
  } else {
    std::mt19937 rng(3);
    out.resize(min_count);
    for (auto& c : out) c = static_cast<std::uint32_t>(rng()) & lowp::code_mask(f);
  }
  out.resize(out.size() + 7, 0);  // an odd tail
  return out;
}

TEST(Kernels16, DecodeToBf16EveryCode) {
  const Format bf16 = lowp::kBf16;
  for (const Format& f : formats_under_test()) {
    const std::vector<std::uint32_t> codes = codes_of(f, 3 * 16384 + 64);
    const auto w = static_cast<std::size_t>(lowp::code_bytes(f));
    std::vector<unsigned char> raw(codes.size() * w);
    for (std::size_t i = 0; i < codes.size(); ++i) std::memcpy(raw.data() + i * w, &codes[i], w);
    std::vector<std::uint16_t> want(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) {
      want[i] = static_cast<std::uint16_t>(lowp::encode(bf16, lowp::decode(f, codes[i])));
    }
    for_each_target(
        [&] {
          for (unsigned threads : {1u, 2u, 3u}) {
            std::vector<std::uint16_t> got(codes.size(), 0xABCD);
            lowp::decode_to_bf16(f, raw.data(), got, threads);
            EXPECT_EQ(
                compare(codes, want, got,
                        lowp::format_name(f) + " to bf16, threads " + std::to_string(threads)),
                0u);
          }
        },
        lowp::kernels::decode_is_vectorized(f));
  }
}

// NaN codes become bf16's quiet NaN with decode's sign (the documented payload).
TEST(Kernels16, DecodeToBf16NanPayload) {
  const Format e4m3 = lowp::kFp8E4m3;
  const std::uint8_t codes[] = {0x7F, 0xFF, 0x38, 0xB8};
  std::vector<std::uint16_t> out(4);
  lowp::decode_to_bf16(e4m3, codes, out);
  EXPECT_EQ(out[0], 0x7FC0);
  EXPECT_EQ(out[1], 0xFFC0);
  EXPECT_EQ(out[2], 0x3F80);  // 1.0
  EXPECT_EQ(out[3], 0xBF80);
}

// ---- block formats ----

struct Packed {
  std::vector<std::uint8_t> elements, scales;
};

// The scalar reference over the blocked view (as block_kernels_test).
Packed reference_quantize(const BlockFormat& f, const std::vector<float>& data,
                          std::size_t row_length, float tensor_scale, const BlockOptions& opt) {
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t rows = data.size() / row_length;
  const std::size_t per_row = (row_length + k - 1) / k;
  std::vector<std::uint32_t> codes(data.size());
  Packed out;
  out.scales.resize(rows * per_row);
  for (std::size_t row = 0; row < rows; ++row) {
    for (std::size_t b = 0; b < per_row; ++b) {
      const std::size_t pos = row * row_length + b * k;
      const std::size_t count = std::min(k, row_length - b * k);
      const std::span<const float> values(data.data() + pos, count);
      const std::span<std::uint32_t> c(codes.data() + pos, count);
      out.scales[row * per_row + b] =
          f.scale == BlockScale::kUe4m3
              ? lowp::nvfp4_quantize_block(values, tensor_scale, c, opt, pos)
              : lowp::mx_quantize_block(f, values, c, opt, pos);
    }
  }
  out.elements.assign(lowp::packed_bytes(f.element.bits, data.size()), 0);
  lowp::pack_codes(f.element.bits, codes, out.elements);
  return out;
}

// Each block's value as bf16: encode(bf16, fp32 reference value).
std::vector<std::uint16_t> reference_dequantize_bf16(const BlockFormat& f, const Packed& p,
                                                     std::size_t count, std::size_t row_length,
                                                     float tensor_scale) {
  static const Format bf16 = lowp::kBf16;
  const std::size_t k = static_cast<std::size_t>(f.block_size);
  const std::size_t per_row = (row_length + k - 1) / k;
  std::vector<std::uint16_t> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t row = i / row_length, j = i % row_length;
    const std::uint8_t s = p.scales[row * per_row + j / k];
    const std::uint32_t c = lowp::unpack_code(f.element.bits, p.elements, i);
    const float v = f.scale == BlockScale::kUe4m3
                        ? lowp::nvfp4_value(tensor_scale, s, c)
                        : static_cast<float>(lowp::mx_value(f.element, s, c));
    out[i] = static_cast<std::uint16_t>(lowp::encode(bf16, static_cast<double>(v)));
  }
  return out;
}

// Blocks of k 16-bit values: per block a random binade over the input
// format's range, with edge blocks (zeros, -0, subnormals, max, NaN, Inf,
// random bit patterns) mixed in.
std::vector<std::uint16_t> block_data(Input in, std::size_t n, std::size_t k, std::uint32_t seed) {
  const Format& from = input_format(in);
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> exponent(in == Input::kBF16 ? -133 : -24,
                                              in == Input::kBF16 ? 126 : 14);
  std::uniform_int_distribution<int> kind(0, 11);
  const std::uint16_t max = in == Input::kBF16 ? 0x7F7F : 0x7BFF;
  const std::uint16_t inf = in == Input::kBF16 ? 0x7F80 : 0x7C00;
  const std::uint16_t nan = in == Input::kBF16 ? 0x7FC0 : 0x7E00;
  const std::uint16_t exp_mask = inf;
  std::vector<std::uint16_t> v(n);
  for (std::size_t b0 = 0; b0 < n; b0 += k) {
    const std::size_t b1 = std::min(n, b0 + k);
    const int e = exponent(rng);
    const int which = kind(rng);
    for (std::size_t i = b0; i < b1; ++i) {
      auto bits = static_cast<std::uint16_t>(lowp::encode(
          from, std::ldexp(normal(rng), e), EncodeOptions{Rounding::kNearestEven, true}));
      const auto any = static_cast<std::uint16_t>(rng());
      switch (which) {
        case 0:
          bits = 0;
          break;
        case 1:
          bits = (i % 3 == 0) ? 0x8000 : 0;
          break;
        case 2:
          bits = static_cast<std::uint16_t>(any & ~exp_mask);
          break;  // subnormals
        case 3:
          bits = (i == b0) ? max : bits;
          break;
        case 4:
          bits = (i == b1 - 1) ? static_cast<std::uint16_t>(max | 0x8000) : bits;
          break;
        case 5:
          bits = (i == b0 + 1 || b1 - b0 == 1) ? nan : bits;
          break;
        case 6:
          bits = (i == b1 - 1) ? static_cast<std::uint16_t>(inf | (i % 2 ? 0x8000 : 0)) : bits;
          break;
        case 7:
          bits = any;
          break;
        default:
          break;
      }
      v[i] = bits;
    }
  }
  return v;
}

std::vector<BlockFormat> block_formats() {
  std::vector<BlockFormat> out;
  for (const auto& nb : lowp::block_registry()) out.push_back(nb.format);
  for (const char* name : {"mx:fp8_e4m3:16", "mx:fp4_e2m1:64", "mx:fp6_e3m2:20"}) {
    BlockFormat f;
    if (lowp::parse_block_format(name, f)) out.push_back(f);
  }
  return out;
}

template <typename T>
void expect_same(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      FAIL() << what << ": first difference at " << i << ": got 0x" << std::hex << +got[i]
             << ", want 0x" << +want[i];
    }
  }
}

void check_block(const BlockFormat& f, Input in, const std::vector<std::uint16_t>& data,
                 std::size_t row_length, const BlockOptions& opt, const std::string& what) {
  std::vector<float> wide(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    wide[i] = static_cast<float>(lowp::decode(input_format(in), data[i]));
  }
  const float ts = f.scale == BlockScale::kUe4m3 ? lowp::nvfp4_tensor_scale_of(wide, opt) : 1.0f;
  const Packed want = reference_quantize(f, wide, row_length, ts, opt);
  Packed got;
  got.elements.assign(want.elements.size(), 0);
  got.scales.assign(want.scales.size(), 0xAA);
  if (in == Input::kBF16) {
    lowp::quantize_blocked_bf16(f, data, row_length, ts, opt, got.elements.data(),
                                got.scales.data());
  } else {
    lowp::quantize_blocked_f16(f, data, row_length, ts, opt, got.elements.data(),
                               got.scales.data());
  }
  expect_same(got.scales, want.scales, what + " scales");
  expect_same(got.elements, want.elements, what + " elements");
  std::vector<std::uint16_t> back(data.size(), 0xABCD);
  lowp::dequantize_blocked_to_bf16(f, got.elements.data(), got.scales.data(), ts, row_length, back,
                                   opt.threads);
  expect_same(back, reference_dequantize_bf16(f, want, data.size(), row_length, ts),
              what + " dequantize to bf16");
}

TEST(Kernels16, BlocksFrom16BitInputOnEveryTarget) {
  for_each_target([] {
    for (const BlockFormat& f : block_formats()) {
      const auto k = static_cast<std::size_t>(f.block_size);
      for (Input in : {Input::kBF16, Input::kF16}) {
        BlockOptions opt;
        opt.threads = 1;
        const std::string name =
            lowp::block_format_name(f) + (in == Input::kBF16 ? " from bf16" : " from fp16");
        // Whole blocks, rows with a partial last block (FP6/FP4 rows that
        // start inside a byte), and rows shorter than a block.
        std::uint32_t seed = 1;
        for (std::size_t row_length : {64 * k, 3 * k + 5, 2 * k + 1, k - 3}) {
          const std::size_t rows = row_length >= 64 * k ? 8 : 9;
          check_block(f, in, block_data(in, rows * row_length, k, seed++), row_length, opt,
                      name + " row " + std::to_string(row_length));
          if (HasFatalFailure()) return;
        }
      }
    }
  });
}

TEST(Kernels16, BlockThreadCountsAndFallbackOptions) {
  for (const char* name : {"mxfp8_e4m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4"}) {
    BlockFormat f;
    ASSERT_TRUE(lowp::parse_block_format(name, f));
    const auto k = static_cast<std::size_t>(f.block_size);
    for (Input in : {Input::kBF16, Input::kF16}) {
      const std::size_t row_length = 1001 * k + 1;
      const auto data = block_data(in, 3 * row_length, k, 77);
      for (unsigned threads : {1u, 2u, 3u}) {
        BlockOptions opt;
        opt.threads = threads;
        check_block(f, in, data, row_length, opt,
                    std::string(name) + " threads " + std::to_string(threads));
        if (HasFatalFailure()) return;
      }
      // Stochastic rounding takes the scalar reference per block.
      BlockOptions opt;
      opt.rounding = Rounding::kStochastic;
      opt.seed = 5;
      check_block(f, in, block_data(in, 3 * 100, k, 3), 100, opt,
                  std::string(name) + " stochastic");
    }
  }
}

}  // namespace
