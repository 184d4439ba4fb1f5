// Exhaustive tier: every one of the 2^32 fp32 bit patterns, encoded with
// lowp::encode into every registered format of at most 16 bits (bf16 and fp16
// included; fp32 is the input itself), in round-to-nearest-even (and with
// saturate where it changes anything), compared with the independent oracle
// (tests/oracle). The other deterministic modes (ties away, toward zero) are
// checked at every code, midpoint and their neighbours in the fast tier
// (oracle_test); configuring with -DLOWP_EXHAUSTIVE_ALL_MODES=ON sweeps them
// over all 2^32 patterns too (three times the time).
//
// Speed: the expected code is a piecewise-constant function of the fp32
// magnitude bit pattern (rounding is monotone), so the oracle is precomputed as
// a short list of segments (fp32_segments) and walked with a cursor; each
// magnitude pattern checks +x and -x. Two threads take chunks of the pattern
// range from a shared counter. The cost is then essentially that of
// lowp::encode itself, which the test reports in ns per call.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "oracle/harness.h"
#include "oracle/oracle.h"

namespace {

using lowp_oracle::Mode;
using lowp_oracle::Round;
using lowp_oracle::Segment;

constexpr unsigned kThreads = 2;
constexpr std::uint64_t kMagnitudes = std::uint64_t{1} << 31;  // sign clear
constexpr std::uint32_t kChunk = 1u << 22;
constexpr std::size_t kKeep = 8;  // failing inputs reported per job

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
const char* round_name(Round r) {
  switch (r) {
    case Round::kNearestEven:
      return "even";
    case Round::kNearestAway:
      return "away";
    case Round::kTowardZero:
      return "zero";
  }
  return "?";
}

struct Mismatch {
  std::uint32_t input;  // fp32 bit pattern, sign included
  std::uint32_t expected;
  std::uint32_t actual;
};

struct Tally {
  std::uint64_t count = 0;
  std::vector<Mismatch> first;
  void add(std::uint32_t input, std::uint32_t expected, std::uint32_t actual) {
    ++count;
    if (first.size() < kKeep) first.push_back({input, expected, actual});
  }
};

// Checks the magnitude patterns [begin, end) (and their negatives). The
// template parameters repeat fields of `fmt` and `opt` as compile-time constants
// (the caller checks they agree), so that the compiler folds lowp::encode's
// branches on them: the function called, and the values it is called with, are
// exactly those of lowp::encode(fmt, x, opt); only the inlining differs
// (`flatten` makes GCC inline encode into the loop, or nothing would fold).
template <lowp::Kind K, lowp::Specials S, lowp::Rounding R, bool Sat>
[[gnu::flatten]] void check_range(const lowp::Format fmt, const std::vector<Segment>& segs,
                                  std::uint32_t begin, std::uint32_t end, Tally& tally) {
  lowp::Format f = fmt;
  f.kind = K;
  if (K == lowp::Kind::kFloat) f.specials = S;
  constexpr lowp::EncodeOptions opt{R, Sat};
  // The segment holding `begin`: the last one whose first pattern is <= begin.
  auto it = std::upper_bound(segs.begin(), segs.end(), begin,
                             [](std::uint32_t p, const Segment& s) { return p < s.first; });
  std::size_t k = static_cast<std::size_t>(it - segs.begin()) - 1;
  std::uint32_t p = begin;
  while (p < end) {
    const std::uint32_t seg_end = k + 1 < segs.size() ? std::min(segs[k + 1].first, end) : end;
    const std::uint32_t pos = segs[k].pos;
    const std::uint32_t neg = segs[k].neg;
    for (; p < seg_end; ++p) {
      const double x = static_cast<double>(std::bit_cast<float>(p));
      const std::uint32_t a = lowp::encode(f, x, opt);
      const std::uint32_t b = lowp::encode(f, -x, opt);
      if (((a ^ pos) | (b ^ neg)) != 0) [[unlikely]] {
        if (a != pos) tally.add(p, pos, a);
        if (b != neg) tally.add(p | 0x80000000u, neg, b);
      }
    }
    ++k;
  }
}

using CheckFn = void (*)(const lowp::Format, const std::vector<Segment>&, std::uint32_t,
                         std::uint32_t, Tally&);

template <lowp::Kind K, lowp::Specials S, lowp::Rounding R>
CheckFn pick_sat(bool sat) {
  return sat ? &check_range<K, S, R, true> : &check_range<K, S, R, false>;
}
template <lowp::Kind K, lowp::Specials S>
CheckFn pick_round(lowp::Rounding r, bool sat) {
  switch (r) {
    case lowp::Rounding::kNearestAway:
      return pick_sat<K, S, lowp::Rounding::kNearestAway>(sat);
    case lowp::Rounding::kTowardZero:
      return pick_sat<K, S, lowp::Rounding::kTowardZero>(sat);
    default:
      return pick_sat<K, S, lowp::Rounding::kNearestEven>(sat);
  }
}
CheckFn pick(const lowp::Format& f, lowp::EncodeOptions opt) {
  using lowp::Specials;
  if (f.kind == lowp::Kind::kInt)
    return pick_round<lowp::Kind::kInt, Specials::kIeee>(opt.rounding, opt.saturate);
  constexpr lowp::Kind F = lowp::Kind::kFloat;
  switch (f.specials) {
    case Specials::kIeee:
      return pick_round<F, Specials::kIeee>(opt.rounding, opt.saturate);
    case Specials::kFn:
      return pick_round<F, Specials::kFn>(opt.rounding, opt.saturate);
    case Specials::kFnuz:
      return pick_round<F, Specials::kFnuz>(opt.rounding, opt.saturate);
    case Specials::kFinite:
      return pick_round<F, Specials::kFinite>(opt.rounding, opt.saturate);
    case Specials::kE8m0:
      return pick_round<F, Specials::kE8m0>(opt.rounding, opt.saturate);
  }
  return nullptr;
}

struct JobResult {
  Tally tally;
  double seconds = 0;      // wall clock
  double cpu_seconds = 0;  // summed over the threads
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

JobResult run_job(const lowp::Format& f, Mode m) {
  const lowp_oracle::Oracle oracle(f);
  const std::vector<Segment> segs = lowp_oracle::fp32_segments(oracle, m);
  const lowp::EncodeOptions opt{to_lowp(m.round), m.saturate};
  const CheckFn check = pick(f, opt);
  std::atomic<std::uint64_t> next{0};
  std::vector<Tally> tallies(kThreads);
  std::vector<double> cpu(kThreads, 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const double c0 = thread_cpu_seconds();
      for (;;) {
        const std::uint64_t b = next.fetch_add(kChunk);
        if (b >= kMagnitudes) break;
        const std::uint64_t e = std::min<std::uint64_t>(b + kChunk, kMagnitudes);
        check(f, segs, static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(e), tallies[t]);
      }
      cpu[t] = thread_cpu_seconds() - c0;
    });
  }
  for (std::thread& th : threads) th.join();
  JobResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const double c : cpu) r.cpu_seconds += c;
  for (const Tally& t : tallies) {
    r.tally.count += t.count;
    for (const Mismatch& mm : t.first) {
      if (r.tally.first.size() < kKeep) r.tally.first.push_back(mm);
    }
  }
  std::sort(r.tally.first.begin(), r.tally.first.end(),
            [](const Mismatch& a, const Mismatch& b) { return a.input < b.input; });
  return r;
}

// The registered formats of at most 16 bits: all but fp32.
std::vector<std::string> small_formats() {
  std::vector<std::string> names;
  for (const lowp::NamedFormat& nf : lowp::registry()) {
    // Code books: tests/format/code_table_test.cc (the oracle has no tables);
    // posits: tests/format/posit_test.cc.
    if (nf.format.bits <= 16 && nf.format.kind != lowp::Kind::kTable &&
        nf.format.kind != lowp::Kind::kPosit) {
      names.emplace_back(nf.name);
    }
  }
  return names;
}

double g_total_seconds = 0;
double g_total_cpu = 0;
std::mutex g_mu;

class Exhaustive : public ::testing::TestWithParam<std::string> {};

TEST_P(Exhaustive, AllFp32BitPatterns) {
  const lowp::Format f = lowp::parse_format(GetParam());
  const lowp_oracle::Oracle oracle(f);
  // saturate changes results only where a format can produce Inf or NaN.
  std::vector<bool> saturates{false};
  if (f.kind == lowp::Kind::kFloat && (oracle.has_inf() || oracle.has_nan())) {
    saturates.push_back(true);
  }
  double wall = 0, cpu = 0;
  for (const bool sat : saturates) {
    for (const Round r : lowp_oracle::exhaustive_roundings()) {
      const JobResult res = run_job(f, Mode{r, sat});
      wall += res.seconds;
      cpu += res.cpu_seconds;
      // 2^32 encodes per job (2^31 magnitudes, two signs).
      const double ns_per_encode = res.cpu_seconds * 1e9 / (2.0 * static_cast<double>(kMagnitudes));
      std::printf("[ timing ] %-14s %-4s%s wall %7.2f s, cpu %7.2f s (%.2f ns per encode+check)\n",
                  GetParam().c_str(), round_name(r), sat ? " sat" : "    ", res.seconds,
                  res.cpu_seconds, ns_per_encode);
      std::fflush(stdout);
      std::string detail;
      for (const Mismatch& mm : res.tally.first) {
        char line[128];
        std::snprintf(line, sizeof line,
                      "\n  input 0x%08" PRIX32 " (%a): expected 0x%02" PRIX32
                      ", lowp::encode gave 0x%02" PRIX32,
                      mm.input, static_cast<double>(std::bit_cast<float>(mm.input)), mm.expected,
                      mm.actual);
        detail += line;
      }
      EXPECT_EQ(res.tally.count, 0u) << GetParam() << " rounding " << round_name(r) << " saturate "
                                     << sat << ": mismatches, first ones:" << detail;
    }
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_total_seconds += wall;
  g_total_cpu += cpu;
  std::printf(
      "[ timing ] %-14s total wall %.1f s, cpu %.1f s (all formats so far: wall %.1f s, "
      "cpu %.1f s)\n",
      GetParam().c_str(), wall, cpu, g_total_seconds, g_total_cpu);
  std::fflush(stdout);
}

INSTANTIATE_TEST_SUITE_P(Registry, Exhaustive, ::testing::ValuesIn(small_formats()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace

namespace {

// Every minifloat spelling the parser accepts, every code: each value, each
// midpoint and the doubles and floats beside them, with random fp32 and fp64
// inputs (the fast tier samples the formats of more than 256 magnitudes).
TEST(MinifloatSpellings, EveryCodeAndMidpoint) {
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t checked = 0;
  const auto spelled = lowp_oracle::minifloat_spellings();
  for (const auto& [name, f] : spelled) {
    const lowp_oracle::Oracle o(f);
    const lowp_oracle::Report r =
        lowp_oracle::compare(o, lowp_oracle::probe_points(o, std::hash<std::string>{}(name), true),
                             [&f](double x, Mode m) {
                               return lowp::encode(f, x, {to_lowp(m.round), m.saturate});
                             });
    checked += r.checked;
    EXPECT_EQ(r.mismatches, 0u) << name << ":" << r.first;
  }
  std::printf("[ timing ] %zu minifloat spellings, %llu encodes compared in %.1f s\n",
              spelled.size(), static_cast<unsigned long long>(checked),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace
