// `lowp bench posit [--sizes N,...] [--threads N] [--reps N] [--clock wall|cpu] [--json]`:
// when does compressed weight storage win? A GEMV y = W x on square N x N
// matrices (from cache-resident to far beyond the last-level cache), in one
// run:
//  * fp32 weights (the baseline);
//  * bf16, posit16 and posit8 weights decoded to fp32 in vector registers just
//    before the FMA (lowp/register_gemv.h): bf16 by a shift, posit16
//    arithmetically and by a 65,536-entry table gather, posit8 by a 256-entry
//    table gather;
//  * posit16 and posit8 weights decoded to an fp32 matrix in memory first
//    (lowp::decode_to_f32), then the fp32 GEMV, both inside the timing;
//  * the machine's read bandwidth ceiling (kernels::stream_ceiling, 4 bytes
//    read and 0.5 written per element, over the largest matrix's fp32 bytes).
// Each row reports the time per GEMV, the weight bytes streamed per second
// (stored bytes: 4, 2 or 1 per weight), the fp32 GEMV's time over this one
// (speedup), and GB/s over the ceiling's. docs/posits.md has a run and its
// reading.
#include <fmt/core.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "commands.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/kernels.h"
#include "lowp/register_gemv.h"
#include "lowp/thread_pool.h"

namespace lowp::cli {
namespace {

using kernels::RegisterDecode;
using kernels::RegisterGemv;

struct PositBenchOptions {
  std::string sizes = "256,1024,2048,4096,8192";
  unsigned threads = 1;
  int reps = 5;
  std::string clock = "wall";
  bool json = false;
};

std::vector<std::size_t> parse_sizes(const std::string& list) {
  std::vector<std::size_t> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t n = 0, used = 0;
    try {
      n = std::stoul(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || n < 1 || n > 32768) {
      throw Error("bench posit: --sizes takes matrix sizes 1..32768 separated by commas, not " +
                  quoted(item));
    }
    out.push_back(n);
  }
  if (out.empty()) throw Error("bench posit: --sizes is empty");
  return out;
}

struct Row {
  std::size_t n = 0;
  std::string path;
  double bytes_per_weight = 4;
  double ns = 0;
};

void run_bench_posit(const PositBenchOptions& o) {
  if (o.threads == 0 || o.reps <= 0)
    throw Error("bench posit: --threads and --reps must be positive");
  if (o.clock != "wall" && o.clock != "cpu") {
    throw Error("bench posit: --clock must be wall or cpu, not " + quoted(o.clock));
  }
  const bool cpu = o.clock == "cpu";
  const std::vector<std::size_t> sizes = parse_sizes(o.sizes);
  const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());

  std::vector<float> t16(65536), t8(256);
  for (std::uint32_t c = 0; c < t16.size(); ++c) t16[c] = decode_f32(kPosit16, c);
  for (std::uint32_t c = 0; c < t8.size(); ++c) t8[c] = decode_f32(kPosit8, c);

  std::vector<Row> rows;
  std::mt19937 gen(2022);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (const std::size_t n : sizes) {
    const std::size_t count = n * n;
    std::vector<float> w32(count), x(n), y(n), decoded(count);
    for (float& v : w32) v = normal(gen);
    for (float& v : x) v = normal(gen);
    std::vector<std::uint16_t> wb(count), w16(count);
    std::vector<std::uint8_t> w8(count);
    encode_f32(kBf16, w32, wb.data(), {}, 0, 0, o.threads);
    encode_f32(kPosit16, w32, w16.data(), {}, 0, 0, o.threads);
    encode_f32(kPosit8, w32, w8.data(), {}, 0, 0, o.threads);
    auto gemv = [&](const RegisterGemv& g, const void* w) {
      parallel_for(n, o.threads, 1, [&](std::size_t r0, std::size_t r1) {
        kernels::register_gemv(g, w, n, x.data(), y.data(), r0, r1);
      });
    };
    auto add = [&](std::string path, double bytes, const std::function<void()>& call) {
      rows.push_back({n, std::move(path), bytes, time_per_call(call, o.reps, cpu)});
    };
    const RegisterGemv f32{RegisterDecode::kF32, kFp32, nullptr};
    add("fp32", 4, [&] { gemv(f32, w32.data()); });
    add("bf16 in registers", 2, [&] { gemv({RegisterDecode::kBf16, kBf16, nullptr}, wb.data()); });
    add("posit16 in registers (arithmetic)", 2, [&] {
      gemv({RegisterDecode::kPosit16, kPosit16, nullptr}, w16.data());
    });
    add("posit16 in registers (64K table)", 2, [&] {
      gemv({RegisterDecode::kPosit16Table, kPosit16, t16.data()}, w16.data());
    });
    add("posit8 in registers (256 table)", 1, [&] {
      gemv({RegisterDecode::kPosit8Table, kPosit8, t8.data()}, w8.data());
    });
    add("posit16 to fp32 memory, then fp32", 2, [&] {
      decode_to_f32(kPosit16, w16.data(), decoded, o.threads);
      gemv(f32, decoded.data());
    });
    add("posit8 to fp32 memory, then fp32", 1, [&] {
      decode_to_f32(kPosit8, w8.data(), decoded, o.threads);
      gemv(f32, decoded.data());
    });
  }

  // The ceiling: 4 bytes read and 0.5 written per element over the largest
  // matrix's fp32 weights, the fastest variant.
  const std::size_t elements = largest * largest;
  std::vector<float> in(elements, 1.0f);
  std::vector<std::uint8_t> out(elements / 2 + 64);
  double ceiling_ns = 0;
  for (const bool nt : {false, true}) {
    for (const bool half : {false, true}) {
      // Non-temporal stores need aligned output.
      std::uint8_t* to = out.data() + (64 - reinterpret_cast<std::uintptr_t>(out.data()) % 64) % 64;
      const double ns = time_per_call(
          [&] {
            kernels::stream_ceiling(in.data(), 4, to, 0.5, elements, {nt, half}, o.threads);
          },
          o.reps, cpu);
      if (ceiling_ns == 0 || ns < ceiling_ns) ceiling_ns = ns;
    }
  }
  const double ceiling_gbs = 4.5 * static_cast<double>(elements) / ceiling_ns;

  auto fp32_ns = [&](std::size_t n) {
    for (const Row& r : rows) {
      if (r.n == n && r.path == "fp32") return r.ns;
    }
    return 0.0;
  };
  if (o.json) {
    nlohmann::ordered_json j;
    j["threads"] = o.threads;
    j["clock"] = o.clock;
    j["target"] = kernels::target_name(kernels::current_target());
    j["ceiling_gb_per_s"] = ceiling_gbs;
    j["rows"] = nlohmann::ordered_json::array();
    for (const Row& r : rows) {
      const double gbs = r.bytes_per_weight * static_cast<double>(r.n * r.n) / r.ns;
      j["rows"].push_back({{"n", r.n},
                           {"path", r.path},
                           {"bytes_per_weight", r.bytes_per_weight},
                           {"us", r.ns / 1e3},
                           {"gb_per_s", gbs},
                           {"speedup_vs_fp32", fp32_ns(r.n) / r.ns},
                           {"of_ceiling", gbs / ceiling_gbs}});
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("target {}, {} thread(s), {} clock; read ceiling {:.1f} GB/s ({}x{} fp32)\n",
             kernels::target_name(kernels::current_target()), o.threads, o.clock, ceiling_gbs,
             largest, largest);
  fmt::print("{:>6} {:<36} {:>11} {:>8} {:>8} {:>8}\n", "N", "weights", "us/GEMV", "GB/s",
             "speedup", "ceiling");
  for (const Row& r : rows) {
    const double gbs = r.bytes_per_weight * static_cast<double>(r.n * r.n) / r.ns;
    fmt::print("{:>6} {:<36} {:>11.1f} {:>8.2f} {:>8.2f} {:>8.2f}\n", r.n, r.path, r.ns / 1e3, gbs,
               fp32_ns(r.n) / r.ns, gbs / ceiling_gbs);
  }
  fmt::print(
      "GB/s: stored weight bytes per second; speedup: the fp32 GEMV's time / this time; ceiling: "
      "GB/s / the read ceiling's\n");
}

}  // namespace

void add_bench_posit_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "posit",
      "GEMV with bf16/posit16/posit8 weights decoded in registers vs decoded to memory vs fp32");
  auto o = std::make_shared<PositBenchOptions>();
  cmd->add_option("--sizes", o->sizes, "Square matrix sizes N, comma-separated")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads")->capture_default_str();
  cmd->add_option("--reps", o->reps, "Timed rounds per product (the median is reported)")
      ->capture_default_str();
  cmd->add_option("--clock", o->clock, "wall, or cpu: process CPU time (a busy machine)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
  cmd->callback([o] { run_bench_posit(*o); });
}

}  // namespace lowp::cli
