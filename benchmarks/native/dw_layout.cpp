// A linear layer's weight gradient dW = dYᵀ·X (c_proj of `tiny`: dY 64 wide, X 256 wide, each thread
// its own rows, as linearBackward's split-rows region runs it) with X cold (a 24 MB sweep per
// thread before the call, as a saved input comes back in a training step's backward) or hot, X
// read in place row-major (what the step does) or already laid out in the GEMM's B panels
// (pack_weight's layout: each 32-column panel's rows contiguous). The variants alternate call by
// call in one process, so a noisy machine's drift reaches all of them alike; medians over rounds,
// the slowest thread's time per round. One JSON line per variant.
//
//   g++ -std=c++17 -O3 -I native benchmarks/native/dw_layout.cpp native/cpu/gemm.cpp native/cpu/gemm_avx512.cpp
//     native/cpu/gemm_avx2.cpp native/cpu/gemm_portable.cpp native/core/thread_pool.cpp native/core/host_memory.cpp -o /tmp/dw_layout -lpthread
//   CLIPSCALE_NUM_THREADS=1 /tmp/dw_layout [rows per thread, 1088] [threads, 2] [rounds, 201]
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/host_memory.h"
#include "cpu/gemm.h"

using namespace cs::cpu;

namespace {

// A spinning barrier for the benchmark's own threads (no pool: the GEMMs run serial).
struct Barrier {
  std::atomic<int> count{0}, generation{0};
  int n = 1;
  void wait() {
    const int g = generation.load();
    if (count.fetch_add(1) + 1 == n) {
      count.store(0);
      generation.fetch_add(1);
    } else {
      while (generation.load() == g) {
      }
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int64_t K = argc > 1 ? std::atoll(argv[1]) : 1088, N = 256, M = 64;  // rows, X's width, dY's width
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 201;
  if (K < 1 || threads < 1 || threads > static_cast<int>(std::thread::hardware_concurrency()) || rounds < 1) {
    std::fprintf(stderr, "dw_layout: rows ≥ 1, 1 ≤ threads ≤ %u CPUs and rounds ≥ 1, got %s %s %s\n",
                 std::thread::hardware_concurrency(), argc > 1 ? argv[1] : "-", argc > 2 ? argv[2] : "-", argc > 3 ? argv[3] : "-");
    return 2;
  }
  constexpr int kVariants = 4;  // (in place | panels) × (hot | cold)
  const char* names[kVariants] = {"row_major_in_place_hot", "row_major_in_place_cold", "panels_hot", "panels_cold"};
  Barrier barrier;
  barrier.n = threads;
  std::vector<double> seconds(static_cast<size_t>(threads));
  std::vector<std::vector<double>> slowest(kVariants);
  float checksum = 0.0f;
  auto body = [&](int id) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(id, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    // X where tensors live (host_alloc: 2 MB huge pages for large blocks where Linux offers them).
    float* const x = static_cast<float*>(cs::host_alloc(static_cast<size_t>(K * N) * sizeof(float)));
    std::vector<float> dy(static_cast<size_t>(K * M)), dw(static_cast<size_t>(M * N));
    std::vector<float> xt(static_cast<size_t>(N * K)), sweep(static_cast<size_t>(6) << 20, 1.0f);
    for (int64_t i = 0; i < K * N; i++) x[i] = static_cast<float>(i % 97) * 0.01f;
    for (size_t i = 0; i < dy.size(); i++) dy[i] = static_cast<float>(i % 89) * 0.01f;
    for (int64_t k = 0; k < K; k++)
      for (int64_t n = 0; n < N; n++) xt[n * K + k] = x[k * N + n];
    std::vector<float> packed(static_cast<size_t>(packed_weight_floats(N, K)));
    pack_weight(xt.data(), N, K, packed.data());  // op(B) = xtᵀ = X, in B panels
    const float* panels = packed_weight_panels(packed.data(), static_cast<int64_t>(packed.size()), N, K);
    for (int r = 0; r < rounds * kVariants; r++) {
      const int v = r % kVariants;
      if (v & 1)
        for (size_t i = 0; i < sweep.size(); i += 16) sweep[i] += 1.0f;
      barrier.wait();
      const auto t0 = std::chrono::steady_clock::now();
      if (v < 2) sgemm_serial(true, false, M, N, K, 1.0f, dy.data(), M, x, N, 0.0f, dw.data(), N);
      else sgemm_bias(true, true, M, N, K, 1.0f, dy.data(), M, xt.data(), K, nullptr, dw.data(), N, panels);
      seconds[static_cast<size_t>(id)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      barrier.wait();
      if (id == 0) slowest[static_cast<size_t>(v)].push_back(*std::max_element(seconds.begin(), seconds.end()));
    }
    if (id == 0) checksum = dw[0] + sweep[0];
    cs::host_free(x);
  };
  std::vector<std::thread> others;
  for (int t = 1; t < threads; t++) others.emplace_back(body, t);
  body(0);
  for (auto& t : others) t.join();
  for (int v = 0; v < kVariants; v++) {
    std::vector<double>& s = slowest[static_cast<size_t>(v)];
    std::sort(s.begin(), s.end());
    std::printf("{\"bench\":\"dw-layout\",\"rows_per_thread\":%lld,\"m\":%lld,\"n\":%lld,\"threads\":%d,\"rounds\":%d,\"variant\":\"%s\","
                "\"median_us\":%.1f,\"min_us\":%.1f,\"gemm_kernel\":\"%s\"}\n",
                static_cast<long long>(K), static_cast<long long>(M), static_cast<long long>(N), threads, rounds, names[v],
                s[s.size() / 2] * 1e6, s[0] * 1e6, gemm_kernel_name());
  }
  return checksum == 12345.0f ? 1 : 0;  // keeps the results live
}
