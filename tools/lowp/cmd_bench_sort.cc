// `lowp bench sort [--type int64|float64] [--min-size N] [--max-size N]
// [--dists uniform,skewed,clustered] [--reps N] [--clock wall|cpu] [--json]`:
// ARC sort (lowp/numeracy/sort.h) against std::sort, lowp's LSD radix sort
// and Highway's vqsort (hwy::Sorter, Debian libhwy-dev's hwy_contrib), all
// single-threaded, in the same run, on sizes 10^k from --min-size to
// --max-size and three seeded distributions:
//  * uniform   int64: every 64-bit pattern equally likely (almost all values
//              have 18 or 19 digits); float64: uniform in [-1e9, 1e9];
//  * skewed    log-uniform magnitudes with random signs: int64 |x| =
//              floor(10^u), u uniform in [0, 18); float64 10^u, u in [-18, 18);
//  * clustered 90% uniform in [10^6, 10^7) (one digit count), 10% skewed.
// Each sort runs on a fresh copy of the input; the best of --reps runs (at
// most 3 from 10^7 elements, 1 from 10^8) gives ns per element, and each
// method's ratio is std::sort's time divided by its own (> 1: faster than
// std::sort). Every method's output is checked against std::sort's.
#include <fmt/core.h>
#include <hwy/contrib/sort/vqsort.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
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
#include "lowp/numeracy/sort.h"

namespace lowp::cli {
namespace {

struct SortOptions {
  std::string type = "int64";
  std::size_t min_size = 1000;
  std::size_t max_size = 10'000'000;
  std::string dists = "uniform,skewed,clustered";
  int reps = 5;
  std::string clock = "wall";
  bool json = false;
};

struct SortRow {
  std::size_t size = 0;
  std::string dist, method;
  int reps = 0;
  double ns_per_element = 0;
  double vs_std_sort = 0;
};

template <typename T>
std::vector<T> make_input(const std::string& dist, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<T> v(n);
  const auto skewed = [&]() -> T {
    const double sign = (gen() & 1) ? -1.0 : 1.0;
    if constexpr (std::is_floating_point_v<T>) {
      return static_cast<T>(sign * std::pow(10.0, 36 * unit(gen) - 18));
    } else {
      return static_cast<T>(sign * std::floor(std::pow(10.0, 18 * unit(gen))));
    }
  };
  for (T& x : v) {
    if (dist == "uniform") {
      if constexpr (std::is_floating_point_v<T>) {
        x = static_cast<T>(-1e9 + 2e9 * unit(gen));
      } else {
        x = static_cast<T>(gen());
      }
    } else if (dist == "skewed") {
      x = skewed();
    } else {  // clustered
      x = gen() % 10 == 0 ? skewed() : static_cast<T>(1e6 + std::floor(9e6 * unit(gen)));
    }
  }
  return v;
}

template <typename T>
void bench_type(const SortOptions& o, const std::vector<std::string>& dists,
                std::vector<SortRow>& rows) {
  const bool cpu = o.clock == "cpu";
  const hwy::Sorter vqsort;
  struct Method {
    std::string name;
    std::function<void(std::vector<T>&)> sort;
  };
  const std::vector<Method> methods = {
      {"std::sort", [](std::vector<T>& v) { std::sort(v.begin(), v.end()); }},
      {"ARC sort", [](std::vector<T>& v) { numeracy::arc_sort(std::span<T>(v)); }},
      {"lowp radix", [](std::vector<T>& v) { numeracy::radix_sort(std::span<T>(v)); }},
      {"hwy vqsort", [&](std::vector<T>& v) { vqsort(v.data(), v.size(), hwy::SortAscending()); }},
  };
  for (std::size_t n = o.min_size; n <= o.max_size; n *= 10) {
    const int reps = n >= 100'000'000 ? 1 : n >= 10'000'000 ? std::min(o.reps, 3) : o.reps;
    for (const std::string& dist : dists) {
      const std::vector<T> input = make_input<T>(dist, n, n * 1000003 + dist.size());
      std::vector<T> reference;
      std::vector<T> work(n);
      double std_ns = 0;
      for (const Method& m : methods) {
        double best = 0;
        for (int r = 0; r < reps; ++r) {
          std::copy(input.begin(), input.end(), work.begin());
          const double start = now_ns(cpu);
          m.sort(work);
          const double ns = (now_ns(cpu) - start) / static_cast<double>(n);
          if (r == 0 || ns < best) best = ns;
        }
        if (reference.empty()) {
          reference = work;
          std_ns = best;
        } else if (work != reference) {
          throw std::logic_error("bench sort: " + m.name + " sorted " + dist +
                                 " n=" + std::to_string(n) + " differently from std::sort");
        }
        rows.push_back({n, dist, m.name, reps, best, std_ns / best});
      }
    }
  }
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void run_bench_sort(const SortOptions& o) {
  if (o.type != "int64" && o.type != "float64") {
    throw Error("bench sort: --type must be int64 or float64, not " + quoted(o.type));
  }
  if (o.clock != "wall" && o.clock != "cpu") {
    throw Error("bench sort: --clock must be wall or cpu, not " + quoted(o.clock));
  }
  if (o.reps <= 0 || o.min_size == 0 || o.max_size < o.min_size) {
    throw Error("bench sort: --reps and --min-size must be positive and --max-size >= --min-size");
  }
  if (o.max_size > 1'000'000'000) throw Error("bench sort: --max-size is at most 1e9");
  const std::vector<std::string> dists = split_list(o.dists);
  if (dists.empty()) throw Error("bench sort: --dists names no distribution");
  for (const std::string& d : dists) {
    if (d != "uniform" && d != "skewed" && d != "clustered") {
      throw Error("bench sort: unknown distribution " + quoted(d) +
                  " (uniform, skewed or clustered)");
    }
  }
  std::vector<SortRow> rows;
  if (o.type == "int64") {
    bench_type<std::int64_t>(o, dists, rows);
  } else {
    bench_type<double>(o, dists, rows);
  }
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const SortRow& r : rows) {
      out.push_back({{"type", o.type},
                     {"size", r.size},
                     {"dist", r.dist},
                     {"method", r.method},
                     {"reps", r.reps},
                     {"clock", o.clock},
                     {"ns_per_element", r.ns_per_element},
                     {"vs_std_sort", r.vs_std_sort}});
    }
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{} keys, one thread, {} clock, best of up to {} runs; x = std::sort time / time\n",
             o.type, o.clock, o.reps);
  fmt::print("{:>11} {:<10} {:<11} {:>9} {:>7}\n", "size", "dist", "method", "ns/elem", "x std");
  for (const SortRow& r : rows) {
    fmt::print("{:>11} {:<10} {:<11} {:>9.2f} {:>7.2f}\n", r.size, r.dist, r.method,
               r.ns_per_element, r.vs_std_sort);
  }
}

}  // namespace

void add_bench_sort_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "sort",
      "ARC sort (digit-count buckets) against std::sort, lowp's radix sort and Highway's vqsort");
  auto o = std::make_shared<SortOptions>();
  cmd->add_option("--type", o->type, "Key type: int64 or float64")->capture_default_str();
  cmd->add_option("--min-size", o->min_size, "Smallest array (sizes go up by 10x)")
      ->capture_default_str();
  cmd->add_option("--max-size", o->max_size, "Largest array")->capture_default_str();
  cmd->add_option("--dists", o->dists, "Distributions: uniform, skewed, clustered")
      ->capture_default_str();
  cmd->add_option("--reps", o->reps,
                  "Runs per sort, the best reported (at most 3 from 1e7, 1 from 1e8)")
      ->capture_default_str();
  cmd->add_option("--clock", o->clock,
                  "wall (steady clock) or cpu (process CPU time; steadier on a shared machine)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
  cmd->callback([o] { run_bench_sort(*o); });
}

}  // namespace lowp::cli
