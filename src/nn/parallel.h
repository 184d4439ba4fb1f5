// parallel_for: [0, count) cut into at most `threads` contiguous pieces, each a
// multiple of `quantum` long (but the last), run as tasks of the current
// thread pool (lowp/thread_pool.h). Pieces depend only on count, threads and
// quantum, never on the pool; callers keep results independent of all of them
// by giving each index its own output.
#pragma once

#include <algorithm>
#include <cstddef>

#include "lowp/thread_pool.h"

namespace lowp::nn {

// quantum: pieces of whole tiles (e.g. 4 rows, the GEMM kernels' tile height).
template <class Fn>
void parallel_for(std::size_t count, unsigned threads, std::size_t quantum, Fn&& fn) {
  const std::size_t pieces = std::min<std::size_t>(std::max(1u, threads), count);
  if (pieces <= 1) {
    if (count > 0) fn(std::size_t{0}, count);
    return;
  }
  const std::size_t per = ((count + pieces - 1) / pieces + quantum - 1) / quantum * quantum;
  current_pool().run_pieces(count, pieces, per, fn);
}

template <class Fn>
void parallel_for(std::size_t count, unsigned threads, Fn&& fn) {
  parallel_for(count, threads, 1, fn);
}

}  // namespace lowp::nn
