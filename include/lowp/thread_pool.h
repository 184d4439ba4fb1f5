// lowp/thread_pool.h — one set of worker threads, started once and reused by
// every parallel loop of the library (the bulk kernels, the block kernels, the
// transformer runtime), so that a caller that makes many small calls (token by
// token generation: several matrix products per token) does not create and
// join threads on each one.
//
// Results never depend on the pool: callers cut their work into pieces that
// depend only on the thread count they were asked for (and the data), give
// each piece its own output, and hand the pieces to the pool as tasks. The
// pool only decides which thread runs which piece, so a pool of 1, 2 or 64
// threads gives the same bits.
//
// Nesting: a task that calls run() (on this or any other pool) runs the inner
// tasks inline, on its own thread, in index order; a thread never waits for a
// pool it is working for, so nesting cannot deadlock. Calls from several
// threads that are not pool tasks are served one at a time.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace lowp {

class ThreadPool {
 public:
  // A pool whose run() uses up to `threads` threads: the caller's and
  // threads - 1 workers, started here and kept until the destructor.
  // 0: one per hardware thread (std::thread::hardware_concurrency).
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The threads that run tasks, the caller's included (>= 1).
  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Calls task(i) once for each i in [0, tasks), spread over the caller's
  // thread and the workers, and returns when every call has returned. If tasks
  // throw, the first exception caught is rethrown here, after all tasks have
  // run (the others are dropped).
  template <class Task>
  void run(std::size_t tasks, Task&& task) {
    using T = std::remove_reference_t<Task>;
    run_erased(
        tasks, [](void* context, std::size_t i) { (*static_cast<T*>(context))(i); },
        const_cast<void*>(static_cast<const void*>(std::addressof(task))));
  }

  // body(begin, end) over [0, count) cut into `pieces` contiguous pieces:
  // piece p is [p * step, (p + 1) * step) clipped to count, except the last,
  // which runs to count; empty pieces are skipped. The boundaries depend only
  // on the arguments, never on the pool.
  template <class Body>
  void run_pieces(std::size_t count, std::size_t pieces, std::size_t step, Body&& body) {
    run(pieces, [&](std::size_t p) {
      const std::size_t begin = std::min(count, p * step);
      const std::size_t end = p + 1 == pieces ? count : std::min(count, (p + 1) * step);
      if (begin < end) body(begin, end);
    });
  }

 private:
  struct Job;
  void run_erased(std::size_t tasks, void (*call)(void*, std::size_t), void* context);
  void work_loop();
  void stop_workers();

  std::vector<std::thread> workers_;
  std::mutex caller_lock_;  // one outside caller at a time

  // The rest is guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable wake_;  // idle workers: a new job, or stop
  std::condition_variable done_;  // the caller: the last worker left the job
  // The job being run, or null. A worker joins it (users_ + 1) only while it
  // is set, and the caller clears it and waits for users_ == 0 before its Job
  // (on the caller's stack) goes away.
  Job* job_ = nullptr;
  unsigned users_ = 0;
  unsigned sleeping_ = 0;         // workers waiting on wake_ (a notify is needed)
  std::uint64_t generation_ = 0;  // bumped for each job and for the stop
  bool stop_ = false;
};

// The process-wide pool, one thread per hardware thread, started on first use.
ThreadPool& default_pool();

// The pool the library's parallel loops use on this thread: the innermost
// ScopedPool's, else default_pool().
ThreadPool& current_pool();

// Makes `pool` this thread's current_pool() until the end of the scope (for a
// host application that owns its threads, or a test that pins a pool size).
// Scopes nest; each must end on the thread that opened it.
class ScopedPool {
 public:
  explicit ScopedPool(ThreadPool& pool);
  ~ScopedPool();
  ScopedPool(const ScopedPool&) = delete;
  ScopedPool& operator=(const ScopedPool&) = delete;

 private:
  ThreadPool* previous_;
};

// parallel_for: [0, count) cut into at most `threads` contiguous pieces, each a
// multiple of `quantum` long (but the last), run as tasks of the current
// pool. Pieces depend only on count, threads and quantum, never on the pool;
// callers keep results independent of all of them by giving each index its
// own output. quantum: pieces of whole tiles (e.g. 4 rows, the GEMM kernels'
// tile height).
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

}  // namespace lowp
