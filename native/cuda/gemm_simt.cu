// Our own fp32 GEMM (precision fp32: no tensor cores, fp32 FMA), for when cuBLASLt is
// absent or CLIPSCALE_GEMM=own. The f32 operands are read where they are, K-major or not
// (gemm_core.h's Operand), so fp32 GEMMs convert nothing. 64×64 tiles of C per 256-thread
// block, k in steps of 16 through shared memory (each global read coalesced along the
// operand's contiguous axis), 4×4 outputs a thread held in registers.
#include <algorithm>

#include "cuda/gemm_core.h"
#include "cuda/gemm_mma.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kTile = 64;          // rows of A and of B (columns of C) per block
constexpr int kStep = 16;          // k per shared-memory stage
constexpr int kPad = kTile + 4;    // shared row stride
constexpr int kThreads = 256;      // 16 × 16, each 4 × 4 outputs

struct SimtParams {
  const float* A;
  const float* B;
  float* C;
  int64_t lda, ldb, ldc, sa, sb, sc;
  int64_t M, N, K;
  int a_kmajor, b_kmajor;
  float alpha, beta;
  const float* bias;
  float* pre_gelu;
  int gelu, round;
};

// Tile rows [r0, r0 + 64) × k [k0, k0 + 16) of an operand into s[k][r] (zeros outside).
__device__ __forceinline__ void load_tile(float (*s)[kPad], const float* src, int64_t ld, bool kmajor, int64_t rows,
                                          int64_t K, int64_t r0, int64_t k0, int tid) {
#pragma unroll
  for (int q = 0; q < kTile * kStep / kThreads; q++) {
    const int i = tid + q * kThreads;
    // Consecutive threads walk the operand's contiguous axis.
    const int kk = kmajor ? i % kStep : i / kTile, rr = kmajor ? i / kStep : i % kTile;
    const int64_t r = r0 + rr, k = k0 + kk;
    float v = 0.0f;
    if (r < rows && k < K) v = kmajor ? src[r * ld + k] : src[k * ld + r];
    s[kk][rr] = v;
  }
}

__global__ void __launch_bounds__(kThreads) gemm_simt_kernel(SimtParams p) {
  __shared__ float As[kStep][kPad];
  __shared__ float Bs[kStep][kPad];
  const int64_t batch = blockIdx.z;
  const float* A = p.A + batch * p.sa;
  const float* B = p.B + batch * p.sb;
  float* C = p.C + batch * p.sc;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTile, n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (int64_t k0 = 0; k0 < p.K; k0 += kStep) {
    load_tile(As, A, p.lda, p.a_kmajor, p.M, p.K, m0, k0, tid);
    load_tile(Bs, B, p.ldb, p.b_kmajor, p.N, p.K, n0, k0, tid);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kStep; kk++) {
      float a[4], b[4];
      // Rows ty + 16i and columns tx + 16j: a warp reads 2 rows' words (broadcast) and 16
      // consecutive columns' words, free of bank conflicts.
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t r = m0 + ty + 16 * i, c = n0 + tx + 16 * j;
      if (r >= p.M || c >= p.N) continue;
      const int64_t at = r * p.ldc + c;
      float v = p.alpha * acc[i][j];
      if (p.beta != 0.0f) v += p.beta * C[at];
      if (p.bias) v += p.bias[c];
      C[at] = epilogue_value(v, p.gelu, p.pre_gelu ? p.pre_gelu + batch * p.sc + at : nullptr, p.round);
    }
}

}  // namespace

int own_gemm_f32(const char* op, int64_t M, int64_t N, int64_t K, Operand A, Operand B, float* C, int64_t ldc,
                 int64_t sc, int64_t batch, const Epilogue& ep, cudaStream_t stream) {
  if (A.type != kF32 || B.type != kF32) return fail("%s: the fp32 GEMM kernel takes f32 operands", op);
  if (ep.act16) return fail("%s: the fp32 GEMM kernel stores no 16-bit activations", op);
  const int64_t gy = (M + kTile - 1) / kTile, gx = (N + kTile - 1) / kTile;
  if (gy > 65535 || gx > INT32_MAX)
    return fail("%s: GEMM %lld×%lld is too large for one launch", op, (long long)M, (long long)N);
  SimtParams p{static_cast<const float*>(A.ptr), static_cast<const float*>(B.ptr), C, A.ld, B.ld, ldc, A.stride,
               B.stride, sc, M, N, K, A.kmajor ? 1 : 0, B.kmajor ? 1 : 0, ep.alpha, ep.beta, ep.bias, ep.pre_gelu,
               ep.gelu, ep.round};
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    SimtParams q = p;
    q.A += b0 * p.sa;
    q.B += b0 * p.sb;
    q.C += b0 * p.sc;
    if (q.pre_gelu) q.pre_gelu += b0 * p.sc;
    dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
              static_cast<unsigned>(std::min<int64_t>(65535, batch - b0)));
    CS_LAUNCH(gemm_simt_kernel, grid, kThreads, 0, stream, q);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

}  // namespace cs_cuda
