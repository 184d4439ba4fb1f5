// lowp/kernels.h — bulk encode/decode of fp32, bf16 and fp16 arrays into
// scalar-format codes, and decode back to fp32 or bf16.
//
// Every function here gives exactly the bits of the scalar reference in
// lowp/format/convert.h (lowp::encode of each element, lowp::decode_f32 of each
// code), on every SIMD target and for any thread count. The vector path covers
// every float format of at most 16 bits with emin >= -126 and at most 10
// mantissa bits, E8M0, and integers of at most 16 bits; the others (fp32,
// exotic biases) fall back to a scalar loop over that reference.
//
// Codes are stored code_bytes(f) wide (uint8_t, uint16_t or uint32_t), the code
// in the low f.bits bits.
//
// bf16 and fp16 arrays are passed as their uint16 bit patterns. Their values
// are exact in fp32, so the 16-bit encoders widen in registers and run the fp32
// code: the result is encode(f, exact value of in[i]), bit for bit, as
// encode_f32 of the widened array.
//
// Stochastic rounding of element i uses stochastic_bits(seed, first_index + i),
// so splitting an array into pieces (and passing each piece's first_index) or
// across threads never changes the result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/format/format.h"

namespace lowp {

// codes[i] = encode(f, in[i], opt, stochastic_bits(seed, first_index + i)).
// `threads` >= 1 splits the array into contiguous pieces, run as tasks of the
// persistent thread pool (lowp/thread_pool.h).
void encode_f32(const Format& f, std::span<const float> in, void* out_codes,
                const EncodeOptions& opt, std::uint64_t seed = 0, std::uint64_t first_index = 0,
                unsigned threads = 1);

// The same for bf16 and fp16 input (uint16 bit patterns):
// codes[i] = encode(f, value of in[i], opt, stochastic_bits(seed, first_index + i)).
void encode_bf16(const Format& f, std::span<const std::uint16_t> in, void* out_codes,
                 const EncodeOptions& opt, std::uint64_t seed = 0, std::uint64_t first_index = 0,
                 unsigned threads = 1);
void encode_f16(const Format& f, std::span<const std::uint16_t> in, void* out_codes,
                const EncodeOptions& opt, std::uint64_t seed = 0, std::uint64_t first_index = 0,
                unsigned threads = 1);

// The same for fp64 input, through the scalar reference on the calling thread
// (fp64 values are not widened fp32s: no vector path):
// codes[i] = encode_at(f, in[i], opt, seed, first_index + i).
void encode_f64(const Format& f, std::span<const double> in, void* out_codes,
                const EncodeOptions& opt, std::uint64_t seed = 0, std::uint64_t first_index = 0);

// out[i] = decode_f32(f, codes[i]) (bit for bit, NaNs included).
void decode_to_f32(const Format& f, const void* codes, std::span<float> out, unsigned threads = 1);

// out[i] = encode(bf16, decode(f, codes[i])): each code's exact value rounded
// to the nearest bf16, ties to even (overflow to ±Inf); a NaN code gives bf16's
// quiet NaN 0x7FC0 with the sign decode gives it (the payload is not kept).
// The vector path decodes to fp32 (exact for the formats it covers) and rounds
// that, in registers.
void decode_to_bf16(const Format& f, const void* codes, std::span<std::uint16_t> out,
                    unsigned threads = 1);

// Fake quantization, a cast there and back: out[i] = decode_f32(f, codes[i])
// of the codes of encode_f32 (stochastic rounding of element i at
// first_index + i), without the code array: the input goes in chunks that
// keep their codes in L1. in and out have the same size (lowp::Error
// otherwise) and may be the same array.
void fake_quantize_f32(const Format& f, std::span<const float> in, std::span<float> out,
                       const EncodeOptions& opt, std::uint64_t seed = 0,
                       std::uint64_t first_index = 0, unsigned threads = 1);

namespace kernels {

// Whether encode_* / decode_to_* take the vector path for f (else the scalar
// loop over the reference).
bool encode_is_vectorized(const Format& f);
bool decode_is_vectorized(const Format& f);

// Highway targets compiled into lowp and supported by this CPU, best first.
std::vector<std::int64_t> available_targets();
std::string target_name(std::int64_t target);
// The target the next call dispatches to.
std::int64_t current_target();
// Restricts dispatch to one target (a value from available_targets()); 0 restores
// the normal choice. For tests and benchmarks; not thread-safe with running kernels.
void set_target_for_testing(std::int64_t target);

// The sums behind lowp::ErrorStats over n pairs (x[i], q[i]) in double: the
// pairs where either is NaN or Inf are only counted (nonfinite); the others
// add x^2 to `signal`, (x - q)^2 to `error` and |x - q| to the maximum. The
// order of the additions depends on the target's vector width, not on the
// data or the caller's threads.
struct ErrorSums {
  double signal = 0, error = 0, max_abs = 0;
  std::uint64_t nonfinite = 0;
};
ErrorSums error_sums(const float* x, const float* q, std::size_t n);

// Integer matrix product of integer-only inference: y[t * rows + r] =
// sum_c x[t * cols + c] * w[r * cols + c] for n rows of x (int8) and `rows`
// rows of w (int8), exact in int32 (cols < 2^17). Integer sums do not depend
// on their order, so every target gives the same result. `threads` split the
// rows of w (the persistent pool of lowp/thread_pool.h).
void gemm_i8(const std::int8_t* x, std::size_t n, const std::int8_t* w, std::size_t rows,
             std::size_t cols, std::int32_t* y, unsigned threads = 1);

// The memory-bandwidth ceiling of `lowp bench`: streams `elements` elements,
// in_bytes_per_element bytes of `in` and out_bytes_per_element bytes of `out`
// each (multiples of 1/4: 4, 2, 1, 0.75 or 0.5, one of them 4, or 2 and 1),
// with an XOR as the only work. One variant per call (the bench keeps the
// fastest): non-temporal stores or regular ones, the widest vectors or half
// of them. Non-temporal stores need `out` aligned to the vector size.
struct StreamVariant {
  bool non_temporal = false;
  bool half_width = false;
};
void stream_ceiling(const void* in, double in_bytes_per_element, void* out,
                    double out_bytes_per_element, std::size_t elements, StreamVariant variant,
                    unsigned threads = 1);

}  // namespace kernels
}  // namespace lowp
