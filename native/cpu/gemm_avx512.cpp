// AVX-512 SGEMM micro-kernel: a 14×32 tile of C held in 28 zmm accumulators.
// Each k step loads two vectors of B and broadcasts 14 values of A, so the 28
// independent FMAs hide the FMA latency and loads stay far below FMA throughput.
//
// The same code, instantiated for fewer rows and masked columns, computes the edge tiles
// in place: only their valid rows are multiplied and only their valid columns are read
// from and written to C. An attention head's products (S = 17 or 32 rows) and a narrow
// layer's weight gradient (64 rows) spent a quarter to a half of their FMAs on the
// padding rows of a full 14-row tile, then copied the tile out through a buffer.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cstdint>

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;
constexpr int64_t kAhead = 24;  // k steps of B (and packed A) fetched ahead

// Prefetch hints: an address past an operand's end is only a hint, never read, so it is formed as
// an integer rather than by pointer arithmetic beyond the array.
template <_mm_hint Hint>
__attribute__((always_inline)) inline void fetch(const float* p, int64_t floats) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(floats * 4)), Hint);
}

// C[0:R, 0:32] (columns masked by m0 for 0..15 and m1 for 16..31; Two = false: only the
// first 16) = alpha·(a·b) + beta·C + bias, with the same operations per value as the full tile.
// ARows: a is op(A) read in place, row-major: value (r, k) at a[r·a_ks + k] (a_ks is then the
// row stride) instead of the packed a[k·a_ks + r]; the broadcasts are the same loads either way.
template <int R, bool Two, bool ARows = false>
__attribute__((target("avx512f,fma"), always_inline)) inline void tile(int64_t kc, const float* a, int64_t a_ks,
                                                                      const float* b, int64_t b_ks, float* c,
                                                                      int64_t ldc, float alpha, float beta,
                                                                      const float* bias, __mmask16 m0, __mmask16 m1) {
  __m512 acc[R][2];
#pragma GCC unroll 14
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

  // ARows: the rows in groups of three from five base pointers, row 3q + s at base q plus s row
  // strides, which x86 addresses as base + stride·4 or ·8; the bases step one float per k. As
  // a[r·a_ks + k], GCC kept the fourteen row offsets on the stack and reloaded them every k.
  // (Only the groups that hold rows of this tile point into A.)
  const float* base[5];
  for (int q = 0; q < 5; q++) base[q] = 3 * q < R ? a + 3 * q * a_ks : a;
  for (int64_t k = 0; k < kc; k++) {
    // This tile's rows of C, one row a step at the start: inside a training step C is rarely in
    // cache, and its lines then arrive while the tile computes rather than when it is stored.
    if (k < R) {
      fetch<_MM_HINT_T0>(c, k * ldc);
      if (Two) fetch<_MM_HINT_T0>(c, k * ldc + 16);
    }
    // Operands read in place may be far apart per k: fetch a few steps ahead.
    fetch<_MM_HINT_T0>(b, kAhead * b_ks);
    if (Two) fetch<_MM_HINT_T0>(b, kAhead * b_ks + 16);
    if (!ARows) {
      fetch<_MM_HINT_T0>(a, kAhead * a_ks);
    } else if ((k & 15) == 0) {
      // A read in place: fetch the next MR rows' line at this column into L2, so the next tile's
      // rows arrive from L3 (a layer's input is rarely in L2 inside a step) while this one
      // computes. Into L1 (T0) it pushed out this tile's B panel at K = 384.
#pragma GCC unroll 14
      for (int r = 0; r < kMR; r++) fetch<_MM_HINT_T1>(a, (kMR + r) * a_ks + k);
    }
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = Two ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) {
      const __m512 ar = _mm512_set1_ps(ARows ? base[r / 3][(r % 3) * a_ks] : a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      if (Two) acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    if (!ARows) a += a_ks;
    else
      for (int q = 0; q < 5; q++) base[q]++;
    b += b_ks;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  const int halves = Two ? 2 : 1;
  const __mmask16 mask[2] = {m0, m1};
  if (bias) {
    __m512 bv[2];
    for (int h = 0; h < halves; h++) bv[h] = _mm512_maskz_loadu_ps(mask[h], bias + 16 * h);
#pragma GCC unroll 14
    for (int r = 0; r < R; r++)
      for (int h = 0; h < halves; h++) {
        float* cr = c + r * ldc + 16 * h;
        const __m512 c0 =
            beta == 0.0f ? bv[h] : _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask[h], cr), bv[h]);
        _mm512_mask_storeu_ps(cr, mask[h], _mm512_fmadd_ps(va, acc[r][h], c0));
      }
  } else if (beta == 0.0f) {
#pragma GCC unroll 14
    for (int r = 0; r < R; r++)
      for (int h = 0; h < halves; h++) _mm512_mask_storeu_ps(c + r * ldc + 16 * h, mask[h], _mm512_mul_ps(va, acc[r][h]));
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int r = 0; r < R; r++)
      for (int h = 0; h < halves; h++) {
        float* cr = c + r * ldc + 16 * h;
        _mm512_mask_storeu_ps(cr, mask[h],
                              _mm512_fmadd_ps(va, acc[r][h], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mask[h], cr))));
      }
  }
}

__attribute__((target("avx512f,fma"))) void kernel_14x32(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                         int64_t b_ks, float* c, int64_t ldc, float alpha, float beta,
                                                         const float* bias) {
  tile<kMR, true>(kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, 0xffff, 0xffff);
}

__attribute__((target("avx512f,fma"))) void kernel_14x32_a_rows(int64_t kc, const float* a, int64_t a_ks,
                                                                const float* b, int64_t b_ks, float* c, int64_t ldc,
                                                                float alpha, float beta, const float* bias) {
  tile<kMR, true, true>(kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, 0xffff, 0xffff);
}

template <int R, bool Two, bool ARows>
__attribute__((target("avx512f,fma"))) void edge_tile(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                      int64_t b_ks, float* c, int64_t ldc, float alpha, float beta,
                                                      const float* bias, int nv) {
  const auto bits = [](int n) { return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << (n > 0 ? n : 0)) - 1u); };
  tile<R, Two, ARows>(kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, bits(nv), bits(nv - 16));
}

using EdgeFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float, float,
                        const float*, int);

template <bool ARows, int... R>
struct EdgeTable {
  static constexpr EdgeFn one[kMR] = {edge_tile<R + 1, false, ARows>...};
  static constexpr EdgeFn two[kMR] = {edge_tile<R + 1, true, ARows>...};
};

// C[0:mv, 0:nv] of a tile with mv ≤ 14 rows and nv ≤ 32 columns.
template <bool ARows>
void edge_14x32(int64_t kc, const float* a, int64_t a_ks, const float* b, int64_t b_ks, float* c, int64_t ldc,
                float alpha, float beta, const float* bias, int mv, int nv) {
  using T = EdgeTable<ARows, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13>;
  (nv > 16 ? T::two : T::one)[mv - 1](kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, nv);
}

}  // namespace

KernelSpec avx512_kernel() {
  return {"avx512", kMR, kNR, kernel_14x32, transpose_pack_avx, edge_14x32<false>, kernel_14x32_a_rows, edge_14x32<true>};
}

}  // namespace cs::cpu::gemm_detail

#endif
