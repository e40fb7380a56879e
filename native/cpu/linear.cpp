#include "cpu/linear.h"

#include <utility>
#include <vector>

#include "core/checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/bf16_operands.h"
#include "cpu/gemm.h"

namespace cs::cpu {

static void check_f32_cpu(const char* op, const char* name, const Tensor& t) {
  check_cpu(op, name, t);
  check_dtype(op, name, t, DType::F32);
}

// x is [..., in]; returns the flattened row count.
static int64_t check_input(const char* op, const Tensor& x) {
  check_f32_cpu(op, "x", x);
  if (x.ndim() < 1) fail(op, ": x must have at least 1 dimension [..., in], got ", x.describe());
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.ndim(); i++) rows *= x.shape[i];
  return rows;
}

// t must be [lead..., last] where lead are x's leading dimensions.
static void check_rows_like(const char* op, const char* name, const Tensor& t, const Tensor& x, int64_t last) {
  Shape want(x.shape.begin(), x.shape.end() - 1);
  want.push_back(last);
  check_shape(op, name, t, want);
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const char* op = "linearForward";
  int64_t M = check_input(op, x);
  int64_t K = x.dim(-1);
  check_f32_cpu(op, "w", w);
  check_shape(op, "w", w, {-1, K});
  int64_t N = w.dim(0);
  if (b) {
    check_f32_cpu(op, "b", *b);
    check_shape(op, "b", *b, {N});
  }
  check_f32_cpu(op, "y", y);
  check_rows_like(op, "y", y, x, N);
  check_no_alias(op, "y", y, "x", x);
  check_no_alias(op, "y", y, "w", w);
  if (b) check_no_alias(op, "y", y, "b", *b);
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
  const char* op = "linearBackward";
  int64_t M = check_input(op, x);
  int64_t K = x.dim(-1);
  check_f32_cpu(op, "w", w);
  check_shape(op, "w", w, {-1, K});
  int64_t N = w.dim(0);
  check_f32_cpu(op, "dy", dy);
  check_rows_like(op, "dy", dy, x, N);
  if (dx) {
    check_f32_cpu(op, "dx", *dx);
    check_same_shape(op, "dx", *dx, "x", x);
    for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"dy", &dy}, {"w", &w}})
      check_no_alias(op, "dx", *dx, name, *t);
  }
  if (dw) {
    check_f32_cpu(op, "dw", *dw);
    check_same_shape(op, "dw", *dw, "w", w);
    for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"dy", &dy}, {"x", &x}})
      check_no_alias(op, "dw", *dw, name, *t);
  }
  if (db) {
    check_f32_cpu(op, "db", *db);
    check_shape(op, "db", *db, {N});
    check_no_alias(op, "db", *db, "dy", dy);
  }

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
