// The fused CLIP contrastive loss (cpu/contrastive_loss.h), fp32 throughout like the
// CPU op: the logits block through a tiled fp32 GEMM (the loss needs fp32 logits: at a
// scale of 100, bf16 features would move logits by ~0.4), row and column log-sum-exp
// reductions, the gradient of the logits in place, and the feature gradients through
// the same GEMM. The log scale stays on the device: s = exp(t) is computed there, and
// an overflow is reported at the next synchronisation.
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/abi.h"
#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

// ── a plain tiled fp32 GEMM: C = alpha·(*alpha_dev)·op(A)·op(B) + beta·C ──
// 64×64 tiles, 16-deep k steps, 256 threads with 4×4 outputs each (strided by 16 so
// shared-memory reads spread over banks). beta = 0 never reads C.
constexpr int kTile = 64, kDepth = 16;

__global__ void __launch_bounds__(256) sgemm_kernel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                                    float alpha, const float* __restrict__ alpha_dev,
                                                    const float* __restrict__ A, int64_t lda,
                                                    const float* __restrict__ B, int64_t ldb, float beta, float* C,
                                                    int64_t ldc) {
  __shared__ float As[kDepth][kTile + 4];
  __shared__ float Bs[kDepth][kTile + 4];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTile, n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    // 1024 values of each tile, 4 a thread.
#pragma unroll
    for (int l = 0; l < 4; l++) {
      const int e = tid + l * 256;
      int mm, kk;
      if (trans_a) {  // A stored [K, M]: read along m for coalescing
        kk = e / kTile;
        mm = e % kTile;
      } else {  // A stored [M, K]
        mm = e / kDepth;
        kk = e % kDepth;
      }
      const int64_t gm = m0 + mm, gk = k0 + kk;
      float v = 0.f;
      if (gm < M && gk < K) v = trans_a ? A[gk * lda + gm] : A[gm * lda + gk];
      As[kk][mm] = v;
      int nn;
      if (trans_b) {  // B stored [N, K]
        nn = e / kDepth;
        kk = e % kDepth;
      } else {  // B stored [K, N]
        kk = e / kTile;
        nn = e % kTile;
      }
      const int64_t gn = n0 + nn, gk2 = k0 + kk;
      float w = 0.f;
      if (gn < N && gk2 < K) w = trans_b ? B[gn * ldb + gk2] : B[gk2 * ldb + gn];
      Bs[kk][nn] = w;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kDepth; kk++) {
      float a[4], b[4];
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
  const float al = alpha * (alpha_dev ? *alpha_dev : 1.0f);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t gm = m0 + ty + 16 * i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t gn = n0 + tx + 16 * j;
      if (gn >= N) continue;
      float* c = C + gm * ldc + gn;
      *c = beta == 0.f ? al * acc[i][j] : al * acc[i][j] + beta * *c;
    }
  }
}

int sgemm(const char* op, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* alpha_dev, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return 0;
  dim3 grid(static_cast<unsigned>((N + kTile - 1) / kTile), static_cast<unsigned>((M + kTile - 1) / kTile));
  if (grid.y > 65535) return fail("%s: %lld rows is too many for the loss GEMM", op, static_cast<long long>(M));
  CS_LAUNCH(sgemm_kernel, grid, 256, 0, stream(), ta, tb, M, N, K, 1.0f, alpha_dev, A, lda, B, ldb, beta, C, ldc);
  return launched(op);
}

// s = exp(t); an overflow is recorded (reported at the next synchronisation).
__global__ void exp_scale_kernel(const float* t, float* s, KernelError* err) {
  const float v = expf(*t);
  if (!isfinite(v)) record_kernel_error(err, kLogitScaleOverflow, __float_as_int(*t), 0, 0);
  *s = v;
}

constexpr int kThreads = 256;

// Per row i of a [rows, cols] block: lse_i and ce_i = lse_i − L[i, target_offset + i].
__global__ void __launch_bounds__(kThreads) row_lse_kernel(const float* __restrict__ L, int64_t cols,
                                                           int64_t target_offset, double* __restrict__ lse,
                                                           double* __restrict__ ce) {
  __shared__ float sf[32];
  __shared__ double sd[32];
  const int64_t i = blockIdx.x;
  const float* row = L + i * cols;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = block_max(mx, sf);
  double s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += static_cast<double>(expf(row[j] - mx));
  s = block_sum(s, sd);
  if (threadIdx.x == 0) {
    const double l = static_cast<double>(mx) + log(s);
    lse[i] = l;
    ce[i] = l - static_cast<double>(row[target_offset + i]);
  }
}

// Column log-sum-exp of an [N, N] block, parallel over rows as well as columns: pass 1
// reduces each (row chunk, 32-column chunk) to a partial max and Σ exp(v − max) per column,
// pass 2 combines a column's partials into lse_j and ce_j = lse_j − L[j, j]. A block of
// pass 1 is 32 columns × 8 row lanes, so a warp reads 32 consecutive floats of one row.
constexpr int kColChunk = 32, kColLanes = 8;
constexpr int64_t kMaxRowChunks = 64, kMinChunkRows = 256;

inline int64_t col_lse_row_chunks(int64_t N) {
  const int64_t c = (N + kMinChunkRows - 1) / kMinChunkRows;
  return c < 1 ? 1 : c > kMaxRowChunks ? kMaxRowChunks : c;
}

__global__ void __launch_bounds__(kColChunk * kColLanes) col_lse_partial_kernel(const float* __restrict__ L, int64_t N,
                                                                                int64_t chunk_rows,
                                                                                float* __restrict__ part_max,
                                                                                double* __restrict__ part_sum) {
  __shared__ float sm[kColLanes][kColChunk];
  __shared__ double ss[kColLanes][kColChunk];
  const int cx = threadIdx.x % kColChunk, ry = threadIdx.x / kColChunk;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColChunk + cx;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t i1 = i0 + chunk_rows < N ? i0 + chunk_rows : N;
  float mx = -INFINITY;
  double sum = 0;
  if (j < N)
    for (int64_t i = i0 + ry; i < i1; i += kColLanes) {
      const float v = L[i * N + j];
      if (v > mx) {
        sum *= exp(static_cast<double>(mx - v));
        mx = v;
      }
      sum += static_cast<double>(expf(v - mx));
    }
  sm[ry][cx] = mx;
  ss[ry][cx] = sum;
  __syncthreads();
  if (ry != 0 || j >= N) return;
  float m = sm[0][cx];
  for (int r = 1; r < kColLanes; r++) m = fmaxf(m, sm[r][cx]);
  double s = 0;
  for (int r = 0; r < kColLanes; r++)
    if (ss[r][cx] > 0) s += ss[r][cx] * exp(static_cast<double>(sm[r][cx] - m));
  part_max[blockIdx.y * N + j] = m;
  part_sum[blockIdx.y * N + j] = s;
}

__global__ void col_lse_combine_kernel(const float* __restrict__ part_max, const double* __restrict__ part_sum,
                                       int64_t chunks, const float* __restrict__ L, int64_t N,
                                       double* __restrict__ lse, double* __restrict__ ce) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= N) return;
  float m = -INFINITY;
  for (int64_t c = 0; c < chunks; c++) m = fmaxf(m, part_max[c * N + j]);
  double s = 0;
  for (int64_t c = 0; c < chunks; c++)
    if (part_sum[c * N + j] > 0) s += part_sum[c * N + j] * exp(static_cast<double>(part_max[c * N + j] - m));
  const double l = static_cast<double>(m) + log(s);
  lse[j] = l;
  ce[j] = l - static_cast<double>(L[j * N + j]);
}

// In place, row i: G = c·(softmax_row − onehot) [+ c·(softmax_col − onehot) when col_lse],
// dt_i = Σ_j G_ij·L_ij.
__global__ void __launch_bounds__(kThreads) logits_grad_kernel(float* L, int64_t cols, int64_t target_offset,
                                                               const double* __restrict__ row_lse,
                                                               const double* __restrict__ col_lse, float c,
                                                               double* __restrict__ dt) {
  __shared__ double sd[32];
  const int64_t i = blockIdx.x;
  float* row = L + i * cols;
  const float rl = static_cast<float>(row_lse[i]);
  const int64_t target = target_offset + i;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float l = row[j];
    float p = expf(l - rl) - (j == target ? 1.0f : 0.0f);
    if (col_lse) p += expf(l - static_cast<float>(col_lse[j])) - (j == target ? 1.0f : 0.0f);
    const float g = c * p;
    acc += static_cast<double>(g) * l;
    row[j] = g;
  }
  acc = block_sum(acc, sd);
  if (threadIdx.x == 0) dt[i] = acc;
}

// loss = Σ ce / (2N) into loss (double, device) and loss_out; dlogit = Σ dt.
__global__ void __launch_bounds__(1024) finish_kernel(const double* __restrict__ ce, int64_t n_ce,
                                                      const double* __restrict__ dt, int64_t n_dt, double inv_2n,
                                                      double* loss, float* loss_out, float* dlogit) {
  __shared__ double sd[32];
  double a = 0, b = 0;
  for (int64_t k = threadIdx.x; k < n_ce; k += blockDim.x) a += ce[k];
  for (int64_t k = threadIdx.x; k < n_dt; k += blockDim.x) b += dt[k];
  a = block_sum(a, sd);
  b = block_sum(b, sd);
  if (threadIdx.x == 0) {
    *loss = a * inv_2n;
    if (loss_out) *loss_out = static_cast<float>(a * inv_2n);
    if (dlogit) *dlogit = static_cast<float>(b);
  }
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_contrastive_loss(const float* image, const float* text, const float* logit_scale, int64_t N, int64_t D,
                             int64_t r0, int64_t n, float* dimage, float* dtext, float* dlogit_scale, float* loss_out,
                             float* workspace, float loss_scale, double* loss_host) {
  const char* op = "contrastiveLoss";
  if (N <= 0 || n <= 0 || r0 < 0 || r0 + n > N) return fail("%s: bad rows %lld .. %lld of %lld", op, (long long)r0, (long long)(r0 + n), (long long)N);
  if (n > 2147483647LL) return fail("%s: too many rows", op);
  cudaStream_t st = stream();
  // Scratch: s (as a double slot), lse rows/cols, ce (2N), dt (2N), the loss.
  Scratch scratch;
  if (int rc = scratch.allocate(sizeof(double) * (2 + 6 * static_cast<size_t>(N)), op)) return rc;
  double* base = scratch.as<double>();
  float* s_dev = reinterpret_cast<float*>(base);
  double* loss_dev = base + 1;
  double* lse_a = base + 2;
  double* lse_b = lse_a + N;
  double* ce = lse_b + N;
  double* dt = ce + 2 * N;
  Scratch own_ws;
  if (!workspace) {
    if (int rc = own_ws.allocate(sizeof(float) * static_cast<size_t>(n) * N, op)) return rc;
    workspace = own_ws.as<float>();
  }
  float* L = workspace;
  const bool want_grad = dimage || dtext || dlogit_scale;
  const float c = static_cast<float>(static_cast<double>(loss_scale) / (2.0 * static_cast<double>(N)));

  CS_LAUNCH(exp_scale_kernel, 1, 1, 0, st, logit_scale, s_dev, kernel_error_slot());
  if (int rc = launched(op)) return rc;
  if (int rc = check(cudaMemsetAsync(dt, 0, sizeof(double) * 2 * N, st), op, "clearing scratch")) return rc;

  int64_t n_ce = 0;
  if (n == N) {
    // One N×N logits matrix serves both directions: rows image→text, columns text→image.
    if (int rc = sgemm(op, false, true, N, N, D, s_dev, image, D, text, D, 0.0f, L, N)) return rc;
    CS_LAUNCH(row_lse_kernel, static_cast<unsigned>(N), kThreads, 0, st, L, N, 0, lse_a, ce);
    if (int rc = launched(op)) return rc;
    {
      const int64_t chunks = col_lse_row_chunks(N), chunk_rows = (N + chunks - 1) / chunks;
      Scratch parts;
      if (int rc = parts.allocate((sizeof(float) + sizeof(double)) * static_cast<size_t>(chunks * N), op)) return rc;
      double* part_sum = parts.as<double>();
      float* part_max = reinterpret_cast<float*>(part_sum + chunks * N);
      const dim3 grid(static_cast<unsigned>((N + kColChunk - 1) / kColChunk), static_cast<unsigned>(chunks));
      CS_LAUNCH(col_lse_partial_kernel, grid, kColChunk * kColLanes, 0, st, L, N, chunk_rows, part_max, part_sum);
      if (int rc = launched(op)) return rc;
      CS_LAUNCH(col_lse_combine_kernel, static_cast<unsigned>((N + 255) / 256), 256, 0, st, part_max, part_sum, chunks,
                L, N, lse_b, ce + N);
      if (int rc = launched(op)) return rc;
    }
    n_ce = 2 * N;
    if (want_grad) {
      CS_LAUNCH(logits_grad_kernel, static_cast<unsigned>(N), kThreads, 0, st, L, N, 0, lse_a, lse_b, c, dt);
      if (int rc = launched(op)) return rc;
      // logits = s·I·Tᵀ: dI = s·G·T, dT = s·Gᵀ·I.
      if (dimage)
        if (int rc = sgemm(op, false, false, N, D, N, s_dev, L, N, text, D, 0.0f, dimage, D)) return rc;
      if (dtext)
        if (int rc = sgemm(op, true, false, N, D, N, s_dev, L, N, image, D, 0.0f, dtext, D)) return rc;
    }
  } else {
    // A rank's share: own image rows against all texts, then own text rows against all images.
    for (int dir = 0; dir < 2; dir++) {
      const float* A = dir == 0 ? image : text;
      const float* B = dir == 0 ? text : image;
      float* dA = dir == 0 ? dimage : dtext;
      float* dB = dir == 0 ? dtext : dimage;
      if (int rc = sgemm(op, false, true, n, N, D, s_dev, A + r0 * D, D, B, D, 0.0f, L, N)) return rc;
      CS_LAUNCH(row_lse_kernel, static_cast<unsigned>(n), kThreads, 0, st, L, N, r0, lse_a, ce + dir * n);
      if (int rc = launched(op)) return rc;
      if (!want_grad) continue;
      CS_LAUNCH(logits_grad_kernel, static_cast<unsigned>(n), kThreads, 0, st, L, N, r0, lse_a, nullptr, c, dt + dir * n);
      if (int rc = launched(op)) return rc;
      // The first direction overwrites (beta = 0), the second adds.
      const float beta = dir == 0 ? 0.0f : 1.0f;
      if (dA) {
        if (dir == 0) {
          if (r0 > 0 && cudaMemsetAsync(dA, 0, sizeof(float) * r0 * D, st) != cudaSuccess)
            return check(cudaGetLastError(), op, "zeroing dImage");
          if (r0 + n < N && cudaMemsetAsync(dA + (r0 + n) * D, 0, sizeof(float) * (N - r0 - n) * D, st) != cudaSuccess)
            return check(cudaGetLastError(), op, "zeroing dImage");
        }
        if (int rc = sgemm(op, false, false, n, D, N, s_dev, L, N, B, D, beta, dA + r0 * D, D)) return rc;
      }
      if (dB)
        if (int rc = sgemm(op, true, false, N, D, n, s_dev, L, N, A + r0 * D, D, beta, dB, D)) return rc;
    }
    n_ce = 2 * n;
  }
  CS_LAUNCH(finish_kernel, 1, 1024, 0, st, ce, n_ce, dt, 2 * N, 1.0 / (2.0 * static_cast<double>(N)), loss_dev, loss_out,
                                    dlogit_scale);
  if (int rc = launched(op)) return rc;
  if (loss_host) {
    if (cs_cuda_memcpy_d2h(loss_host, loss_dev, sizeof(double), current_device()) != 0) {
      // Keep the message (it may be the recorded overflow) but name the op when it does not.
      return 1;
    }
  }
  return 0;
}

}  // extern "C"
