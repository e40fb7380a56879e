// The 16-bit operand types of the attention kernels' tensor-core paths, as one trait each
// (bf16 and f16 under the precision switch, runtime.h), and the rounding the small passes
// around them apply per precision. Accumulation, scores, softmax and lse are fp32 in
// every mode; only what enters an mma (and what is stored) is rounded.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/numerics.cuh"
#include "cuda/ptx.cuh"
#include "cuda/runtime.h"

#if defined(__CUDA_ARCH__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace cs_cuda {

struct Bf16Operands {
  static constexpr Precision kPrecision = Precision::BF16;
  static __device__ __forceinline__ uint16_t bits(float f) { return f32_to_bf16_bits(f); }
  static __device__ __forceinline__ float round(float f) { return round_bf16(f); }
  // lo at the lower address / lower column. On the GPU one cvt.rn.bf16x2.f32 (the same
  // round-to-nearest-even as the bit-level path, which the host emulation runs; they differ
  // only in which NaN they give).
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
#if defined(__CUDA_ARCH__)
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
#else
    return static_cast<uint32_t>(f32_to_bf16_bits(lo)) | (static_cast<uint32_t>(f32_to_bf16_bits(hi)) << 16);
#endif
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    ptx::mma_bf16_16816(d, a, b0, b1);
  }
};

struct F16Operands {
  static constexpr Precision kPrecision = Precision::F16;
  static __device__ __forceinline__ uint16_t bits(float f) { return f32_to_f16_bits(f); }
  static __device__ __forceinline__ float round(float f) { return round_f16(f); }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
#if defined(__CUDA_ARCH__)
    const __half2 v = __floats2half2_rn(lo, hi);  // cvt.rn.f16x2.f32, as bf16 above
    return *reinterpret_cast<const uint32_t*>(&v);
#else
    return static_cast<uint32_t>(f32_to_f16_bits(lo)) | (static_cast<uint32_t>(f32_to_f16_bits(hi)) << 16);
#endif
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    ptx::mma_f16_16816(d, a, b0, b1);
  }
};

// numerics.cuh's round_to / to_16bit, taking the Precision enum.
__device__ __forceinline__ float round_to(Precision p, float f) { return round_to(static_cast<int>(p), f); }
__device__ __forceinline__ uint16_t operand_bits(Precision p, float f) { return to_16bit(static_cast<int>(p), f); }

}  // namespace cs_cuda
