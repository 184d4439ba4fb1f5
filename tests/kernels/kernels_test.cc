// Bulk kernels (lowp/kernels.h) against the scalar reference (convert.h), bit for
// bit, on every Highway target this machine supports: encode of edge values
// (every code's value, midpoints and their fp32 neighbours, zeros, Inf, NaNs,
// fp32 subnormals, huge) and ~1M random fp32 bit patterns in every rounding mode
// with and without saturate; decode of every code; array lengths that are not
// multiples of the vector width; and thread counts 1, 2, 3 giving equal output.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/targets.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "oracle/harness.h"

namespace {

using lowp::EncodeOptions;
using lowp::Format;
using lowp::Rounding;

constexpr std::uint64_t kSeed = 0x5EEDF00DCAFEull;
// Just below a multiple of 2^32, so that stochastic runs cross the key change.
constexpr std::uint64_t kFirstIndex = (std::uint64_t{7} << 32) - 1000;

constexpr Rounding kRoundings[] = {Rounding::kNearestEven, Rounding::kNearestAway,
                                   Rounding::kTowardZero, Rounding::kStochastic};

std::string describe(const Format& f, const EncodeOptions& opt) {
  static const char* names[] = {"even", "away", "zero", "stochastic"};
  return lowp::format_name(f) + " " + names[static_cast<int>(opt.rounding)] +
         (opt.saturate ? "+sat" : "");
}

using lowp_test::for_each_target;

// Codes widened to uint32 from a code_bytes(f)-wide buffer.
std::vector<std::uint32_t> widen(const Format& f, const std::vector<unsigned char>& raw,
                                 std::size_t count) {
  std::vector<std::uint32_t> out(count);
  const int w = lowp::code_bytes(f);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t c = 0;
    std::memcpy(&c, raw.data() + i * static_cast<std::size_t>(w), static_cast<std::size_t>(w));
    out[i] = c;  // little-endian host
  }
  return out;
}

std::vector<std::uint32_t> run_kernel(const Format& f, const std::vector<float>& in,
                                      const EncodeOptions& opt, unsigned threads = 1) {
  std::vector<unsigned char> raw(in.size() * static_cast<std::size_t>(lowp::code_bytes(f)) + 1);
  lowp::encode_f32(f, in, raw.data(), opt, kSeed, kFirstIndex, threads);
  return widen(f, raw, in.size());
}

std::vector<std::uint32_t> run_reference(const Format& f, const std::vector<float>& in,
                                         const EncodeOptions& opt) {
  std::vector<std::uint32_t> out(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::uint32_t r =
        opt.rounding == Rounding::kStochastic ? lowp::stochastic_bits(kSeed, kFirstIndex + i) : 0;
    out[i] = lowp::encode(f, static_cast<double>(in[i]), opt, r);
  }
  return out;
}

// Number of mismatches; the first few are reported.
std::size_t compare(const std::vector<float>& in, const std::vector<std::uint32_t>& expected,
                    const std::vector<std::uint32_t>& actual, const std::string& what) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (expected[i] == actual[i]) continue;
    if (++bad <= 5) {
      ADD_FAILURE() << what << ": input 0x" << std::hex << std::bit_cast<std::uint32_t>(in[i])
                    << " (" << in[i] << ") index " << std::dec << i << ": expected 0x" << std::hex
                    << expected[i] << ", got 0x" << actual[i];
    }
  }
  return bad;
}

// Edge inputs for f: every code's value and its fp32 neighbours, the midpoints
// between neighbouring codes and their neighbours, both signs; zeros, Inf, NaNs
// with payloads, fp32 subnormals, max float, and huge values.
std::vector<float> edge_inputs(const Format& f) {
  std::vector<float> out;
  auto add = [&](float v) {
    for (float s : {v, -v}) {
      out.push_back(s);
      out.push_back(std::nextafter(s, std::numeric_limits<float>::infinity()));
      out.push_back(std::nextafter(s, -std::numeric_limits<float>::infinity()));
    }
  };
  std::vector<double> values;
  const std::uint32_t codes = std::uint32_t{1} << f.bits;
  for (std::uint32_t c = 0; c < codes; ++c) {
    const double v = lowp::decode(f, c);
    if (std::isfinite(v) && v >= 0) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  for (std::size_t i = 0; i < values.size(); ++i) {
    add(static_cast<float>(values[i]));
    if (i + 1 < values.size()) add(static_cast<float>((values[i] + values[i + 1]) / 2));
  }
  if (!values.empty()) {  // beyond max: the next step and twice max
    const double max = values.back();
    const double step = values.size() > 1 ? max - values[values.size() - 2] : max;
    add(static_cast<float>(max + step / 2));
    add(static_cast<float>(max + step));
    add(static_cast<float>(2 * max));
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, inf, std::numeric_limits<float>::max(), 1e30f, 3e38f,
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                  std::bit_cast<float>(0x007FFFFFu), std::bit_cast<float>(0x00400000u),
                  std::bit_cast<float>(0x00000123u), 1.0f, 0.5f, 3.0f}) {
    add(v);
  }
  for (std::uint32_t nan : {0x7FC00000u, 0x7F800001u, 0x7FFFFFFFu, 0x7FA00000u}) {
    out.push_back(std::bit_cast<float>(nan));
    out.push_back(std::bit_cast<float>(nan | 0x80000000u));
  }
  return out;
}

std::vector<float> random_inputs(std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> out(count);
  for (auto& v : out) v = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
  return out;
}

// Registered float formats of at most 16 bits, and a sample of eXmY spellings.
std::vector<Format> formats_under_test(bool with_spellings) {
  std::vector<Format> out;
  for (const auto& nf : lowp::registry()) {
    if (nf.format.bits <= 16) out.push_back(nf.format);
  }
  if (with_spellings) {
    const auto spelled = lowp_oracle::minifloat_spellings();
    for (std::size_t i = 0; i < spelled.size(); i += 5) out.push_back(spelled[i].format);
    // e8m3b130: emin -129 < -126, so the scalar fallback.
    for (const char* name : {"e8m7", "e5m10", "e3m0fn", "e2m0fin", "e4m3b3fnuz", "e8m2b128fn",
                             "e2m1b-5", "e8m3b130"}) {
      out.push_back(lowp::parse_format(name));
    }
  }
  return out;
}

void check_encode(const Format& f, const std::vector<float>& in, std::size_t* checked) {
  for (Rounding r : kRoundings) {
    for (bool sat : {false, true}) {
      const EncodeOptions opt{r, sat};
      const auto expected = run_reference(f, in, opt);
      for_each_target(
          [&] {
            const auto actual = run_kernel(f, in, opt);
            EXPECT_EQ(compare(in, expected, actual, describe(f, opt)), 0u);
            *checked += in.size();
          },
          lowp::kernels::encode_is_vectorized(f));
    }
  }
}

TEST(Kernels, TargetsAreListed) {
  const auto targets = lowp::kernels::available_targets();
  ASSERT_FALSE(targets.empty());
  std::string names;
  for (auto t : targets) names += lowp::kernels::target_name(t) + " ";
  std::printf("targets: %s\n", names.c_str());
}

TEST(Kernels, CoverageOfTheVectorPath) {
  for (const char* name :
       {"fp8_e4m3", "fp8_e5m2", "fp16", "bf16", "fp6_e3m2", "fp4_e2m1", "e8m0", "int8", "int4"}) {
    EXPECT_TRUE(lowp::kernels::encode_is_vectorized(lowp::parse_format(name))) << name;
    EXPECT_TRUE(lowp::kernels::decode_is_vectorized(lowp::parse_format(name))) << name;
  }
  // The scalar fallback: binades below fp32's normals, more than 16 bits.
  for (const char* name : {"e8m3b130", "fp32"}) {
    EXPECT_FALSE(lowp::kernels::encode_is_vectorized(lowp::parse_format(name))) << name;
  }
}

TEST(Kernels, EncodeEdgeValues) {
  std::size_t checked = 0;
  for (const Format& f : formats_under_test(true)) {
    SCOPED_TRACE(lowp::format_name(f));
    check_encode(f, edge_inputs(f), &checked);
  }
  std::printf("%zu kernel outputs checked\n", checked);
}

TEST(Kernels, EncodeRandomBitPatterns) {
  // An odd length: the tail goes through the padded vector path. Under
  // AddressSanitizer (the fast tier's second build, ~10x slower) a sixteenth
  // of the inputs: the exhaustive tier covers every pattern in Release.
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::size_t kCount = (std::size_t{1} << 16) + 37;
#else
  constexpr std::size_t kCount = (std::size_t{1} << 20) + 37;
#endif
  const auto in = random_inputs(kCount, 20260101);
  std::size_t checked = 0;
  for (const Format& f : formats_under_test(false)) {
    SCOPED_TRACE(lowp::format_name(f));
    check_encode(f, in, &checked);
  }
  std::printf("%zu kernel outputs checked\n", checked);
}

TEST(Kernels, EncodeEveryLengthAndOffset) {
  // Short arrays at every length 0..70 and several misalignments.
  const auto all = random_inputs(4096, 7);
  for (const char* name : {"fp8_e4m3", "bf16", "fp4_e2m1", "e8m0", "int8"}) {
    const Format f = lowp::parse_format(name);
    for (Rounding r : kRoundings) {
      const EncodeOptions opt{r, false};
      for_each_target([&] {
        for (std::size_t offset : {0, 1, 3}) {
          for (std::size_t len = 0; len <= 70; ++len) {
            std::vector<float> in(all.begin() + static_cast<std::ptrdiff_t>(offset),
                                  all.begin() + static_cast<std::ptrdiff_t>(offset + len));
            const auto expected = run_reference(f, in, opt);
            const auto actual = run_kernel(f, in, opt);
            ASSERT_EQ(compare(in, expected, actual, describe(f, opt)), 0u) << "length " << len;
          }
        }
      });
    }
  }
}

TEST(Kernels, ThreadCountsGiveIdenticalOutput) {
  const auto in = random_inputs(200'003, 99);
  for (const char* name : {"fp8_e4m3", "fp8_e5m2", "bf16", "fp16", "e8m0", "int4"}) {
    const Format f = lowp::parse_format(name);
    for (Rounding r : kRoundings) {
      const EncodeOptions opt{r, false};
      const auto one = run_kernel(f, in, opt, 1);
      EXPECT_EQ(compare(in, run_reference(f, in, opt), one, describe(f, opt)), 0u);
      for (unsigned threads : {2u, 3u, 8u}) {
        EXPECT_EQ(compare(in, one, run_kernel(f, in, opt, threads), describe(f, opt)), 0u)
            << threads << " threads";
      }
    }
    // Decode too.
    const std::size_t count = in.size();
    std::vector<unsigned char> raw(count * static_cast<std::size_t>(lowp::code_bytes(f)));
    lowp::encode_f32(f, in, raw.data(), {});
    std::vector<float> a(count), b(count);
    lowp::decode_to_f32(f, raw.data(), a, 1);
    lowp::decode_to_f32(f, raw.data(), b, 3);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), count * sizeof(float)), 0) << name;
  }
}

// fake_quantize_f32 against decode_f32 of the reference's codes, bit for bit:
// every registered format of at most 16 bits (and the scalar fallback's
// e8m3b130), every rounding, with and without saturation, random bit
// patterns and edge values, stream positions across a multiple of 2^32,
// chunk boundaries (lengths past 4096), threads, and in place.
TEST(Kernels, FakeQuantizeMatchesEncodeThenDecode) {
  std::vector<Format> formats = formats_under_test(false);
  formats.push_back(lowp::parse_format("e8m3b130"));
  for (const Format& f : formats) {
    std::vector<float> in = edge_inputs(f);
    const auto noise = random_inputs(9000 - in.size() % 9000, 5);
    in.insert(in.end(), noise.begin(), noise.end());
    for (Rounding r : kRoundings) {
      for (bool sat : {false, true}) {
        const EncodeOptions opt{r, sat};
        const auto codes = run_reference(f, in, opt);
        std::vector<std::uint32_t> want(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
          want[i] = std::bit_cast<std::uint32_t>(lowp::decode_f32(f, codes[i]));
        }
        for_each_target(
            [&] {
              for (unsigned threads : {1u, 3u}) {
                std::vector<float> out(in.size());
                lowp::fake_quantize_f32(f, in, out, opt, kSeed, kFirstIndex, threads);
                std::vector<std::uint32_t> got(out.size());
                std::memcpy(got.data(), out.data(), out.size() * 4);
                ASSERT_EQ(compare(in, want, got, describe(f, opt) + " fake quantize"), 0u)
                    << threads << " threads";
              }
              std::vector<float> same = in;  // in place
              lowp::fake_quantize_f32(f, same, same, opt, kSeed, kFirstIndex, 1);
              ASSERT_EQ(std::memcmp(same.data(), want.data(), same.size() * 4), 0)
                  << describe(f, opt) << " in place";
            },
            lowp::kernels::encode_is_vectorized(f));
      }
    }
  }
}

TEST(Kernels, DecodeEveryCode) {
  std::size_t checked = 0;
  for (const Format& f : formats_under_test(true)) {
    SCOPED_TRACE(lowp::format_name(f));
    // Every value of the code's storage word: bits above f.bits are ignored, as
    // by lowp::decode.
    const int w = lowp::code_bytes(f);
    const std::uint32_t codes = std::uint32_t{1} << (w < 4 ? 8 * w : f.bits);
    // Every code, then a few extra so the length is odd.
    std::vector<unsigned char> raw((codes + 5) * static_cast<std::size_t>(w));
    std::vector<std::uint32_t> code_of(codes + 5);
    for (std::uint32_t i = 0; i < codes + 5; ++i) {
      code_of[i] = i % codes;
      std::memcpy(raw.data() + i * static_cast<std::size_t>(w), &code_of[i],
                  static_cast<std::size_t>(w));
    }
    for_each_target([&] {
      std::vector<float> out(codes + 5);
      lowp::decode_to_f32(f, raw.data(), out);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto expected = std::bit_cast<std::uint32_t>(lowp::decode_f32(f, code_of[i]));
        const auto actual = std::bit_cast<std::uint32_t>(out[i]);
        if (expected != actual && ++bad <= 5) {
          ADD_FAILURE() << "code 0x" << std::hex << code_of[i] << ": expected 0x" << expected
                        << ", got 0x" << actual;
        }
      }
      EXPECT_EQ(bad, 0u);
      checked += out.size();
    });
  }
  std::printf("%zu decoded codes checked\n", checked);
}

}  // namespace

namespace {

// stream_ceiling (the bench's memory ceiling): every width pair and variant
// writes the XOR of the input lines that the kernel's comment defines, and
// the bytes past the last unit of 256 elements.
TEST(StreamCeiling, WritesTheDefinedBytes) {
  const std::pair<double, double> pairs[] = {{4, 1}, {4, 2},    {4, 0.75}, {4, 0.5}, {1, 4},
                                             {2, 4}, {0.75, 4}, {0.5, 4},  {2, 1},   {1, 2}};
  const std::size_t n = 256 * 5 + 100;
  for (const auto& [in_b, out_b] : pairs) {
    const auto in_lines = static_cast<std::size_t>(in_b * 4),
               out_lines = static_cast<std::size_t>(out_b * 4);
    std::vector<std::uint8_t> in(static_cast<std::size_t>(n * in_b) + 64);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<std::uint8_t>(i * 131 + 7);
    const auto out_bytes = static_cast<std::size_t>(static_cast<double>(n) * out_b);
    // The expectation: per unit, output line o, byte j = XOR of input lines
    // i == o (mod out_lines) at byte j (widening: input line o % in_lines).
    std::vector<std::uint8_t> want(out_bytes);
    const std::size_t units = n / 256;
    for (std::size_t u = 0; u < units; ++u) {
      for (std::size_t o = 0; o < out_lines; ++o) {
        for (std::size_t j = 0; j < 64; ++j) {
          std::uint8_t v = in[u * in_lines * 64 + (o % in_lines) * 64 + j];
          for (std::size_t i = o + out_lines; i < in_lines; i += out_lines) {
            v ^= in[u * in_lines * 64 + i * 64 + j];
          }
          want[u * out_lines * 64 + o * 64 + j] = v;
        }
      }
    }
    const std::size_t done_in = units * in_lines * 64, done_out = units * out_lines * 64;
    const auto total_in = static_cast<std::size_t>(static_cast<double>(n) * in_b);
    for (std::size_t b = done_out; b < out_bytes; ++b) {
      want[b] = in[done_in + (b - done_out) % (total_in - done_in)];
    }
    for (const bool nt : {false, true}) {
      for (const bool half : {false, true}) {
        for (unsigned threads : {1u, 2u}) {
          auto* out = static_cast<std::uint8_t*>(::operator new (out_bytes, std::align_val_t{64}));
          lowp::kernels::stream_ceiling(in.data(), in_b, out, out_b, n, {nt, half}, threads);
          EXPECT_TRUE(std::equal(want.begin(), want.end(), out))
              << in_b << " -> " << out_b << " nt " << nt << " half " << half;
          ::operator delete (out, std::align_val_t{64});
        }
      }
    }
  }
}

}  // namespace

namespace {

// error_sums against the definition summed one pair at a time: the counts and
// the maximum exactly, the sums up to reassociation; NaN and Inf on either
// side are counted and left out; every length up to 70 (tails) and a long one.
TEST(ErrorSums, MatchTheDefinition) {
  std::uint32_t state = 99;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<std::int32_t>(state)) * 0x1p-31f;
  };
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 70; ++n) lengths.push_back(n);
  lengths.push_back(100'003);
  for (const std::size_t n : lengths) {
    std::vector<float> x(n), q(n);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = next();
      q[i] = x[i] + next() * 0.01f;
      if (i % 17 == 5) x[i] = std::numeric_limits<float>::quiet_NaN();
      if (i % 23 == 7) q[i] = -std::numeric_limits<float>::infinity();
    }
    double signal = 0, error = 0, worst = 0;
    std::uint64_t nonfinite = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double a = x[i], b = q[i];
      if (!std::isfinite(a) || !std::isfinite(b)) {
        ++nonfinite;
        continue;
      }
      signal += a * a;
      error += (a - b) * (a - b);
      worst = std::max(worst, std::fabs(a - b));
    }
    for_each_target([&] {
      const lowp::kernels::ErrorSums s = lowp::kernels::error_sums(x.data(), q.data(), n);
      EXPECT_EQ(s.nonfinite, nonfinite) << n;
      EXPECT_EQ(s.max_abs, worst) << n;
      EXPECT_NEAR(s.signal, signal, 1e-12 * signal) << n;
      EXPECT_NEAR(s.error, error, 1e-12 * error) << n;
    });
  }
}

}  // namespace
