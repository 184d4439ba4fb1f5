// The persistent thread pool (lowp/thread_pool.h): every task index runs
// exactly once, nested run()s go inline instead of deadlocking, the first
// exception reaches the caller after every task ran, many small calls in a row
// and calls from two threads at once are served correctly, and the kernels
// give the same bits whatever pool runs them and whatever thread count they
// are asked for.
#include "lowp/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"

namespace {

using lowp::ThreadPool;

// Counts how often each index ran.
std::vector<int> run_counts(ThreadPool& pool, std::size_t tasks) {
  std::vector<std::atomic<int>> counts(tasks);
  pool.run(tasks, [&](std::size_t i) { counts[i].fetch_add(1); });
  std::vector<int> out(tasks);
  for (std::size_t i = 0; i < tasks; ++i) out[i] = counts[i].load();
  return out;
}

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  for (unsigned size : {1u, 2u, 3u, 8u}) {
    ThreadPool pool(size);
    EXPECT_EQ(pool.size(), size);
    for (std::size_t tasks : {0, 1, 2, 3, 7, 8, 9, 100, 1000}) {
      EXPECT_EQ(run_counts(pool, tasks), std::vector<int>(tasks, 1))
          << size << " threads, " << tasks << " tasks";
    }
  }
}

// Bug pinned: a worker read the job generation when its thread started, so
// one that started after the caller had done every task itself, or after the
// destructor's stop, slept through the stop and the destructor never returned.
TEST(ThreadPool, WorkersThatStartLateStillStop) {
  for (int i = 0; i < 200; ++i) {
    ThreadPool idle(4);  // destroyed at once, maybe before its workers run
    ThreadPool busy(4);
    EXPECT_EQ(run_counts(busy, 3), std::vector<int>(3, 1));
  }
}

TEST(ThreadPool, UsesItsWorkers) {
  // Tasks that each wait until all four have started can only finish when four
  // threads run them at once (the caller and three workers).
  ThreadPool pool(4);
  std::atomic<int> started{0};
  std::vector<std::thread::id> ran_on(4);
  pool.run(4, [&](std::size_t i) {
    started.fetch_add(1);
    while (started.load() < 4) std::this_thread::yield();
    ran_on[i] = std::this_thread::get_id();
  });
  std::sort(ran_on.begin(), ran_on.end());
  EXPECT_EQ(std::unique(ran_on.begin(), ran_on.end()), ran_on.end());
}

TEST(ThreadPool, RunPiecesCoversTheRangeAsAsked) {
  ThreadPool pool(3);
  // 5 pieces of 64 over 300: the last piece takes the rest.
  std::vector<std::pair<std::size_t, std::size_t>> got(5, {0, 0});
  pool.run_pieces(300, 5, 64, [&](std::size_t b, std::size_t e) { got[b / 64] = {b, e}; });
  const std::vector<std::pair<std::size_t, std::size_t>> want = {
      {0, 64}, {64, 128}, {128, 192}, {192, 256}, {256, 300}};
  EXPECT_EQ(got, want);
  // Pieces past the end are skipped; the last non-empty one is clipped.
  std::vector<int> hits(10, 0);
  pool.run_pieces(10, 4, 4, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) ++hits[i];
  });
  EXPECT_EQ(hits, std::vector<int>(10, 1));
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(4), other(3);
  constexpr std::size_t kOuter = 8, kInner = 16;
  std::vector<std::atomic<int>> counts(kOuter * kInner * 2);
  pool.run(kOuter, [&](std::size_t i) {
    const std::thread::id self = std::this_thread::get_id();
    // Into the same pool and into another one: both on this thread.
    pool.run(kInner, [&](std::size_t j) {
      EXPECT_EQ(std::this_thread::get_id(), self);
      counts[i * kInner + j].fetch_add(1);
    });
    other.run(kInner, [&](std::size_t j) {
      EXPECT_EQ(std::this_thread::get_id(), self);
      counts[(kOuter + i) * kInner + j].fetch_add(1);
    });
  });
  for (const auto& c : counts) EXPECT_EQ(c.load(), 1);
}

TEST(ThreadPool, NestedKernelCallInsideATask) {
  // A kernel that asks for several threads, called from a task of the pool it
  // uses, must not wait for that pool.
  ThreadPool pool(2);
  const lowp::ScopedPool use(pool);
  const lowp::Format f = lowp::parse_format("fp8_e4m3");
  std::vector<float> in(1 << 16);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i) * 0.01f - 300.0f;
  std::vector<std::uint8_t> want(in.size()), got(in.size() * 4);
  lowp::encode_f32(f, in, want.data(), {}, 0, 0, 1);
  pool.run(
      4, [&](std::size_t t) { lowp::encode_f32(f, in, got.data() + t * in.size(), {}, 0, 0, 4); });
  for (std::size_t t = 0; t < 4; ++t) {
    EXPECT_TRUE(std::equal(want.begin(), want.end(),
                           got.begin() + static_cast<std::ptrdiff_t>(t * in.size())))
        << "task " << t;
  }
}

TEST(ThreadPool, FirstExceptionIsRethrownAfterAllTasksRan) {
  for (unsigned size : {1u, 2u, 4u}) {
    ThreadPool pool(size);
    std::atomic<int> ran{0};
    try {
      pool.run(100, [&](std::size_t i) {
        ran.fetch_add(1);
        if (i % 10 == 3) throw std::runtime_error("task " + std::to_string(i));
      });
      ADD_FAILURE() << "no exception, " << size << " threads";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("task ", 0), 0u) << what;
      EXPECT_EQ(std::stoi(what.substr(5)) % 10, 3) << what;
    }
    EXPECT_EQ(ran.load(), 100) << size << " threads";
    // The pool is still usable.
    EXPECT_EQ(run_counts(pool, 50), std::vector<int>(50, 1));
  }
}

TEST(ThreadPool, ExceptionFromANestedCall) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.run(6,
                        [&](std::size_t i) {
                          pool.run(3, [&](std::size_t j) {
                            if (i == 4 && j == 2) throw std::logic_error("inner");
                          });
                        }),
               std::logic_error);
  EXPECT_EQ(run_counts(pool, 20), std::vector<int>(20, 1));
}

TEST(ThreadPool, ManyConsecutiveSmallCalls) {
  ThreadPool pool(4);
  std::vector<std::uint64_t> cells(4, 0);
  for (int call = 0; call < 20000; ++call) {
    const std::size_t tasks = 2 + static_cast<std::size_t>(call % 3);
    pool.run(tasks, [&](std::size_t i) { cells[i] += i + 1; });
  }
  // Calls with 2, 3, 4 tasks in turn: index i runs in the calls with more than i tasks.
  EXPECT_EQ(cells[0], 20000u);
  EXPECT_EQ(cells[1], 2u * 20000u);
  EXPECT_EQ(cells[2], 3u * 13333u);
  EXPECT_EQ(cells[3], 4u * 6666u);
}

TEST(ThreadPool, ConcurrentCallersFromTwoThreads) {
  ThreadPool pool(3);
  auto caller = [&pool](std::uint64_t salt, std::uint64_t* failures) {
    for (int call = 0; call < 2000; ++call) {
      std::vector<std::uint64_t> out(5, 0);
      pool.run(out.size(), [&](std::size_t i) { out[i] = salt * 1000 + i; });
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] != salt * 1000 + i) ++*failures;
      }
    }
  };
  std::uint64_t failures_a = 0, failures_b = 0;
  std::thread a(caller, 1, &failures_a), b(caller, 2, &failures_b);
  a.join();
  b.join();
  EXPECT_EQ(failures_a, 0u);
  EXPECT_EQ(failures_b, 0u);
}

TEST(ThreadPool, ScopedPoolNestsAndRestores) {
  ThreadPool a(2), b(3);
  EXPECT_EQ(&lowp::current_pool(), &lowp::default_pool());
  EXPECT_EQ(lowp::default_pool().size(), std::max(1u, std::thread::hardware_concurrency()));
  {
    const lowp::ScopedPool use_a(a);
    EXPECT_EQ(&lowp::current_pool(), &a);
    {
      const lowp::ScopedPool use_b(b);
      EXPECT_EQ(&lowp::current_pool(), &b);
    }
    EXPECT_EQ(&lowp::current_pool(), &a);
    // Thread-local: another thread still sees the default pool.
    const ThreadPool* seen = nullptr;
    std::thread([&] { seen = &lowp::current_pool(); }).join();
    EXPECT_EQ(seen, &lowp::default_pool());
  }
  EXPECT_EQ(&lowp::current_pool(), &lowp::default_pool());
}

// The kernels' outputs for thread counts 1..8 on pools of 1, 2, 3 and 8
// threads all equal the single-threaded output (stochastic rounding included,
// whose bits depend on each element's index).
TEST(ThreadPool, KernelResultsDoNotDependOnThreadsOrPool) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> in((1 << 18) + 77);
  for (float& v : in) v = dist(rng);
  const lowp::Format e4m3 = lowp::parse_format("fp8_e4m3");
  const lowp::Format e2m1 = lowp::parse_format("fp4_e2m1");
  lowp::EncodeOptions stochastic;
  stochastic.rounding = lowp::Rounding::kStochastic;
  lowp::BlockFormat mxfp4;
  ASSERT_TRUE(lowp::parse_block_format("mxfp4", mxfp4));
  const std::size_t row = 1024 + 32;

  struct Outputs {
    std::vector<std::uint8_t> e4m3, e2m1, elements, scales;
    std::vector<float> decoded, dequantized;
    float amax = 0;
    bool operator==(const Outputs&) const = default;
  };
  auto outputs = [&](unsigned threads) {
    Outputs o;
    o.e4m3.resize(in.size());
    o.e2m1.resize(in.size());
    lowp::encode_f32(e4m3, in, o.e4m3.data(), stochastic, 42, 5, threads);
    lowp::encode_f32(e2m1, in, o.e2m1.data(), {}, 0, 0, threads);
    o.decoded.resize(in.size());
    lowp::decode_to_f32(e4m3, o.e4m3.data(), o.decoded, threads);
    const std::span<const float> rows(in.data(), in.size() / row * row);
    o.elements.assign(lowp::packed_bytes(mxfp4.element.bits, rows.size()), 0);
    o.scales.assign(rows.size() / row * ((row + 31) / 32), 0);
    lowp::BlockOptions opt;
    opt.threads = threads;
    lowp::quantize_blocked(mxfp4, rows, row, 1.0f, opt, o.elements.data(), o.scales.data());
    o.dequantized.resize(rows.size());
    lowp::dequantize_blocked(mxfp4, o.elements.data(), o.scales.data(), 1.0f, row, o.dequantized,
                             threads);
    o.amax = lowp::finite_amax(in, threads);
    return o;
  };

  const Outputs want = outputs(1);
  for (unsigned size : {1u, 2u, 3u, 8u}) {
    ThreadPool pool(size);
    const lowp::ScopedPool use(pool);
    for (unsigned threads = 1; threads <= 8; ++threads) {
      EXPECT_TRUE(outputs(threads) == want) << "pool of " << size << ", " << threads << " threads";
    }
  }
}

}  // namespace
