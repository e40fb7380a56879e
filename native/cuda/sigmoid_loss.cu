// The SigLIP loss on the device (cpu/sigmoid_loss.h): fp32 logits through a tiled fp32 GEMM
// (bf16 features would move logits at scale 100 by ~0.4, as for the CLIP loss), −log σ and its
// gradient per element without overflow (softplus of the negated margin, σ from exp(−|x|)),
// fp32 sums per thread, then per row and over rows in double in a fixed order (the result does
// not depend on scheduling), and the feature gradients through the same GEMM. The log scale and
// the bias stay on the device: nothing is read back unless the loss is asked for.
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/abi.h"
#include "cuda/abi_sigmoid_loss.h"
#include "cuda/launch.cuh"
#include "cuda/numerics.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

// C = (*alpha)·op(A)·op(B), row-major, 32×32 tiles, 256 threads with 4 outputs each.
constexpr int kT = 32, kK = 16;

__global__ void __launch_bounds__(256) sl_sgemm_kernel(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                                                       const float* __restrict__ alpha, const float* __restrict__ A,
                                                       int64_t lda, const float* __restrict__ B, int64_t ldb,
                                                       float* __restrict__ C, int64_t ldc) {
  __shared__ float As[kK][kT + 1];
  __shared__ float Bs[kK][kT + 1];
  const int tid = threadIdx.x, tx = tid & 31, ty = tid >> 5;  // ty 0..7: rows ty, ty+8, ty+16, ty+24
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kT, n0 = static_cast<int64_t>(blockIdx.x) * kT;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int64_t k0 = 0; k0 < K; k0 += kK) {
    for (int e = tid; e < kK * kT; e += 256) {
      const int kk = e / kT, mm = e % kT;
      const int64_t gm = m0 + mm, gn = n0 + mm, gk = k0 + kk;
      As[kk][mm] = gm < M && gk < K ? (ta ? A[gk * lda + gm] : A[gm * lda + gk]) : 0.f;
      Bs[kk][mm] = gn < N && gk < K ? (tb ? B[gn * ldb + gk] : B[gk * ldb + gn]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kK; kk++) {
      const float bv = Bs[kk][tx];
#pragma unroll
      for (int i = 0; i < 4; i++) acc[i] = fmaf(As[kk][ty + 8 * i], bv, acc[i]);
    }
    __syncthreads();
  }
  const float al = *alpha;
  const int64_t gn = n0 + tx;
  if (gn >= N) return;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t gm = m0 + ty + 8 * i;
    if (gm < M) C[gm * ldc + gn] = al * acc[i];
  }
}

int sl_sgemm(const char* op, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* alpha, const float* A,
             int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  dim3 grid(static_cast<unsigned>((N + kT - 1) / kT), static_cast<unsigned>((M + kT - 1) / kT));
  if (grid.y > 65535) return fail("%s: %lld rows is too many for the loss GEMM", op, static_cast<long long>(M));
  CS_LAUNCH(sl_sgemm_kernel, grid, 256, 0, stream(), ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc);
  return launched(op);
}

// s = exp(t); an overflow is recorded (reported at the next synchronisation).
__global__ void sl_exp_scale_kernel(const float* t, float* s, KernelError* err) {
  const float v = expf(*t);
  if (!isfinite(v)) record_kernel_error(err, kLogitScaleOverflow, __float_as_int(*t), 0, 0);
  *s = v;
}

constexpr int kThreads = 256;

// Row i of L = s·I·Tᵀ: the row's loss, Σ g·L (d/dt) and Σ g (d/db) into part[3i..3i+2];
// with want_grad, L's row becomes g·grad_scale (the GEMMs multiply by s).
__global__ void __launch_bounds__(kThreads) sl_rows_kernel(float* __restrict__ L, int64_t cols, int64_t offset,
                                                           const float* __restrict__ bias, float inv_r,
                                                           float grad_scale, bool want_grad,
                                                           double* __restrict__ part) {
  __shared__ double sd[32];
  const int64_t i = blockIdx.x;
  float* row = L + i * cols;
  const float b = *bias;
  const int64_t positive = offset >= 0 ? i + offset : -1;
  float l = 0.f, dt = 0.f, db = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float sl = row[j];
    const float y = j == positive ? 1.f : -1.f;
    const float m = -y * (sl + b);  // −log σ(y z) = softplus(m)
    const float e = expf(-fabsf(m));
    l += fmaxf(m, 0.f) + log1pf(e);
    if (!want_grad) continue;
    const float sig = m >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);  // σ(m)
    const float g = -y * sig * inv_r;
    dt = fmaf(g, sl, dt);
    db += g;
    row[j] = g * grad_scale;
  }
  const double rl = block_sum(static_cast<double>(l), sd);
  const double rt = block_sum(static_cast<double>(dt), sd);
  const double rb = block_sum(static_cast<double>(db), sd);
  if (threadIdx.x == 0) {
    part[3 * i] = rl;
    part[3 * i + 1] = rt;
    part[3 * i + 2] = rb;
  }
}

// Sums the rows' parts (each thread a fixed stride, then the block in a fixed tree).
__global__ void __launch_bounds__(1024) sl_finish_kernel(const double* __restrict__ part, int64_t rows, double inv_r,
                                                         float grad_scale, double* loss, float* loss_out,
                                                         float* dlogit_scale, float* dlogit_bias) {
  __shared__ double sd[32];
  double a = 0, t = 0, b = 0;
  for (int64_t k = threadIdx.x; k < rows; k += blockDim.x) {
    a += part[3 * k];
    t += part[3 * k + 1];
    b += part[3 * k + 2];
  }
  a = block_sum(a, sd);
  t = block_sum(t, sd);
  b = block_sum(b, sd);
  if (threadIdx.x == 0) {
    *loss = a * inv_r;
    if (loss_out) *loss_out = static_cast<float>(a * inv_r);
    if (dlogit_scale) *dlogit_scale = static_cast<float>(t * grad_scale);
    if (dlogit_bias) *dlogit_bias = static_cast<float>(b * grad_scale);
  }
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_sigmoid_loss(const float* image, const float* text, const float* logit_scale, const float* logit_bias,
                         int64_t R, int64_t C, int64_t D, int64_t offset, float* dimage, float* dtext,
                         float* dlogit_scale, float* dlogit_bias, float* loss_out, float* workspace, float grad_scale,
                         double* loss_host) {
  const char* op = "sigmoidLoss";
  if (R <= 0 || C <= 0 || D < 0) return fail("%s: bad sizes R %lld, C %lld, D %lld", op, (long long)R, (long long)C, (long long)D);
  if (offset < -1 || (offset >= 0 && offset + R > C)) return fail("%s: positive offset %lld outside the block", op, (long long)offset);
  if (R > 2147483647LL) return fail("%s: too many rows", op);
  cudaStream_t st = stream();
  // Scratch: s (in a double slot), the loss (double), 3 doubles per row.
  Scratch scratch;
  if (int rc = scratch.allocate(sizeof(double) * (2 + 3 * static_cast<size_t>(R)), op)) return rc;
  double* base = scratch.as<double>();
  float* s_dev = reinterpret_cast<float*>(base);
  double* loss_dev = base + 1;
  double* part = base + 2;
  Scratch own_ws;
  if (!workspace) {
    if (int rc = own_ws.allocate(sizeof(float) * static_cast<size_t>(R) * C, op)) return rc;
    workspace = own_ws.as<float>();
  }
  float* L = workspace;
  const bool want_grad = dimage || dtext || dlogit_scale || dlogit_bias;
  CS_LAUNCH(sl_exp_scale_kernel, 1, 1, 0, st, logit_scale, s_dev, kernel_error_slot());
  if (int rc = launched(op)) return rc;
  if (int rc = sl_sgemm(op, false, true, R, C, D, s_dev, image, D, text, D, L, C)) return rc;
  const float inv_r = static_cast<float>(1.0 / static_cast<double>(R));
  CS_LAUNCH(sl_rows_kernel, static_cast<unsigned>(R), kThreads, 0, st, L, C, offset, logit_bias, inv_r, grad_scale,
            want_grad, part);
  if (int rc = launched(op)) return rc;
  CS_LAUNCH(sl_finish_kernel, 1, 1024, 0, st, part, R, 1.0 / static_cast<double>(R), grad_scale, loss_dev, loss_out,
            dlogit_scale, dlogit_bias);
  if (int rc = launched(op)) return rc;
  // z = L + b with L = s·⟨I, T⟩: dI = s·G·T, dT = s·Gᵀ·I.
  if (dimage && D > 0)
    if (int rc = sl_sgemm(op, false, false, R, D, C, s_dev, L, C, text, D, dimage, D)) return rc;
  if (dtext && D > 0)
    if (int rc = sl_sgemm(op, true, false, C, D, R, s_dev, L, C, image, D, dtext, D)) return rc;
  if (loss_host)
    if (cs_cuda_memcpy_d2h(loss_host, loss_dev, sizeof(double), current_device()) != 0) return 1;
  return 0;
}

}  // extern "C"
