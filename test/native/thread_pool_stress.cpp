// Stress test of the CPU thread pool's hand-off (native/core/thread_pool.cpp): millions of
// parallel_for/parallel_for_balanced/parallel_run jobs, from several caller threads at once, with exceptions, nested
// regions and pool resizes racing the jobs. A watchdog ends the process with exit code 3 and the
// word HANG when no job completes for `hang_s` seconds (a lost wake-up blocks with no CPU use).
// Built and run by test/thread-pool-stress.test.ts, under ThreadSanitizer where the compiler has it.
//
//   thread_pool_stress ITERATIONS CALLERS POOL_THREADS HANG_S
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

static std::atomic<long long> g_done{0};
static std::atomic<bool> g_finished{false};

static void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

// One caller's loop: jobs of every size from 1 chunk to more chunks than threads.
static void caller(int id, long long iterations, int pool_threads) {
  unsigned seed = 0x9e3779b9u * (id + 1);
  auto next = [&seed] { seed = seed * 1664525u + 1013904223u; return seed >> 8; };
  for (long long it = 0; it < iterations; it++) {
    const int64_t n = 1 + next() % (4 * pool_threads + 3);
    const int kind = next() % 16;
    if (kind == 9) {
      // parallel_for_balanced: every index exactly once, also when the first items are slow
      // enough that the other threads take the rest of their share from its end.
      std::vector<std::atomic<int>> hits(n);
      const bool slow_start = next() % 2 == 0;
      cs::parallel_for_balanced(n, [&](int64_t i) {
        if (slow_start && i == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        hits[i].fetch_add(1, std::memory_order_relaxed);
      });
      for (int64_t i = 0; i < n; i++)
        if (hits[i].load() != 1) fail("parallel_for_balanced visited index " + std::to_string(i) + " " + std::to_string(hits[i].load()) + " times");
    } else if (kind < 10) {
      // Every index visited exactly once.
      std::vector<std::atomic<int>> hits(n);
      cs::parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) hits[i].fetch_add(1, std::memory_order_relaxed);
      });
      for (int64_t i = 0; i < n; i++)
        if (hits[i].load() != 1) fail("parallel_for visited index " + std::to_string(i) + " " + std::to_string(hits[i].load()) + " times");
    } else if (kind < 12) {
      // An exception in one chunk reaches the caller, and the pool keeps working afterwards.
      const int64_t bad = next() % n;
      bool caught = false;
      try {
        cs::parallel_for(n, 1, [&](int64_t b, int64_t e) {
          if (bad >= b && bad < e) throw std::runtime_error("chunk failed");
        });
      } catch (const std::runtime_error&) {
        caught = true;
      }
      if (!caught) fail("an exception in a chunk was lost");
    } else if (kind < 14) {
      // Nested regions run serially on the worker; the outer job still covers everything once.
      std::atomic<int64_t> total{0};
      cs::parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) cs::parallel_for(3, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
      });
      if (total.load() != 3 * n) fail("nested parallel_for covered " + std::to_string(total.load()) + " of " + std::to_string(3 * n));
    } else {
      // parallel_run: each t exactly once.
      const int nt = 1 + static_cast<int>(next() % (pool_threads + 2));
      std::vector<std::atomic<int>> seen(nt);
      cs::parallel_run(nt, [&](int t, int total) {
        if (t < 0 || t >= total) fail("parallel_run gave t out of range");
        seen[t].fetch_add(1);
      });
      // nt is capped at the pool's size; the first `ran` entries must each be 1, the rest 0.
      int ran = 0;
      while (ran < nt && seen[ran].load() == 1) ran++;
      for (int t = ran; t < nt; t++)
        if (seen[t].load() != 0) fail("parallel_run ran t=" + std::to_string(t) + " " + std::to_string(seen[t].load()) + " times");
      if (ran == 0) fail("parallel_run ran nothing");
    }
    g_done.fetch_add(1, std::memory_order_relaxed);
  }
}

int main(int argc, char** argv) {
  const long long iterations = argc > 1 ? std::atoll(argv[1]) : 100000;
  const int callers = argc > 2 ? std::atoi(argv[2]) : 3;
  const int pool_threads = argc > 3 ? std::atoi(argv[3]) : 4;
  const int hang_s = argc > 4 ? std::atoi(argv[4]) : 20;
  const bool resize = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  cs::set_num_threads(pool_threads);

  std::thread watchdog([hang_s] {
    long long last = -1;
    auto since = std::chrono::steady_clock::now();
    while (!g_finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      long long now = g_done.load();
      if (now != last) {
        last = now;
        since = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - since > std::chrono::seconds(hang_s)) {
        std::fprintf(stderr, "HANG: no job completed for %d s after %lld jobs\n", hang_s, now);
        std::fflush(stderr);
        std::_Exit(3);
      }
    }
  });

  std::vector<std::thread> threads;
  for (int c = 0; c < callers; c++) threads.emplace_back(caller, c, iterations / callers, pool_threads);
  // Resizes race the callers' jobs (a Node process may call setNumThreads while a worker thread runs a kernel).
  std::thread resizer;
  if (resize) {
    resizer = std::thread([pool_threads] {
      int k = 0;
      while (!g_finished.load()) {
        cs::set_num_threads(1 + (k++ % (pool_threads + 1)));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      cs::set_num_threads(pool_threads);
    });
  }
  for (auto& t : threads) t.join();
  g_finished = true;
  if (resizer.joinable()) resizer.join();
  watchdog.join();
  std::printf("{\"jobs\":%lld,\"callers\":%d,\"pool_threads\":%d,\"resize\":%s}\n", g_done.load(), callers, pool_threads, resize ? "true" : "false");
  return 0;
}
