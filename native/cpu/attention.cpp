#include "cpu/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/target_clones.h"
#include "core/attention_checks.h"
#include "core/exp_math.h"
#include "core/lane_fold.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/bf16_operands.h"
#include "cpu/gemm.h"

namespace cs::cpu {

namespace {


// row[j] = e^(row[j] − shift) for j < n, in a loop that vectorises (exp_nonpositive is plain arithmetic;
// std::exp, a libm call, kept the softmax scalar).
CS_TARGET_CLONES void exp_shifted(float* row, int64_t n, float shift) {
  for (int64_t j = 0; j < n; j++) row[j] = exp_nonpositive(row[j] - shift);
}

// Row reductions in 16 lanes (core/lane_fold.h): at S = 32 a loop-carried chain through every
// element cost more than the head's products.
constexpr int kLanes = 16;

// The largest of x[0:n], NaN entries skipped (as std::fmax does); -inf when n = 0.
CS_TARGET_CLONES float row_max(const float* x, int64_t n) {
  float lane[kLanes];
  for (int l = 0; l < kLanes; l++) lane[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; l++) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  float m = fold_max<kLanes>(lane);
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

// Σ a[j]·b[j] (b = nullptr: Σ a[j]) over 16 lanes, the lanes folded pairwise, then the tail in order.
CS_TARGET_CLONES float row_dot(const float* a, const float* b, int64_t n) {
  float lane[kLanes] = {};
  int64_t j = 0;
  if (b) {
    for (; j + kLanes <= n; j += kLanes)
      for (int l = 0; l < kLanes; l++) lane[l] += a[j + l] * b[j + l];
  } else {
    for (; j + kLanes <= n; j += kLanes)
      for (int l = 0; l < kLanes; l++) lane[l] += a[j + l];
  }
  float s = fold_sum<kLanes>(lane);
  for (; j < n; j++) s += b ? a[j] * b[j] : a[j];
  return s;
}

// Turns scores[0:n] into probabilities in place (entries n.. are masked to 0) and
// returns the log-sum-exp of the unmasked scores. Masked entries become -inf first, so every
// row runs the full-width vector loops (e^-inf = 0 adds nothing): a causal row's short, varying
// length left most of its work to scalar tails.
float softmax_row(float* row, int64_t n, int64_t S, bool emu) {
  for (int64_t j = n; j < S; j++) row[j] = -std::numeric_limits<float>::infinity();
  const float m = row_max(row, S);
  exp_shifted(row, S, m);
  const float sum = row_dot(row, nullptr, S);
  float inv = 1.0f / sum;
  for (int64_t j = 0; j < S; j++) row[j] = emu ? round_bf16(row[j] * inv) : row[j] * inv;
  for (int64_t j = n; j < S; j++) row[j] = 0.0f;  // exactly 0 even in a NaN row (-inf − NaN is NaN)
  return m + std::log(sum);
}

// Per-thread scratch kept between calls (pool threads live for the process), so a
// training step does not allocate once sizes are steady.
struct Scratch {
  std::vector<float> probs, dscores, probs_bf16, rowdot, o_row, q, k, v, dout;
};

Scratch& thread_scratch() {
  static thread_local Scratch s;
  return s;
}

float* grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

void attention_forward(const Tensor& qkv, Tensor& out, Tensor* lse, int64_t heads, bool causal) {
  const AttentionGeometry g = check_attention_forward(check_cpu, qkv, out, lse, heads);
  const int64_t S = g.S, d = g.d, W = g.W, ld = g.ld();
  if (g.B == 0 || S == 0) return;
  const bool emu = bf16_emulation();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const float* qkvp = qkv.data<float>();
  float* outp = out.data<float>();
  float* lsep = lse ? lse->data<float>() : nullptr;

  parallel_for(g.B * g.heads, 1, [&](int64_t t0, int64_t t1) {
    Scratch& sc = thread_scratch();
    float* probs = grow(sc.probs, S * S);
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / g.heads, h = t % g.heads;
      const float* base = qkvp + b * S * ld + h * d;
      MatrixRef Q = matmul_operand(base, S, d, ld, emu, sc.q);
      MatrixRef K = matmul_operand(base + W, S, d, ld, emu, sc.k);
      MatrixRef V = matmul_operand(base + 2 * W, S, d, ld, emu, sc.v);
      // scores[S×S] = Q·Kᵀ/√d, then softmax row by row
      sgemm(false, true, S, S, d, scale, Q.ptr, Q.ld, K.ptr, K.ld, 0.0f, probs, S);
      for (int64_t i = 0; i < S; i++) {
        float l = softmax_row(probs + i * S, causal ? i + 1 : S, S, emu);
        if (lsep) lsep[t * S + i] = l;
      }
      // out[S×d] (head h's columns) = P·V
      float* o = outp + b * S * W + h * d;
      sgemm(false, false, S, d, S, 1.0f, probs, S, V.ptr, V.ld, 0.0f, o, W);
      if (emu) round_bf16_block(o, S, d, W);
    }
  });
}

void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse, Tensor& dqkv,
                        int64_t heads, bool causal) {
  const AttentionGeometry g = check_attention_backward(check_cpu, qkv, out, dout, lse, dqkv, heads);
  const int64_t S = g.S, d = g.d, W = g.W, ld = g.ld();
  if (g.B == 0 || S == 0) return;
  const bool emu = bf16_emulation();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const float* qkvp = qkv.data<float>();
  const float* outp = out.data<float>();
  const float* doutp = dout.data<float>();
  const float* lsep = lse.data<float>();
  float* dqkvp = dqkv.data<float>();

  parallel_for(g.B * g.heads, 1, [&](int64_t t0, int64_t t1) {
    Scratch& sc = thread_scratch();
    float* probs = grow(sc.probs, S * S);
    float* dscores = grow(sc.dscores, S * S);
    float* rowdot = grow(sc.rowdot, S);
    float* probs_bf16 = emu ? grow(sc.probs_bf16, S * S) : nullptr;
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / g.heads, h = t % g.heads;
      const float* base = qkvp + b * S * ld + h * d;
      MatrixRef Q = matmul_operand(base, S, d, ld, emu, sc.q);
      MatrixRef K = matmul_operand(base + W, S, d, ld, emu, sc.k);
      MatrixRef V = matmul_operand(base + 2 * W, S, d, ld, emu, sc.v);
      MatrixRef dO = matmul_operand(doutp + b * S * W + h * d, S, d, W, emu, sc.dout);
      const float* O = outp + b * S * W + h * d;
      // D_i = Σ_c dO_ic·O_ic equals Σ_j P_ij·dP_ij without forming the product.
      float* o_row = emu ? grow(sc.o_row, d) : nullptr;
      for (int64_t i = 0; i < S; i++) {
        const float* orow = O + i * W;
        if (emu) {
          for (int64_t c = 0; c < d; c++) o_row[c] = round_bf16(orow[c]);
          orow = o_row;
        }
        rowdot[i] = row_dot(dO.ptr + i * dO.ld, orow, d);
      }
      // P recomputed from the saved log-sum-exp.
      sgemm(false, true, S, S, d, scale, Q.ptr, Q.ld, K.ptr, K.ld, 0.0f, probs, S);
      for (int64_t i = 0; i < S; i++) {
        float* row = probs + i * S;
        const float l = lsep[t * S + i];
        if (causal)  // masked entries to -inf: the full-width loop gives them e^-inf = 0
          for (int64_t j = i + 1; j < S; j++) row[j] = -std::numeric_limits<float>::infinity();
        exp_shifted(row, S, l);
        if (causal)  // exactly 0 even when l is NaN
          for (int64_t j = i + 1; j < S; j++) row[j] = 0.0f;
      }
      const float* P = probs;
      if (emu) {
        for (int64_t k = 0; k < S * S; k++) probs_bf16[k] = round_bf16(probs[k]);
        P = probs_bf16;
      }
      float* dq = dqkvp + b * S * ld + h * d;
      float* dk = dq + W;
      float* dv = dq + 2 * W;
      // dV = Pᵀ·dO
      sgemm(true, false, S, d, S, 1.0f, P, S, dO.ptr, dO.ld, 0.0f, dv, ld);
      // dP = dO·Vᵀ, then dS = P∘(dP − D) in place
      sgemm(false, true, S, S, d, 1.0f, dO.ptr, dO.ld, V.ptr, V.ld, 0.0f, dscores, S);
      for (int64_t i = 0; i < S; i++) {
        float* row = dscores + i * S;
        const float* prow = probs + i * S;
        for (int64_t j = 0; j < S; j++) {
          float v = prow[j] * (row[j] - rowdot[i]);
          row[j] = emu ? round_bf16(v) : v;
        }
      }
      // dQ = dS·K/√d, dK = dSᵀ·Q/√d
      sgemm(false, false, S, d, S, scale, dscores, S, K.ptr, K.ld, 0.0f, dq, ld);
      sgemm(true, false, S, d, S, scale, dscores, S, Q.ptr, Q.ld, 0.0f, dk, ld);
      if (emu)
        for (float* blk : {dq, dk, dv}) round_bf16_block(blk, S, d, ld);
    }
  });
}

}  // namespace cs::cpu
