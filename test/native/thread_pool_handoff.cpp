// Who runs a job's parts (native/core/thread_pool.cpp's hand-off): the caller runs the part of a
// worker that is asleep when the job comes, instead of waiting tens of microseconds for it to wake,
// and never the part of a worker that is awake (a part run on another core leaves its rows in that
// core's cache, and the next op reads them across cores: a tiny step's linear layers ran 10%
// slower when the caller also took awake workers' parts). Built and run by
// test/thread-pool-handoff.test.ts: with CLIPSCALE_SPIN_US=0 and a pause before every job (the worker
// asleep each time) the caller should take the worker's part; with a 10 ms spin and jobs back to back
// (the worker awake), never.
//
//   thread_pool_handoff JOBS PAUSE_US   → {"jobs":…,"caller_ran_worker_part":…,"pause_us":…}
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/thread_pool.h"

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int pause_us = argc > 2 ? std::atoi(argv[2]) : 0;
  cs::set_num_threads(2);
  if (cs::num_threads() != 2) {
    std::fprintf(stderr, "FAIL: the pool started %d threads, not 2\n", cs::num_threads());
    return 2;
  }
  const std::thread::id caller = std::this_thread::get_id();
  int taken = 0;
  for (int j = 0; j < jobs; j++) {
    if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
    std::thread::id ran[2];
    cs::parallel_run(2, [&](int t, int) { ran[t] = std::this_thread::get_id(); });
    if (ran[0] != caller) {
      std::fprintf(stderr, "FAIL: part 0 ran on another thread than the caller\n");
      return 2;
    }
    if (ran[1] == caller) taken++;
  }
  std::printf("{\"jobs\":%d,\"caller_ran_worker_part\":%d,\"pause_us\":%d}\n", jobs, taken, pause_us);
  return 0;
}
