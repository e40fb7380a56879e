// Shared-memory tiles and ldmatrix fragment loads of the FlashAttention-2 kernels
// (attention_forward.cu, attention_backward.cu).
//
// Global operand layout (attention_ops.cu's pack pass): 16-bit Q, K, V and dO, one
// head's rows contiguous, [B·heads][S][DP] with the columns d..DP-1 zero, so every row is
// DP·2 bytes (a multiple of 32) and each 16-byte cp.async chunk is aligned.
//
// Shared layout: a tile of R rows is [R][DP + 8] 16-bit values. The 8-element pad makes
// the row stride an odd number of 16-byte units (DP/8 + 1 with DP a multiple of 16), so
// the 8 row addresses of one ldmatrix 8×8 matrix (16 bytes each, at one column) fall in 8
// different 4-bank groups: every ldmatrix phase reads all 32 banks once, no conflicts.
// cp.async writes 16-byte chunks along a row, consecutive threads on consecutive chunks
// (coalesced global reads): conflict-free at DP 64 and 128, where a phase's 8 chunks lie in
// one row; at DP 80 and 96 a phase that wraps into the next row has one 2-way conflict
// (Nsight Compute would show whether that matters). The dSᵀ tile of the backward uses the
// same rule with kQ + 8.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/ptx.cuh"

namespace cs_cuda {

constexpr int kAttnThreads = 128;  // 4 warps

// Rows [r0, r0 + R) of a [rows][DP] 16-bit matrix into a [R][DP+8] tile with cp.async;
// rows at or past `rows` are zero-filled (their source is not read). The caller commits.
template <int R, int DP>
__device__ __forceinline__ void load_tile_async(uint16_t* tile, const uint16_t* src, int r0, int rows, int tid) {
  constexpr int kChunks = DP / 8, kLd = DP + 8;
#pragma unroll 2
  for (int i = tid; i < R * kChunks; i += kAttnThreads) {
    const int r = i / kChunks, ch = i % kChunks;
    const bool valid = r0 + r < rows;
    const uint16_t* from = valid ? src + static_cast<int64_t>(r0 + r) * DP + ch * 8 : src;
    ptx::cp_async16(tile + r * kLd + ch * 8, from, valid);
  }
}

// A fragment (16×16, rows row0.., k k0..) of a tile stored [m][k].
// Matrices 0..3 = (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
__device__ __forceinline__ void ldsm_a(uint32_t (&a)[4], const uint16_t* s, int ld, int row0, int k0, int lane) {
  const int i = lane >> 3;
  ptx::ldmatrix_x4(a, s + (row0 + (lane & 7) + 8 * (i & 1)) * ld + k0 + 8 * (i >> 1));
}

// A fragment (16×16: m m0.., k k0..) of a tile stored transposed, [k][m] (.trans).
// Matrices 0..3 = stored (k 0-7, m 0-7), (k 0-7, m 8-15), (k 8-15, m 0-7), (k 8-15, m 8-15).
__device__ __forceinline__ void ldsm_a_trans(uint32_t (&a)[4], const uint16_t* s, int ld, int m0, int k0, int lane) {
  const int i = lane >> 3;
  ptx::ldmatrix_x4_trans(a, s + (k0 + (lane & 7) + 8 * (i >> 1)) * ld + m0 + 8 * (i & 1));
}

// B fragments of two adjacent n-blocks (n0.., n0+8..; k k0..k0+15) of a tile stored
// [n][k]: b[0], b[1] for n0 and b[2], b[3] for n0 + 8.
__device__ __forceinline__ void ldsm_b2(uint32_t (&b)[4], const uint16_t* s, int ld, int n0, int k0, int lane) {
  const int i = lane >> 3;
  ptx::ldmatrix_x4(b, s + (n0 + (lane & 7) + 8 * (i >> 1)) * ld + k0 + 8 * (i & 1));
}

// The same from a tile stored [k][n] (.trans): V in P·V, dO and Q in the backward's
// dV and dK, K in dQ.
__device__ __forceinline__ void ldsm_b2_trans(uint32_t (&b)[4], const uint16_t* s, int ld, int k0, int n0, int lane) {
  const int i = lane >> 3;
  ptx::ldmatrix_x4_trans(b, s + (k0 + (lane & 7) + 8 * (i & 1)) * ld + n0 + 8 * (i >> 1));
}

}  // namespace cs_cuda
