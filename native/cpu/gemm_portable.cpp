// Portable SGEMM micro-kernel for CPUs without AVX2 (and non-x86 builds): a 6×8 tile
// in GCC/Clang vector types, which become SSE registers on any x86-64 and NEON on
// ARM (12 accumulators, two B vectors and a broadcast fit in 16 registers).
#include "cpu/gemm_kernels.h"

#include <cstring>

namespace cs::cpu::gemm_detail {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 8;

#if defined(__GNUC__)
typedef float v4f __attribute__((vector_size(16)));

inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }

void kernel_6x8(int64_t kc, const float* a, int64_t a_ks, const float* b, int64_t b_ks, float* c, int64_t ldc,
                float alpha, float beta, const float* bias) {
  v4f acc[kMR][2] = {};
  for (int64_t k = 0; k < kc; k++) {
    const v4f b0 = load4(b), b1 = load4(b + 4);
    for (int r = 0; r < kMR; r++) {
      const v4f ar = v4f{} + a[r];
      acc[r][0] += ar * b0;
      acc[r][1] += ar * b1;
    }
    a += a_ks;
    b += b_ks;
  }
  for (int r = 0; r < kMR; r++) {
    float* cr = c + r * ldc;
    for (int h = 0; h < 2; h++) {
      v4f v = alpha * acc[r][h];
      if (beta != 0.0f) v += beta * load4(cr + 4 * h);
      if (bias) v += load4(bias + 4 * h);
      store4(cr + 4 * h, v);
    }
  }
}
#else
void kernel_6x8(int64_t kc, const float* a, int64_t a_ks, const float* b, int64_t b_ks, float* c, int64_t ldc,
                float alpha, float beta, const float* bias) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; k++, a += a_ks, b += b_ks)
    for (int r = 0; r < kMR; r++)
      for (int j = 0; j < kNR; j++) acc[r][j] += a[r] * b[j];
  for (int r = 0; r < kMR; r++)
    for (int j = 0; j < kNR; j++)
      c[r * ldc + j] = alpha * acc[r][j] + (beta == 0.0f ? 0.0f : beta * c[r * ldc + j]) + (bias ? bias[j] : 0.0f);
}
#endif

}  // namespace

void transpose_pack_portable(const float* src, int64_t ld, int64_t rows, int64_t width, int64_t kc, float* dst) {
  for (int64_t r = 0; r < rows; r++) {
    const float* s = src + r * ld;
    for (int64_t k = 0; k < kc; k++) dst[k * width + r] = s[k];
  }
  for (int64_t r = rows; r < width; r++)
    for (int64_t k = 0; k < kc; k++) dst[k * width + r] = 0.0f;
}

KernelSpec portable_kernel() { return {"portable", kMR, kNR, kernel_6x8, transpose_pack_portable}; }

#if defined(__x86_64__) || defined(_M_X64)
bool x86_kernels_built() { return true; }
#else
bool x86_kernels_built() { return false; }
KernelSpec avx512_kernel() { return portable_kernel(); }
KernelSpec avx2_kernel() { return portable_kernel(); }
void transpose_pack_avx(const float* src, int64_t ld, int64_t rows, int64_t width, int64_t kc, float* dst) {
  transpose_pack_portable(src, ld, rows, width, kc, dst);
}
#endif

}  // namespace cs::cpu::gemm_detail
