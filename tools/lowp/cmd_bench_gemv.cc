// `lowp bench gemv [--threads N] [--batch M] [--formats F,...] [--reps N] [--json]`:
// matrix products on packed weights (lowp::PackedMatrix) against FP32
// OpenBLAS in the same run (docs/performance.md describes the method):
//  * GEMV y = W x for a 4096 x 4096 and an 11008 x 4096 W, against cblas_sgemv;
//  * GEMM Y = X W^T for the 4096 x 4096 W and --batch rows of X, against
//    cblas_sgemm.
// OpenBLAS runs with the same thread count (openblas_set_num_threads). Each
// product runs once to warm up, then --reps timed rounds of enough calls to
// last >= 20 ms; the median round gives the time per call. Built without
// OpenBLAS (not found at configure time) the peer rows are missing and the
// output says so.
#include <fmt/core.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "commands.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/kernels.h"
#include "lowp/storage/packed_matrix.h"

#if LOWP_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace lowp::cli {
namespace {

struct GemvOptions {
  unsigned threads = 1;
  std::size_t batch = 128;
  int reps = 5;
  std::string formats =
      "fp32,bf16,fp16,fp8_e4m3,fp8_e5m2,mxfp8_e4m3,mxfp8_e5m2,mxint8,int8:channel,mxfp4,nvfp4,"
      "int4:group32,mx:int4:32,mxfp6_e3m2";
  bool json = false;
  // "wall" (steady clock) or "cpu" (the process's CPU time: on a shared
  // machine it leaves out the time other processes hold the cores).
  std::string clock = "wall";
  std::string activations = "mxfp8_e4m3";  // the GEMM again with X packed in it ("": not)
};

struct Row {
  std::string product;  // "gemv" or "gemm"
  std::size_t rows = 0, cols = 0, batch = 1;
  std::string format;  // "sgemv (OpenBLAS)" / "sgemm (OpenBLAS)" for the peers
  double bits_per_weight = 32;
  std::size_t weight_bytes = 0;
  bool vectorized = true;
  double ns = 0;
  std::optional<double> peer_ns;  // the OpenBLAS time of the same product
  std::string activations;        // X's block format, or "" for fp32
};

std::vector<std::string> split_formats(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(gen);
  return v;
}

void run_bench_gemv(const GemvOptions& o) {
  if (o.threads == 0 || o.reps <= 0 || o.batch == 0) {
    throw Error("bench gemv: --threads, --reps and --batch must be positive");
  }
  if (o.clock != "wall" && o.clock != "cpu") {
    throw Error("bench gemv: --clock must be wall or cpu, not " + o.clock);
  }
  const bool cpu = o.clock == "cpu";
  std::optional<BlockFormat> act_format;
  if (!o.activations.empty()) {
    const MatrixFormat af = parse_matrix_format(o.activations);
    if (af.scheme != MatrixScheme::kBlock) {
      throw Error("bench gemv: --activations needs a block format such as mxfp8_e4m3, not " +
                  o.activations);
    }
    act_format = af.block;
  }
  std::vector<MatrixFormat> formats;
  for (const std::string& name : split_formats(o.formats)) {
    formats.push_back(parse_matrix_format(name));
  }
#if LOWP_HAVE_OPENBLAS
  openblas_set_num_threads(static_cast<int>(o.threads));
  const bool have_blas = true;
#else
  const bool have_blas = false;
#endif
  std::vector<Row> results;
  constexpr std::size_t kCols = 4096;
  const std::vector<float> x = random_values(o.batch * kCols, 2);
  // X in the activation format, quantized once (outside the timing).
  std::optional<PackedTensor> x_packed;
  if (act_format) {
    const std::int64_t shape[2] = {static_cast<std::int64_t>(o.batch),
                                   static_cast<std::int64_t>(kCols)};
    x_packed = quantize(*act_format, x, shape, -1, BlockOptions{});
  }
  for (const std::size_t rows : {std::size_t{4096}, std::size_t{11008}}) {
    const std::vector<float> w = random_values(rows * kCols, 1);
    std::vector<float> y(o.batch * rows);
    const bool with_gemm = rows == 4096;
    std::optional<double> sgemv_ns, sgemm_ns;
#if LOWP_HAVE_OPENBLAS
    const int m = static_cast<int>(rows), k = static_cast<int>(kCols);
    sgemv_ns = time_per_call(
        [&] {
          cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1.0f, w.data(), k, x.data(), 1, 0.0f,
                      y.data(), 1);
        },
        o.reps, cpu);
    results.push_back({"gemv", rows, kCols, 1, "sgemv (OpenBLAS)", 32, rows * kCols * 4, true,
                       *sgemv_ns, sgemv_ns, ""});
    if (with_gemm) {
      const int b = static_cast<int>(o.batch);
      sgemm_ns = time_per_call(
          [&] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, m, k, 1.0f, x.data(), k,
                        w.data(), k, 0.0f, y.data(), m);
          },
          o.reps, cpu);
      results.push_back({"gemm", rows, kCols, o.batch, "sgemm (OpenBLAS)", 32, rows * kCols * 4,
                         true, *sgemm_ns, sgemm_ns, ""});
    }
#endif
    for (const MatrixFormat& f : formats) {
      const PackedMatrix pm = PackedMatrix::quantize(f, w, rows, kCols);
      Row r{"gemv",          rows, kCols,    1, f.name, pm.bits_per_weight(), pm.bytes(),
            pm.vectorized(), 0,    sgemv_ns, ""};
      r.ns = time_per_call([&] { pm.gemv(x.data(), y.data(), o.threads); }, o.reps, cpu);
      results.push_back(r);
      if (with_gemm) {
        r.product = "gemm";
        r.batch = o.batch;
        r.peer_ns = sgemm_ns;
        r.ns = time_per_call([&] { pm.gemm(x.data(), o.batch, y.data(), o.threads); }, o.reps, cpu);
        results.push_back(r);
        if (x_packed) {  // decoding X is part of the time
          r.activations = o.activations;
          r.ns = time_per_call([&] { pm.gemm(*x_packed, y.data(), o.threads); }, o.reps, cpu);
          results.push_back(r);
        }
      }
    }
  }

  const std::string target = kernels::target_name(kernels::current_target());
  auto gflops = [](const Row& r) {
    return 2.0 * static_cast<double>(r.rows * r.cols * r.batch) / r.ns;
  };
  auto gbps = [](const Row& r) { return static_cast<double>(r.weight_bytes) / r.ns; };
  if (o.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Row& r : results) {
      nlohmann::json j = {{"product", r.product},
                          {"rows", r.rows},
                          {"cols", r.cols},
                          {"batch", r.batch},
                          {"format", r.format},
                          {"activations", r.activations.empty() ? "fp32" : r.activations},
                          {"bits_per_weight", r.bits_per_weight},
                          {"weight_bytes", r.weight_bytes},
                          {"vectorized", r.vectorized},
                          {"ns_per_call", r.ns},
                          {"weight_gb_per_s", gbps(r)},
                          {"gflop_per_s", gflops(r)}};
      j["speedup_vs_openblas"] =
          r.peer_ns ? nlohmann::json(*r.peer_ns / r.ns) : nlohmann::json(nullptr);
      rows.push_back(j);
    }
    const nlohmann::json out = {{"target", target}, {"threads", o.threads}, {"openblas", have_blas},
                                {"reps", o.reps},   {"clock", o.clock},     {"results", rows}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("target {}, {} thread(s) (OpenBLAS too), median of {} rounds, {} clock\n", target,
             o.threads, o.reps, o.clock);
  if (!have_blas) {
    fmt::print("OpenBLAS was not found at configure time: no sgemv/sgemm peer, no speedups\n");
  }
  fmt::print("{:<5} {:<13} {:<24} {:>6} {:>12} {:>9} {:>9} {:>9}\n", "", "shape", "format", "bits",
             "us/call", "GB/s", "GFLOP/s", "speedup");
  for (const Row& r : results) {
    const std::string shape = r.product == "gemm" ? fmt::format("{}x{}x{}", r.batch, r.rows, r.cols)
                                                  : fmt::format("{}x{}", r.rows, r.cols);
    const std::string speedup = r.peer_ns ? fmt::format("{:.2f}", *r.peer_ns / r.ns) : "-";
    const std::string name = r.activations.empty() ? r.format : r.format + " x " + r.activations;
    fmt::print("{:<5} {:<13} {:<24} {:>6.2f} {:>12.1f} {:>9.2f} {:>9.1f} {:>9}{}\n", r.product,
               shape, name, r.bits_per_weight, r.ns / 1e3, gbps(r), gflops(r), speedup,
               r.vectorized ? "" : "  (generic path)");
  }
  fmt::print(
      "GB/s: weight bytes (codes + scales) per second; speedup: OpenBLAS FP32 time / this time; "
      "W x A: X given in block format A\n");
}

}  // namespace

void add_bench_gemv_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "gemv", "Matrix-vector and matrix-matrix products on packed weights vs OpenBLAS FP32");
  auto o = std::make_shared<GemvOptions>();
  cmd->add_option("--threads", o->threads, "Threads (lowp and OpenBLAS)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "Rows of X in the GEMM")->capture_default_str();
  cmd->add_option("--formats", o->formats, "Comma-separated weight formats")->capture_default_str();
  cmd->add_option("--reps", o->reps, "Timed rounds per product (the median is reported)")
      ->capture_default_str();
  cmd->add_option("--clock", o->clock,
                  "wall, or cpu: process CPU time divided by nothing (use with --threads 1 on a "
                  "busy machine)")
      ->capture_default_str();
  cmd->add_option("--activations", o->activations,
                  "Also time each GEMM with X packed in this block format (decoded exactly "
                  "inside the timing; \"\" for none)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
  cmd->callback([o] { run_bench_gemv(*o); });
}

}  // namespace lowp::cli
