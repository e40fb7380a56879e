#include "cpu/linear_activation.h"

#include <algorithm>
#include <vector>

#include "core/activation_checks.h"
#include "core/error.h"
#include "core/linear_checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/column_sums.h"
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

}  // namespace

void linear_activation_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& h, Tensor& a,
                               Activation kind, const Tensor* packed) {
  const char* op = "linearActivationForward";
  const LinearDims d = check_linear_forward(check_cpu, x, w, b, h);
  check_activation_forward(check_cpu, op, h, a);
  check_no_alias(op, "a", a, "h", h);
  check_no_alias(op, "a", a, "x", x);
  check_no_alias(op, "a", a, "w", w);
  if (b) check_no_alias(op, "a", a, "b", *b);
  const float* panels = packed_weight_for(op, packed, "w", w, d.N, d.K, {{"h", &h}, {"a", &a}});
  if (bf16_emulation() || d.K == 0) {  // the separate ops round where the GPU does
    linear_forward(x, w, b, h);
    if (kind == Activation::Gelu) gelu_forward(h, a);
    else quick_gelu_forward(h, a);
    return;
  }
  if (d.M == 0 || d.N == 0) return;
  ActivationBlock ctx{h.data<float>(), a.data<float>(), d.N, kind};
  sgemm_bias_epilogue(false, true, d.M, d.N, d.K, 1.0f, x.data<float>(), d.K, w.data<float>(), d.K,
                      b ? b->data<float>() : nullptr, h.data<float>(), d.N, GemmEpilogue{activation_block, &ctx}, panels);
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
  if (M <= 0 || N <= 0) {
    add_partials(dbp, nullptr, 0, N, accumulate);
    return;
  }
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
    // A chunk of rows at a time (about 32 KB, still in L1/L2 when summed): one call each for the
    // gradient and the column sums instead of two a row, whose per-call cost (the sums' registers
    // loaded and stored, the clones' dispatch) came to ~40% of the op. Same sums, rows in order.
    const int64_t chunk = std::max<int64_t>(1, (1 << 13) / N);
    for (int64_t c0 = m0; c0 < m1; c0 += chunk) {
      const int64_t rows_here = std::min(chunk, m1 - c0);
      float* block = dhp + c0 * N;
      activation_grad_span(kind, hp + c0 * N, dap + c0 * N, block, rows_here * N);
      if (emu)
        add_rows_bf16(block, N, rows_here, N, acc);
      else
        add_rows(block, N, rows_here, N, acc);
    }
  };
  if (nt <= 1) rows(0, 1);
  else parallel_run(nt, rows);
  add_partials(dbp, part, nt, N, accumulate);
}

}  // namespace cs::cpu
