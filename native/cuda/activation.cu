// GELU (erf form) and QuickGELU, forward and backward. The erf is the CPU backend's
// rational approximation (cpu/activation.cpp), so both backends compute the same
// function; forward outputs are rounded to bf16.
#include <cuda_runtime.h>

#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kQuickGeluAlpha = 1.702f;

__device__ __forceinline__ float erf_f32(float a) {
  const float x = fminf(4.0f, fmaxf(-4.0f, a));
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

struct Gelu {
  __device__ static float f(float x) { return 0.5f * x * (1.0f + erf_f32(x * kInvSqrt2)); }
  __device__ static float df(float x) {
    return 0.5f * (1.0f + erf_f32(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
  }
};
struct QuickGelu {
  __device__ static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }
  __device__ static float f(float x) { return x * sigmoid(kQuickGeluAlpha * x); }
  __device__ static float df(float x) {
    const float s = sigmoid(kQuickGeluAlpha * x);
    return s + kQuickGeluAlpha * x * s * (1.0f - s);
  }
};

// out may be x (each element read, then written, by one thread).
template <typename F>
__global__ void forward_kernel(const float* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = round_bf16(F::f(x[i]));
}

template <typename F>
__global__ void backward_kernel(const float* x, const float* dout, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dout[i] * F::df(x[i]);
}

template <typename F>
int forward(const char* op, const float* x, float* out, int64_t n) {
  if (n <= 0) return 0;
  forward_kernel<F><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, out, n);
  return launched(op);
}
template <typename F>
int backward(const char* op, const float* x, const float* dout, float* dx, int64_t n) {
  if (n <= 0) return 0;
  backward_kernel<F><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, dout, dx, n);
  return launched(op);
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_gelu_forward(const float* x, float* out, int64_t n) { return forward<Gelu>("geluForward", x, out, n); }
int cs_cuda_gelu_backward(const float* x, const float* dout, float* dx, int64_t n) {
  return backward<Gelu>("geluBackward", x, dout, dx, n);
}
int cs_cuda_quick_gelu_forward(const float* x, float* out, int64_t n) {
  return forward<QuickGelu>("quickGeluForward", x, out, n);
}
int cs_cuda_quick_gelu_backward(const float* x, const float* dout, float* dx, int64_t n) {
  return backward<QuickGelu>("quickGeluBackward", x, dout, dx, n);
}

}  // extern "C"
