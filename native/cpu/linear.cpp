#include "cpu/linear.h"

#include <algorithm>
#include <vector>

#include "core/linear_checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/bf16_operands.h"
#include "cpu/gemm.h"

namespace cs::cpu {

namespace {

// db (+)= Σ_m dY[m, :]. Rows are split between threads (a layer has few output columns and
// many rows: splitting columns left one thread working for N ≤ 64); each thread sums its rows
// into a partial of its own, and the partials are added in thread order.
void bias_gradient(const float* dy, int64_t ld, int64_t M, int64_t N, float* db, bool accumulate) {
  if (!accumulate)
    for (int64_t n = 0; n < N; n++) db[n] = 0.0f;
  if (M <= 0 || N <= 0) return;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(1, M * N / (1 << 15))));
  static thread_local std::vector<float> partial;  // kept: a training step reuses the sizes
  partial.assign(static_cast<size_t>(nt) * N, 0.0f);
  float* const part = partial.data();  // the workers' own thread_local would be a different vector
  auto rows = [&](int t, int n_threads) {
    const int64_t m0 = M * t / n_threads, m1 = M * (t + 1) / n_threads;
    float* acc = part + t * N;
    for (int64_t m = m0; m < m1; m++) {
      const float* row = dy + m * ld;
      for (int64_t n = 0; n < N; n++) acc[n] += row[n];
    }
  };
  if (nt <= 1) rows(0, 1);
  else parallel_run(nt, rows);
  for (int t = 0; t < nt; t++)
    for (int64_t n = 0; n < N; n++) db[n] += part[t * N + n];
}

// dW[N×K] (+)= dYᵀ·X, a product over every row of the batch (M) with a narrow result. The
// GEMM packs its A operand (here dYᵀ or Xᵀ, M values per row) and reads B in place, and each
// packed value is used for as many columns as the result has: so the narrower of N and K goes
// in A. With K < N (an MLP up-projection, qkv) that is dWᵀ[K×N] = Xᵀ·dY, into a scratch
// matrix added to dW transposed (N·K values against 2·M·N·K flops).
void weight_gradient(const MatrixRef& dY, const MatrixRef& X, int64_t M, int64_t N, int64_t K, float* dw,
                     bool accumulate) {
  if (K >= N) {
    sgemm(true, false, N, K, M, 1.0f, dY.ptr, dY.ld, X.ptr, X.ld, accumulate ? 1.0f : 0.0f, dw, K);
    return;
  }
  static thread_local std::vector<float> scratch;  // kept: a training step reuses the sizes
  scratch.resize(static_cast<size_t>(K) * N);
  float* const t = scratch.data();  // the workers' own thread_local would be a different vector
  sgemm(true, false, K, N, M, 1.0f, X.ptr, X.ld, dY.ptr, dY.ld, 0.0f, t, N);
  parallel_for(N, std::max<int64_t>(1, 4096 / K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++)
      for (int64_t k = 0; k < K; k++) dw[n * K + k] = (accumulate ? dw[n * K + k] : 0.0f) + t[k * N + n];
  });
}

}  // namespace

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const LinearDims d = check_linear_forward(check_cpu, x, w, b, y);
  const int64_t M = d.M, K = d.K, N = d.N;
  if (M == 0 || N == 0) return;

  const bool emu = bf16_emulation();
  float* yp = y.data<float>();
  if (K > 0 && !emu) {
    // One pass over y: the GEMM's kernels add the bias as they store each tile.
    sgemm_bias(false, true, M, N, K, 1.0f, x.data<float>(), K, w.data<float>(), K, b ? b->data<float>() : nullptr, yp, N);
    return;
  }
  // bf16 emulation rounds the bias first; it goes into y and the GEMM adds onto it (beta = 1).
  if (b) {
    const float* bp = b->data<float>();
    parallel_for(M, (1 << 14) / N + 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++)
        for (int64_t n = 0; n < N; n++) yp[r * N + n] = emu ? round_bf16(bp[n]) : bp[n];
    });
  }
  if (K > 0) {
    std::vector<float> xs, ws;
    MatrixRef X = matmul_operand(x.data<float>(), M, K, K, emu, xs);
    MatrixRef W = matmul_operand(w.data<float>(), N, K, K, emu, ws);
    sgemm(false, true, M, N, K, 1.0f, X.ptr, X.ld, W.ptr, W.ld, b ? 1.0f : 0.0f, yp, N);
  } else if (!b) {
    for (int64_t i = 0; i < M * N; i++) yp[i] = 0.0f;
  }
  if (emu) round_bf16_block(yp, M, N, N);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate) {
  const LinearDims d = check_linear_backward(check_cpu, x, w, dy, dx, dw, db);
  const int64_t M = d.M, K = d.K, N = d.N;

  const bool emu = bf16_emulation();
  std::vector<float> dys, xs, ws;
  MatrixRef dY = matmul_operand(dy.data<float>(), M, N, N, emu, dys);

  if (dw) {
    float* dwp = dw->data<float>();
    if (M > 0 && N > 0 && K > 0) {
      MatrixRef X = matmul_operand(x.data<float>(), M, K, K, emu, xs);
      weight_gradient(dY, X, M, N, K, dwp, accumulate);
    } else if (!accumulate) {
      for (int64_t i = 0; i < N * K; i++) dwp[i] = 0.0f;
    }
  }
  if (db) bias_gradient(dY.ptr, dY.ld, M, N, db->data<float>(), accumulate);
  if (dx) {
    float* dxp = dx->data<float>();
    if (M > 0 && K > 0 && N > 0) {
      MatrixRef W = matmul_operand(w.data<float>(), N, K, K, emu, ws);
      // dX[M×K] = dY·W
      sgemm(false, false, M, K, N, 1.0f, dY.ptr, dY.ld, W.ptr, W.ld, 0.0f, dxp, K);
      if (emu) round_bf16_block(dxp, M, K, K);
    } else {
      for (int64_t i = 0; i < M * K; i++) dxp[i] = 0.0f;
    }
  }
}

}  // namespace cs::cpu
