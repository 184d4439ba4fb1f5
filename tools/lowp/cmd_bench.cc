// `lowp bench [--threads N] [--elements N] [--reps N] [--json]`: throughput of
// the bulk kernels (lowp/kernels.h) against bandwidth ceilings that move the
// same bytes with trivial work (docs/performance.md describes the method).
//
// Each kernel runs once to warm up, then --reps times over pre-faulted buffers;
// the median time per element is reported, with the bytes moved per second
// (input + output) and the ceiling's time divided by the kernel's (1 = at the
// ceiling).
#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "lowp/block/block_format.h"
#include "lowp/block/mx.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace lowp::cli {
namespace {

// 64-byte aligned arrays: the ceiling's non-temporal stores need aligned
// output, and every kernel then sees the same alignment.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete (p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const Aligned64<U>&) const {
    return true;
  }
};
template <class T>
using Array = std::vector<T, Aligned64<T>>;

struct Options {
  unsigned threads = 1;
  std::size_t elements = std::size_t{64} << 20;
  int reps = 7;
  bool json = false;
};

struct Result {
  std::string name;
  std::string ceiling;  // the row it is compared with ("" for a ceiling)
  std::string variant;  // a ceiling's fastest variant
  double bytes_per_element = 0;
  double ns_per_element = 0;
};

double median_ns_per_element(const std::function<void()>& run, std::size_t elements, int reps) {
  run();  // warm-up
  std::vector<double> ns;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    const auto stop = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(stop - start).count() /
                 static_cast<double>(elements));
  }
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

void run_bench(const Options& o) {
  if (o.elements == 0 || o.threads == 0 || o.reps <= 0) {
    throw Error("bench: --elements, --threads and --reps must be positive");
  }
  const std::size_t n = o.elements;
  // Value-initialised vectors: every page is written (faulted) before timing.
  // Inputs: a deterministic spread of magnitudes around 1 with both signs, as
  // weights and activations have.
  Array<float> in(n);
  std::uint32_t state = 12345;
  for (auto& v : in) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<float>(static_cast<std::int32_t>(state)) * 0x1p-29f;
  }
  Array<std::uint8_t> out8(n), codes8(n);
  Array<std::uint16_t> out16(n), codes16(n);
  Array<float> out32(n);
  const unsigned t = o.threads;
  std::vector<Result> results;
  auto bench = [&](std::string name, std::string ceiling, double bytes,
                   const std::function<void()>& fn) {
    results.push_back(
        {std::move(name), std::move(ceiling), "", bytes, median_ns_per_element(fn, n, o.reps)});
  };
  // A ceiling: the fastest of the stream variants (kernels::stream_ceiling).
  auto ceiling = [&](std::string name, const void* from, double in_bytes, void* to,
                     double out_bytes) {
    Result best{std::move(name), "", "", in_bytes + out_bytes, 0};
    for (const bool nt : {false, true}) {
      for (const bool half : {false, true}) {
        const double ns = median_ns_per_element(
            [&] {
              kernels::stream_ceiling(from, in_bytes, to, out_bytes, n, {nt, half}, t);
            },
            n, o.reps);
        if (best.ns_per_element == 0 || ns < best.ns_per_element) {
          best.ns_per_element = ns;
          best.variant = fmt::format("{} stores, {} vectors", nt ? "non-temporal" : "regular",
                                     half ? "half-width" : "widest");
        }
      }
    }
    results.push_back(best);
  };
  ceiling("ceiling f32->u8", in.data(), 4, out8.data(), 1);
  ceiling("ceiling f32->u16", in.data(), 4, out16.data(), 2);
  ceiling("ceiling u8->f32", codes8.data(), 1, out32.data(), 4);
  ceiling("ceiling u16->f32", codes16.data(), 2, out32.data(), 4);
  ceiling("ceiling f32->u6", in.data(), 4, out8.data(), 0.75);
  ceiling("ceiling f32->u4", in.data(), 4, out8.data(), 0.5);
  ceiling("ceiling u6->f32", codes8.data(), 0.75, out32.data(), 4);
  ceiling("ceiling u4->f32", codes8.data(), 0.5, out32.data(), 4);
  for (const char* name : {"fp8_e4m3", "fp8_e5m2", "bf16", "fp16"}) {
    const Format f = parse_format(name);
    const bool wide = code_bytes(f) == 2;
    void* codes = wide ? static_cast<void*>(codes16.data()) : static_cast<void*>(codes8.data());
    const int bytes = 4 + code_bytes(f);
    bench(fmt::format("encode {}", name), wide ? "ceiling f32->u16" : "ceiling f32->u8", bytes,
          [&] { encode_f32(f, in, codes, {}, 0, 0, t); });
    bench(fmt::format("encode {} stochastic", name), wide ? "ceiling f32->u16" : "ceiling f32->u8",
          bytes, [&] {
            encode_f32(f, in, codes, {Rounding::kStochastic, false}, 42, 0, t);
          });
    bench(fmt::format("decode {}", name), wide ? "ceiling u16->f32" : "ceiling u8->f32", bytes,
          [&] { decode_to_f32(f, codes, out32, t); });
  }

  // 16-bit arrays: bf16 in (the top halves of `in`), bf16 out. Their ceilings
  // move 2 bytes in and 1 out per value, or 1 in and 2 out.
  Array<std::uint16_t> in_bf16(n);
  for (std::size_t i = 0; i < n; ++i) {
    in_bf16[i] = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(in[i]) >> 16);
  }
  ceiling("ceiling u16->u8", in_bf16.data(), 2, out8.data(), 1);
  ceiling("ceiling u8->u16", codes8.data(), 1, out16.data(), 2);
  {
    const Format e4m3 = kFp8E4m3;
    bench("encode fp8_e4m3 from bf16", "ceiling u16->u8", 3,
          [&] { encode_bf16(e4m3, in_bf16, codes8.data(), {}, 0, 0, t); });
    bench("decode fp8_e4m3 to bf16", "ceiling u8->u16", 3,
          [&] { decode_to_bf16(e4m3, codes8.data(), out16, t); });
  }

  // Block formats: rows of kRowLength values (the last axis of a weight
  // matrix), floor scale rule, nearest-even; the packed elements and the scale
  // bytes both count as bytes moved. The ceiling is the one for the element
  // width (scale bytes are 1/k byte more per value, not in the ceiling).
  constexpr std::size_t kRowLength = 4096;
  const std::size_t blocked_n = n / kRowLength * kRowLength;
  if (blocked_n > 0) {
    const std::span<const float> blocked_in(in.data(), blocked_n);
    const std::span<float> blocked_out(out32.data(), blocked_n);
    std::vector<std::uint8_t> scales(blocked_n / 16);
    for (const NamedBlockFormat& nb : block_registry()) {
      const BlockFormat& f = nb.format;
      const int bits = f.element.bits;
      const double bytes = 4.0 + bits / 8.0 + 1.0 / f.block_size;
      const std::string encode_ceiling = bits == 8   ? "ceiling f32->u8"
                                         : bits == 6 ? "ceiling f32->u6"
                                                     : "ceiling f32->u4";
      const std::string decode_ceiling = bits == 8   ? "ceiling u8->f32"
                                         : bits == 6 ? "ceiling u6->f32"
                                                     : "ceiling u4->f32";
      BlockOptions opt;
      opt.threads = t;
      const bool nvfp4 = f.scale == BlockScale::kUe4m3;
      const float ts = nvfp4 ? nvfp4_tensor_scale(finite_amax(blocked_in, t)) : 1.0f;
      if (nvfp4) {
        // The whole job reads the input twice (tensor amax, then blocks).
        bench(fmt::format("quantize {}", nb.name), encode_ceiling, bytes + 4, [&] {
          const float scale = nvfp4_tensor_scale(finite_amax(blocked_in, t));
          quantize_blocked(f, blocked_in, kRowLength, scale, opt, codes8.data(), scales.data());
        });
      }
      bench(fmt::format(fmt::runtime(nvfp4 ? "quantize {} (tensor scale given)" : "quantize {}"),
                        nb.name),
            encode_ceiling, bytes, [&] {
              quantize_blocked(f, blocked_in, kRowLength, ts, opt, codes8.data(), scales.data());
            });
      if (nb.name == "mxfp4") {
        BlockOptions rceil = opt;
        rceil.scale_rule = ScaleRule::kRceil;
        bench("quantize mxfp4 rceil", encode_ceiling, bytes, [&] {
          quantize_blocked(f, blocked_in, kRowLength, ts, rceil, codes8.data(), scales.data());
        });
      }
      bench(fmt::format("dequantize {}", nb.name), decode_ceiling, bytes, [&] {
        dequantize_blocked(f, codes8.data(), scales.data(), ts, kRowLength, blocked_out, t);
      });
      if (nb.name == "mxfp8_e4m3") {
        const std::span<const std::uint16_t> blocked_bf16(in_bf16.data(), blocked_n);
        const double bytes16 = 2.0 + 1.0 + 1.0 / f.block_size;
        bench("quantize mxfp8_e4m3 from bf16", "ceiling u16->u8", bytes16, [&] {
          quantize_blocked_bf16(f, blocked_bf16, kRowLength, ts, opt, codes8.data(), scales.data());
        });
        bench("dequantize mxfp8_e4m3 to bf16", "ceiling u8->u16", bytes16, [&] {
          dequantize_blocked_to_bf16(f, codes8.data(), scales.data(), ts, kRowLength,
                                     std::span<std::uint16_t>(out16.data(), blocked_n), t);
        });
      }
    }
  }

  auto ceiling_ns = [&](const Result& r) {
    for (const Result& c : results) {
      if (c.name == r.ceiling) return c.ns_per_element;
    }
    return r.ns_per_element;
  };
  const std::string target = kernels::target_name(kernels::current_target());
  if (o.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Result& r : results) {
      rows.push_back({{"kernel", r.name},
                      {"ns_per_element", r.ns_per_element},
                      {"gb_per_s", r.bytes_per_element / r.ns_per_element},
                      {"ceiling", r.ceiling},
                      {"variant", r.variant},
                      {"ratio_to_ceiling", ceiling_ns(r) / r.ns_per_element}});
    }
    nlohmann::json out = {{"target", target},
                          {"threads", o.threads},
                          {"elements", o.elements},
                          {"reps", o.reps},
                          {"results", rows}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("target {}, {} thread(s), {} elements, median of {} runs\n", target, o.threads,
             o.elements, o.reps);
  fmt::print("{:<40} {:>9} {:>8} {:>10}\n", "kernel", "ns/elem", "GB/s", "vs ceiling");
  for (const Result& r : results) {
    fmt::print("{:<40} {:>9.3f} {:>8.2f} {:>10.2f}{}\n", r.name, r.ns_per_element,
               r.bytes_per_element / r.ns_per_element, ceiling_ns(r) / r.ns_per_element,
               r.variant.empty() ? "" : "  (" + r.variant + ")");
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench",
                                 "Measure the bulk encode/decode kernels "
                                 "against memory-bandwidth ceilings");
  auto o = std::make_shared<Options>();
  cmd->add_option("--threads", o->threads, "Threads per kernel call")->capture_default_str();
  cmd->add_option("--elements", o->elements, "Elements per array (default 64 Mi)")
      ->capture_default_str();
  cmd->add_option("--reps", o->reps, "Timed repetitions per kernel (the median is reported)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
  add_bench_gemv_command(*cmd);
  add_bench_llama_command(*cmd);
  add_bench_posit_command(*cmd);
  add_bench_file_command(*cmd);
  add_bench_storage_command(*cmd);
  add_bench_sort_command(*cmd);
  cmd->require_subcommand(0, 1);
  // `lowp bench gemv` runs its own callback only.
  cmd->callback([o, cmd] {
    if (cmd->get_subcommands().empty()) run_bench(*o);
  });
}

}  // namespace lowp::cli
