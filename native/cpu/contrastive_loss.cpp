#include "cpu/contrastive_loss.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "core/contrastive_loss_checks.h"
#include "core/exp_math.h"
#include "core/target_clones.h"
#include "core/thread_pool.h"
#include "cpu/gemm.h"

namespace cs::cpu {

namespace {

// The exponentials run in float (exp_nonpositive: plain arithmetic, so the loops vectorise; within
// ~2 ulp of std::exp), each argument (a logit less a maximum or a log-sum-exp, so ≤ 0) formed in
// double first; the sums over a row or column stay in double. In double through libm the loss took
// 240 µs of a tiny step at batch 128 (4 exponentials per logit).

// out[j] = e^(x[j] − shift) for j < n. Built for each instruction set (CS_TARGET_CLONES): the
// baseline build calls libm's nearbyintf for exp_nonpositive's rounding and stays scalar.
CS_TARGET_CLONES void exps_less(const float* x, int64_t n, double shift, float* out) {
  for (int64_t j = 0; j < n; j++) out[j] = exp_nonpositive(static_cast<float>(static_cast<double>(x[j]) - shift));
}

// out[j] = e^(x[j] − shifts[j]) for j < n.
CS_TARGET_CLONES void exps_less_each(const float* x, int64_t n, const double* shifts, float* out) {
  for (int64_t j = 0; j < n; j++) out[j] = exp_nonpositive(static_cast<float>(static_cast<double>(x[j]) - shifts[j]));
}

// sum[j] += Σ_i e^(buf[i·N + j] − mx[j]) over the rows i < N, for the w columns from buf's column 0.
CS_TARGET_CLONES void column_exp_sums(const float* buf, int64_t N, int64_t w, const float* mx, double* sum) {
  for (int64_t i = 0; i < N; i++) {
    const float* row = buf + i * N;
    for (int64_t j = 0; j < w; j++) sum[j] += exp_nonpositive(row[j] - mx[j]);
  }
}

// A thread's scratch of n floats, kept between calls (pool threads live for the process), so a
// training step's loss allocates no per-thread buffers once sizes are steady.
float* thread_floats(int64_t n, int which) {
  static thread_local std::vector<float> bufs[2];
  std::vector<float>& b = bufs[which];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

// Σ_j e^(row[j] − shift) over j < n, the terms kept in tmp[0:n].
double exp_sum(const float* row, int64_t n, double shift, float* tmp) {
  exps_less(row, n, shift, tmp);
  double sum = 0;
  for (int64_t j = 0; j < n; j++) sum += tmp[j];
  return sum;
}

float row_max(const float* row, int64_t n) {
  float mx = row[0];
  for (int64_t j = 1; j < n; j++) mx = std::max(mx, row[j]);
  return mx;
}

// One direction of the loss: rows a0..a0+n of A against every row of B.
// On return buf holds the logits' gradient G (already times c·loss_scale), and
// ce[i] / dt[i] the cross-entropy and Σ_j G_ij·logits_ij of row i.
void softmax_rows(float* buf, int64_t n, int64_t cols, int64_t r0, double c, bool want_grad, double* ce,
                  double* dt) {
  parallel_for(n, std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1)), [&](int64_t i0, int64_t i1) {
    float* p = thread_floats(cols, 0);
    for (int64_t i = i0; i < i1; i++) {
      float* row = buf + i * cols;
      const float mx = row_max(row, cols);
      const double lse = mx + std::log(exp_sum(row, cols, mx, p));
      const int64_t target = r0 + i;
      ce[i] = lse - row[target];
      if (!want_grad) continue;
      exps_less(row, cols, lse, p);  // the probabilities
      double acc = 0;
      for (int64_t j = 0; j < cols; j++) {
        const double g = c * (static_cast<double>(p[j]) - (j == target ? 1.0 : 0.0));
        acc += g * row[j];
        row[j] = static_cast<float>(g);
      }
      dt[i] = acc;
    }
  });
}

// Single process (all rows owned): one logits matrix L [N×N] serves both directions,
// image→text as its rows and text→image as its columns. On return buf holds
// G = c·(softmax_rows(L) − I) + c·(softmax_cols(L) − I); returns Σ of both CE sums and
// sets *dt = Σ G⊙L. Half the GEMMs of the two-direction path.
double softmax_rows_and_cols(float* buf, int64_t N, double c, bool want_grad, double* dt) {
  std::vector<double> row_lse(static_cast<size_t>(N)), col_lse(static_cast<size_t>(N));
  std::vector<double> row_dt(static_cast<size_t>(N), 0.0);
  const int64_t rgrain = std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1));
  parallel_for(N, rgrain, [&](int64_t i0, int64_t i1) {
    float* tmp = thread_floats(N, 0);
    for (int64_t i = i0; i < i1; i++) {
      const float* row = buf + i * N;
      const float mx = row_max(row, N);
      row_lse[i] = mx + std::log(exp_sum(row, N, mx, tmp));
    }
  });
  // Columns in blocks, each block owned by one thread, walking rows for locality.
  constexpr int64_t kBlock = 64;
  parallel_for(N, kBlock, [&](int64_t c0, int64_t c1) {
    for (int64_t cb = c0; cb < c1; cb += kBlock) {
      const int64_t ce = std::min(c1, cb + kBlock), w = ce - cb;
      float mx[kBlock];
      double sum[kBlock] = {0};
      for (int64_t j = 0; j < w; j++) mx[j] = buf[cb + j];
      for (int64_t i = 1; i < N; i++)
        for (int64_t j = 0; j < w; j++) mx[j] = std::max(mx[j], buf[i * N + cb + j]);
      column_exp_sums(buf + cb, N, w, mx, sum);
      for (int64_t j = 0; j < w; j++) col_lse[cb + j] = mx[j] + std::log(sum[j]);
    }
  });
  double ce_sum = 0;
  for (int64_t i = 0; i < N; i++) ce_sum += row_lse[i] + col_lse[i] - 2.0 * buf[i * N + i];
  if (!want_grad) return ce_sum;
  parallel_for(N, rgrain, [&](int64_t i0, int64_t i1) {
    float* by_row = thread_floats(N, 0);
    float* by_col = thread_floats(N, 1);
    for (int64_t i = i0; i < i1; i++) {
      float* row = buf + i * N;
      exps_less(row, N, row_lse[i], by_row);
      exps_less_each(row, N, col_lse.data(), by_col);
      double acc = 0;
      for (int64_t j = 0; j < N; j++) {
        const double l = row[j];
        const double g = c * (static_cast<double>(by_row[j]) + by_col[j] - (i == j ? 2.0 : 0.0));
        acc += g * l;
        row[j] = static_cast<float>(g);
      }
      row_dt[i] = acc;
    }
  });
  *dt = 0;
  for (double v : row_dt) *dt += v;
  return ce_sum;
}

}  // namespace

double contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, int64_t r0, int64_t n,
                        Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* workspace, float loss_scale) {
  const char* op = "contrastiveLoss";
  const LossDims dims = check_contrastive_loss(check_cpu, image, text, logit_scale, r0, n, dimage, dtext,
                                               dlogit_scale, nullptr, workspace, loss_scale);
  const int64_t N = dims.N, D = dims.D;
  std::vector<float> own;
  float* buf;
  if (workspace) {
    buf = workspace->data<float>();
  } else {
    own.resize(static_cast<size_t>(n * N));
    buf = own.data();
  }

  const float t = logit_scale.data<float>()[0];
  const float s = std::exp(t);
  if (!std::isfinite(s)) fail(op, ": exp(logitScale) overflows (logitScale = ", t, ")");
  const bool want_grad = dimage || dtext || dlogit_scale;
  const double c = static_cast<double>(loss_scale) / (2.0 * static_cast<double>(N));
  std::vector<double> ce(static_cast<size_t>(n)), dt(static_cast<size_t>(n), 0.0);
  double loss = 0, dt_total = 0;

  const float* ip = image.data<float>();
  const float* tp = text.data<float>();
  if (n == N) {
    // logits = s·I·Tᵀ: dI = s·G·T, dT = s·Gᵀ·I.
    sgemm(false, true, N, N, D, s, ip, D, tp, D, 0.0f, buf, N);
    loss = softmax_rows_and_cols(buf, N, c, want_grad, &dt_total);
    if (dimage) sgemm(false, false, N, D, N, s, buf, N, tp, D, 0.0f, dimage->data<float>(), D);
    if (dtext) sgemm(true, false, N, D, N, s, buf, N, ip, D, 0.0f, dtext->data<float>(), D);
    if (dlogit_scale) dlogit_scale->data<float>()[0] = static_cast<float>(dt_total);
    return loss / (2.0 * static_cast<double>(N));
  }
  // Direction 0: own image rows vs all texts; direction 1: own text rows vs all images.
  for (int dir = 0; dir < 2; dir++) {
    const float* A = dir == 0 ? ip : tp;
    const float* B = dir == 0 ? tp : ip;
    Tensor* dA = dir == 0 ? dimage : dtext;
    Tensor* dB = dir == 0 ? dtext : dimage;
    sgemm(false, true, n, N, D, s, A + r0 * D, D, B, D, 0.0f, buf, N);
    softmax_rows(buf, n, N, r0, c, want_grad, ce.data(), dt.data());
    for (int64_t i = 0; i < n; i++) {
      loss += ce[i];
      dt_total += dt[i];
    }
    if (!want_grad) continue;
    // logits = s·A·Bᵀ: dA_rows += s·G·B, dB += s·Gᵀ·A_rows. The first direction
    // overwrites (beta = 0), the second adds.
    const float beta = dir == 0 ? 0.0f : 1.0f;
    if (dA) {
      float* g = dA->data<float>();
      if (dir == 0) {
        std::fill(g, g + r0 * D, 0.0f);
        std::fill(g + (r0 + n) * D, g + N * D, 0.0f);
      }
      sgemm(false, false, n, D, N, s, buf, N, B, D, beta, g + r0 * D, D);
    }
    if (dB) sgemm(true, false, N, D, n, s, buf, N, A + r0 * D, D, beta, dB->data<float>(), D);
  }
  if (dlogit_scale) dlogit_scale->data<float>()[0] = static_cast<float>(dt_total);
  return loss / (2.0 * static_cast<double>(N));
}

}  // namespace cs::cpu
