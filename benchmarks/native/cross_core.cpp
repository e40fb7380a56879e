// How far apart this machine's cores are, as the thread pool sees them: a core-to-core round trip
// (one cache line bounced between two pinned threads), and the read bandwidth of a buffer just
// written by the other core, by this core long ago (out of L2, in its L3), and out of every cache.
// Where the other core's writes read as slowly as memory, the two cores share no cache, and a
// kernel whose threads read rows another op left on the other core pays memory's price for them
// (issue 17, NOTES "Session 2026-12-03"). One JSON line per measurement.
//
//   g++ -std=c++17 -O2 -march=native -pthread benchmarks/native/cross_core.cpp -o /tmp/cross_core && /tmp/cross_core
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Sums with eight independent chains, so the loads, not the adds, set the pace.
__attribute__((noinline)) double read_all(const float* p, size_t n) {
  float s[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += p[i + j];
  double t = 0;
  for (float v : s) t += v;
  return t;
}

__attribute__((noinline)) void write_all(float* p, size_t n, float v) {
  for (size_t i = 0; i < n; i++) p[i] = v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int a = argc > 1 ? std::atoi(argv[1]) : 0, b = argc > 2 ? std::atoi(argv[2]) : 1;
  if (!pin(a)) {
    std::fprintf(stderr, "cannot pin to CPU %d\n", a);
    return 1;
  }
  // Round trip: each side waits for the other's value, then writes its own.
  alignas(64) static std::atomic<int> flag{0};
  const int rounds = 200000;
  std::thread echo([&] {
    pin(b);
    for (int i = 0; i < rounds; i++) {
      while (flag.load(std::memory_order_acquire) != 2 * i + 1) {}
      flag.store(2 * i + 2, std::memory_order_release);
    }
  });
  const double t0 = now_s();
  for (int i = 0; i < rounds; i++) {
    flag.store(2 * i + 1, std::memory_order_release);
    while (flag.load(std::memory_order_acquire) != 2 * i + 2) {}
  }
  const double rtt_ns = (now_s() - t0) / rounds * 1e9;
  echo.join();
  std::printf("{\"bench\":\"cross-core\",\"what\":\"round_trip\",\"cpus\":[%d,%d],\"ns\":%.1f}\n", a, b, rtt_ns);

  double sink = 0;
  for (size_t kb : {512, 2048}) {
    const size_t n = kb * 256;  // floats
    std::vector<float> buf(n, 1.0f), sweep(64u << 20, 0.0f);  // sweep: 256 MB
    std::vector<double> other, own_l3, memory;
    for (int rep = 0; rep < 7; rep++) {
      std::thread w([&] { pin(b); write_all(buf.data(), n, static_cast<float>(rep)); });
      w.join();
      double s = now_s();
      sink += read_all(buf.data(), n);
      other.push_back(kb * 1024.0 / (now_s() - s) / 1e9);
      write_all(buf.data(), n, 1.0f);
      write_all(sweep.data(), 1u << 20, 2.0f);  // 4 MB of other lines: buf leaves this core's L2
      s = now_s();
      sink += read_all(buf.data(), n);
      own_l3.push_back(kb * 1024.0 / (now_s() - s) / 1e9);
      write_all(buf.data(), n, 1.0f);
      write_all(sweep.data(), sweep.size(), 3.0f);  // 256 MB: out of every cache
      s = now_s();
      sink += read_all(buf.data(), n);
      memory.push_back(kb * 1024.0 / (now_s() - s) / 1e9);
    }
    std::printf(
        "{\"bench\":\"cross-core\",\"what\":\"read_GBps\",\"kb\":%zu,\"written_by_other_core\":%.1f,\"own_after_4MB\":%.1f,"
        "\"own_after_256MB\":%.1f,\"sink\":%g}\n",
        kb, median(other), median(own_l3), median(memory), sink > 0 ? 1.0 : 0.0);
  }
  return 0;
}
