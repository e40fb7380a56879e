// Warp-level bf16 tensor-core primitives (sm_80+), shared by the GEMM and attention
// kernels: mma.sync m16n8k16 with fp32 accumulation and cp.async copies.
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

#include "cuda/numerics.cuh"

namespace cs_cuda {

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

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

// 16-byte asynchronous global→shared copy; zero-fills when !valid (src is not read).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// GELU, tanh approximation (what cuBLASLt's GELU epilogue computes).
__device__ __forceinline__ float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // √(2/π)
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

}  // namespace cs_cuda
