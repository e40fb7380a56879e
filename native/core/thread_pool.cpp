#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "core/cpu_pause.h"

namespace cs {

namespace {

// More threads than this only cost memory and scheduling (CLIPSCALE_NUM_THREADS=100000 would
// otherwise try to start 100000 threads).
constexpr int kMaxThreads = 1024;

int default_threads() {
  if (const char* env = std::getenv("CLIPSCALE_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0) return static_cast<int>(std::min<long>(n, kMaxThreads));
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(std::min<unsigned>(hw, kMaxThreads)) : 1;
}

// How long a thread that has finished its part busy-waits (pause, never yield) for the next job
// or for the other threads, before it sleeps on a condition variable. A sleeping thread costs
// a futex wake-up and the scheduler's latency to start again, tens of microseconds on a VM,
// which was most of a small op (tiny encoding at batch 8 ran no faster on 2 threads than on 1).
// 1 ms while the pool has no more threads than the machine has cores: a training step's
// JavaScript and serial ops leave gaps of 50-1000 µs between parallel jobs (with 50 µs, a third
// of a tiny step's 107 jobs found the worker asleep; tiny steps 12.5-16.4 against 13.6-20.2 ms,
// small 31.2-37.4 against 34.0-39.4, and level with two busy processes beside it). 50 µs with
// more threads than cores, where a spinning thread holds a core another needs (the stress test's 8
// threads on 2 cores ran over 2× longer with 1 ms). PyTorch's OpenMP threads spin milliseconds to
// 200 ms, and collapse under load. CLIPSCALE_SPIN_US sets it whatever the size (0: sleep at once).
int spin_microseconds(int pool_size) {
  static const int from_env = [] {
    if (const char* env = std::getenv("CLIPSCALE_SPIN_US")) {
      char* end = nullptr;
      long n = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && n >= 0) return static_cast<int>(std::min<long>(n, 10000));
    }
    return -1;
  }();
  static const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (from_env >= 0) return from_env;
  return pool_size <= cores ? 1000 : 50;
}

// Busy-waits while `waiting()` holds, at most budget_us; true if it stopped holding.
template <class Waiting>
bool spin_while(int budget_us, Waiting waiting) {
  if (budget_us == 0) return !waiting();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(budget_us);
  for (;;) {
    for (int i = 0; i < 16; i++) {
      if (!waiting()) return true;
      cpu_pause();
    }
    if (std::chrono::steady_clock::now() >= deadline) return !waiting();
  }
}

// Nested parallel regions run serially on the calling thread.
thread_local bool t_inside_pool = false;

// Workers sleep on a condition variable between jobs; a job is a function run as
// (t, nt) for t in 1..nt-1 on workers while the caller runs t = 0.
//
// Hand-off invariants (test/native/thread_pool_stress.cpp checks them millions of times):
// - run_mu_ is held for a whole job, and by resize(): workers are never stopped or replaced
//   while a job waits for them. (Before, a resize racing a job from another thread made the
//   workers quit with the job's chunks undone, and the caller waited forever, using no CPU.)
// - A job is published (job_, job_nt_, pending_, generation_) under mu_; a worker takes it
//   under mu_. Each of its nt parts is run by whichever thread claims it first (claimed_: its own
//   thread, or one done with its own part while the owner sleeps), who counts it done under mu_;
//   the caller waits on done_cv_ for pending_ == 0.
// - Before sleeping, a worker spins on generation_ and the caller on pending_ (both atomic, still
//   written only under mu_), then each takes mu_ and waits on its predicate as before: a spin
//   that times out falls back to the sleeping hand-off, so no wake-up can be missed.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() {
    std::lock_guard<std::mutex> serial(run_mu_);
    stop();
  }

  int size() const { return size_.load(std::memory_order_acquire); }

  void resize(int n) {
    std::lock_guard<std::mutex> serial(run_mu_);  // waits for a job in flight
    stop();
    const int size = std::min(std::max(1, n), kMaxThreads);
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = false;
      generation = generation_;
    }
    for (int i = 1; i < size; i++) {
      try {
        workers_.emplace_back([this, i, generation] { loop(i, generation); });
      } catch (const std::system_error&) {
        break;  // the system refused more threads: run with those that started
      }
    }
    size_.store(static_cast<int>(workers_.size()) + 1, std::memory_order_release);
  }

  void run(int nt, const std::function<void(int, int)>& fn) {
    std::unique_lock<std::mutex> serial(run_mu_);  // one job at a time
    nt = std::max(1, std::min(nt, size()));
    if (nt == 1) {
      serial.unlock();
      fn(0, 1);
      return;
    }
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      job_nt_ = nt;
      pending_ = nt;
      error_ = nullptr;
      generation = ++generation_;
    }
    cv_.notify_all();
    run_parts(fn, nt, generation, 0);
    spin_while(spin_microseconds(size()), [this] { return pending_.load(std::memory_order_acquire) != 0; });
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
    std::exception_ptr err = error_;
    error_ = nullptr;
    lk.unlock();
    if (err) std::rethrow_exception(err);
  }

 private:
  void loop(int index, uint64_t seen) {
    for (;;) {
      const std::function<void(int, int)>* job;
      int nt;
      spin_while(spin_microseconds(size()), [&] { return generation_.load(std::memory_order_acquire) == seen && !quit_.load(std::memory_order_acquire); });
      {
        std::unique_lock<std::mutex> lk(mu_);
        // Marked asleep only when it will wait: a worker whose spin saw the job (or that finds it
        // here) takes its part as an awake one. Marked for the moment the predicate took, a worker
        // the VM preempted inside that moment had its part taken by the caller (1 job in 2,000 in
        // the hand-off test on a Zen 3 VM) and the part's rows moved cores.
        if (!quit_ && generation_ == seen) {
          asleep_[static_cast<size_t>(index)].store(true, std::memory_order_release);
          cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
          asleep_[static_cast<size_t>(index)].store(false, std::memory_order_release);
        }
        if (quit_) return;  // only between jobs: resize and the destructor hold run_mu_
        seen = generation_;
        job = job_;
        nt = job_nt_;
      }
      if (index < nt && job) run_parts(*job, nt, seen, index);
    }
  }

  // Part t of job `generation` for the calling thread, unless another thread took it first. A
  // part's slot holds the generation that last took it, so a worker that wakes after its job is
  // done (every part taken) takes nothing, also once a later job has begun.
  bool claim(int t, uint64_t generation) {
    std::atomic<uint64_t>& slot = claimed_[static_cast<size_t>(t)];
    uint64_t cur = slot.load(std::memory_order_acquire);
    while (cur < generation)
      if (slot.compare_exchange_weak(cur, generation, std::memory_order_acq_rel)) return true;
    return false;
  }

  // Runs part `first` of the job, then the parts of threads that were asleep when it came and have
  // not taken them yet: the caller does not wait for a sleeping worker to wake (tens of microseconds
  // on a VM, longer than a small job) but runs its part itself once its own is done, and the late
  // worker finds nothing left. Parts of threads that are awake are left to them, even when they are
  // a little slower to start: a part run on another core leaves its rows in that core's cache, and
  // the next op, whose same part runs on the owner's core, then reads them across cores (stealing
  // from spinning workers too made a tiny step's linear layers 10% slower). Parts run one after
  // another must give the same results as on their own threads, as they already must for nested
  // regions.
  void run_parts(const std::function<void(int, int)>& fn, int nt, uint64_t generation, int first) {
    for (int i = 0; i < nt; i++) {
      const int t = (first + i) % nt;
      if (t != first && !asleep_[static_cast<size_t>(t)].load(std::memory_order_acquire)) continue;
      if (!claim(t, generation)) continue;
      std::exception_ptr err;
      try { fn(t, nt); } catch (...) { err = std::current_exception(); }
      std::lock_guard<std::mutex> lk(mu_);
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  // Callers hold run_mu_.
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::atomic<int> size_{1};
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_nt_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::unique_ptr<std::atomic<uint64_t>[]> claimed_{new std::atomic<uint64_t>[kMaxThreads]()};
  // Per worker index: whether it is (about to be) asleep on cv_ rather than spinning or working.
  std::unique_ptr<std::atomic<bool>[]> asleep_{new std::atomic<bool>[kMaxThreads]()};
  std::atomic<bool> quit_{false};
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

bool inside_parallel_region() { return t_inside_pool; }

void set_num_threads(int n) {
  // From inside a job this would wait for the job it is part of.
  if (t_inside_pool) throw std::runtime_error("set_num_threads: cannot resize the thread pool from inside a parallel region");
  pool().resize(n > 0 ? n : default_threads());
}

void parallel_run(int nt, const std::function<void(int, int)>& fn) {
  if (t_inside_pool || nt <= 1) {
    for (int t = 0; t < std::max(nt, 1); t++) fn(t, std::max(nt, 1));
    return;
  }
  pool().run(nt, [&fn](int t, int n) {
    bool prev = t_inside_pool;
    t_inside_pool = true;
    try { fn(t, n); } catch (...) { t_inside_pool = prev; throw; }
    t_inside_pool = prev;
  });
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = static_cast<int>(std::min<int64_t>(max_chunks, num_threads()));
  if (nt <= 1 || t_inside_pool) { fn(0, n); return; }
  parallel_run(nt, [&](int t, int total) {
    int64_t begin = n * t / total, end = n * (t + 1) / total;
    if (begin < end) fn(begin, end);
  });
}

void parallel_for_balanced(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  const int nt = static_cast<int>(std::min<int64_t>(n, num_threads()));
  if (n > INT32_MAX) {  // past what a share's 32-bit ends hold: fixed shares
    parallel_for(n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) fn(i);
    });
    return;
  }
  if (nt <= 1 || t_inside_pool) {
    for (int64_t i = 0; i < n; i++) fn(i);
    return;
  }
  // Each thread's share as (front, back) in one word: its owner takes from the front, others
  // from the back; a cache line each, so taking an item does not disturb the other threads'.
  struct alignas(64) Share {
    std::atomic<uint64_t> ends{0};
  };
  // Kept per calling thread (a training step allocates nothing); workers read it through the pointer.
  static thread_local std::unique_ptr<Share[]> kept;
  static thread_local int kept_size = 0;
  if (kept_size < nt) {
    kept.reset(new Share[static_cast<size_t>(nt)]);
    kept_size = nt;
  }
  Share* const shares = kept.get();
  auto pack = [](int64_t front, int64_t back) { return (static_cast<uint64_t>(front) << 32) | static_cast<uint64_t>(back); };
  for (int t = 0; t < nt; t++) shares[static_cast<size_t>(t)].ends.store(pack(n * t / nt, n * (t + 1) / nt), std::memory_order_relaxed);
  auto take = [&](int t, bool front) -> int64_t {
    std::atomic<uint64_t>& e = shares[static_cast<size_t>(t)].ends;
    uint64_t cur = e.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t f = static_cast<int64_t>(cur >> 32), b = static_cast<int64_t>(cur & 0xffffffffu);
      if (f >= b) return -1;
      if (e.compare_exchange_weak(cur, front ? pack(f + 1, b) : pack(f, b - 1), std::memory_order_relaxed)) return front ? f : b - 1;
    }
  };
  // Every share is taken from, also those of threads the pool did not run (resized meanwhile: it
  // may run fewer than nt).
  parallel_run(nt, [&](int self, int) {
    for (int64_t i; (i = take(self, true)) >= 0;) fn(i);
    for (int d = 1; d < nt; d++)
      for (int64_t i; (i = take((self + d) % nt, false)) >= 0;) fn(i);
  });
}

}  // namespace cs
