// Timing for the `lowp bench` subcommands: one clock and one repetition rule,
// so their figures are measured the same way.
#pragma once

#include <functional>

namespace lowp::cli {

// Nanoseconds on the process CPU-time clock (cpu) or the steady wall clock.
double now_ns(bool cpu);

// Median over `reps` rounds of the time per call in ns; a round repeats the
// call until it has lasted >= 20 ms (after one warm-up call).
double time_per_call(const std::function<void()>& call, int reps, bool cpu);

}  // namespace lowp::cli
