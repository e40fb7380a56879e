// GELU (erf and tanh forms) and QuickGELU, forward and backward. The erf is the one in
// core/gelu_math.h, shared with the CPU backend, so both compute the same function;
// forward outputs are rounded to the run's precision (round_to).
#include <cuda_runtime.h>

#include "core/gelu_math.h"
#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;
using cs::gelu_math::erf_f32;
using cs::gelu_math::kInvSqrt2;
using cs::gelu_math::kInvSqrt2Pi;
using cs::gelu_math::kQuickGeluAlpha;

struct Gelu {
  __device__ static float f(float x) { return 0.5f * x * (1.0f + erf_f32(x * kInvSqrt2)); }
  __device__ static float df(float x) {
    return 0.5f * (1.0f + erf_f32(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
  }
};
// nn.GELU(approximate='tanh') (SigLIP 2's act_kwargs): the CPU's is lib/nn/gelu_tanh.ts.
struct GeluTanh {
  static constexpr float kK = 0.7978845608028654f, kC = 0.044715f;  // √(2/π)
  __device__ static float f(float x) { return 0.5f * x * (1.0f + tanhf(kK * (x + kC * x * x * x))); }
  __device__ static float df(float x) {
    const float t = tanhf(kK * (x + kC * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kK * (1.0f + 3.0f * kC * x * x);
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
__global__ void forward_kernel(const float* x, float* out, int64_t n, int prec) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = round_to(prec, F::f(x[i]));
}

template <typename F>
__global__ void backward_kernel(const float* x, const float* dout, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dout[i] * F::df(x[i]);
}

template <typename F>
int forward(const char* op, const float* x, float* out, int64_t n) {
  if (n <= 0) return 0;
  CS_LAUNCH(forward_kernel<F>, grid_for(n, kThreads), kThreads, 0, stream(), x, out, n, stored_precision());
  return launched(op);
}
template <typename F>
int backward(const char* op, const float* x, const float* dout, float* dx, int64_t n) {
  if (n <= 0) return 0;
  CS_LAUNCH(backward_kernel<F>, grid_for(n, kThreads), kThreads, 0, stream(), x, dout, dx, n);
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
int cs_cuda_gelu_tanh_forward(const float* x, float* out, int64_t n) {
  return forward<GeluTanh>("geluTanhForward", x, out, n);
}
int cs_cuda_gelu_tanh_backward(const float* x, const float* dout, float* dx, int64_t n) {
  return backward<GeluTanh>("geluTanhBackward", x, dout, dx, n);
}
int cs_cuda_quick_gelu_forward(const float* x, float* out, int64_t n) {
  return forward<QuickGelu>("quickGeluForward", x, out, n);
}
int cs_cuda_quick_gelu_backward(const float* x, const float* dout, float* dx, int64_t n) {
  return backward<QuickGelu>("quickGeluBackward", x, dout, dx, n);
}

}  // extern "C"
