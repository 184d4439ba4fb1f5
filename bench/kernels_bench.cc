// Google Benchmark suite for the bulk kernels: scalar encode/decode
// (lowp/kernels.h) and block quantize/dequantize (lowp/block_kernels.h), each
// over Arg(0) fp32 values (default 16 Mi, out of cache) and Arg(1) threads.
// Bytes processed count input plus output, so Google Benchmark's
// bytes_per_second compares directly with the memory ceilings that `lowp
// bench` measures (the fastest of its streaming variants).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/block_kernels.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace {

constexpr std::size_t kRowLength = 4096;

// Pre-faulted buffers shared by all benchmarks of one size.
struct Buffers {
  std::vector<float> in, out;
  std::vector<std::uint8_t> bytes, scales;
  std::vector<std::uint16_t> words;
  explicit Buffers(std::size_t n) : in(n), out(n), bytes(n), scales(n / 16 + 1), words(n) {
    std::uint32_t state = 12345;
    for (auto& v : in) {
      state = state * 1664525u + 1013904223u;
      v = static_cast<float>(static_cast<std::int32_t>(state)) * 0x1p-29f;
    }
  }
};

Buffers& buffers(std::size_t n) {
  static std::size_t size = 0;
  static Buffers* b = nullptr;
  if (size != n) {
    delete b;
    b = new Buffers(n);
    size = n;
  }
  return *b;
}

template <class Fn>
void run(benchmark::State& state, double bytes_per_value, Fn&& fn) {
  const auto n = static_cast<std::size_t>(state.range(0)) / kRowLength * kRowLength;
  const auto threads = static_cast<unsigned>(state.range(1));
  Buffers& b = buffers(n);
  fn(b, n, threads);  // warm-up
  for (auto _ : state) {
    fn(b, n, threads);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) *
                                                    static_cast<double>(n) * bytes_per_value));
}

void Args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) b->Args({16 << 20, threads});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

void BM_Encode(benchmark::State& s, const char* name) {
  const lowp::Format f = lowp::parse_format(name);
  const int width = lowp::code_bytes(f);
  run(s, 4 + width, [&](Buffers& b, std::size_t n, unsigned t) {
    void* codes =
        width == 1 ? static_cast<void*>(b.bytes.data()) : static_cast<void*>(b.words.data());
    lowp::encode_f32(f, {b.in.data(), n}, codes, {}, 0, 0, t);
  });
}
void BM_Decode(benchmark::State& s, const char* name) {
  const lowp::Format f = lowp::parse_format(name);
  const int width = lowp::code_bytes(f);
  run(s, 4 + width, [&](Buffers& b, std::size_t n, unsigned t) {
    const void* codes = width == 1 ? static_cast<const void*>(b.bytes.data())
                                   : static_cast<const void*>(b.words.data());
    lowp::decode_to_f32(f, codes, {b.out.data(), n}, t);
  });
}
BENCHMARK_CAPTURE(BM_Encode, fp8_e4m3, "fp8_e4m3")->Apply(Args);
BENCHMARK_CAPTURE(BM_Encode, bf16, "bf16")->Apply(Args);
BENCHMARK_CAPTURE(BM_Encode, fp16, "fp16")->Apply(Args);
BENCHMARK_CAPTURE(BM_Decode, fp8_e4m3, "fp8_e4m3")->Apply(Args);
BENCHMARK_CAPTURE(BM_Decode, bf16, "bf16")->Apply(Args);

lowp::BlockFormat block_format(const char* name) {
  lowp::BlockFormat f;
  lowp::parse_block_format(name, f);
  return f;
}
double block_bytes(const lowp::BlockFormat& f) {
  return 4.0 + f.element.bits / 8.0 + 1.0 / f.block_size;
}

void BM_Quantize(benchmark::State& s, const char* name) {
  const lowp::BlockFormat f = block_format(name);
  run(s, block_bytes(f), [&](Buffers& b, std::size_t n, unsigned t) {
    lowp::BlockOptions opt;
    opt.threads = t;
    const std::span<const float> in(b.in.data(), n);
    const float ts = f.scale == lowp::BlockScale::kUe4m3
                         ? lowp::nvfp4_tensor_scale(lowp::finite_amax(in, t))
                         : 1.0f;
    lowp::quantize_blocked(f, in, kRowLength, ts, opt, b.bytes.data(), b.scales.data());
  });
}
void BM_Dequantize(benchmark::State& s, const char* name) {
  const lowp::BlockFormat f = block_format(name);
  run(s, block_bytes(f), [&](Buffers& b, std::size_t n, unsigned t) {
    lowp::dequantize_blocked(f, b.bytes.data(), b.scales.data(), 1.0f, kRowLength,
                             {b.out.data(), n}, t);
  });
}
BENCHMARK_CAPTURE(BM_Quantize, mxfp8_e4m3, "mxfp8_e4m3")->Apply(Args);
BENCHMARK_CAPTURE(BM_Quantize, mxfp6_e3m2, "mxfp6_e3m2")->Apply(Args);
BENCHMARK_CAPTURE(BM_Quantize, mxfp4, "mxfp4")->Apply(Args);
BENCHMARK_CAPTURE(BM_Quantize, mxint8, "mxint8")->Apply(Args);
BENCHMARK_CAPTURE(BM_Quantize, nvfp4, "nvfp4")->Apply(Args);
BENCHMARK_CAPTURE(BM_Dequantize, mxfp8_e4m3, "mxfp8_e4m3")->Apply(Args);
BENCHMARK_CAPTURE(BM_Dequantize, mxfp6_e3m2, "mxfp6_e3m2")->Apply(Args);
BENCHMARK_CAPTURE(BM_Dequantize, mxfp4, "mxfp4")->Apply(Args);
BENCHMARK_CAPTURE(BM_Dequantize, mxint8, "mxint8")->Apply(Args);
BENCHMARK_CAPTURE(BM_Dequantize, nvfp4, "nvfp4")->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
