// How much other memory one core can touch between writing a tensor and reading it back before the
// tensor comes back at memory's speed: a training step writes a layer's input in the forward and
// its weight gradient reads it again in the backward, the rest of the step in between (a tiny step
// at batch 128 touches ~40 MB). A buffer (a layer input's size per thread) is written, T MB of other
// memory is written, and the buffer is read back whole; the median read bandwidth over repeats, per
// T. Where it falls to the last rows' figure (everything out of cache) by the step's own size, the
// step's saved activations come from memory in the backward whatever the kernel does (issue 17,
// NOTES "Session 2026-12-03, tenth"). Pinned to one CPU; one JSON line per T.
//
//   g++ -std=c++17 -O3 -march=native benchmarks/native/cache_reach.cpp -o /tmp/cache_reach && /tmp/cache_reach [buffer KB]
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// XOR of every 8-byte word (vectorises; nothing to reassociate).
uint64_t read_all(const std::vector<uint64_t>& v) {
  uint64_t x = 0;
  for (uint64_t w : v) x ^= w;
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  const size_t kb = argc > 1 ? std::strtoul(argv[1], &end, 10) : 512;
  if (argc > 1 && (end == argv[1] || *end != '\0' || kb < 1 || kb > (size_t{1} << 20))) {
    std::fprintf(stderr, "cache_reach: the buffer size must be a whole number of KB from 1 to 1048576, got \"%s\"\n", argv[1]);
    return 2;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  const bool pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
  std::vector<uint64_t> buffer(kb * 1024 / 8), other(size_t{96} << 20 >> 3);
  uint64_t sink = 0;
  for (double between_mb : {0.0, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0}) {
    std::vector<double> gbs;
    for (int rep = 0; rep < 21; rep++) {
      for (size_t i = 0; i < buffer.size(); i++) buffer[i] = i + rep;  // the tensor, written
      const size_t words = static_cast<size_t>(between_mb * (1 << 20)) / 8;
      for (size_t i = 0; i < words; i += 8) other[i] += 1;  // the rest of the step: one write a line
      const auto t0 = std::chrono::steady_clock::now();
      sink ^= read_all(buffer);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      gbs.push_back(buffer.size() * 8 / s / 1e9);
    }
    std::sort(gbs.begin(), gbs.end());
    std::printf("{\"bench\":\"cache-reach\",\"buffer_kb\":%zu,\"between_mb\":%.0f,\"reread_gbs_median\":%.1f,\"reread_gbs_best\":%.1f,\"pinned\":%s}\n",
                kb, between_mb, gbs[gbs.size() / 2], gbs.back(), pinned ? "true" : "false");
  }
  return sink == 42 ? 1 : 0;  // keeps the reads
}
