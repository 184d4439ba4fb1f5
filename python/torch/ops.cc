// lowp.torch's op library: PyTorch custom ops over lowp's core, registered as
// torch.ops.lowp.* (python/lowp/torch/__init__.py loads this library).
//
//   lowp::fake_quant(Tensor x, str format, int axis, str scale_rule,
//                    str rounding, int seed, bool saturate) -> Tensor
//   lowp::format_max(str format) -> float   (a scalar format's largest finite
//   value)
//   lowp::matmul_acc(Tensor a, Tensor b, int mantissa_bits, int promote_every,
//                    str rounding) -> Tensor
//     a [..., K] x b[N, K]^T with every sum kept in a narrow accumulator
//     (lowp/accum_kernels.h, python/lowp/torch/accum.py).
//
// Quantize then dequantize a CPU float32 or bfloat16 tensor (same dtype and
// shape out; bfloat16 is widened to fp32, which is exact, and the result
// rounded back to bfloat16 at the end). A scalar format (fp8_e4m3, fp6_e3m2,
// int4, e3m4, ...) is a plain cast through the bulk kernels of lowp/kernels.h;
// `axis` and `scale_rule` are ignored. A block format (mxfp8_e4m3, mxfp4,
// nvfp4, mx:<element>:<k>, ...) quantizes blocks along `axis` with the
// library's bulk block kernels (lowp/block_kernels.h), exactly as
// lowp::fake_quantize (lowp/block/tensor.h) does. The values are exactly those of
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
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowp/accum_kernels.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace lowp::torch_ops {
namespace {

// Block fake quantization (MX or NVFP4) of `rows` rows of `length` contiguous
// values (the blocked view: the block axis moved last, C order), through the
// library's bulk block kernels (lowp/block_kernels.h): exactly
// lowp::fake_quantize, whose stochastic rounding draws element i of the
// blocked view from stream position i. NVFP4's FP32 tensor scale comes from
// the whole tensor first. Row ranges run on ATen's (OpenMP) threads, each
// through the one-thread kernels (see fake_quant_scalar); with stochastic
// rounding a range would restart the stream at 0, so then the whole view is
// one call on the kernels' own threads.
void fake_quant_blocked(const BlockFormat& f, const float* in, float* out, std::int64_t rows,
                        std::int64_t length, const BlockOptions& opt) {
  const auto n = static_cast<std::size_t>(rows * length);
  if (n == 0) return;
  const auto row_length = static_cast<std::size_t>(length);
  const auto k = static_cast<std::size_t>(f.block_size);
  const std::size_t blocks_per_row = (row_length + k - 1) / k;
  const float tensor_scale =
      has_tensor_scale(f) ? nvfp4_tensor_scale_of(std::span<const float>(in, n), opt) : 1.0f;
  auto run = [&](std::int64_t row_begin, std::int64_t row_end, unsigned threads) {
    const auto first = static_cast<std::size_t>(row_begin) * row_length;
    const auto count = static_cast<std::size_t>(row_end - row_begin) * row_length;
    std::vector<std::uint8_t> elements(packed_bytes(f.element.bits, count), 0);
    std::vector<std::uint8_t> scales(static_cast<std::size_t>(row_end - row_begin) *
                                     blocks_per_row);
    BlockOptions range_opt = opt;
    range_opt.threads = threads;
    quantize_blocked(f, std::span<const float>(in + first, count), row_length, tensor_scale,
                     range_opt, elements.data(), scales.data());
    dequantize_blocked(f, elements.data(), scales.data(), tensor_scale, row_length,
                       std::span<float>(out + first, count), threads);
  };
  if (opt.rounding == Rounding::kStochastic) {
    run(0, rows, static_cast<unsigned>(std::max(1, at::get_num_threads())));
    return;
  }
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(length, 1));
  at::parallel_for(0, rows, grain, [&](std::int64_t row_begin, std::int64_t row_end) {
    run(row_begin, row_end, 1);
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
    opt.threads = 1;  // NVFP4's tensor amax (see fake_quant_blocked on threads)
    at::Tensor out;
    if (!is_block) {
      const at::Tensor in = x.to(at::kFloat).contiguous();
      const std::span<const float> values(in.data_ptr<float>(),
                                          static_cast<std::size_t>(in.numel()));
      out = at::empty(in.sizes(), in.options().dtype(at::kFloat));
      fake_quant_scalar(scalar_format, values,
                        std::span<float>(out.data_ptr<float>(), values.size()),
                        EncodeOptions{round, saturate}, opt.seed);
    } else {
      // The blocked view is the tensor with the block axis moved last, in C
      // order.
      const at::Tensor moved =
          (x.dim() == 0 ? x.reshape({1}) : x.movedim(block_axis, -1)).to(at::kFloat).contiguous();
      at::Tensor moved_out = at::empty_like(moved);
      const std::int64_t length = moved.size(-1);
      const std::int64_t rows = length == 0 ? 0 : moved.numel() / length;
      fake_quant_blocked(block_format, moved.data_ptr<float>(), moved_out.data_ptr<float>(), rows,
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

// out[..., n] = sum over k of a[..., k] * b[n, k], each sum rounded to the
// accumulator after every addition (lowp::gemm_accumulate). Rows of a run on
// ATen's (OpenMP) threads, each range through the one-thread kernel; every
// output is computed on its own, so the thread count changes nothing.
at::Tensor matmul_acc(const at::Tensor& a, const at::Tensor& b, std::int64_t mantissa_bits,
                      std::int64_t promote_every, c10::string_view rounding) {
  for (const at::Tensor* t : {&a, &b}) {
    TORCH_CHECK_TYPE(t->device().is_cpu(), "lowp::matmul_acc: expected CPU tensors, got one on ",
                     t->device());
    TORCH_CHECK_TYPE(t->scalar_type() == at::kFloat,
                     "lowp::matmul_acc: expected float32 tensors, got ", t->scalar_type());
  }
  TORCH_CHECK_VALUE(a.dim() >= 1, "lowp::matmul_acc: a must have at least one dimension [..., K]");
  TORCH_CHECK_VALUE(b.dim() == 2, "lowp::matmul_acc: b must be [N, K], got ", b.dim(),
                    " dimensions");
  TORCH_CHECK_VALUE(a.size(-1) == b.size(1),
                    "lowp::matmul_acc: a's last dimension (K = ", a.size(-1),
                    ") differs from b's second (", b.size(1), ")");
  TORCH_CHECK_VALUE(promote_every >= 0, "lowp::matmul_acc: promote_every ", promote_every,
                    " is negative (0: never promote)");
  TORCH_CHECK_VALUE(mantissa_bits >= 1 && mantissa_bits <= 23,
                    "lowp::matmul_acc: accumulator mantissa_bits ", mantissa_bits,
                    " is out of range: 1..23 (23 is fp32's)");
  Accumulator acc;
  try {
    acc.mantissa_bits = static_cast<int>(mantissa_bits);
    acc.rounding = parse_rounding(std::string_view(rounding.data(), rounding.size()));
    acc.promote_every = static_cast<std::size_t>(promote_every);
    check_accumulator(acc);
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::matmul_acc: ", e.what());
  }
  const std::int64_t k = b.size(1), n = b.size(0);
  std::vector<std::int64_t> shape(a.sizes().begin(), a.sizes().end());
  shape.back() = n;
  if (k == 0) return at::zeros(shape, a.options());  // empty sums are +0
  const at::Tensor a2 = a.reshape({-1, k}).contiguous();
  const at::Tensor b2 = b.contiguous();
  const std::int64_t m = a2.size(0);
  at::Tensor out = at::empty({m, n}, a.options());
  if (m > 0 && n > 0) {
    const float* pa = a2.data_ptr<float>();
    const float* pb = b2.data_ptr<float>();
    float* po = out.data_ptr<float>();
    const auto uk = static_cast<std::size_t>(k), un = static_cast<std::size_t>(n);
    at::parallel_for(0, m, 1, [&](std::int64_t begin, std::int64_t end) {
      const auto first = static_cast<std::size_t>(begin);
      gemm_accumulate(pa + first * uk, static_cast<std::size_t>(end - begin), pb, un, uk,
                      po + first * un, acc, 1);
    });
  }
  return out.reshape(shape);
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
  // a [..., K] x b [N, K]^T summed in a narrow accumulator (lowp/accum_kernels.h).
  m.def(
      "matmul_acc(Tensor a, Tensor b, int mantissa_bits=23, int promote_every=0, "
      "str rounding='rne') -> Tensor");
  m.impl("matmul_acc", c10::DispatchKey::CPU, TORCH_FN(matmul_acc));
}

}  // namespace lowp::torch_ops
