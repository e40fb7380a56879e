// Row reductions kept in N independent lanes (one vector register's worth) and folded in halves at
// the end: log2(N) vector steps in a fixed order, the same on every instruction set. A single
// accumulator makes one dependent add per element, a latency chain that at a few dozen elements a
// row cost more than the arithmetic around it (attention's softmax, layernorm, gradNorm).
#pragma once

namespace cs {

// lane[0] + … + lane[N−1], pairwise by halves; N a power of two. Overwrites lane.
template <int N, typename T>
inline T fold_sum(T* lane) {
  static_assert(N > 0 && (N & (N - 1)) == 0, "N must be a power of two");
  for (int h = N / 2; h > 0; h /= 2)
    for (int l = 0; l < h; l++) lane[l] += lane[l + h];
  return lane[0];
}

// The largest lane, by halves (a NaN lane loses, as with std::fmax). Overwrites lane.
template <int N, typename T>
inline T fold_max(T* lane) {
  static_assert(N > 0 && (N & (N - 1)) == 0, "N must be a power of two");
  for (int h = N / 2; h > 0; h /= 2)
    for (int l = 0; l < h; l++) lane[l] = lane[l + h] > lane[l] ? lane[l + h] : lane[l];
  return lane[0];
}

}  // namespace cs
