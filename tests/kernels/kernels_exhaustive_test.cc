// Slow tier: every one of the 2^32 fp32 bit patterns encoded by the bulk kernel
// (lowp::encode_f32), and every code decoded:
//  * fp8_e4m3, fp8_e5m2, fp6_e3m2, fp4_e2m1 and e8m0, nearest-even, compared
//    byte for byte with the scalar reference lowp::encode. The best Highway
//    target runs for every format; the baseline target (SCALAR, ~10 ns per
//    element) for the FP8, FP6 and FP4 formats only, to keep the tier within a
//    few minutes on two shared cores (the fast tier runs every target on 1M
//    random patterns and all edge values).
//  * bf16 and fp16 on the best target, in every deterministic rounding mode,
//    with and without saturate, compared with the independent oracle
//    (tests/oracle) instead: the expected codes are its fp32 segments (see
//    tests/format/exhaustive_test.cc), walked with a cursor.
//
// The input space is walked in chunks; for each chunk two threads compute the
// reference codes, then the kernel runs (two threads) on each of the two targets
// and its output is compared with memcmp (details only on a mismatch).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "oracle/oracle.h"

namespace {

constexpr unsigned kThreads = 2;
constexpr std::size_t kChunk = std::size_t{1} << 24;
constexpr std::uint64_t kPatterns = std::uint64_t{1} << 32;

// The reference over in[0, count). `S` repeats f.specials as a compile-time
// constant (and the options are the constant default), so that with `flatten`
// GCC folds encode's branches on them; the values computed are exactly
// lowp::encode(f, x).
template <lowp::Specials S, typename CodeT>
[[gnu::flatten]] void reference(const lowp::Format& f, const float* in, std::size_t count,
                                CodeT* out) {
  lowp::Format g = f;
  g.kind = lowp::Kind::kFloat;
  g.specials = S;
  for (std::size_t i = 0; i < count; ++i) {
    out[i] = static_cast<CodeT>(lowp::encode(g, static_cast<double>(in[i])));
  }
}

template <typename CodeT>
void reference_for(const lowp::Format& f, const float* in, std::size_t count, CodeT* out) {
  ASSERT_EQ(f.kind, lowp::Kind::kFloat);
  switch (f.specials) {
    case lowp::Specials::kIeee:
      return reference<lowp::Specials::kIeee>(f, in, count, out);
    case lowp::Specials::kFn:
      return reference<lowp::Specials::kFn>(f, in, count, out);
    case lowp::Specials::kFnuz:
      return reference<lowp::Specials::kFnuz>(f, in, count, out);
    case lowp::Specials::kFinite:
      return reference<lowp::Specials::kFinite>(f, in, count, out);
    case lowp::Specials::kE8m0:
      return reference<lowp::Specials::kE8m0>(f, in, count, out);
  }
}

// Fills in[] with the patterns base + i and computes their reference codes,
// split between kThreads threads.
void reference_threaded(const lowp::Format& f, std::uint64_t base, std::vector<float>& in,
                        std::vector<unsigned char>& out) {
  const int w = lowp::code_bytes(f);
  auto part = [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      in[i] = std::bit_cast<float>(static_cast<std::uint32_t>(base + i));
    }
    if (w == 1) {
      reference_for(f, in.data() + b, e - b, out.data() + b);
    } else {
      reference_for(f, in.data() + b, e - b, reinterpret_cast<std::uint16_t*>(out.data()) + b);
    }
  };
  std::vector<std::thread> workers;
  const std::size_t step = in.size() / kThreads;
  for (unsigned t = 1; t < kThreads; ++t) {
    workers.emplace_back(part, t * step, t + 1 == kThreads ? in.size() : (t + 1) * step);
  }
  part(0, step);
  for (auto& w_ : workers) w_.join();
}

struct Case {
  const char* format;
  bool baseline_too;  // also run the baseline target (the slowest: Highway's SCALAR)
};

class Exhaustive : public ::testing::TestWithParam<Case> {};

TEST_P(Exhaustive, EveryFp32MatchesTheReference) {
  const lowp::Format f = lowp::parse_format(GetParam().format);
  const std::size_t w = static_cast<std::size_t>(lowp::code_bytes(f));
  const auto all = lowp::kernels::available_targets();
  ASSERT_FALSE(all.empty());
  std::vector<std::int64_t> targets = {all.front()};
  if (GetParam().baseline_too && all.back() != all.front()) targets.push_back(all.back());

  const auto start = std::chrono::steady_clock::now();
  std::vector<float> in(kChunk);
  std::vector<unsigned char> expected(kChunk * w), actual(kChunk * w);
  std::uint64_t mismatches = 0;
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  double reference_s = 0;
  std::vector<double> target_s(targets.size());
  for (std::uint64_t base = 0; base < kPatterns; base += kChunk) {
    auto t0 = Clock::now();
    reference_threaded(f, base, in, expected);
    reference_s += since(t0);
    for (std::size_t k = 0; k < targets.size(); ++k) {
      const std::int64_t t = targets[k];
      lowp::kernels::set_target_for_testing(t);
      t0 = Clock::now();
      lowp::encode_f32(f, in, actual.data(), {}, 0, 0, kThreads);
      target_s[k] += since(t0);
      if (std::memcmp(expected.data(), actual.data(), kChunk * w) == 0) continue;
      for (std::size_t i = 0; i < kChunk; ++i) {
        std::uint32_t e = 0, a = 0;
        std::memcpy(&e, expected.data() + i * w, w);
        std::memcpy(&a, actual.data() + i * w, w);
        if (e != a && ++mismatches <= 10) {
          ADD_FAILURE() << lowp::kernels::target_name(t) << ": input 0x" << std::hex
                        << static_cast<std::uint32_t>(base + i) << ": expected 0x" << e
                        << ", got 0x" << a;
        }
      }
    }
  }
  lowp::kernels::set_target_for_testing(0);
  EXPECT_EQ(mismatches, 0u);

  // Every code decodes as decode_f32 does.
  const std::uint32_t codes = std::uint32_t{1} << f.bits;
  std::vector<unsigned char> raw(codes * w);
  for (std::uint32_t c = 0; c < codes; ++c) std::memcpy(raw.data() + c * w, &c, w);
  for (std::int64_t t : targets) {
    lowp::kernels::set_target_for_testing(t);
    std::vector<float> out(codes);
    lowp::decode_to_f32(f, raw.data(), out);
    for (std::uint32_t c = 0; c < codes; ++c) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(out[c]),
                std::bit_cast<std::uint32_t>(lowp::decode_f32(f, c)))
          << lowp::kernels::target_name(t) << " code " << c;
    }
  }
  lowp::kernels::set_target_for_testing(0);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: 2^32 inputs x %zu targets in %.1f s (reference %.1f s", GetParam().format,
              targets.size(), s, reference_s);
  for (std::size_t k = 0; k < targets.size(); ++k) {
    std::printf(", %s %.1f s", lowp::kernels::target_name(targets[k]).c_str(), target_s[k]);
  }
  std::printf(")\n");
}

INSTANTIATE_TEST_SUITE_P(Formats, Exhaustive,
                         ::testing::Values(Case{"fp8_e4m3", true}, Case{"fp8_e5m2", true},
                                           Case{"fp6_e3m2", true}, Case{"fp4_e2m1", true},
                                           Case{"e8m0", false}),
                         [](const auto& p) { return std::string(p.param.format); });

// ---- bf16 and fp16 against the oracle ----

using lowp_oracle::Round;
using lowp_oracle::Segment;

lowp::Rounding to_lowp(Round r) {
  switch (r) {
    case Round::kNearestEven:
      return lowp::Rounding::kNearestEven;
    case Round::kNearestAway:
      return lowp::Rounding::kNearestAway;
    case Round::kTowardZero:
      return lowp::Rounding::kTowardZero;
  }
  return lowp::Rounding::kNearestEven;
}

struct OracleCase {
  const char* format;
  Round round;
  bool saturate;
};

std::string oracle_case_name(const OracleCase& c) {
  const char* round = c.round == Round::kNearestEven   ? "even"
                      : c.round == Round::kNearestAway ? "away"
                                                       : "zero";
  return std::string(c.format) + "_" + round + (c.saturate ? "_sat" : "");
}

// Counts the codes in out[b, e) that differ from the oracle's for the patterns
// base + i; the first few go to `first`. The magnitudes of a chunk ascend (a
// chunk never straddles the sign bit), so the range is a run of segments, each
// with one expected code: a branch-free OR over each run, details only on a
// mismatch.
std::uint64_t compare_with_segments(const std::vector<Segment>& segs, std::uint64_t base,
                                    const std::uint16_t* out, std::size_t b, std::size_t e,
                                    std::vector<std::string>& first) {
  const bool negative = ((base + b) >> 31) != 0;
  const std::uint32_t m_base = static_cast<std::uint32_t>(base) & 0x7FFFFFFFu;
  auto it = std::upper_bound(segs.begin(), segs.end(), m_base + static_cast<std::uint32_t>(b),
                             [](std::uint32_t m, const Segment& s) { return m < s.first; });
  std::size_t k = static_cast<std::size_t>(it - segs.begin()) - 1;
  std::uint64_t bad = 0;
  for (std::size_t i = b; i < e; ++k) {
    // This segment's part of [i, e).
    const std::size_t run_end =
        k + 1 < segs.size() ? std::min<std::size_t>(e, segs[k + 1].first - m_base) : e;
    const std::uint32_t want = negative ? segs[k].neg : segs[k].pos;
    std::uint32_t diff = 0;
    for (std::size_t j = i; j < run_end; ++j) diff |= out[j] ^ want;
    if (diff != 0) [[unlikely]] {
      for (std::size_t j = i; j < run_end; ++j) {
        if (out[j] != want && ++bad <= 5) {
          char line[96];
          std::snprintf(line, sizeof line, "input 0x%08X: oracle 0x%04X, encode_f32 gave 0x%04X",
                        static_cast<unsigned>(base + j), static_cast<unsigned>(want),
                        static_cast<unsigned>(out[j]));
          first.emplace_back(line);
        }
      }
    }
    i = run_end;
  }
  return bad;
}

class OracleExhaustive : public ::testing::TestWithParam<OracleCase> {};

TEST_P(OracleExhaustive, EveryFp32MatchesTheOracle) {
  const OracleCase c = GetParam();
  const lowp::Format f = lowp::parse_format(c.format);
  ASSERT_EQ(lowp::code_bytes(f), 2);
  ASSERT_TRUE(lowp::kernels::encode_is_vectorized(f));
  const lowp_oracle::Oracle oracle(f);
  const std::vector<Segment> segs = lowp_oracle::fp32_segments(oracle, {c.round, c.saturate});
  const lowp::EncodeOptions opt{to_lowp(c.round), c.saturate};

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  double kernel_s = 0;
  std::vector<float> in(kChunk);
  std::vector<std::uint16_t> out(kChunk);
  std::uint64_t mismatches = 0;
  std::vector<std::string> first[kThreads];
  std::uint64_t bad[kThreads] = {};
  // Runs work(thread, begin, end) on kThreads threads, each over its part of a chunk.
  auto split = [&](auto&& work) {
    const std::size_t step = kChunk / kThreads;
    std::vector<std::thread> workers;
    for (unsigned t = 1; t < kThreads; ++t) {
      workers.emplace_back(work, t, t * step, t + 1 == kThreads ? kChunk : (t + 1) * step);
    }
    work(0u, std::size_t{0}, step);
    for (auto& w : workers) w.join();
  };
  for (std::uint64_t base = 0; base < kPatterns; base += kChunk) {
    split([&](unsigned, std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        in[i] = std::bit_cast<float>(static_cast<std::uint32_t>(base + i));
      }
    });
    const auto t0 = Clock::now();
    lowp::encode_f32(f, in, out.data(), opt, 0, 0, kThreads);
    kernel_s += std::chrono::duration<double>(Clock::now() - t0).count();
    split([&](unsigned t, std::size_t b, std::size_t e) {
      bad[t] += compare_with_segments(segs, base, out.data(), b, e, first[t]);
    });
  }
  std::string detail;
  for (unsigned t = 0; t < kThreads; ++t) {
    mismatches += bad[t];
    for (const std::string& line : first[t]) detail += "\n  " + line;
  }
  EXPECT_EQ(mismatches, 0u) << oracle_case_name(c) << " on "
                            << lowp::kernels::target_name(lowp::kernels::current_target())
                            << ": mismatches, first ones:" << detail;

  // Every code decodes as decode_f32 does.
  std::vector<std::uint16_t> codes(std::size_t{1} << 16);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint16_t>(i);
  std::vector<float> values(codes.size());
  lowp::decode_to_f32(f, codes.data(), values);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    ASSERT_EQ(std::bit_cast<std::uint32_t>(values[i]),
              std::bit_cast<std::uint32_t>(lowp::decode_f32(f, static_cast<std::uint32_t>(i))))
        << c.format << " code " << i;
  }
  std::printf("%s: 2^32 inputs on %s in %.1f s (kernel %.1f s), %zu oracle segments\n",
              oracle_case_name(c).c_str(),
              lowp::kernels::target_name(lowp::kernels::current_target()).c_str(),
              std::chrono::duration<double>(Clock::now() - start).count(), kernel_s, segs.size());
}

std::vector<OracleCase> oracle_cases() {
  std::vector<OracleCase> cases;
  for (const char* format : {"bf16", "fp16"}) {
    for (const bool saturate : {false, true}) {
      for (const Round r : {Round::kNearestEven, Round::kNearestAway, Round::kTowardZero}) {
        cases.push_back({format, r, saturate});
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Formats16, OracleExhaustive, ::testing::ValuesIn(oracle_cases()),
                         [](const auto& p) { return oracle_case_name(p.param); });

}  // namespace
