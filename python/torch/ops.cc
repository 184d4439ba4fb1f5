// lowp.torch's op library: PyTorch custom ops over lowp's core, registered as
// torch.ops.lowp.* (python/lowp/torch/__init__.py loads this library).
//
//   lowp::fake_quant(Tensor x, str format, int axis, str scale_rule,
//                    str rounding, int seed, bool saturate) -> Tensor
//   lowp::format_max(str format) -> float   (a scalar format's largest finite
//   value)
//
// Quantize then dequantize a CPU float32 or bfloat16 tensor (same dtype and
// shape out; bfloat16 is widened to fp32, which is exact, and the result
// rounded back to bfloat16 at the end). A scalar format (fp8_e4m3, fp6_e3m2,
// int4, e3m4, ...) is a plain cast through the bulk kernels of lowp/kernels.h;
// `axis` and `scale_rule` are ignored. A block format (mxfp8_e4m3, mxfp4,
// nvfp4, mx:<element>:<k>, ...) quantizes blocks along `axis` with
// lowp::fake_quantize (lowp/block/tensor.h). The values are exactly those of
// `lowp fake-quant` on the same array: stochastic rounding of an element
// depends only on the seed and the element's position (its C-order index for
// scalar formats, its index in the blocked view for block formats), so results
// do not depend on the number of threads.
//
// Bad input raises a Python exception whose message names the problem:
// ValueError for an unknown format, rounding or scale rule, an axis out of
// range or --saturate with a block format; TypeError for a dtype other than
// float32/bfloat16 or a non-CPU tensor.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowp/block/mx.h"
#include "lowp/block/tensor.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace lowp::torch_ops {
namespace {

// Writes code c as element i of a code_bytes(f)-wide code array.
void store_code(const Format& f, std::uint8_t* codes, std::size_t i, std::uint32_t c) {
  switch (code_bytes(f)) {
    case 1:
      codes[i] = static_cast<std::uint8_t>(c);
      break;
    case 2:
      reinterpret_cast<std::uint16_t*>(codes)[i] = static_cast<std::uint16_t>(c);
      break;
    default:
      reinterpret_cast<std::uint32_t*>(codes)[i] = c;
      break;
  }
}

// MX fake quantization of `rows` rows of `length` contiguous values (the
// blocked view: the block axis moved last), blocks of k along each row. The
// same values as lowp::fake_quantize, bit for bit, computed faster:
//  1. per block, amax (NaN if any value is NaN or infinite) and the E8M0
//     scale code from lowp::mx_scale_code, the library's rule;
//  2. each element divided by X = 2^s in fp32 (times 2^(N-2) for integer
//     elements). That is exact except where the quotient is an fp32
//     subnormal; those elements are re-encoded from the exact double quotient
//     with the scalar reference, as mx_quantize_block does for all of them;
//  3. the quotients encoded with the bulk kernel (saturating, the same
//     rounding and stochastic stream position as the library), decoded, and
//     multiplied back by X in fp32: P * X rounds once, as the library's
//     double-to-float cast of the exact product does.
// Row ranges run in parallel; each element depends only on its own block and
// its position, so the result does not depend on the thread count.
void fake_quant_mx_rows(const BlockFormat& f, const float* in, float* out, std::int64_t rows,
                        std::int64_t length, const BlockOptions& opt) {
  const Format& element = f.element;
  const auto k = static_cast<std::int64_t>(f.block_size);
  const int fraction_bits = mx_int_fraction_bits(element);
  const EncodeOptions element_opt{opt.rounding, /*saturate=*/true};
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(length, 1));
  at::parallel_for(0, rows, grain, [&](std::int64_t row_begin, std::int64_t row_end) {
    const auto first = static_cast<std::size_t>(row_begin * length);
    const auto count = static_cast<std::size_t>((row_end - row_begin) * length);
    std::vector<float> scaled(count);
    std::vector<std::uint8_t> codes(count * static_cast<std::size_t>(code_bytes(element)));
    std::vector<std::uint8_t> scale_codes;
    std::vector<std::size_t> inexact;  // positions (within the range) of subnormal quotients
    // Steps 1 and 2.
    for (std::int64_t row = row_begin; row < row_end; ++row) {
      for (std::int64_t b0 = 0; b0 < length; b0 += k) {
        const std::int64_t n = std::min(k, length - b0);
        const float* v = in + row * length + b0;
        // The largest |v| read as bits (positive floats order as their
        // bits); bits from 0x7F800000 up are Inf or NaN.
        std::uint32_t amax_bits = 0;
        for (std::int64_t j = 0; j < n; ++j) {
          amax_bits = std::max(amax_bits, std::bit_cast<std::uint32_t>(v[j]) & 0x7FFFFFFFu);
        }
        const float amax = amax_bits >= 0x7F800000u ? std::numeric_limits<float>::quiet_NaN()
                                                    : std::bit_cast<float>(amax_bits);
        const std::uint8_t scale = mx_scale_code(element, amax, opt.scale_rule);
        scale_codes.push_back(scale);
        const int exponent = -e8m0_exponent(scale) + fraction_bits;
        const std::size_t at = static_cast<std::size_t>(row * length + b0) - first;
        if (scale == kE8m0Nan) {
          std::fill_n(scaled.begin() + static_cast<std::ptrdiff_t>(at), n, 0.0f);
          continue;
        }
        // 2^exponent as two fp32 factors: integer elements reach 2^133
        // (scale 2^-127, 6 fraction bits). Each product is exact unless it
        // is subnormal.
        const int first_part = std::min(exponent, 127);
        const float multiplier = std::ldexp(1.0f, first_part);
        const float multiplier2 = std::ldexp(1.0f, exponent - first_part);
        float* q = scaled.data() + at;
        bool any_inexact = false;
        for (std::int64_t j = 0; j < n; ++j) {
          q[j] = v[j] * multiplier * multiplier2;
          const std::uint32_t q_bits = std::bit_cast<std::uint32_t>(q[j]) & 0x7FFFFFFFu;
          any_inexact |= (q_bits < 0x00800000u) & (v[j] != 0.0f);
        }
        if (any_inexact) {
          for (std::int64_t j = 0; j < n; ++j) {
            if (v[j] != 0.0f && !(std::fabs(q[j]) >= 0x1p-126f))
              inexact.push_back(at + static_cast<std::size_t>(j));
          }
        }
      }
    }
    // Step 3.
    encode_f32(element, scaled, codes.data(), element_opt, opt.seed, first,
               /*threads=*/1);
    for (const std::size_t i : inexact) {
      const std::size_t pos = first + i;
      const auto row = static_cast<std::int64_t>(pos) / length;
      const std::int64_t block = (static_cast<std::int64_t>(pos) % length) / k;
      const std::size_t scale_index =
          static_cast<std::size_t>((row - row_begin) * ((length + k - 1) / k) + block);
      const int exponent = -e8m0_exponent(scale_codes[scale_index]) + fraction_bits;
      const double exact = std::ldexp(static_cast<double>(in[pos]), exponent);
      store_code(element, codes.data(), i, encode_at(element, exact, element_opt, opt.seed, pos));
    }
    decode_to_f32(element, codes.data(), std::span<float>(out + first, count), /*threads=*/1);
    std::size_t scale_index = 0;
    for (std::int64_t row = row_begin; row < row_end; ++row) {
      for (std::int64_t b0 = 0; b0 < length; b0 += k) {
        const std::int64_t n = std::min(k, length - b0);
        float* o = out + row * length + b0;
        const std::uint8_t scale = scale_codes[scale_index++];
        if (scale == kE8m0Nan) {
          std::fill_n(o, n, std::numeric_limits<float>::quiet_NaN());
          continue;
        }
        // X / 2^(N-2) as one power of two (at least 2^-133: an fp32
        // subnormal).
        const float multiplier = std::ldexp(1.0f, e8m0_exponent(scale) - fraction_bits);
        for (std::int64_t j = 0; j < n; ++j) o[j] *= multiplier;
      }
    }
  });
}

// Plain cast of n fp32 values: encode with the bulk kernel, decode back.
void fake_quant_scalar(const Format& f, std::span<const float> in, std::span<float> out,
                       const EncodeOptions& opt, std::uint64_t seed) {
  // Pieces run on ATen's (OpenMP) threads, each through the one-thread kernel
  // with its first index, so stochastic rounding sees the same positions. (The
  // kernels' own std::thread pool would compete with OpenMP's spinning workers.)
  const auto bytes = static_cast<std::size_t>(code_bytes(f));
  at::parallel_for(0, static_cast<std::int64_t>(in.size()), 1 << 15,
                   [&](std::int64_t begin, std::int64_t end) {
                     const auto first = static_cast<std::size_t>(begin);
                     const auto count = static_cast<std::size_t>(end - begin);
                     std::vector<std::uint8_t> codes(count * bytes);
                     encode_f32(f, in.subspan(first, count), codes.data(), opt, seed, first, 1);
                     decode_to_f32(f, codes.data(), out.subspan(first, count), 1);
                   });
}

at::Tensor fake_quant(const at::Tensor& x, c10::string_view format_name, std::int64_t axis,
                      c10::string_view scale_rule, c10::string_view rounding, std::int64_t seed,
                      bool saturate) {
  TORCH_CHECK_TYPE(x.device().is_cpu(), "lowp::fake_quant: expected a CPU tensor, got one on ",
                   x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16,
                   "lowp::fake_quant: expected a float32 or bfloat16 tensor, got ",
                   x.scalar_type());
  const std::string name(format_name.data(), format_name.size());
  try {
    BlockFormat block_format;
    const bool is_block = parse_block_format(name, block_format);
    const Format scalar_format = is_block ? Format{} : parse_format(name);
    const Rounding round = parse_rounding(std::string_view(rounding.data(), rounding.size()));
    const ScaleRule rule = parse_scale_rule(std::string_view(scale_rule.data(), scale_rule.size()));
    if (is_block && saturate) {
      throw Error(
          "saturate applies to scalar formats; block formats always "
          "saturate their elements");
    }
    if (axis < INT32_MIN || axis > INT32_MAX) {
      throw Error("axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                  std::to_string(x.dim()));
    }
    const int block_axis =
        normalize_axis(static_cast<int>(axis), static_cast<std::size_t>(x.dim()));

    BlockOptions opt;
    opt.scale_rule = rule;
    opt.rounding = round;
    opt.seed = static_cast<std::uint64_t>(seed);
    opt.threads = 1;  // NVFP4 (lowp::fake_quantize): see fake_quant_scalar on threads
    at::Tensor out;
    if (!is_block || block_format.family == BlockFamily::kNvfp4) {
      const at::Tensor in = x.to(at::kFloat).contiguous();
      const std::span<const float> values(in.data_ptr<float>(),
                                          static_cast<std::size_t>(in.numel()));
      out = at::empty(in.sizes(), in.options().dtype(at::kFloat));
      const std::span<float> result(out.data_ptr<float>(), values.size());
      if (!is_block) {
        fake_quant_scalar(scalar_format, values, result, EncodeOptions{round, saturate}, opt.seed);
      } else {
        const std::vector<std::int64_t> shape(in.sizes().begin(), in.sizes().end());
        const std::vector<float> q = fake_quantize(block_format, values, shape, block_axis, opt);
        std::copy(q.begin(), q.end(), result.begin());
      }
    } else {
      // MX: the blocked view is the tensor with the block axis moved last, in C
      // order.
      const at::Tensor moved =
          (x.dim() == 0 ? x.reshape({1}) : x.movedim(block_axis, -1)).to(at::kFloat).contiguous();
      at::Tensor moved_out = at::empty_like(moved);
      const std::int64_t length = moved.size(-1);
      const std::int64_t rows = length == 0 ? 0 : moved.numel() / length;
      fake_quant_mx_rows(block_format, moved.data_ptr<float>(), moved_out.data_ptr<float>(), rows,
                         length, opt);
      out = x.dim() == 0 ? moved_out.reshape({}) : moved_out.movedim(-1, block_axis).contiguous();
    }
    return x.scalar_type() == at::kFloat ? out : out.to(x.scalar_type());
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::fake_quant(format ", name, "): ", e.what());
  }
}

double format_max(c10::string_view format_name) {
  const std::string name(format_name.data(), format_name.size());
  try {
    return max_finite(parse_format(name));
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::format_max(format ", name, "): ", e.what());
  }
}

}  // namespace

TORCH_LIBRARY(lowp, m) {
  m.def(
      "fake_quant(Tensor x, str format, int axis=-1, str scale_rule='floor', "
      "str rounding='rne', "
      "int seed=0, bool saturate=False) -> Tensor");
  m.impl("fake_quant", c10::DispatchKey::CPU, TORCH_FN(fake_quant));
  // The largest finite value of a scalar format (for per-tensor scaling).
  m.def("format_max(str format) -> float", TORCH_FN(format_max));
}

}  // namespace lowp::torch_ops
