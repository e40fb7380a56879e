// AVX2 SGEMM micro-kernel: a 6×16 tile of C held in 12 ymm accumulators
// (16 ymm registers in all: 12 accumulators, two B vectors, one broadcast).
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                     float alpha, float beta) {
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();

  for (int64_t k = 0; k < kc; k++) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * kNR), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; r++) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += kMR;
    b += kNR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 6
    for (int r = 0; r < kMR; r++) {
      _mm256_storeu_ps(c + r * ldc, _mm256_mul_ps(va, acc[r][0]));
      _mm256_storeu_ps(c + r * ldc + 8, _mm256_mul_ps(va, acc[r][1]));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; r++) {
      float* cr = c + r * ldc;
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, acc[r][0], _mm256_mul_ps(vb, _mm256_loadu_ps(cr))));
      _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, acc[r][1], _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8))));
    }
  }
}

}  // namespace

KernelSpec avx2_kernel() { return {"avx2", kMR, kNR, kernel_6x16}; }

}  // namespace cs::cpu::gemm_detail

#endif
