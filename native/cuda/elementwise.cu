// Element-wise ops: fill, scale, axpy, add, dtype conversion (abi_pointwise.h).
#include <cuda_runtime.h>

#include <cstring>

#include "core/dtype.h"
#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void fill_kernel(T* x, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] = v;
}

__global__ void scale_kernel(float* x, int64_t n, float a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] *= a;
}

// NaN compares false both ways and stays NaN (the trainer's non-finite checks see it).
__global__ void clamp_kernel(float* x, int64_t n, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i];
    x[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

__global__ void axpy_kernel(float a, const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += a * x[i];
}

// out may alias a or b (each element is read before it is written, by the same thread).
__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

// Through double, as the CPU's convert: exact for every source value but i64 beyond 2^53.
__device__ __forceinline__ double load_as_double(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case 0: return static_cast<const float*>(p)[i];
    case 1: return bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    case 2: return static_cast<const int32_t*>(p)[i];
    case 4: return f16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
  }
}

__global__ void convert_kernel(const void* src, int sd, void* dst, int dd, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = load_as_double(src, sd, i);
    switch (dd) {
      case 0: static_cast<float*>(dst)[i] = static_cast<float>(v); break;
      case 1: static_cast<uint16_t*>(dst)[i] = f32_to_bf16_bits(static_cast<float>(v)); break;
      case 2: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;  // truncates toward zero
      case 4: static_cast<uint16_t*>(dst)[i] = f32_to_f16_bits(static_cast<float>(v)); break;
      default: static_cast<int64_t*>(dst)[i] = static_cast<int64_t>(v); break;
    }
  }
}

// Host-side f32 → bf16 bits, the same rounding as the device's.
uint16_t host_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_fill(void* x, int64_t n, int dtype, double value) {
  if (n <= 0) return 0;
  const unsigned g = grid_for(n, kThreads);
  switch (dtype) {
    case 0: CS_LAUNCH(fill_kernel<float>, g, kThreads, 0, stream(), static_cast<float*>(x), n, static_cast<float>(value)); break;
    case 1:
      CS_LAUNCH(fill_kernel<uint16_t>, g, kThreads, 0, stream(), static_cast<uint16_t*>(x), n,
                                                          host_bf16_bits(static_cast<float>(value)));
      break;
    case 2: CS_LAUNCH(fill_kernel<int32_t>, g, kThreads, 0, stream(), static_cast<int32_t*>(x), n, static_cast<int32_t>(value)); break;
    case 3: CS_LAUNCH(fill_kernel<int64_t>, g, kThreads, 0, stream(), static_cast<int64_t*>(x), n, static_cast<int64_t>(value)); break;
    case 4:
      CS_LAUNCH(fill_kernel<uint16_t>, g, kThreads, 0, stream(), static_cast<uint16_t*>(x), n,
                cs::f32_to_f16_bits(static_cast<float>(value)));
      break;
    default: return fail("fill: unknown dtype code %d", dtype);
  }
  return launched("fill");
}

int cs_cuda_scale(float* x, int64_t n, float alpha) {
  if (n <= 0) return 0;
  CS_LAUNCH(scale_kernel, grid_for(n, kThreads), kThreads, 0, stream(), x, n, alpha);
  return launched("scale");
}

int cs_cuda_clamp(float* x, int64_t n, float lo, float hi) {
  if (n <= 0) return 0;
  CS_LAUNCH(clamp_kernel, grid_for(n, kThreads), kThreads, 0, stream(), x, n, lo, hi);
  return launched("clamp");
}

int cs_cuda_axpy(float alpha, const float* x, float* y, int64_t n) {
  if (n <= 0) return 0;
  CS_LAUNCH(axpy_kernel, grid_for(n, kThreads), kThreads, 0, stream(), alpha, x, y, n);
  return launched("axpy");
}

int cs_cuda_add(const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return 0;
  CS_LAUNCH(add_kernel, grid_for(n, kThreads), kThreads, 0, stream(), a, b, out, n);
  return launched("add");
}

int cs_cuda_convert(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n) {
  if (src_dtype < 0 || src_dtype > 4 || dst_dtype < 0 || dst_dtype > 4)
    return fail("convert: unknown dtype codes %d, %d", src_dtype, dst_dtype);
  if (n <= 0) return 0;
  CS_LAUNCH(convert_kernel, grid_for(n, kThreads), kThreads, 0, stream(), src, src_dtype, dst, dst_dtype, n);
  return launched("convert");
}

}  // extern "C"
