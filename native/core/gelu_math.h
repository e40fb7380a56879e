// The GELU arithmetic both backends share: the erf approximation and the constants,
// so the CPU and CUDA GELUs compute the same function. Plain arithmetic (no libm
// call), so CPU loops over it vectorise.
#pragma once

#if defined(__CUDACC__)
#define CS_GELU_FN __host__ __device__ __forceinline__
#define CS_GELU_CLAMP(v, lo, hi) fminf(hi, fmaxf(lo, v))
#else
#include <algorithm>
#define CS_GELU_FN inline
#define CS_GELU_CLAMP(v, lo, hi) std::min(hi, std::max(lo, v))
#endif

namespace cs::gelu_math {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kQuickGeluAlpha = 1.702f;

// erf as a rational function on [-4, 4] (the coefficients of Eigen's and XLA's float
// erf; a few ulp, and erf(±4) rounds to ±1 in fp32).
CS_GELU_FN float erf_f32(float a) {
  const float x = CS_GELU_CLAMP(a, -4.0f, 4.0f);
  const float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

}  // namespace cs::gelu_math
