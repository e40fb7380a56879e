// Device-side numerics shared by the kernels: bf16 rounding exactly as the CPU's
// bf16 emulation (core/dtype.h), and warp/block reductions.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/runtime.h"

namespace cs_cuda {

// The precision code kernels are launched with (round_to below).
inline int stored_precision() { return static_cast<int>(precision()); }

// Round to nearest even, NaN stays NaN (the CPU's f32_to_bf16_bits).
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }
__device__ __forceinline__ float round_bf16(float f) { return bf16_bits_to_f32(f32_to_bf16_bits(f)); }

// IEEE binary16: round to nearest even, overflow to ±inf, subnormals kept, NaN stays NaN
// (quiet). Bit-level so the host emulation and the GPU agree without cuda_fp16.h.
__device__ __forceinline__ uint16_t f32_to_f16_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
  if (mag > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((mag >> 13) & 0x1ffu));
  if (mag >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520 rounds to inf
  if (mag < 0x38800000u) {                                              // below 2^-14: subnormal or 0
    if (mag < 0x33000000u) return static_cast<uint16_t>(sign);          // below 2^-25: rounds to ±0
    const uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(mag >> 23);                 // 14..24 more places right
    const uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    return static_cast<uint16_t>(sign | (q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u)));
  }
  const uint32_t r = mag + 0xfffu + ((mag >> 13) & 1u);  // round the 13 dropped bits to even
  return static_cast<uint16_t>(sign | ((r - 0x38000000u) >> 13));
}
__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) {  // subnormal: m · 2^-24, exact in f32
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ float round_f16(float f) { return f16_bits_to_f32(f32_to_f16_bits(f)); }

// A stored value in the run's precision (cs_cuda_set_precision; runtime.h's Precision codes):
// 0 fp32 (unchanged), 1 bf16, 2 fp16. Kernels take the code as an argument (stored_precision()
// on the host at launch), since the switch lives in host memory.
__device__ __forceinline__ float round_to(int precision, float x) {
  return precision == 1 ? round_bf16(x) : precision == 2 ? round_f16(x) : x;
}
// The 16-bit bits of x in a 16-bit precision (1 bf16, 2 fp16), for 16-bit operands and copies.
__device__ __forceinline__ uint16_t to_16bit(int precision, float x) {
  return precision == 2 ? f32_to_f16_bits(x) : f32_to_bf16_bits(x);
}
__device__ __forceinline__ float from_16bit(int precision, uint16_t h) {
  return precision == 2 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
// `shared` holds 32 values; the call synchronises the block.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T r = lane < warps ? shared[lane] : T(0);
  r = warp_sum(r);
  return r;
}
__device__ inline float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float r = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(r);
}

}  // namespace cs_cuda
