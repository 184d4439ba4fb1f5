// lowp.torch's op library: PyTorch custom ops over lowp's core, registered as
// torch.ops.lowp.* (python/lowp/torch/__init__.py loads this library).
//
//   lowp::fake_quant(Tensor x, str format, int axis, str scale_rule,
//                    str rounding, int seed, bool saturate) -> Tensor
//   lowp::fake_quant.out(..., *, Tensor(a!) out) -> Tensor(a!)   (the same
//   into `out`, a contiguous tensor of x's dtype and shape)
//   lowp::format_max(str format) -> float   (a scalar format's largest finite
//   value)
//   lowp::fake_quant_tiles(Tensor x, str format, int axis, int tile_rows,
//                          int tile_cols, str rounding, int seed) -> Tensor
//     a 2-D float32 tensor with one fp32 scale per tile of tile_rows x
//     tile_cols elements, tile_cols along `axis` (lowp/tile_kernels.h):
//     max_finite / amax for a scalar format, NVFP4's two-level scale for
//     "nvfp4"; python/lowp/torch/ops.py's fake_quant_tiles.
//   lowp::matmul_acc(Tensor a, Tensor b, int mantissa_bits, int promote_every,
//                    str rounding) -> Tensor
//     a [..., K] x b[N, K]^T with every sum kept in a narrow accumulator
//     (lowp/accum_kernels.h, python/lowp/torch/accum.py).
//   lowp::stream_copy(Tensor src, Tensor(a!) dst, bool non_temporal)   (the
//   memory ceiling of `lowp bench` for fp32, for lowp.examples.bench_quant)
//
// Quantize then dequantize a CPU float32 or bfloat16 tensor (same dtype and
// shape out; bfloat16 is widened to fp32, which is exact, and the result
// rounded back to bfloat16 at the end). A scalar format (fp8_e4m3, fp6_e3m2,
// int4, e3m4, ...) is a plain cast there and back (lowp::fake_quantize_f32 of
// lowp/kernels.h); `axis` and `scale_rule` are ignored. A block format
// (mxfp8_e4m3, mxfp4, nvfp4, mx:<element>:<k>, ...) quantizes blocks along
// `axis` with the library's block kernels (lowp::fake_quantize_blocked of
// lowp/block_kernels.h), in place along any axis and without packed arrays,
// exactly as lowp::fake_quantize (lowp/block/tensor.h). The values are exactly those of
// `lowp fake-quant` on the same array: stochastic rounding of an element
// depends only on the seed and the element's position (its C-order index for
// scalar formats, its index in the blocked view for block formats), so results
// do not depend on the number of threads.
//
// Bad input raises a Python exception whose message names the problem:
// ValueError for an unknown format, rounding or scale rule, an axis out of
// range or --saturate with a block format; TypeError for a dtype other than
// float32/bfloat16 or a non-CPU tensor.
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
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
#include "lowp/tile_kernels.h"

namespace lowp::torch_ops {
namespace {

// A new fp32 tensor for an op's result (uninitialised). On Linux one of at
// least 32 MiB (which glibc maps afresh for every allocation) is advised onto
// transparent huge pages before its first write: each first touch of a 4 KiB
// page is a fault, and on the 2-core VM of docs/torch.md a fresh 64 MiB
// output took 18 ns per element in faults (any torch op's too, x * 2
// included) against 0.2 ns to write it; huge pages take 512 times fewer.
// Advice only: an error leaves ordinary pages.
at::Tensor new_output(at::IntArrayRef sizes) {
  at::Tensor out = at::empty(sizes, at::TensorOptions().dtype(at::kFloat));
#ifdef __linux__
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto bytes = static_cast<std::uintptr_t>(out.numel()) * sizeof(float);
  if (bytes >= (std::uintptr_t{32} << 20)) {
    const auto begin = reinterpret_cast<std::uintptr_t>(out.data_ptr());
    const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
    const std::uintptr_t last = (begin + bytes) & ~(kHuge - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return out;
}

// NVFP4's tensor scale of n values (nvfp4_tensor_scale_of without
// flush_subnormals), the amax taken in pieces on ATen's threads.
float tensor_scale_of(const float* data, std::int64_t n) {
  std::atomic<std::uint32_t> amax_bits{0};
  at::parallel_for(0, n, 1 << 16, [&](std::int64_t begin, std::int64_t end) {
    const auto piece = std::bit_cast<std::uint32_t>(finite_amax(
        std::span<const float>(data + begin, static_cast<std::size_t>(end - begin)), 1));
    std::uint32_t seen = amax_bits.load();
    while (piece > seen && !amax_bits.compare_exchange_weak(seen, piece)) {
    }
  });
  return nvfp4_tensor_scale(std::bit_cast<float>(amax_bits.load()));
}

// Block fake quantization (MX or NVFP4) of a C-order fp32 array seen as outer x
// length x inner, blocks along the middle axis, through the library's
// fake_quantize_blocked (lowp/block_kernels.h): exactly lowp::fake_quantize,
// whose stochastic rounding draws element j of the blocked view's row r (o *
// inner + i) from stream position r * length + j, so any split gives the same
// values. The work goes in units of one block along the axis for one o (all
// inner columns of it: a contiguous stretch of memory), ranges of them on
// ATen's (OpenMP) threads, each through the one-thread kernels (see
// fake_quant_scalar); nothing is moved or packed.
void fake_quant_blocked(const BlockFormat& f, const float* in, float* out, std::int64_t outer,
                        std::int64_t length, std::int64_t inner, const BlockOptions& opt) {
  const std::int64_t n = outer * length * inner;
  if (n == 0) return;
  const float tensor_scale = has_tensor_scale(f) ? tensor_scale_of(in, n) : 1.0f;
  const std::int64_t k = f.block_size;
  const std::int64_t blocks = (length + k - 1) / k;  // along the axis
  const auto size = [](std::int64_t v) { return static_cast<std::size_t>(v); };
  // Pieces of about 32K elements at least.
  const std::int64_t grain = std::max<std::int64_t>(1, 32768 / (k * inner));
  at::parallel_for(0, outer * blocks, grain, [&](std::int64_t unit, std::int64_t end) {
    while (unit < end) {
      const std::int64_t o = unit / blocks, b = unit % blocks;
      if (inner == 1 && b == 0 && end - unit >= blocks) {  // whole rows: one call
        const std::int64_t rows = (end - unit) / blocks;
        fake_quantize_blocked(f, in, out, size(length), 1, size(o), size(o + rows), 0, size(blocks),
                              tensor_scale, opt);
        unit += rows * blocks;
        continue;
      }
      const std::int64_t b_end = std::min(blocks, b + (end - unit));
      fake_quantize_blocked(f, in, out, size(length), size(inner), size(o * inner),
                            size((o + 1) * inner), size(b), size(b_end), tensor_scale, opt);
      unit += b_end - b;
    }
  });
}

// Plain cast of n fp32 values there and back (lowp::fake_quantize_f32).
void fake_quant_scalar(const Format& f, std::span<const float> in, std::span<float> out,
                       const EncodeOptions& opt, std::uint64_t seed) {
  // Pieces run on ATen's (OpenMP) threads, each through the one-thread kernel
  // with its first index, so stochastic rounding sees the same positions. (The
  // kernels' own std::thread pool would compete with OpenMP's spinning workers.)
  at::parallel_for(0, static_cast<std::int64_t>(in.size()), 1 << 15,
                   [&](std::int64_t begin, std::int64_t end) {
                     const auto first = static_cast<std::size_t>(begin);
                     const auto count = static_cast<std::size_t>(end - begin);
                     fake_quantize_f32(f, in.subspan(first, count), out.subspan(first, count), opt,
                                       seed, first, 1);
                   });
}

// The op; `into`, when not null, receives the result (fake_quant.out).
at::Tensor fake_quant_into(const at::Tensor& x, c10::string_view format_name, std::int64_t axis,
                           c10::string_view scale_rule, c10::string_view rounding,
                           std::int64_t seed, bool saturate, const at::Tensor* into) {
  TORCH_CHECK_TYPE(x.device().is_cpu(), "lowp::fake_quant: expected a CPU tensor, got one on ",
                   x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16,
                   "lowp::fake_quant: expected a float32 or bfloat16 tensor, got ",
                   x.scalar_type());
  if (into != nullptr) {
    TORCH_CHECK_VALUE(into->device().is_cpu() && into->scalar_type() == x.scalar_type() &&
                          into->sizes() == x.sizes() && into->is_contiguous(),
                      "lowp::fake_quant: out must be a contiguous CPU tensor of x's dtype and "
                      "shape");
    at::assert_no_overlap(*into, x);
  }
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
    const at::Tensor in = x.to(at::kFloat).contiguous();
    // The result goes straight into `into` where the dtypes allow.
    at::Tensor out =
        into != nullptr && x.scalar_type() == at::kFloat ? *into : new_output(in.sizes());
    if (!is_block) {
      const std::span<const float> values(in.data_ptr<float>(),
                                          static_cast<std::size_t>(in.numel()));
      fake_quant_scalar(scalar_format, values,
                        std::span<float>(out.data_ptr<float>(), values.size()),
                        EncodeOptions{round, saturate}, opt.seed);
    } else {
      // The tensor as outer x length x inner around the block axis (a 0-d
      // tensor is one block of one value).
      std::int64_t outer = 1, length = 1, inner = 1;
      for (std::int64_t d = 0; d < in.dim(); ++d) {
        (d < block_axis ? outer : d == block_axis ? length : inner) *= in.size(d);
      }
      fake_quant_blocked(block_format, in.data_ptr<float>(), out.data_ptr<float>(), outer, length,
                         inner, opt);
    }
    if (into != nullptr) {
      if (!out.is_same(*into)) into->copy_(out);  // to bfloat16, nearest-even as .to()
      return *into;
    }
    return x.scalar_type() == at::kFloat ? out : out.to(x.scalar_type());
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::fake_quant(format ", name, "): ", e.what());
  }
}

at::Tensor fake_quant(const at::Tensor& x, c10::string_view format_name, std::int64_t axis,
                      c10::string_view scale_rule, c10::string_view rounding, std::int64_t seed,
                      bool saturate) {
  return fake_quant_into(x, format_name, axis, scale_rule, rounding, seed, saturate, nullptr);
}

at::Tensor& fake_quant_out(const at::Tensor& x, c10::string_view format_name, std::int64_t axis,
                           c10::string_view scale_rule, c10::string_view rounding,
                           std::int64_t seed, bool saturate, at::Tensor& out) {
  fake_quant_into(x, format_name, axis, scale_rule, rounding, seed, saturate, &out);
  return out;
}

double format_max(c10::string_view format_name) {
  const std::string name(format_name.data(), format_name.size());
  try {
    return max_finite(parse_format(name));
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::format_max(format ", name, "): ", e.what());
  }
}

// Tile fake quantization of a 2-D float32 tensor (lowp/tile_kernels.h):
// bands of tiles in ranges on ATen's (OpenMP) threads, each through the
// one-thread kernels, which give the same values for any split. Max scaling
// takes each band's amaxes and then its values in one go (the band still in
// cache); NVFP4 first needs every tile's amax (the tensor scale is the
// largest). A NaN or Inf anywhere raises ValueError.
at::Tensor fake_quant_tiles(const at::Tensor& x, c10::string_view format_name, std::int64_t axis,
                            std::int64_t tile_rows, std::int64_t tile_cols,
                            c10::string_view rounding, std::int64_t seed) {
  TORCH_CHECK_TYPE(x.device().is_cpu(),
                   "lowp::fake_quant_tiles: expected a CPU tensor, got one on ", x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat,
                   "lowp::fake_quant_tiles: expected a float32 tensor, got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 2, "lowp::fake_quant_tiles: expected a 2-D tensor, got ", x.dim(),
                    "-D");
  TORCH_CHECK_VALUE(tile_rows >= 1 && tile_cols >= 1, "lowp::fake_quant_tiles: tile (", tile_rows,
                    ", ", tile_cols, ") must be positive");
  TORCH_CHECK_VALUE(axis >= -2 && axis <= 1, "lowp::fake_quant_tiles: axis ", axis,
                    " is out of range for a 2-D tensor");
  const std::string name(format_name.data(), format_name.size());
  try {
    TileQuant q;
    q.nvfp4 = name == "nvfp4";
    q.element = q.nvfp4 ? kFp4E2m1 : parse_format(name);
    q.tile_rows = static_cast<std::size_t>(tile_rows);
    q.tile_cols = static_cast<std::size_t>(tile_cols);
    q.axis = static_cast<int>((axis + 2) % 2);
    q.rounding = parse_rounding(std::string_view(rounding.data(), rounding.size()));
    q.seed = static_cast<std::uint64_t>(seed);
    const at::Tensor in = x.contiguous();
    const TileGrid grid(q, static_cast<std::size_t>(in.size(0)),
                        static_cast<std::size_t>(in.size(1)));
    at::Tensor out = new_output(in.sizes());
    if (in.numel() == 0) return out;
    const float* from = in.data_ptr<float>();
    float* to = out.data_ptr<float>();
    const auto bands = static_cast<std::int64_t>(grid.bands);
    const auto band_values = static_cast<std::int64_t>(grid.band_rows * grid.cols);
    const std::int64_t grain = std::max<std::int64_t>(1, 32768 / band_values);
    const auto size = [](std::int64_t v) { return static_cast<std::size_t>(v); };
    std::atomic<bool> finite{true};
    if (!q.nvfp4) {
      at::parallel_for(0, bands, grain, [&](std::int64_t begin, std::int64_t end) {
        if (!fake_quantize_tiles(q, grid, from, to, size(begin), size(end), nullptr, 0.0f)) {
          finite = false;
        }
      });
    } else {
      const std::size_t per_band = grid.tiles_per_band;
      std::vector<float> amax(grid.bands * per_band);
      at::parallel_for(0, bands, grain, [&](std::int64_t begin, std::int64_t end) {
        if (!tile_amax(q, grid, from, size(begin), size(end),
                       amax.data() + size(begin) * per_band)) {
          finite = false;
        }
      });
      if (finite) {
        const float tensor_scale = nvfp4_tensor_scale(*std::max_element(amax.begin(), amax.end()));
        at::parallel_for(0, bands, grain, [&](std::int64_t begin, std::int64_t end) {
          fake_quantize_tiles(q, grid, from, to, size(begin), size(end),
                              amax.data() + size(begin) * per_band, tensor_scale);
        });
      }
    }
    if (!finite) throw Error("the tensor holds Inf or NaN: no tile scales");
    return out;
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::fake_quant_tiles(format ", name, "): ", e.what());
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

// The memory ceiling that lowp bench measures, for fp32 in and fp32 out:
// copies src's values into dst (same size, contiguous fp32; dst 64-byte
// aligned for non-temporal stores) with lowp::kernels::stream_ceiling, in
// pieces on ATen's threads. For lowp.examples.bench_quant.
void stream_copy(const at::Tensor& src, const at::Tensor& dst, bool non_temporal) {
  TORCH_CHECK_TYPE(src.scalar_type() == at::kFloat && dst.scalar_type() == at::kFloat &&
                       src.device().is_cpu() && dst.device().is_cpu(),
                   "lowp::stream_copy: expected CPU float32 tensors");
  TORCH_CHECK_VALUE(src.is_contiguous() && dst.is_contiguous() && src.numel() == dst.numel(),
                    "lowp::stream_copy: expected contiguous tensors of the same size");
  const auto* from = src.data_ptr<float>();
  auto* to = dst.data_ptr<float>();
  constexpr std::int64_t kUnit = 256;  // the ceiling's unit: 1 KiB of fp32
  try {
    at::parallel_for(0, src.numel(), 1 << 15, [&](std::int64_t begin, std::int64_t end) {
      // Pieces on whole units, so that each starts 64-byte aligned.
      begin = (begin + kUnit - 1) / kUnit * kUnit;
      end = end == src.numel() ? end : (end + kUnit - 1) / kUnit * kUnit;
      if (end <= begin) return;
      kernels::stream_ceiling(from + begin, 4, to + begin, 4, static_cast<std::size_t>(end - begin),
                              kernels::StreamVariant{non_temporal, false}, 1);
    });
  } catch (const Error& e) {
    TORCH_CHECK_VALUE(false, "lowp::stream_copy: ", e.what());
  }
}

}  // namespace

TORCH_LIBRARY(lowp, m) {
  m.def(
      "fake_quant(Tensor x, str format, int axis=-1, str scale_rule='floor', "
      "str rounding='rne', "
      "int seed=0, bool saturate=False) -> Tensor");
  m.impl("fake_quant", c10::DispatchKey::CPU, TORCH_FN(fake_quant));
  // The same into a given tensor of x's dtype and shape (no new output).
  m.def(
      "fake_quant.out(Tensor x, str format, int axis=-1, str scale_rule='floor', "
      "str rounding='rne', int seed=0, bool saturate=False, *, Tensor(a!) out) -> Tensor(a!)");
  m.impl("fake_quant.out", c10::DispatchKey::CPU, TORCH_FN(fake_quant_out));
  // The largest finite value of a scalar format (for per-tensor scaling).
  m.def("format_max(str format) -> float", TORCH_FN(format_max));
  // One fp32 scale per 2-D tile (lowp/tile_kernels.h).
  m.def(
      "fake_quant_tiles(Tensor x, str format, int axis, int tile_rows, int tile_cols, "
      "str rounding='rne', int seed=0) -> Tensor");
  m.impl("fake_quant_tiles", c10::DispatchKey::CPU, TORCH_FN(fake_quant_tiles));
  // a [..., K] x b [N, K]^T summed in a narrow accumulator (lowp/accum_kernels.h).
  m.def(
      "matmul_acc(Tensor a, Tensor b, int mantissa_bits=23, int promote_every=0, "
      "str rounding='rne') -> Tensor");
  m.impl("matmul_acc", c10::DispatchKey::CPU, TORCH_FN(matmul_acc));
  // The memory ceiling for fp32 in and out (lowp.examples.bench_quant).
  m.def("stream_copy(Tensor src, Tensor(a!) dst, bool non_temporal) -> ()");
  m.impl("stream_copy", c10::DispatchKey::CPU, TORCH_FN(stream_copy));
}

}  // namespace lowp::torch_ops
