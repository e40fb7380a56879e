// Portable SGEMM micro-kernel in plain C++ for CPUs without AVX2 (and non-x86
// builds). A 4×16 tile of accumulators the compiler can keep in SSE/NEON registers.
#include "cpu/gemm_kernels.h"

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 4;
constexpr int kNR = 16;

void kernel_4x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; k++) {
    for (int r = 0; r < kMR; r++) {
      const float ar = a[r];
      for (int j = 0; j < kNR; j++) acc[r][j] += ar * b[j];
    }
    a += kMR;
    b += kNR;
  }
  for (int r = 0; r < kMR; r++) {
    float* cr = c + r * ldc;
    if (beta == 0.0f)
      for (int j = 0; j < kNR; j++) cr[j] = alpha * acc[r][j];
    else
      for (int j = 0; j < kNR; j++) cr[j] = alpha * acc[r][j] + beta * cr[j];
  }
}

}  // namespace

KernelSpec portable_kernel() { return {"portable", kMR, kNR, kernel_4x16}; }

#if defined(__x86_64__) || defined(_M_X64)
bool x86_kernels_built() { return true; }
#else
bool x86_kernels_built() { return false; }
KernelSpec avx512_kernel() { return portable_kernel(); }
KernelSpec avx2_kernel() { return portable_kernel(); }
#endif

}  // namespace cs::cpu::gemm_detail
