// AVX2 SGEMM micro-kernel: a 6×16 tile of C held in 12 ymm accumulators
// (16 ymm registers in all: 12 accumulators, two B vectors, one broadcast).
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const float* a, int64_t a_ks, const float* b,
                                                     int64_t b_ks, float* c, int64_t ldc, float alpha, float beta,
                                                     const float* bias) {
  // alpha and beta wait in memory until the loop is done: kept in registers (the ABI passes them
  // in xmm0 and xmm1) they left 14 ymm for 15 values, so GCC kept one accumulator on the stack and
  // every k step waited on a store and a reload of it (Zen 3 ran this kernel at half its FMA rate).
  volatile float alpha_held = alpha, beta_held = beta;
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();

  for (int64_t k = 0; k < kc; k++) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * b_ks), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(a + 8 * a_ks), _MM_HINT_T0);
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; r++) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += a_ks;
    b += b_ks;
  }

  alpha = alpha_held;
  beta = beta_held;
  const __m256 va = _mm256_set1_ps(alpha);
  if (bias) {
    const __m256 bias0 = _mm256_loadu_ps(bias), bias1 = _mm256_loadu_ps(bias + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; r++) {
      float* cr = c + r * ldc;
      const __m256 c0 = beta == 0.0f ? bias0 : _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(cr), bias0);
      const __m256 c1 = beta == 0.0f ? bias1 : _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(cr + 8), bias1);
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, acc[r][0], c0));
      _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, acc[r][1], c1));
    }
  } else if (beta == 0.0f) {
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

// Transposes an 8×8 block: rows r[0..7] (row i is 8 consecutive k) into columns,
// storing column k (the block's `lanes` rows) at dst + k·ld_out.
__attribute__((target("avx2"))) inline void transpose8x8(const __m256 (&r)[8], float* dst, int64_t ld_out, int lanes) {
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
    for (int k = 0; k < 8; k++) _mm256_maskstore_ps(dst + k * ld_out, mask, o[k]);
  }
}

}  // namespace

__attribute__((target("avx2"))) void transpose_pack_avx(const float* src, int64_t ld, int64_t rows, int64_t width,
                                                        int64_t kc, float* dst) {
  const int64_t kc8 = kc / 8 * 8;
  for (int64_t r0 = 0; r0 < width; r0 += 8) {
    const int lanes = static_cast<int>(std::min<int64_t>(8, width - r0));
    const int64_t valid = std::max<int64_t>(0, std::min<int64_t>(lanes, rows - r0));
    for (int64_t k = 0; k < kc8; k += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; i++) r[i] = i < valid ? _mm256_loadu_ps(src + (r0 + i) * ld + k) : _mm256_setzero_ps();
      transpose8x8(r, dst + k * width + r0, width, lanes);
    }
  }
  for (int64_t k = kc8; k < kc; k++)
    for (int64_t r = 0; r < width; r++) dst[k * width + r] = r < rows ? src[r * ld + k] : 0.0f;
}

KernelSpec avx2_kernel() { return {"avx2", kMR, kNR, kernel_6x16, transpose_pack_avx}; }

}  // namespace cs::cpu::gemm_detail

#endif
