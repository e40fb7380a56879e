// The backward loops are also built for AVX2/AVX-512, where GCC would fuse a*b+c into one FMA;
// kept off so every target computes what the baseline build does.
#pragma GCC optimize("fp-contract=off")

#include "cpu/layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/lane_fold.h"
#include "core/target_clones.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "core/layernorm_checks.h"

namespace cs::cpu {

namespace {

// Rows per chunk so that a chunk is a few thousand values at least.
int64_t row_grain(int64_t width) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(width, 1)); }

constexpr int kForwardLanes = 8;  // fp64 partial sums per row (one AVX-512 vector of doubles)

#if defined(__GNUC__)
// Eight floats widened to the fp64 lanes of a row's sums, held as two f64x4 values (lanes 0-3 and
// 4-7; one ymm each, on AVX-512 too). One 64-byte f64x8 value was fine on AVX-512 but the
// AVX2 clone kept it on the stack and reassembled it every step (1.3 ms for 400×768 on one Zen 3
// thread, against ~0.1 ms in registers). Out by reference: by value, how a 32-byte vector is passed
// would depend on the caller's target.
[[gnu::always_inline]] inline void widen8(const float* p, f64x4& lo, f64x4& hi) {
  f32x4 a, b;
  __builtin_memcpy(&a, p, sizeof a);
  __builtin_memcpy(&b, p + 4, sizeof b);
  lo = __builtin_convertvector(a, f64x4);
  hi = __builtin_convertvector(b, f64x4);
}
#endif

// Normalises rows [r0, r1) of xp into op (which may equal xp). Mean and variance are summed in
// fp64 in fixed lanes, so every instruction set adds in the same order.
CS_TARGET_CLONES void normalize_rows(const float* xp, const float* g, const float* b, float* op, float* mp, float* rp,
                                     int64_t r0, int64_t r1, int64_t w, float eps, bool emulate) {
  static_assert(kForwardLanes == 8, "the vector lanes below are kForwardLanes wide");
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = xp + r * w;
    int64_t j = 0;
#if defined(__GNUC__)
    f64x4 acc_lo = {}, acc_hi = {};
    for (; j + kForwardLanes <= w; j += kForwardLanes) {
      f64x4 lo, hi;
      widen8(xr + j, lo, hi);
      acc_lo += lo;
      acc_hi += hi;
    }
    double s = fold_sum(acc_lo, acc_hi);
#else
    double lane[kForwardLanes] = {};
    for (; j + kForwardLanes <= w; j += kForwardLanes)
      for (int l = 0; l < kForwardLanes; l++) lane[l] += xr[j + l];
    double s = fold_sum<kForwardLanes>(lane);
#endif
    for (; j < w; j++) s += xr[j] - 0.0;
    const double mu = w ? s / static_cast<double>(w) : 0.0;
    j = 0;
#if defined(__GNUC__)
    acc_lo = f64x4{};
    acc_hi = f64x4{};
    for (; j + kForwardLanes <= w; j += kForwardLanes) {
      f64x4 lo, hi;
      widen8(xr + j, lo, hi);
      lo -= mu;
      hi -= mu;
      acc_lo += lo * lo;
      acc_hi += hi * hi;
    }
    double ss = fold_sum(acc_lo, acc_hi);
#else
    for (int l = 0; l < kForwardLanes; l++) lane[l] = 0.0;
    for (; j + kForwardLanes <= w; j += kForwardLanes)
      for (int l = 0; l < kForwardLanes; l++) {
        const double d = xr[j + l] - mu;
        lane[l] += d * d;
      }
    double ss = fold_sum<kForwardLanes>(lane);
#endif
    for (; j < w; j++) {
      const double d = xr[j] - mu;
      ss += d * d;
    }
    const double var = w ? ss / static_cast<double>(w) : 0.0;
    const float m = static_cast<float>(mu);
    const float rs = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    mp[r] = m;
    rp[r] = rs;
    float* orow = op + r * w;
    if (emulate)
      for (int64_t k = 0; k < w; k++) orow[k] = maybe_round_bf16((xr[k] - m) * rs * g[k] + b[k], true);
    else
      for (int64_t k = 0; k < w; k++) orow[k] = (xr[k] - m) * rs * g[k] + b[k];
  }
}
// ── backward ──

constexpr int kLanes = 16;      // independent partial sums per row reduction (one AVX-512 vector)
constexpr int64_t kBlockRows = 32;  // rows summed in fp32 before a block joins the fp64 totals

struct BackwardArgs {
  const float* dout;
  const float* x;
  const float* gamma;
  const float* mean;
  const float* rstd;
  const float* dadd;  // nullable: added to dx (a residual branch's gradient)
  float* dx;
  int64_t w;
};

// Rows [r0, r1): dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)) (+ dadd), g = dout·gamma.
// totals (nullable): 2w doubles, dgamma then dbeta terms added; work: 2w + w floats (block
// sums of dgamma and dbeta, then one row of x̂). The row sums use kLanes fixed lanes, so every
// instruction set adds in the same order.
CS_TARGET_CLONES void backward_rows(const BackwardArgs& a, int64_t r0, int64_t r1, double* totals, float* work) {
  const int64_t w = a.w;
  float* bg = work;          // dgamma terms of the current block of rows
  float* bb = work + w;      // dbeta terms
  float* xh = work + 2 * w;  // x̂ of the current row
  for (int64_t j = 0; j < 2 * w; j++) work[j] = 0.0f;
  int64_t in_block = 0;
  for (int64_t r = r0; r < r1; r++) {
    const float* dr = a.dout + r * w;
    const float* xr = a.x + r * w;
    const float m = a.mean[r], rs = a.rstd[r];
    // The lanes as two 8-lane halves each (f32x16p): in arrays GCC summed them through the stack,
    // and as one f32x16 value its AVX2 clone did the same.
    f32x16p sg = {}, sgx = {};
    int64_t j = 0;
    for (; j + kLanes <= w; j += kLanes) {
      const f32x16p xv = load16p(xr + j), dv = load16p(dr + j), gv = load16p(a.gamma + j);
      const f32x8 h_lo = (xv.lo - m) * rs, h_hi = (xv.hi - m) * rs;
      const f32x8 g_lo = dv.lo * gv.lo, g_hi = dv.hi * gv.hi;
      __builtin_memcpy(xh + j, &h_lo, sizeof h_lo);
      __builtin_memcpy(xh + j + 8, &h_hi, sizeof h_hi);
      sg.lo += g_lo;
      sg.hi += g_hi;
      sgx.lo += g_lo * h_lo;
      sgx.hi += g_hi * h_hi;
    }
    for (int l = 0; j < w; j++, l++) {
      const float h = (xr[j] - m) * rs;
      const float gj = dr[j] * a.gamma[j];
      xh[j] = h;
      if (l < 8) {
        sg.lo[l] += gj;
        sgx.lo[l] += gj * h;
      } else {
        sg.hi[l - 8] += gj;
        sgx.hi[l - 8] += gj * h;
      }
    }
    if (totals)
      for (int64_t k = 0; k < w; k++) {
        bg[k] += dr[k] * xh[k];
        bb[k] += dr[k];
      }
    float tg = 0.0f, tgx = 0.0f;
    for (int l = 0; l < 8; l++) {
      tg += sg.lo[l];
      tgx += sgx.lo[l];
    }
    for (int l = 0; l < 8; l++) {
      tg += sg.hi[l];
      tgx += sgx.hi[l];
    }
    const float ca = w ? tg / static_cast<float>(w) : 0.0f;
    const float cb = w ? tgx / static_cast<float>(w) : 0.0f;
    float* dxr = a.dx + r * w;
    if (a.dadd) {
      const float* ar = a.dadd + r * w;
      for (int64_t k = 0; k < w; k++) dxr[k] = rs * (dr[k] * a.gamma[k] - ca - xh[k] * cb) + ar[k];
    } else {
      for (int64_t k = 0; k < w; k++) dxr[k] = rs * (dr[k] * a.gamma[k] - ca - xh[k] * cb);
    }
    if (totals && (++in_block == kBlockRows || r + 1 == r1)) {
      for (int64_t k = 0; k < w; k++) {
        totals[k] += bg[k];
        totals[w + k] += bb[k];
        bg[k] = bb[k] = 0.0f;
      }
      in_block = 0;
    }
  }
}

}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& out, Tensor& mean,
                       Tensor& rstd, float eps) {
  const RowDims d = check_layernorm_forward(check_cpu, x, gamma, beta, out, mean, rstd, eps);
  const bool emulate = bf16_emulation();
  const float* xp = x.data<float>();
  const float* g = gamma.data<float>();
  const float* b = beta.data<float>();
  float* o = out.data<float>();
  float* mp = mean.data<float>();
  float* rp = rstd.data<float>();
  parallel_for(d.rows, row_grain(d.width), [&](int64_t r0, int64_t r1) {
    normalize_rows(xp, g, b, o, mp, rp, r0, r1, d.width, eps, emulate);
  });
}

void residual_layernorm_forward(const Tensor& x, const Tensor& residual, Tensor& sum_out, const Tensor& gamma,
                                const Tensor& beta, Tensor& out, Tensor& mean, Tensor& rstd, float eps) {
  const RowDims d =
      check_residual_layernorm_forward(check_cpu, x, residual, sum_out, gamma, beta, out, mean, rstd, eps);
  const bool emulate = bf16_emulation();
  const float* xp = x.data<float>();
  const float* rp_in = residual.data<float>();
  float* sp = sum_out.data<float>();
  const float* g = gamma.data<float>();
  const float* b = beta.data<float>();
  float* o = out.data<float>();
  float* mp = mean.data<float>();
  float* rp = rstd.data<float>();
  const int64_t w = d.width;
  parallel_for(d.rows, row_grain(w), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * w; i < r1 * w; i++) sp[i] = maybe_round_bf16(xp[i] + rp_in[i], emulate);
    normalize_rows(sp, g, b, o, mp, rp, r0, r1, w, eps, emulate);
  });
}

void layernorm_backward(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta) {
  layernorm_backward_add(dout, x, gamma, mean, rstd, dx, dgamma, dbeta, nullptr, false);
}

void layernorm_backward_add(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                            const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta, const Tensor* dadd,
                            bool accumulate) {
  const RowDims d = check_layernorm_backward(check_cpu, dout, x, gamma, mean, rstd, dx, dgamma, dbeta, dadd);
  const int64_t rows = d.rows, w = d.width;
  BackwardArgs a{dout.data<float>(), x.data<float>(), gamma.data<float>(), mean.data<float>(), rstd.data<float>(),
                 dadd ? dadd->data<float>() : nullptr, dx.data<float>(), w};
  float* dg = dgamma ? dgamma->data<float>() : nullptr;
  float* db = dbeta ? dbeta->data<float>() : nullptr;
  const bool params = dg || db;

  // Rows split between threads; each thread sums its rows' dgamma/dbeta terms into partials
  // of its own, which are added in thread order. (Splitting columns, as once, left one
  // thread working at width ≤ 64.)
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(1, rows * w / (1 << 14))));
  const size_t per_thread = static_cast<size_t>(4 * w + kLanes);  // float block sums, double totals, a row of x̂
  static thread_local std::vector<double> scratch;  // kept: a training step reuses the sizes
  scratch.assign(static_cast<size_t>(nt) * per_thread, 0.0);
  double* const part = scratch.data();  // the workers' own thread_local would be a different vector
  auto run_rows = [&](int t, int n_threads) {
    double* mine = part + static_cast<size_t>(t) * per_thread;
    backward_rows(a, rows * t / n_threads, rows * (t + 1) / n_threads, params ? mine : nullptr,
                  reinterpret_cast<float*>(mine + 2 * w));
  };
  if (nt <= 1) run_rows(0, 1);
  else parallel_run(nt, run_rows);
  if (!params) return;
  for (int64_t j = 0; j < w; j++) {
    double sg = 0, sb = 0;
    for (int t = 0; t < nt; t++) {
      sg += part[static_cast<size_t>(t) * per_thread + j];
      sb += part[static_cast<size_t>(t) * per_thread + w + j];
    }
    if (dg) dg[j] = static_cast<float>(accumulate ? dg[j] + sg : sg);
    if (db) db[j] = static_cast<float>(accumulate ? db[j] + sb : sb);
  }
}

}  // namespace cs::cpu
