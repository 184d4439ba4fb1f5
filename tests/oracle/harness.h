// tests/oracle/harness.h — probe inputs and a comparison loop for checking an
// encoder against the oracle. Header-only; like the oracle it knows nothing of
// convert.h: the encoder under test is passed in as a callable
// (double x, Mode m) -> code.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "oracle/oracle.h"

namespace lowp_oracle {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

inline constexpr Mode kModes[] = {
    {Round::kNearestEven, false}, {Round::kNearestAway, false}, {Round::kTowardZero, false},
    {Round::kNearestEven, true},  {Round::kNearestAway, true},  {Round::kTowardZero, true},
};

// The rounding modes the exhaustive tier sweeps over all 2^32 fp32 patterns:
// round-to-nearest-even (the default of every format and of the specs), and
// the others too in a build configured with -DLOWP_EXHAUSTIVE_ALL_MODES=ON.
// (Every mode is checked at every code, midpoint and their neighbours in the
// fast tier.)
inline std::vector<Round> exhaustive_roundings() {
#ifdef LOWP_EXHAUSTIVE_ALL_MODES
  return {Round::kNearestEven, Round::kNearestAway, Round::kTowardZero};
#else
  return {Round::kNearestEven};
#endif
}

inline const char* mode_name(Mode m) {
  static const char* names[] = {"even", "away", "zero", "even+sat", "away+sat", "zero+sat"};
  return names[static_cast<int>(m.round) + (m.saturate ? 3 : 0)];
}

// Every minifloat spelling eXmY[fn|fnuz|fin] (X 1..8, Y 0..10) that
// lowp::parse_format accepts, with its name. (The parser rejects the rest: IEEE
// with one exponent bit or no mantissa bit, ranges outside fp32's.)
struct Spelled {
  std::string name;
  lowp::Format format;
};
inline std::vector<Spelled> minifloat_spellings() {
  std::vector<Spelled> out;
  for (int e = 1; e <= 8; ++e) {
    for (int m = 0; m <= 10; ++m) {
      for (const char* suffix : {"", "fn", "fnuz", "fin"}) {
        const std::string name = "e" + std::to_string(e) + "m" + std::to_string(m) + suffix;
        try {
          out.push_back({name, lowp::parse_format(name)});
        } catch (const lowp::Error&) {
        }
      }
    }
  }
  return out;
}

// ---- probe points ----

// The largest float below d and the smallest float above d.
inline float float_below(double d) {
  float f = static_cast<float>(d);
  while (static_cast<double>(f) >= d)
    f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}
inline float float_above(double d) {
  float f = static_cast<float>(d);
  while (static_cast<double>(f) <= d) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

// Positive finite probe magnitudes, ascending and distinct. Each is tried as
// +p and -p. For a format with more than `full_limit` magnitudes, the
// values-and-midpoints probes are limited to where rounding changes character:
// the lowest 64 magnitudes (zero, subnormals), the top 64 (and the overflow
// threshold), the first and last two codes of every binade (the carries into
// the next exponent), and 256 random codes.
inline std::vector<double> probe_points(const Oracle& o, std::uint64_t seed, bool fp64_random,
                                        std::size_t full_limit = SIZE_MAX) {
  // The magnitudes a rounding can land on, plus the virtual next value (the
  // overflow threshold is the midpoint below it), and for integers one past the
  // most negative value.
  std::vector<double> ladder;
  for (double v : o.magnitudes()) ladder.push_back(std::fabs(v));
  ladder.push_back(o.virtual_next());
  if (o.format().kind == lowp::Kind::kInt) ladder.push_back(std::fabs(o.magnitudes().front()) + 1);
  std::sort(ladder.begin(), ladder.end());
  ladder.erase(std::unique(ladder.begin(), ladder.end()), ladder.end());

  std::mt19937_64 rng(seed);
  std::vector<bool> keep(ladder.size(), true);
  if (ladder.size() > full_limit && o.format().kind == lowp::Kind::kFloat) {
    const std::size_t binade = std::size_t{1} << o.format().man_bits;
    for (std::size_t i = 0; i < ladder.size(); ++i) {
      const std::size_t in_binade = i % binade;
      keep[i] = i < 64 || i + 64 >= ladder.size() || in_binade < 2 || in_binade + 2 >= binade;
    }
    for (int k = 0; k < 256; ++k) keep[rng() % ladder.size()] = true;
  }

  std::vector<double> p;
  auto around = [&](double d) {  // d, its double neighbours and float neighbours
    p.push_back(d);
    p.push_back(std::nextafter(d, 0.0));
    p.push_back(std::nextafter(d, kInf));
    p.push_back(static_cast<double>(float_below(d)));
    p.push_back(static_cast<double>(float_above(d)));
  };
  for (std::size_t i = 0; i < ladder.size(); ++i) {
    if (!keep[i]) continue;
    around(ladder[i]);
    if (i + 1 < ladder.size()) around((ladder[i] + ladder[i + 1]) / 2);  // exact midpoint
  }
  // Beyond the range, and tiny values.
  const double top = ladder.back();
  for (double d : {2 * top, 4 * top, static_cast<double>(std::numeric_limits<float>::max()), 1e300,
                   std::numeric_limits<double>::max(), std::numeric_limits<double>::denorm_min(),
                   std::numeric_limits<double>::min(), 0x1p-149, 0x1p-150, 0x1p-151, 0x1.8p-150}) {
    p.push_back(d);
  }
  const double smallest = ladder[0] > 0 ? ladder[0] : ladder[1];
  for (double d : {smallest / 2, smallest / 4, smallest * 0.75, smallest * 0.25}) around(d);

  // Random fp32 inputs: uniform bit patterns, and patterns whose exponent lies
  // in the format's range. Random fp64 inputs in the format's range.
  const int lo_exp = std::ilogb(smallest) - 3;
  const int hi_exp = std::ilogb(top) + 2;
  std::uniform_int_distribution<int> exp_dist(lo_exp, hi_exp);
  for (int i = 0; i < 2048; ++i) {
    const auto bits = static_cast<std::uint32_t>(rng()) & 0x7FFFFFFFu;
    if (bits <= 0x7F800000u) p.push_back(static_cast<double>(std::bit_cast<float>(bits)));
    const float in_range =
        std::ldexp(1.0f + static_cast<float>(rng() >> 41) * 0x1p-23f, exp_dist(rng));
    p.push_back(static_cast<double>(in_range));
    if (fp64_random) {
      p.push_back(std::ldexp(1.0 + static_cast<double>(rng() >> 12) * 0x1p-52, exp_dist(rng)));
    }
  }
  std::erase_if(p, [](double d) { return !(d > 0) || std::isinf(d); });
  std::sort(p.begin(), p.end());
  p.erase(std::unique(p.begin(), p.end()), p.end());
  return p;
}

// ---- the comparison harness ----

struct Report {
  std::uint64_t checked = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t cursor_errors = 0;  // the oracle's cursor disagreeing with its search
  std::string first;                // the first few mismatches, one per line
  void check(const lowp::Format& f, double x, Mode m, std::uint32_t expected,
             std::uint32_t actual) {
    ++checked;
    if (expected == actual) return;
    if (++mismatches <= 6) {
      char line[200];
      std::snprintf(line, sizeof line, "\n  %s %s: x = %a (%.17g): oracle 0x%X, encode 0x%X",
                    lowp::format_name(f).c_str(), mode_name(m), x, x, expected, actual);
      first += line;
    }
  }
};

// Compares enc(x, mode) with the oracle on every probe and on the special
// inputs. `Enc` is lowp::encode, or a deliberately wrong variant.
template <class Enc>
Report compare(const Oracle& o, const std::vector<double>& points, Enc&& enc,
               bool check_cursor = false) {
  Report r;
  const lowp::Format& f = o.format();
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  const double snan = std::numeric_limits<double>::signaling_NaN();
  const double payload = std::bit_cast<double>(std::uint64_t{0x7FF0000000000123});
  std::vector<double> specials{0.0, -0.0, kInf, -kInf};
  for (double n : {qnan, snan, payload}) {
    specials.push_back(n);
    specials.push_back(-n);
  }
  for (double x : specials) {
    for (const Mode m : kModes) r.check(f, x, m, o.encode(x, m), enc(x, m));
  }
  Oracle::Cursor cursor(o);
  for (double p : points) {
    for (double x : {p, -p}) {
      for (const Mode m : kModes) {
        const std::uint32_t expected = cursor.encode(x, m);
        if (check_cursor && expected != o.encode(x, m)) ++r.cursor_errors;
        r.check(f, x, m, expected, enc(x, m));
      }
    }
  }
  return r;
}

}  // namespace lowp_oracle
