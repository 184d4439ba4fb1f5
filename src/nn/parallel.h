// parallel_for: [0, count) cut into at most `threads` contiguous pieces, one
// std::thread each (the caller's thread runs the first). Pieces depend only on
// count and threads; callers keep results independent of both by giving each
// index its own output.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace lowp::nn {

template <class Fn>
void parallel_for(std::size_t count, unsigned threads, Fn&& fn) {
  const std::size_t pieces = std::min<std::size_t>(std::max(1u, threads), count);
  if (pieces <= 1) {
    if (count > 0) fn(std::size_t{0}, count);
    return;
  }
  const std::size_t per = (count + pieces - 1) / pieces;
  std::vector<std::thread> pool;
  pool.reserve(pieces - 1);
  for (std::size_t p = 1; p < pieces; ++p) {
    const std::size_t b = std::min(count, p * per), e = std::min(count, b + per);
    if (b < e) pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  fn(std::size_t{0}, std::min(count, per));
  for (std::thread& t : pool) t.join();
}

}  // namespace lowp::nn
