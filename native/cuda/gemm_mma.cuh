// Warp-level bf16 tensor-core primitives (sm_80+), shared by the GEMM and attention
// kernels: fragment loads for mma.sync m16n8k16 (fp32 accumulation) and cp.async copies
// (the instructions themselves are in ptx.cuh).
//
// Fragment layout of mma.m16n8k16 (PTX ISA), lane = 4·g + t (g = lane/4, t = lane%4):
//   A (16×16, row-major): a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..], a[2] = A[g][2t+8..], a[3] = A[g+8][2t+8..]
//   B (16×8, k × n):       b[0] = B[2t..2t+1][g],  b[1] = B[2t+8..2t+9][g]
//   C/D (16×8):            c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..2t+1]
// Every kernel here keeps both operands "K-major" in shared memory (A as [m][k], B as
// [n][k]), so each fragment register is one aligned 32-bit load of two adjacent bf16.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "core/gelu_math.h"
#include "cuda/numerics.cuh"
#include "cuda/ptx.cuh"

namespace cs_cuda {

// The PTX instructions (real, or emulated on the host and under CLIPSCALE_PTX_EMULATE).
using ptx::cp_async16;
using ptx::cp_async_commit;
using ptx::cp_async_wait;
using ptx::mma_bf16_16816;
using ptx::mma_f16_16816;

// Two adjacent bf16 (the lower address in the low half) as one register.
__device__ __forceinline__ uint32_t lds32(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

// Two floats rounded to bf16 and packed (lo at the lower address / lower column).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  return static_cast<uint32_t>(f32_to_bf16_bits(lo)) | (static_cast<uint32_t>(f32_to_bf16_bits(hi)) << 16);
}

// A-operand fragment for rows [row0, row0+16) and columns [k0, k0+16) of a K-major
// shared-memory matrix with row stride `ld` (elements).
__device__ __forceinline__ void load_a_frag(uint32_t (&a)[4], const uint16_t* s, int ld, int row0, int k0, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const uint16_t* p = s + (row0 + g) * ld + k0 + 2 * t;
  a[0] = lds32(p);
  a[1] = lds32(p + 8 * ld);
  a[2] = lds32(p + 8);
  a[3] = lds32(p + 8 * ld + 8);
}

// B-operand fragment for output columns [n0, n0+8) and k in [k0, k0+16) of a shared
// matrix stored as [n][k] with row stride `ld`.
__device__ __forceinline__ void load_b_frag(uint32_t& b0, uint32_t& b1, const uint16_t* s, int ld, int n0, int k0,
                                            int lane) {
  const int g = lane >> 2, t = lane & 3;
  const uint16_t* p = s + (n0 + g) * ld + k0 + 2 * t;
  b0 = lds32(p);
  b1 = lds32(p + 8);
}

// Two floats rounded to fp16 and packed (lo at the lower address / lower column).
__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  return static_cast<uint32_t>(f32_to_f16_bits(lo)) | (static_cast<uint32_t>(f32_to_f16_bits(hi)) << 16);
}

// GELU, tanh approximation (what cuBLASLt's GELU epilogue computes).
__device__ __forceinline__ float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // √(2/π)
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

// GELU, erf form (nn.GELU(), the model's): the CPU's function (core/gelu_math.h).
__device__ __forceinline__ float gelu_erf(float x) {
  return 0.5f * x * (1.0f + cs::gelu_math::erf_f32(x * cs::gelu_math::kInvSqrt2));
}

// The stored value of a GEMM epilogue after alpha/beta/bias (v): rounded to the run's
// precision (round: round_to's code), or with gelu (1 erf, 2 tanh) the GELU of that rounded
// value, rounded again — what the unfused linear then GELU stores; the pre-GELU value goes to
// *pre when asked.
__device__ __forceinline__ float epilogue_value(float v, int gelu, float* pre, int round) {
  const float h = round_to(round, v);
  if (!gelu) return h;
  if (pre) *pre = h;
  return round_to(round, gelu == 1 ? gelu_erf(h) : gelu_tanh(h));
}

// Stores an epilogue's value v (after alpha/beta/bias) at offset `at` of C (and of pre /
// act16 when given): as epilogue_value; or, with act16 (a 16-bit activation, gelu on), the
// rounded pre-GELU value into C and the GELU of it into act16 in the 16-bit type `round`; or,
// with act16 and no GELU, the value into act16 only (C unused: a linear's 16-bit output).
__device__ __forceinline__ void store_epilogue(float v, float* C, float* pre, uint16_t* act16, int64_t at, int gelu,
                                               int round) {
  if (act16) {
    const float h = round_to(round, v);
    if (!gelu) {
      act16[at] = to_16bit(round, h);
      return;
    }
    C[at] = h;
    act16[at] = to_16bit(round, gelu == 1 ? gelu_erf(h) : gelu_tanh(h));
    return;
  }
  C[at] = epilogue_value(v, gelu, pre ? pre + at : nullptr, round);
}

}  // namespace cs_cuda
