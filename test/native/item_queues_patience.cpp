// The GEMM's work queues (native/cpu/gemm_blocking.h, ItemQueues::run_own_first): a thread done with
// its own items waits about one and a half of its own items' time for another thread to take that
// thread's items before taking them itself (a block run on the other core leaves its rows in that
// core's cache for the next op), and takes them once that wait is over when their owner never
// comes. Two threads, thread 0's items slow (ITEM_MS each), thread 1's instant:
//   late_ms >= 0: thread 1 starts late_ms after thread 0 has finished its own items, well inside
//                 the wait, and must run all its items itself;
//   late_ms <  0: thread 1 never runs; thread 0 must run every item, after waiting.
//
//   item_queues_patience ITEM_MS LATE_MS  → {"stolen":…,"own_items":…,"waited_ms":…}
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cpu/gemm_blocking.h"

int main(int argc, char** argv) {
  const int item_ms = argc > 1 ? std::atoi(argv[1]) : 40;
  const int late_ms = argc > 2 ? std::atoi(argv[2]) : 1;
  using Clock = std::chrono::steady_clock;
  constexpr int64_t kItemsEach = 3;
  cs::cpu::gemm_detail::ItemQueues queues;
  // Items 0..2 are thread 0's, 3..5 thread 1's.
  queues.reset(2, 2 * kItemsEach, 1, [](int64_t, int64_t item) { return item < kItemsEach ? 0 : 1; });
  std::atomic<int> ran_by[2 * kItemsEach];
  for (auto& r : ran_by) r.store(-1);
  std::atomic<bool> own_done{false};
  Clock::time_point own_done_at;
  Clock::time_point finished_at;

  std::thread t0([&] {
    int done = 0;
    queues.run_own_first(0, [&](int64_t item) {
      if (item < kItemsEach) std::this_thread::sleep_for(std::chrono::milliseconds(item_ms));
      ran_by[item].store(0);
      if (item < kItemsEach && ++done == kItemsEach) {
        own_done_at = Clock::now();
        own_done.store(true, std::memory_order_release);
      }
    });
    finished_at = Clock::now();
  });
  std::thread t1;
  if (late_ms >= 0) {
    t1 = std::thread([&] {
      while (!own_done.load(std::memory_order_acquire)) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(late_ms));
      queues.run_own_first(1, [&](int64_t item) { ran_by[item].store(1); });
    });
  }
  t0.join();
  if (t1.joinable()) t1.join();
  int stolen = 0;
  for (int64_t i = 0; i < 2 * kItemsEach; i++) {
    const int by = ran_by[i].load();
    if (by < 0) {
      std::fprintf(stderr, "FAIL: item %ld was never run\n", static_cast<long>(i));
      return 2;
    }
    if (i >= kItemsEach && by == 0) stolen++;
  }
  const double waited = std::chrono::duration<double, std::milli>(finished_at - own_done_at).count();
  std::printf("{\"stolen\":%d,\"own_items\":%ld,\"item_ms\":%d,\"late_ms\":%d,\"waited_ms\":%.1f}\n", stolen,
              static_cast<long>(kItemsEach), item_ms, late_ms, waited);
  return 0;
}
