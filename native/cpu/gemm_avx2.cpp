// AVX2 SGEMM micro-kernel: a 6×16 tile of C held in 12 ymm accumulators
// (16 ymm registers in all: 12 accumulators, two B vectors, one broadcast).
//
// As with the AVX-512 kernel (gemm_avx512.cpp), the same code instantiated for fewer rows and
// masked columns computes the edge tiles in place, and a variant reads op(A) in place from a
// row-major matrix, so a narrow layer's products need neither A packed nor a tile copied out
// through a buffer.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;
constexpr int64_t kAhead = 16;  // k steps of B (and packed A) fetched ahead

// Prefetch hints: an address past an operand's end is only a hint, never read, so it is formed as
// an integer rather than by pointer arithmetic beyond the array.
template <_mm_hint Hint>
__attribute__((always_inline)) inline void fetch(const float* p, int64_t floats) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(floats * 4)), Hint);
}

// Lanes [0, n) of a ymm (n clamped to 0..8) as a maskload/maskstore mask.
__attribute__((target("avx2"), always_inline)) inline __m256i lanes(int n) {
  const __m256i ramp = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(std::clamp(n, 0, 8)), ramp);
}

// A row of C (or the bias): 8 values, or the mask's lanes of an edge tile.
__attribute__((target("avx2"), always_inline)) inline __m256 load_c(const float* p, bool full, __m256i mask) {
  return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}
__attribute__((target("avx2"), always_inline)) inline void store_c(float* p, bool full, __m256i mask, __m256 v) {
  if (full) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, mask, v);
}

// C[0:R, 0:nv] (Two = false: nv ≤ 8, only the first 8 columns of b are read) = alpha·(a·b) +
// beta·C + bias, with the same operations per value as the full tile (R = 6, nv = 16).
// ARows: a is op(A) read in place, row-major: value (r, k) at a[r·a_ks + k] instead of the packed
// a[k·a_ks + r].
// alpha, beta and nv wait in memory until the loop is done: the ABI passes alpha and beta in xmm0
// and xmm1, and kept in registers they left 14 ymm for 15 values, so GCC kept one accumulator on the
// stack and every k step waited on a store and a reload of it (Zen 3 ran the kernel at half its rate).
template <int R, bool Two, bool ARows = false>
__attribute__((target("avx2,fma"), always_inline)) inline void tile(int64_t kc, const float* a, int64_t a_ks,
                                                                    const float* b, int64_t b_ks, float* c,
                                                                    int64_t ldc, float alpha, float beta,
                                                                    const float* bias, int nv) {
  volatile float alpha_held = alpha, beta_held = beta;
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();

  // ARows: rows 3q + s at base q plus s row strides (x86 addresses base + stride·1 or ·2).
  const float* base[2];
  for (int q = 0; q < 2; q++) base[q] = 3 * q < R ? a + 3 * q * a_ks : a;
  // Four k steps a loop turn: rolled, the loop's own instructions (counter, compare, pointer steps,
  // the C-prefetch test) came with every 12 FMAs, and on operands in L1 a Zen 3 core ran the kernel
  // at ~80% of its FMA-only rate; unrolled, the blocked GEMM +2-7% and a ViT-B-32 encode +4-5%
  // (one process, alternating). The same FMAs in the same order: the same bits.
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++) {
    // This tile's rows of C, one row a step at the start: inside a training step C is rarely in
    // cache, and its lines then arrive while the tile computes rather than when it is stored.
    if (k < R) {
      fetch<_MM_HINT_T0>(c, k * ldc);
      if (Two) fetch<_MM_HINT_T0>(c, k * ldc + 8);
    }
    fetch<_MM_HINT_T0>(b, kAhead * b_ks);
    if (!ARows) {
      fetch<_MM_HINT_T0>(a, kAhead * a_ks);
    } else if ((k & 15) == 0) {
      // The next MR rows' line at this column into L2, so the next tile's rows arrive while this
      // one computes.
#pragma GCC unroll 6
      for (int r = 0; r < kMR; r++) fetch<_MM_HINT_T1>(a, (kMR + r) * a_ks + k);
    }
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = Two ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m256 ar = _mm256_broadcast_ss(ARows ? &base[r / 3][(r % 3) * a_ks] : a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      if (Two) acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    if (!ARows) a += a_ks;
    else
      for (int q = 0; q < 2; q++) base[q]++;
    b += b_ks;
  }

  alpha = alpha_held;
  beta = beta_held;
  const __m256 va = _mm256_set1_ps(alpha);
  const int halves = Two ? 2 : 1;
  const bool full = nv >= 8 * halves;
  const __m256i mask[2] = {lanes(nv), lanes(nv - 8)};
  if (bias) {
    __m256 bv[2];
    for (int h = 0; h < halves; h++) bv[h] = load_c(bias + 8 * h, full, mask[h]);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
      for (int h = 0; h < halves; h++) {
        float* cr = c + r * ldc + 8 * h;
        const __m256 c0 = beta == 0.0f ? bv[h] : _mm256_fmadd_ps(_mm256_set1_ps(beta), load_c(cr, full, mask[h]), bv[h]);
        store_c(cr, full, mask[h], _mm256_fmadd_ps(va, acc[r][h], c0));
      }
  } else if (beta == 0.0f) {
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
      for (int h = 0; h < halves; h++) store_c(c + r * ldc + 8 * h, full, mask[h], _mm256_mul_ps(va, acc[r][h]));
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
      for (int h = 0; h < halves; h++) {
        float* cr = c + r * ldc + 8 * h;
        store_c(cr, full, mask[h], _mm256_fmadd_ps(va, acc[r][h], _mm256_mul_ps(vb, load_c(cr, full, mask[h]))));
      }
  }
}

__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                     int64_t b_ks, float* c, int64_t ldc, float alpha, float beta,
                                                     const float* bias) {
  tile<kMR, true>(kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, kNR);
}

__attribute__((target("avx2,fma"))) void kernel_6x16_a_rows(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                            int64_t b_ks, float* c, int64_t ldc, float alpha,
                                                            float beta, const float* bias) {
  tile<kMR, true, true>(kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, kNR);
}

template <int R, bool Two, bool ARows>
__attribute__((target("avx2,fma"))) void edge_tile(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                   int64_t b_ks, float* c, int64_t ldc, float alpha, float beta,
                                                   const float* bias, int nv) {
  tile<R, Two, ARows>(kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, nv);
}

using EdgeFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float, float,
                        const float*, int);

template <bool ARows, int... R>
struct EdgeTable {
  static constexpr EdgeFn one[kMR] = {edge_tile<R + 1, false, ARows>...};
  static constexpr EdgeFn two[kMR] = {edge_tile<R + 1, true, ARows>...};
};

// C[0:mv, 0:nv] of a tile with mv ≤ 6 rows and nv ≤ 16 columns.
template <bool ARows>
void edge_6x16(int64_t kc, const float* a, int64_t a_ks, const float* b, int64_t b_ks, float* c, int64_t ldc,
               float alpha, float beta, const float* bias, int mv, int nv) {
  using T = EdgeTable<ARows, 0, 1, 2, 3, 4, 5>;
  (nv > 8 ? T::two : T::one)[mv - 1](kc, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, nv);
}

// Transposes an 8×8 block: rows r[0..7] (row i is 8 consecutive k) into columns,
// storing column k (the block's `lanes` rows) at dst + k·ld_out. The first `whole` columns are
// stored as all 8 lanes even where `lanes` is less (see transpose_pack_avx).
__attribute__((target("avx2"))) inline void transpose8x8(const __m256 (&r)[8], float* dst, int64_t ld_out, int lanes,
                                                         int whole = 0) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  const __m256 o[8] = {_mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
                       _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
                       _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
                       _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31)};
  if (lanes == 8) {
    for (int k = 0; k < 8; k++) _mm256_storeu_ps(dst + k * ld_out, o[k]);
  } else {
    alignas(32) static const int32_t ramp[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_load_si256(reinterpret_cast<const __m256i*>(ramp)));
    for (int k = 0; k < 8; k++) {
      if (k < whole) _mm256_storeu_ps(dst + k * ld_out, o[k]);
      else _mm256_maskstore_ps(dst + k * ld_out, mask, o[k]);
    }
  }
}

}  // namespace

__attribute__((target("avx2"))) void transpose_pack_avx(const float* src, int64_t ld, int64_t rows, int64_t width,
                                                        int64_t kc, float* dst) {
  const int64_t kc8 = kc / 8 * 8;
  // A panel 4-7 wide (the AVX2 kernel's MR = 6) holds each k's values back to back, so a k's
  // 8-lane store only runs into the next k's slot, which the next store (or the tail loop below)
  // then overwrites: all but the panel's last k go out unmasked. Masked stores are slow on AMD
  // (Zen 3: 60% of a ViT-B-32 encode's packing time was in them).
  const bool spill_into_next = width >= 4 && width < 8;
  for (int64_t r0 = 0; r0 < width; r0 += 8) {
    const int lanes = static_cast<int>(std::min<int64_t>(8, width - r0));
    const int64_t valid = std::max<int64_t>(0, std::min<int64_t>(lanes, rows - r0));
    for (int64_t k = 0; k < kc8; k += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; i++) r[i] = i < valid ? _mm256_loadu_ps(src + (r0 + i) * ld + k) : _mm256_setzero_ps();
      const int whole = spill_into_next ? (k + 8 < kc ? 8 : 7) : 0;
      transpose8x8(r, dst + k * width + r0, width, lanes, whole);
    }
  }
  for (int64_t k = kc8; k < kc; k++)
    for (int64_t r = 0; r < width; r++) dst[k * width + r] = r < rows ? src[r * ld + k] : 0.0f;
}

KernelSpec avx2_kernel() {
  // b_panels_at_once 8: an A panel (6×384, 9 KB) stays in L1 while 8 B panels (24 KB each) stream
  // from L2; one B panel at a time and the A panels streaming past it were 33 KB in Zen 3's 32 KB L1.
  return {"avx2", kMR, kNR, kernel_6x16, transpose_pack_avx, edge_6x16<false>, kernel_6x16_a_rows, edge_6x16<true>, 8};
}

}  // namespace cs::cpu::gemm_detail

#endif
