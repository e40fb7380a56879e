// transpose_pack_avx (native/cpu/gemm_avx2.cpp) against the packed layout written out one value at
// a time: dst[k·width + r] = src[r·ld + k] for r < rows, 0 for rows ≤ r < width. Narrow panels
// (4-7 wide) are stored with whole 8-lane stores that run into the next k's slot, so the check
// also fills the memory past the panel with a marker and fails on any write there.
// Prints one JSON line: {"avx2": bool, "cases": n, "wrong_values": n, "writes_past_end": n}.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cpu/gemm_kernels.h"

int main() {
#if defined(__x86_64__) || defined(_M_X64)
  const bool avx2 = __builtin_cpu_supports("avx2");
#else
  const bool avx2 = false;
#endif
  if (!avx2) {
    std::printf("{\"avx2\": false, \"cases\": 0, \"wrong_values\": 0, \"writes_past_end\": 0}\n");
    return 0;
  }
  const float marker = -7.0f;
  int64_t cases = 0, wrong = 0, past_end = 0;
  for (int64_t width = 1; width <= 17; width++)
    for (int64_t rows = 0; rows <= width; rows++)
      for (int64_t kc = 1; kc <= 41; kc++) {
        const int64_t ld = kc + 3;
        std::vector<float> src(static_cast<size_t>(rows * ld + 1));
        for (size_t i = 0; i < src.size(); i++) src[i] = 1.0f + static_cast<float>(i);
        std::vector<float> dst(static_cast<size_t>(width * kc + 16), marker);
        cs::cpu::gemm_detail::transpose_pack_avx(src.data(), ld, rows, width, kc, dst.data());
        cases++;
        for (int64_t k = 0; k < kc; k++)
          for (int64_t r = 0; r < width; r++) {
            const float want = r < rows ? src[static_cast<size_t>(r * ld + k)] : 0.0f;
            if (dst[static_cast<size_t>(k * width + r)] != want) wrong++;
          }
        for (int64_t i = width * kc; i < width * kc + 16; i++)
          if (dst[static_cast<size_t>(i)] != marker) past_end++;
      }
  std::printf("{\"avx2\": true, \"cases\": %lld, \"wrong_values\": %lld, \"writes_past_end\": %lld}\n",
              static_cast<long long>(cases), static_cast<long long>(wrong), static_cast<long long>(past_end));
  return 0;
}
