// ARC sort and the LSD radix sort (lowp/numeracy/sort.h).
#include "lowp/numeracy/sort.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

namespace lowp::numeracy {
namespace {

constexpr std::array<std::uint64_t, 20> kPow10 = [] {
  std::array<std::uint64_t, 20> p{};
  p[0] = 1;
  for (std::size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
  return p;
}();

// Order-preserving unsigned keys: unsigned values are their own keys; signed
// integers flip the sign bit; floats flip every bit when negative and the
// sign bit otherwise (IEEE 754 totalOrder on the bit patterns).
template <typename T>
struct KeyTraits {
  using Key = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static constexpr Key kSign = Key{1} << (8 * sizeof(T) - 1);
  static Key to_key(T x) {
    const Key bits = std::bit_cast<Key>(x);
    if constexpr (std::is_floating_point_v<T>) {
      return (bits & kSign) ? static_cast<Key>(~bits) : static_cast<Key>(bits | kSign);
    } else if constexpr (std::is_signed_v<T>) {
      return bits ^ kSign;
    } else {
      return bits;
    }
  }
  static T from_key(Key k) {
    if constexpr (std::is_floating_point_v<T>) {
      return std::bit_cast<T>((k & kSign) ? static_cast<Key>(k ^ kSign) : static_cast<Key>(~k));
    } else if constexpr (std::is_signed_v<T>) {
      return std::bit_cast<T>(static_cast<Key>(k ^ kSign));
    } else {
      return k;
    }
  }
  // ARC's bucket of a key, in key order: signed integers 20 - digits for a
  // negative value and 20 + digits otherwise (negatives with more digits are
  // smaller); unsigned integers and float keys their digit count.
  static constexpr int kBuckets = 41;
  static int bucket(Key k) {
    if constexpr (std::is_signed_v<T> && !std::is_floating_point_v<T>) {
      const Key bits = k ^ kSign;  // the value's two's complement bits
      if (k & kSign) return 20 + decimal_digits(bits);
      return 20 - decimal_digits(static_cast<Key>(Key{0} - bits));  // |value|, INT_MIN too
    } else {
      return decimal_digits(k);
    }
  }
};

// LSD radix sort of unsigned keys, 8-bit digits, `scratch` as large as `keys`.
template <typename Key>
void radix_sort_keys(Key* keys, Key* scratch, std::size_t n) {
  if (n < 2) return;
  constexpr std::size_t kDigits = sizeof(Key);
  // One pass counts every digit position.
  std::array<std::array<std::size_t, 256>, kDigits> count{};
  for (std::size_t i = 0; i < n; ++i) {
    const Key k = keys[i];
    for (std::size_t d = 0; d < kDigits; ++d) ++count[d][(k >> (8 * d)) & 0xff];
  }
  Key* src = keys;
  Key* dst = scratch;
  for (std::size_t d = 0; d < kDigits; ++d) {
    const unsigned shift = static_cast<unsigned>(8 * d);
    // A digit every key shares does not reorder anything.
    if (count[d][(src[0] >> shift) & 0xff] == n) continue;
    std::array<std::size_t, 256> offset;
    std::size_t sum = 0;
    for (std::size_t b = 0; b < 256; ++b) {
      offset[b] = sum;
      sum += count[d][b];
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Key k = src[i];
      dst[offset[(k >> shift) & 0xff]++] = k;
    }
    std::swap(src, dst);
  }
  if (src != keys) std::memcpy(keys, src, n * sizeof(Key));
}

// Buckets smaller than this are sorted by std::sort (a radix pass costs
// 256-entry prefix sums however small the bucket).
constexpr std::size_t kSmallBucket = 256;

template <typename T>
void arc_sort_impl(std::span<T> values) {
  using Traits = KeyTraits<T>;
  using Key = typename Traits::Key;
  const std::size_t n = values.size();
  if (n < 2) return;
  // 1. Count the bucket sizes.
  std::array<std::size_t, Traits::kBuckets> begin{};
  for (const T x : values) ++begin[static_cast<std::size_t>(Traits::bucket(Traits::to_key(x)))];
  std::size_t largest = 0;
  std::size_t sum = 0;
  for (std::size_t& b : begin) {
    largest = std::max(largest, b);
    const std::size_t size = b;
    b = sum;
    sum += size;
  }
  // 2. Scatter the keys into their buckets (stable).
  auto keys = std::make_unique_for_overwrite<Key[]>(n);
  std::array<std::size_t, Traits::kBuckets> next = begin;
  for (const T x : values) {
    const Key k = Traits::to_key(x);
    keys[next[static_cast<std::size_t>(Traits::bucket(k))]++] = k;
  }
  // 3. Sort each bucket; the buckets are in key order already.
  std::unique_ptr<Key[]> scratch;
  if (largest >= kSmallBucket) scratch = std::make_unique_for_overwrite<Key[]>(largest);
  for (std::size_t b = 0; b < Traits::kBuckets; ++b) {
    const std::size_t end = b + 1 < Traits::kBuckets ? begin[b + 1] : n;
    Key* first = keys.get() + begin[b];
    const std::size_t size = end - begin[b];
    if (size < kSmallBucket) {
      std::sort(first, first + size);
    } else {
      radix_sort_keys(first, scratch.get(), size);
    }
  }
  // 4. Back to values.
  for (std::size_t i = 0; i < n; ++i) values[i] = Traits::from_key(keys[i]);
}

template <typename T>
void radix_sort_impl(std::span<T> values) {
  using Traits = KeyTraits<T>;
  using Key = typename Traits::Key;
  const std::size_t n = values.size();
  if (n < 2) return;
  auto keys = std::make_unique_for_overwrite<Key[]>(n);
  auto scratch = std::make_unique_for_overwrite<Key[]>(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = Traits::to_key(values[i]);
  radix_sort_keys(keys.get(), scratch.get(), n);
  for (std::size_t i = 0; i < n; ++i) values[i] = Traits::from_key(keys[i]);
}

}  // namespace

int decimal_digits(std::uint64_t v) {
  // floor(log10(2^bits)) estimated as bits * 1233 / 4096 (1233 / 4096 ~
  // log10(2)), then corrected by one comparison.
  // v | 1 has v's digit count (powers of ten from 10 up are even) and makes
  // 0 count as one digit.
  const std::uint64_t w = v | 1;
  const int bits = 64 - std::countl_zero(w);
  const int t = (bits * 1233) >> 12;
  return t + (w >= kPow10[static_cast<std::size_t>(t)] ? 1 : 0);
}

void arc_sort(std::span<std::int32_t> values) { arc_sort_impl(values); }
void arc_sort(std::span<std::int64_t> values) { arc_sort_impl(values); }
void arc_sort(std::span<std::uint32_t> values) { arc_sort_impl(values); }
void arc_sort(std::span<std::uint64_t> values) { arc_sort_impl(values); }
void arc_sort(std::span<float> values) { arc_sort_impl(values); }
void arc_sort(std::span<double> values) { arc_sort_impl(values); }

void radix_sort(std::span<std::int32_t> values) { radix_sort_impl(values); }
void radix_sort(std::span<std::int64_t> values) { radix_sort_impl(values); }
void radix_sort(std::span<std::uint32_t> values) { radix_sort_impl(values); }
void radix_sort(std::span<std::uint64_t> values) { radix_sort_impl(values); }
void radix_sort(std::span<float> values) { radix_sort_impl(values); }
void radix_sort(std::span<double> values) { radix_sort_impl(values); }

}  // namespace lowp::numeracy
