// AVX-512 SGEMM micro-kernel: a 14×32 tile of C held in 28 zmm accumulators.
// Each k step loads two vectors of B and broadcasts 14 values of A, so the 28
// independent FMAs hide the FMA latency and loads stay far below FMA throughput.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;

__attribute__((target("avx512f,fma"))) void kernel_14x32(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                         int64_t b_ks, float* c, int64_t ldc, float alpha, float beta,
                                                         const float* bias) {
  __m512 acc[kMR][2];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

  for (int64_t k = 0; k < kc; k++) {
    // Operands read in place may be far apart per k: fetch a few steps ahead.
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * b_ks), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * b_ks + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(a + 8 * a_ks), _MM_HINT_T0);
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; r++) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += a_ks;
    b += b_ks;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  if (bias) {
    const __m512 bias0 = _mm512_loadu_ps(bias), bias1 = _mm512_loadu_ps(bias + 16);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; r++) {
      float* cr = c + r * ldc;
      const __m512 c0 = beta == 0.0f ? bias0 : _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(cr), bias0);
      const __m512 c1 = beta == 0.0f ? bias1 : _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(cr + 16), bias1);
      _mm512_storeu_ps(cr, _mm512_fmadd_ps(va, acc[r][0], c0));
      _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(va, acc[r][1], c1));
    }
  } else if (beta == 0.0f) {
#pragma GCC unroll 14
    for (int r = 0; r < kMR; r++) {
      _mm512_storeu_ps(c + r * ldc, _mm512_mul_ps(va, acc[r][0]));
      _mm512_storeu_ps(c + r * ldc + 16, _mm512_mul_ps(va, acc[r][1]));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; r++) {
      float* cr = c + r * ldc;
      _mm512_storeu_ps(cr, _mm512_fmadd_ps(va, acc[r][0], _mm512_mul_ps(vb, _mm512_loadu_ps(cr))));
      _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(va, acc[r][1], _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16))));
    }
  }
}

}  // namespace

KernelSpec avx512_kernel() { return {"avx512", kMR, kNR, kernel_14x32, transpose_pack_avx}; }

}  // namespace cs::cpu::gemm_detail

#endif
