#include "cpu/linear.h"

#include <vector>

#include "core/linear_checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/bf16_operands.h"
#include "cpu/gemm.h"

namespace cs::cpu {

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const LinearDims d = check_linear_forward(check_cpu, x, w, b, y);
  const int64_t M = d.M, K = d.K, N = d.N;
  if (M == 0 || N == 0) return;

  const bool emu = bf16_emulation();
  float* yp = y.data<float>();
  // The bias goes into y first and the GEMM adds onto it (beta = 1).
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
      // dW[N×K] = dYᵀ·X
      sgemm(true, false, N, K, M, 1.0f, dY.ptr, dY.ld, X.ptr, X.ld, accumulate ? 1.0f : 0.0f, dwp, K);
    } else if (!accumulate) {
      for (int64_t i = 0; i < N * K; i++) dwp[i] = 0.0f;
    }
  }
  if (db) {
    float* dbp = db->data<float>();
    // Columns split across threads; each thread walks every row of its columns.
    parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
      if (!accumulate)
        for (int64_t n = n0; n < n1; n++) dbp[n] = 0.0f;
      for (int64_t m = 0; m < M; m++) {
        const float* row = dY.ptr + m * dY.ld;
        for (int64_t n = n0; n < n1; n++) dbp[n] += row[n];
      }
    });
  }
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
