#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cs {

namespace {

int default_threads() {
  if (const char* env = std::getenv("CLIPSCALE_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

// Workers sleep on a condition variable between jobs; a job is a function run as
// (t, nt) for t in 1..nt-1 on workers while the caller runs t = 0.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int n) {
    stop();
    size_ = std::max(1, n);
    quit_ = false;
    for (int i = 1; i < size_; i++) workers_.emplace_back([this, i] { loop(i); });
  }

  void run(int nt, const std::function<void(int, int)>& fn) {
    nt = std::max(1, std::min(nt, size_));
    if (nt == 1) { fn(0, 1); return; }
    std::lock_guard<std::mutex> serial(run_mu_);  // one job at a time
    std::exception_ptr err;
    {
      std::unique_lock<std::mutex> lk(mu_);
      job_ = &fn;
      job_nt_ = nt;
      pending_ = nt - 1;
      error_ = nullptr;
      generation_++;
    }
    cv_.notify_all();
    try { fn(0, nt); } catch (...) { err = std::current_exception(); }
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (!err) err = error_;
    lk.unlock();
    if (err) std::rethrow_exception(err);
  }

 private:
  void loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int, int)>* job;
      int nt;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        job = job_;
        nt = job_nt_;
      }
      if (index < nt && job) {
        std::exception_ptr err;
        try { (*job)(index, nt); } catch (...) { err = std::current_exception(); }
        std::lock_guard<std::mutex> lk(mu_);
        if (err && !error_) error_ = err;
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_nt_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool quit_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

thread_local bool t_inside_pool = false;

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(n > 0 ? n : default_threads()); }

void parallel_run(int nt, const std::function<void(int, int)>& fn) {
  // Nested parallel regions run serially on the calling thread.
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

}  // namespace cs
