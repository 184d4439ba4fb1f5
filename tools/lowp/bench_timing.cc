// Timing for the `lowp bench` subcommands (bench_timing.h).
#include "bench_timing.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace lowp::cli {

double now_ns(bool cpu) {
  if (cpu) {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
  }
  return std::chrono::duration<double, std::nano>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Median over `reps` rounds of the time per call; a round repeats the call
// until it has lasted >= 20 ms.
double time_per_call(const std::function<void()>& call, int reps, bool cpu) {
  call();  // warm-up
  std::size_t calls = 1;
  for (;;) {
    const double start = now_ns(cpu);
    for (std::size_t i = 0; i < calls; ++i) call();
    if (now_ns(cpu) - start >= 20e6 || calls >= (std::size_t{1} << 20)) break;
    calls *= 2;
  }
  std::vector<double> per_call;
  for (int r = 0; r < reps; ++r) {
    const double start = now_ns(cpu);
    for (std::size_t i = 0; i < calls; ++i) call();
    per_call.push_back((now_ns(cpu) - start) / static_cast<double>(calls));
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace lowp::cli
