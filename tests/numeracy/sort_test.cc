// ARC sort and the radix sort (lowp/numeracy/sort.h) against std::sort: for
// every element type, seeded inputs of several distributions and sizes, with
// duplicates, negatives and extremes (INT64_MIN, +-inf, -0.0, NaNs with
// payloads, denormals). Floats are compared bit for bit with std::sort under
// an IEEE 754 totalOrder comparator written here from the standard's
// definition (§5.10), not from the sorts' bit-pattern keys.
#include "lowp/numeracy/sort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace lowp::numeracy {
namespace {

template <typename F>
auto payload(F x) {
  using Bits = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits kMantissa = (Bits{1} << (std::numeric_limits<F>::digits - 1)) - 1;
  return std::bit_cast<Bits>(x) & kMantissa;
}

// totalOrder(a, b) && a != b: -NaN (larger payload first) < numbers < +NaN
// (smaller payload first); -0 < +0; otherwise numeric order.
template <typename F>
bool total_less(F a, F b) {
  const auto cls = [](F x) { return std::isnan(x) ? (std::signbit(x) ? 0 : 2) : 1; };
  if (cls(a) != cls(b)) return cls(a) < cls(b);
  if (cls(a) == 0) return payload(a) > payload(b);
  if (cls(a) == 2) return payload(a) < payload(b);
  if (a < b) return true;
  if (b < a) return false;
  return std::signbit(a) && !std::signbit(b);
}

template <typename T>
void expect_sorts_like_std_sort(const std::vector<T>& input, const std::string& what) {
  std::vector<T> want = input;
  if constexpr (std::is_floating_point_v<T>) {
    std::sort(want.begin(), want.end(), total_less<T>);
  } else {
    std::sort(want.begin(), want.end());
  }
  std::vector<T> arc = input;
  arc_sort(std::span<T>(arc));
  std::vector<T> radix = input;
  radix_sort(std::span<T>(radix));
  ASSERT_EQ(arc.size(), want.size());
  if (want.empty()) return;  // memcmp must not see the empty vectors' null data
  // Bit for bit (NaN != NaN and -0 == +0 under ==).
  ASSERT_EQ(std::memcmp(arc.data(), want.data(), want.size() * sizeof(T)), 0)
      << "arc_sort " << what << " n=" << input.size();
  ASSERT_EQ(std::memcmp(radix.data(), want.data(), want.size() * sizeof(T)), 0)
      << "radix_sort " << what << " n=" << input.size();
}

template <typename T>
std::vector<T> extremes() {
  using L = std::numeric_limits<T>;
  std::vector<T> v = {L::lowest(), L::max(), L::min(), T(0), T(1), T(9), T(10), T(99), T(100)};
  if constexpr (std::is_signed_v<T>) {
    for (const T x : std::vector<T>(v))
      v.push_back(x == L::lowest() ? L::max() : static_cast<T>(-x));
    v.push_back(T(-1));
  }
  if constexpr (std::is_floating_point_v<T>) {
    v.push_back(-0.0);
    v.push_back(L::infinity());
    v.push_back(-L::infinity());
    v.push_back(L::quiet_NaN());
    v.push_back(-L::quiet_NaN());
    v.push_back(L::signaling_NaN());
    v.push_back(std::bit_cast<T>(std::bit_cast<decltype(payload(T(0)))>(-L::quiet_NaN()) | 5));
    v.push_back(std::bit_cast<T>(std::bit_cast<decltype(payload(T(0)))>(L::quiet_NaN()) | 3));
    v.push_back(L::denorm_min());
    v.push_back(-L::denorm_min());
    v.push_back(L::min() / 4);
    v.push_back(-L::min() / 3);
  } else {
    std::uint64_t p = 1;
    for (int k = 0; k < 20 && p <= static_cast<std::uint64_t>(L::max()); ++k, p *= 10) {
      v.push_back(static_cast<T>(p));
      v.push_back(static_cast<T>(p - 1));
      if constexpr (std::is_signed_v<T>) v.push_back(static_cast<T>(-static_cast<T>(p)));
      if (p > static_cast<std::uint64_t>(L::max()) / 10) break;
    }
  }
  return v;
}

// Seeded inputs: uniform bit patterns (for floats: every class, NaNs and
// denormals included), few distinct values (duplicates), log-uniform
// magnitudes with both signs (every digit count), and a mix with extremes.
template <typename T>
std::vector<T> make_input(const std::string& dist, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<T> v(n);
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const std::vector<T> special = extremes<T>();
  for (T& x : v) {
    if (dist == "bits") {
      x = std::bit_cast<T>(static_cast<Bits>(gen()));
    } else if (dist == "few") {
      x = static_cast<T>(static_cast<int>(gen() % 21) - (std::is_signed_v<T> ? 10 : 0));
    } else if (dist == "log") {
      const double magnitude =
          std::floor(std::pow(10.0, std::uniform_real_distribution<double>(0, 9)(gen)));
      const bool negative = std::is_signed_v<T> && (gen() & 1);
      if constexpr (std::is_floating_point_v<T>) {
        x = static_cast<T>(negative ? -magnitude / 1000 : magnitude / 1000);
      } else {
        x = static_cast<T>(negative ? -magnitude : magnitude);
      }
    } else {  // "mixed"
      x = (gen() & 1) ? special[gen() % special.size()]
                      : std::bit_cast<T>(static_cast<Bits>(gen()));
    }
  }
  return v;
}

template <typename T>
void sweep() {
  for (const char* dist : {"bits", "few", "log", "mixed"}) {
    for (const int size : {0, 1, 2, 3, 17, 255, 256, 257, 1000, 4096, 100'000}) {
      const auto n = static_cast<std::size_t>(size);
      expect_sorts_like_std_sort(make_input<T>(dist, n, n * 31 + 7), dist);
    }
  }
  expect_sorts_like_std_sort(extremes<T>(), "extremes");
}

TEST(Sort, Int32) { sweep<std::int32_t>(); }
TEST(Sort, Int64) { sweep<std::int64_t>(); }
TEST(Sort, Uint32) { sweep<std::uint32_t>(); }
TEST(Sort, Uint64) { sweep<std::uint64_t>(); }
TEST(Sort, Float) { sweep<float>(); }
TEST(Sort, Double) { sweep<double>(); }

TEST(Sort, NegativeZeroBeforePositiveZero) {
  std::vector<double> v = {0.0, -0.0, 0.0, -0.0};
  arc_sort(std::span<double>(v));
  EXPECT_TRUE(std::signbit(v[0]) && std::signbit(v[1]));
  EXPECT_FALSE(std::signbit(v[2]) || std::signbit(v[3]));
}

TEST(Sort, DecimalDigits) {
  EXPECT_EQ(decimal_digits(0), 1);
  EXPECT_EQ(decimal_digits(std::numeric_limits<std::uint64_t>::max()), 20);
  std::mt19937_64 gen(3);
  std::vector<std::uint64_t> xs;
  std::uint64_t p = 1;
  for (int k = 0; k < 20; ++k, p *= 10) {
    for (const std::uint64_t d : {p - 1, p, p + 1, 2 * p, 9 * p}) xs.push_back(d);
  }
  for (int i = 0; i < 10'000; ++i) xs.push_back(gen() >> (gen() % 64));
  for (const std::uint64_t x : xs) {
    EXPECT_EQ(decimal_digits(x), static_cast<int>(std::to_string(x).size())) << x;
  }
}

}  // namespace
}  // namespace lowp::numeracy
