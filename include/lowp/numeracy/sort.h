// lowp/numeracy/sort.h — ARC sort (sorting numbers by their decimal digit
// count first) and lowp's LSD radix sort, for 32- and 64-bit integers and
// floats, in place, ascending.
//
// ARC sort: each value goes to a bucket by the number of decimal digits of its
// magnitude and its sign (negatives with more digits first, then negatives
// with fewer, then non-negatives with fewer digits before more; 0 has one
// digit), buckets in that order are already in value order, and each bucket is
// then sorted on its own (buckets of < 256 values by std::sort, larger ones
// by the LSD radix sort below, which skips the byte passes a bucket's narrow
// range leaves constant). Floats are sorted by their order-preserving bit
// patterns, the unsigned integers obtained by flipping all bits of a negative
// float and the sign bit of a positive one, and bucketed by those integers'
// digit counts.
//
// Radix sort: least-significant-digit first, 8-bit digits, one histogram pass
// for all digits, passes where every key has the same digit skipped; signed
// integers and floats through the same order-preserving unsigned keys.
//
// Floats end up in IEEE 754 totalOrder (§5.10): -NaN (larger payloads
// first), -inf, negative numbers, -0, +0, positive numbers, +inf, +NaN
// (smaller payloads first) — what std::sort gives with a totalOrder
// comparator. -0 sorts strictly before +0.
//
// Both sorts allocate scratch memory of the array's size (plus, for ARC sort,
// its largest bucket) and run on the calling thread.
#pragma once

#include <cstdint>
#include <span>

namespace lowp::numeracy {

void arc_sort(std::span<std::int32_t> values);
void arc_sort(std::span<std::int64_t> values);
void arc_sort(std::span<std::uint32_t> values);
void arc_sort(std::span<std::uint64_t> values);
void arc_sort(std::span<float> values);
void arc_sort(std::span<double> values);

void radix_sort(std::span<std::int32_t> values);
void radix_sort(std::span<std::int64_t> values);
void radix_sort(std::span<std::uint32_t> values);
void radix_sort(std::span<std::uint64_t> values);
void radix_sort(std::span<float> values);
void radix_sort(std::span<double> values);

// The decimal digit count of v (1 for 0), as ARC sort buckets by it.
int decimal_digits(std::uint64_t v);

}  // namespace lowp::numeracy
