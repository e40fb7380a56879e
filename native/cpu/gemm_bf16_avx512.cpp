// AVX-512 BF16 micro-kernel: a 14×32 tile of C in 28 zmm accumulators, as the fp32 kernel
// (gemm_avx512.cpp), but each step takes a pair of k: two vectors of B pairs, 14 broadcast
// A pairs and 28 VDPBF16PS, each 32 products where an fp32 FMA does 16. The operand
// conversions (fp32 → bf16 pairs, rounded to nearest even in integer arithmetic, bit for bit
// as round_bf16; the hardware's conversion would flush subnormals) are here too.
#include "cpu/gemm_bf16_kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>

#include <cstdint>

namespace cs::cpu::gemm_bf16_detail {

namespace {

constexpr int64_t kAhead = 16;  // pairs of B (and packed A) fetched ahead

template <_mm_hint Hint>
__attribute__((always_inline)) inline void fetch(const void* p, int64_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes)), Hint);
}

// The fp32 bit patterns rounded to bf16 in their high half (the low half is garbage).
__attribute__((target("avx512f"), always_inline)) inline __m512i round_high(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(0xffff, u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  // NaN stays NaN (quieted), as f32_to_bf16_bits: no carry into the exponent.
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

__attribute__((target("avx512f"), always_inline)) inline __m512 round_ps(__m512 x) {
  return _mm512_castsi512_ps(_mm512_and_si512(round_high(x), _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

__attribute__((target("avx512f"), always_inline)) inline __mmask16 first(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n > 0 ? n : 0)) - 1u);
}

__attribute__((target("avx512f"))) void pair_two_rows(const float* lo, const float* hi, int64_t n, uint32_t* dst) {
  const __m512i top = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = first(n - j);
    const __m512i l = _mm512_maskz_srli_epi32(0xffff, round_high(_mm512_maskz_loadu_ps(m, lo + j)), 16);
    const __m512i h = hi ? _mm512_and_si512(round_high(_mm512_maskz_loadu_ps(m, hi + j)), top) : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(dst + j, m, _mm512_or_si512(l, h));
  }
}

// 32 values (two vectors, rounded in their high halves) → their bf16 in order: 16 pairs, even k low.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i high_words(__m512i lo, __m512i hi) {
  // Word 2i+1 of lo:hi for i = 0..31 (a VPERMT2W; a narrowing VPMOVDW store is slow on AMD Zen).
  const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27, 25, 23,
                                       21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return _mm512_permutex2var_epi16(lo, odd, hi);
}

__attribute__((target("avx512f,avx512bw"))) void pair_along_row(const float* src, int64_t k, uint32_t* dst) {
  int64_t at = 0;
  for (; at + 32 <= k; at += 32)
    _mm512_storeu_si512(dst + at / 2,
                        high_words(round_high(_mm512_loadu_ps(src + at)), round_high(_mm512_loadu_ps(src + at + 16))));
  if (at < k) {  // the tail: an odd k's last pair gets a zero high half (a masked load reads 0)
    const __m512i w = high_words(round_high(_mm512_maskz_loadu_ps(first(k - at), src + at)),
                                 round_high(_mm512_maskz_loadu_ps(first(k - at - 16), src + at + 16)));
    _mm512_mask_storeu_epi32(dst + at / 2, first((k - at + 1) / 2), w);
  }
}

// A B panel of op(B) = Wᵀ: panel[p·panel_ks + j] = pair(W[j, 2p], W[j, 2p+1]), zero for j ≥ nv. The
// rows are converted along k into `rows` (32 × kp), then each p gathers its 32 values.
__attribute__((target("avx512f,avx512bw"))) void pack_transposed_panel(const float* w, int64_t ldw, int64_t nv,
                                                                       int64_t k, uint32_t* rows, uint32_t* panel,
                                                                       int64_t panel_ks) {
  const int64_t kp = (k + 1) / 2;
  for (int64_t j = 0; j < nv; j++) pair_along_row(w + j * ldw, k, rows + j * kp);
  if (32 * kp > INT32_MAX) {  // gather offsets are 32-bit: a k this long (a weight of 17 GB and more) goes plainly
    for (int64_t p = 0; p < kp; p++)
      for (int64_t j = 0; j < 32; j++) panel[p * panel_ks + j] = j < nv ? rows[j * kp + p] : 0u;
    return;
  }
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i at0 = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(kp)));
  const __m512i at1 = _mm512_add_epi32(at0, _mm512_set1_epi32(static_cast<int>(16 * kp)));
  const __mmask16 m0 = first(nv), m1 = first(nv - 16);
  const auto* base = reinterpret_cast<const int*>(rows);
  for (int64_t p = 0; p < kp; p++) {
    _mm512_storeu_si512(panel + p * panel_ks, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m0, at0, base + p, 4));
    _mm512_storeu_si512(panel + p * panel_ks + 16, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m1, at1, base + p, 4));
  }
}

template <bool ARows>
__attribute__((target("avx512f,avx512bf16"), always_inline)) inline void tile(int64_t kcp, const uint32_t* a,
                                                                             int64_t a_ks, const uint32_t* b,
                                                                             int64_t b_ks, float* c, int64_t ldc,
                                                                             float alpha, float beta,
                                                                             const float* bias, bool round_c) {
  __m512 acc[kMR][2];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  // Rows read in place: five base pointers, row 3q + s at base q plus s row strides (x86 addresses
  // that as base + stride·4 or ·8), as in the fp32 kernel.
  const uint32_t* base[5];
  for (int q = 0; q < 5; q++) base[q] = a + 3 * q * a_ks;
  for (int64_t p = 0; p < kcp; p++) {
    if (p < kMR) fetch<_MM_HINT_T0>(c + p * ldc, 0), fetch<_MM_HINT_T0>(c + p * ldc + 16, 0);
    fetch<_MM_HINT_T0>(b, kAhead * b_ks * 4);
    fetch<_MM_HINT_T0>(b, kAhead * b_ks * 4 + 64);
    if (!ARows) {
      fetch<_MM_HINT_T0>(a, kAhead * a_ks * 4);
    } else if ((p & 15) == 0) {
#pragma GCC unroll 14
      for (int r = 0; r < kMR; r++) fetch<_MM_HINT_T1>(a, ((kMR + r) * a_ks + p) * 4);
    }
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; r++) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(static_cast<int>(ARows ? base[r / 3][(r % 3) * a_ks] : a[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
    }
    if (ARows)
      for (int q = 0; q < 5; q++) base[q]++;
    else
      a += a_ks;
    b += b_ks;
  }

  // The fp32 kernel's epilogue, operation for operation, then the optional rounding.
  const __m512 va = _mm512_set1_ps(alpha);
  __m512 bv[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  if (bias) bv[0] = _mm512_loadu_ps(bias), bv[1] = _mm512_loadu_ps(bias + 16);
#pragma GCC unroll 14
  for (int r = 0; r < kMR; r++)
    for (int h = 0; h < 2; h++) {
      float* cr = c + r * ldc + 16 * h;
      __m512 v;
      if (bias)
        v = _mm512_fmadd_ps(va, acc[r][h],
                            beta == 0.0f ? bv[h] : _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(cr), bv[h]));
      else if (beta == 0.0f)
        v = _mm512_mul_ps(va, acc[r][h]);
      else
        v = _mm512_fmadd_ps(va, acc[r][h], _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(cr)));
      _mm512_storeu_ps(cr, round_c ? round_ps(v) : v);
    }
}

__attribute__((target("avx512f,avx512bf16"))) void kernel_packed(int64_t kcp, const uint32_t* a, int64_t a_ks,
                                                                 const uint32_t* b, int64_t b_ks, float* c,
                                                                 int64_t ldc, float alpha, float beta,
                                                                 const float* bias, bool round_c) {
  tile<false>(kcp, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, round_c);
}

__attribute__((target("avx512f,avx512bf16"))) void kernel_a_rows(int64_t kcp, const uint32_t* a, int64_t a_ks,
                                                                 const uint32_t* b, int64_t b_ks, float* c,
                                                                 int64_t ldc, float alpha, float beta,
                                                                 const float* bias, bool round_c) {
  tile<true>(kcp, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, round_c);
}

}  // namespace

Bf16KernelSpec bf16_avx512_kernel() { return {"avx512bf16", kernel_packed, kernel_a_rows, pair_along_row, pair_two_rows, pack_transposed_panel}; }
bool bf16_avx512_built() { return true; }

}  // namespace cs::cpu::gemm_bf16_detail

#else
namespace cs::cpu::gemm_bf16_detail {
Bf16KernelSpec bf16_avx512_kernel() { return bf16_portable_kernel(); }
bool bf16_avx512_built() { return false; }
}  // namespace cs::cpu::gemm_bf16_detail
#endif
