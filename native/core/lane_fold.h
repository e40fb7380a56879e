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

#if defined(__GNUC__)
// Always inlined: how a 64-byte vector is passed depends on the caller's target (the clones of a
// CS_TARGET_CLONES function differ), so an out-of-line copy shared between them would be called
// with the wrong ABI; inlined, GCC's -Wpsabi note does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
// The same folds on 16 float lanes held in vector values (GCC/clang vector extensions): the lanes
// stay in registers. The array folds above went through the stack, and the narrower reloads of a
// wider store stalled.
typedef float f32x16 __attribute__((vector_size(64)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));

// The 16 lanes as two 8-lane halves (lanes 0-7 and 8-15), folded by halves like fold_sum<16>: as one
// 64-byte value (f32x16), GCC kept the lanes on the stack in a function's AVX2 clone and rebuilt
// them from scalars every step (attention's softmax ran at 4.5 ns an element on a Zen 3); two f32x8
// values stay in ymm registers, and on AVX-512 each half is one ymm.
struct f32x16p {
  f32x8 lo, hi;
};

[[gnu::always_inline]] inline f32x16p load16p(const float* p) {
  f32x16p v;
  __builtin_memcpy(&v.lo, p, sizeof v.lo);
  __builtin_memcpy(&v.hi, p + 8, sizeof v.hi);
  return v;
}

[[gnu::always_inline]] inline float fold_sum(const f32x16p& v) {
  const f32x8 a = v.lo + v.hi;
  const f32x4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

[[gnu::always_inline]] inline float fold_max(const f32x16p& v) {
  const f32x8 a = v.hi > v.lo ? v.hi : v.lo;
  const f32x4 lo4 = __builtin_shufflevector(a, a, 0, 1, 2, 3), hi4 = __builtin_shufflevector(a, a, 4, 5, 6, 7);
  const f32x4 b = hi4 > lo4 ? hi4 : lo4;
  const float c0 = b[2] > b[0] ? b[2] : b[0], c1 = b[3] > b[1] ? b[3] : b[1];
  return c1 > c0 ? c1 : c0;
}

// The same on 8 fp64 lanes (layernorm's mean and variance) as two f64x4 halves (lanes 0-3, 4-7),
// for the same reason: fold_sum<8> by halves, same order.
typedef double f64x4 __attribute__((vector_size(32)));

[[gnu::always_inline]] inline double fold_sum(const f64x4& lo, const f64x4& hi) {
  const f64x4 c = lo + hi;
  return (c[0] + c[2]) + (c[1] + c[3]);
}
#pragma GCC diagnostic pop
#endif

}  // namespace cs
