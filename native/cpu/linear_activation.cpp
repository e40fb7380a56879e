#include "cpu/linear_activation.h"

#include <algorithm>
#include <vector>

#include "core/activation_checks.h"
#include "core/error.h"
#include "core/linear_checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/gemm.h"
#include "cpu/linear.h"

namespace cs::cpu {

namespace {

struct ActivationBlock {
  const float* h;
  float* a;
  int64_t ld;
  Activation kind;
};

void activation_block(void* ctx, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const auto& e = *static_cast<const ActivationBlock*>(ctx);
  for (int64_t r = r0; r < r1; r++) activation_span(e.kind, e.h + r * e.ld + c0, e.a + r * e.ld + c0, c1 - c0);
}

// dh = dx · f'(h) on a finished block of dx = dy·w (in place), and the block's column sums
// into its row block's partial of c_fc's bias gradient.
struct ActivationGradBlock {
  const float* h;
  float* dh;
  int64_t ld;
  Activation kind;
  float* partial;  // [row blocks × ld], row block = first row / row_tile; null: no bias gradient
  int64_t row_tile;
};

void activation_grad_block(void* ctx, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const auto& e = *static_cast<const ActivationGradBlock*>(ctx);
  float* acc = e.partial ? e.partial + (r0 / e.row_tile) * e.ld : nullptr;
  for (int64_t r = r0; r < r1; r++) {
    float* row = e.dh + r * e.ld;
    activation_grad_span(e.kind, e.h + r * e.ld + c0, row + c0, row + c0, c1 - c0);
    if (acc)
      for (int64_t c = c0; c < c1; c++) acc[c] += row[c];
  }
}

}  // namespace

void linear_activation_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& h, Tensor& a,
                               Activation kind) {
  const char* op = "linearActivationForward";
  const LinearDims d = check_linear_forward(check_cpu, x, w, b, h);
  check_activation_forward(check_cpu, op, h, a);
  check_no_alias(op, "a", a, "h", h);
  check_no_alias(op, "a", a, "x", x);
  check_no_alias(op, "a", a, "w", w);
  if (b) check_no_alias(op, "a", a, "b", *b);
  if (bf16_emulation() || d.K == 0) {  // the separate ops round where the GPU does
    linear_forward(x, w, b, h);
    if (kind == Activation::Gelu) gelu_forward(h, a);
    else quick_gelu_forward(h, a);
    return;
  }
  if (d.M == 0 || d.N == 0) return;
  ActivationBlock ctx{h.data<float>(), a.data<float>(), d.N, kind};
  sgemm_bias_epilogue(false, true, d.M, d.N, d.K, 1.0f, x.data<float>(), d.K, w.data<float>(), d.K,
                      b ? b->data<float>() : nullptr, h.data<float>(), d.N, GemmEpilogue{activation_block, &ctx});
}

void activation_backward_bias(const Tensor& h, const Tensor& da, Tensor& dh, Tensor* db, bool accumulate,
                              Activation kind) {
  const char* op = "activationBackwardBias";
  check_activation_backward(check_cpu, op, h, da, dh);
  check_no_alias(op, "dh", dh, "h", h);
  const int64_t N = h.ndim() ? h.dim(-1) : 1;
  const int64_t M = N ? h.numel() / N : 0;
  if (db) {
    check_f32(check_cpu, op, "db", *db);
    check_shape(op, "db", *db, {N});
    for (auto [name, t] : {std::pair<const char*, const Tensor*>{"h", &h}, {"da", &da}, {"dh", &dh}})
      check_no_alias(op, "db", *db, name, *t);
  }
  const float* hp = h.data<float>();
  const float* dap = da.data<float>();
  float* dhp = dh.data<float>();
  if (!db) {
    parallel_for(M, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
      activation_grad_span(kind, hp + r0 * N, dap + r0 * N, dhp + r0 * N, (r1 - r0) * N);
    });
    return;
  }
  float* dbp = db->data<float>();
  if (!accumulate)
    for (int64_t n = 0; n < N; n++) dbp[n] = 0.0f;
  if (M <= 0 || N <= 0) return;
  // The rows split as linear_backward's bias gradient splits them, partials added in thread
  // order: the same sums as the separate ops.
  const bool emu = bf16_emulation();
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(1, M * N / (1 << 15))));
  static thread_local std::vector<float> partial;  // kept: a training step reuses the sizes
  partial.assign(static_cast<size_t>(nt) * N, 0.0f);
  float* const part = partial.data();  // the workers' own thread_local would be a different vector
  auto rows = [&](int t, int n_threads) {
    const int64_t m0 = M * t / n_threads, m1 = M * (t + 1) / n_threads;
    float* acc = part + t * N;
    for (int64_t m = m0; m < m1; m++) {
      float* row = dhp + m * N;
      activation_grad_span(kind, hp + m * N, dap + m * N, row, N);
      if (emu)
        for (int64_t n = 0; n < N; n++) acc[n] += round_bf16(row[n]);
      else
        for (int64_t n = 0; n < N; n++) acc[n] += row[n];
    }
  };
  if (nt <= 1) rows(0, 1);
  else parallel_run(nt, rows);
  for (int t = 0; t < nt; t++)
    for (int64_t n = 0; n < N; n++) dbp[n] += part[t * N + n];
}

void linear_backward_activation(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& h, Tensor& dh,
                                Tensor* dw, Tensor* db, Tensor* db_fc, bool accumulate, Activation kind) {
  const char* op = "linearBackwardActivation";
  const LinearDims d = check_linear_backward(check_cpu, x, w, dy, &dh, dw, db);
  check_activation_backward(check_cpu, op, h, dh, dh);
  check_no_alias(op, "dh", dh, "h", h);
  check_no_alias(op, "dh", dh, "x", x);
  if (db_fc) {
    check_f32(check_cpu, op, "db_fc", *db_fc);
    check_shape(op, "db_fc", *db_fc, {d.K});
    for (auto [name, t] : {std::pair<const char*, const Tensor*>{"x", &x}, {"w", &w}, {"dy", &dy}, {"h", &h}, {"dh", &dh}})
      check_no_alias(op, "db_fc", *db_fc, name, *t);
    if (dw) check_no_alias(op, "db_fc", *db_fc, "dw", *dw);
    if (db) check_no_alias(op, "db_fc", *db_fc, "db", *db);
  }
  const int64_t M = d.M, K = d.K, N = d.N;
  if (bf16_emulation() || M == 0 || K == 0 || N == 0) {  // the separate ops (their rounding points, their edge cases)
    linear_backward(x, w, dy, &dh, dw, db, accumulate);
    activation_backward_bias(h, dh, dh, db_fc, accumulate, kind);
    return;
  }
  linear_backward(x, w, dy, nullptr, dw, db, accumulate);
  const int64_t row_tile = gemm_row_tile();
  static thread_local std::vector<float> partial;  // kept: a training step reuses the sizes
  if (db_fc) partial.assign(static_cast<size_t>((M + row_tile - 1) / row_tile * K), 0.0f);
  ActivationGradBlock ctx{h.data<float>(), dh.data<float>(), K, kind, db_fc ? partial.data() : nullptr, row_tile};
  // dh[M×K] = dy·w, then the epilogue on each block
  sgemm_bias_epilogue(false, false, M, K, N, 1.0f, dy.data<float>(), N, w.data<float>(), K, nullptr, dh.data<float>(), K,
                      GemmEpilogue{activation_grad_block, &ctx});
  if (!db_fc) return;
  float* dbp = db_fc->data<float>();
  if (!accumulate)
    for (int64_t k = 0; k < K; k++) dbp[k] = 0.0f;
  const int64_t blocks = (M + row_tile - 1) / row_tile;
  for (int64_t blk = 0; blk < blocks; blk++) {
    const float* p = partial.data() + blk * K;
    for (int64_t k = 0; k < K; k++) dbp[k] += p[k];
  }
}

}  // namespace cs::cpu
