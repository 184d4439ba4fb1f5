// The persistent thread pool of lowp/thread_pool.h.
//
// A run() publishes one Job (on the caller's stack) in job_ and bumps
// generation_; idle workers wake on the bump, claim task indices from the
// job's counter until none is left, and go back to waiting. The caller claims
// indices too, so a job that is small next to a wake-up often finishes on the
// caller's thread alone, and a pool whose workers are gone (in the child of
// a fork made while the pool was idle) still finishes every job, on one thread.
#include "lowp/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>

namespace lowp {
namespace {

// Whether this thread is running pool tasks (a worker, always; a caller,
// while it works on its own job). run() from such a thread goes inline.
thread_local bool t_in_task = false;
// The innermost ScopedPool of this thread, or null.
thread_local ThreadPool* t_scoped = nullptr;

}  // namespace

struct ThreadPool::Job {
  Job(void (*c)(void*, std::size_t), void* ctx, std::size_t n) : call(c), context(ctx), tasks(n) {}

  void (*const call)(void*, std::size_t);
  void* const context;
  const std::size_t tasks;
  std::atomic<std::size_t> next{0};
  std::mutex error_lock;
  std::exception_ptr error;  // the first exception a task threw

  // Claims and runs tasks until every index is taken.
  void work() {
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
      try {
        call(context, i);
      } catch (...) {
        const std::lock_guard<std::mutex> hold(error_lock);
        if (!error) error = std::current_exception();
      }
    }
  }
};

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads - 1);
  try {
    for (unsigned t = 1; t < threads; ++t) workers_.emplace_back([this] { work_loop(); });
  } catch (...) {
    // No destructor runs for a half-built pool: stop the workers started.
    stop_workers();
    throw;
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    const std::lock_guard<std::mutex> hold(mutex_);
    stop_ = true;
    ++generation_;
  }
  wake_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::work_loop() {
  t_in_task = true;  // a worker only ever runs tasks: its nested run()s go inline
  std::unique_lock<std::mutex> lock(mutex_);
  // The generation of a new pool, not the one found here: a worker that starts
  // late (after jobs, or the stop, were published) must still see them.
  std::uint64_t seen = 0;
  for (;;) {
    if (generation_ == seen) {
      ++sleeping_;
      wake_.wait(lock, [&] { return generation_ != seen; });
      --sleeping_;
    }
    if (stop_) return;
    seen = generation_;
    Job* const job = job_;
    if (job == nullptr) continue;  // woke after that job was done
    ++users_;
    lock.unlock();
    job->work();
    lock.lock();
    if (--users_ == 0) done_.notify_one();
  }
}

void ThreadPool::run_erased(std::size_t tasks, void (*call)(void*, std::size_t), void* context) {
  if (tasks == 0) return;
  Job job(call, context, tasks);
  if (tasks == 1 || workers_.empty() || t_in_task) {
    job.work();
  } else {
    const std::lock_guard<std::mutex> one_caller(caller_lock_);
    unsigned wake = 0;
    {
      const std::lock_guard<std::mutex> hold(mutex_);
      job_ = &job;
      ++generation_;
      wake = sleeping_;
    }
    // Wake no more sleepers than there are tasks for (the caller takes one).
    if (wake > 0 && tasks - 1 >= wake) {
      wake_.notify_all();
    } else {
      for (std::size_t i = 0; i < std::min<std::size_t>(wake, tasks - 1); ++i) wake_.notify_one();
    }
    t_in_task = true;
    job.work();
    t_in_task = false;
    // Every index is claimed: wait for the workers still running theirs.
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = nullptr;
    done_.wait(lock, [&] { return users_ == 0; });
  }
  if (job.error) std::rethrow_exception(job.error);
}

ThreadPool& default_pool() {
  // Never destroyed: a kernel called from another static's destructor, or
  // from a thread still running at exit, finds the pool alive.
  static ThreadPool* const pool = new ThreadPool(0);
  return *pool;
}

ThreadPool& current_pool() { return t_scoped != nullptr ? *t_scoped : default_pool(); }

ScopedPool::ScopedPool(ThreadPool& pool) : previous_(t_scoped) { t_scoped = &pool; }
ScopedPool::~ScopedPool() { t_scoped = previous_; }

}  // namespace lowp
