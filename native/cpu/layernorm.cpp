#include "cpu/layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/numerics.h"
#include "core/thread_pool.h"
#include "core/layernorm_checks.h"

namespace cs::cpu {

namespace {

// Rows per chunk so that a chunk is a few thousand values at least.
int64_t row_grain(int64_t width) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(width, 1)); }

// Normalises rows [r0, r1) of xp into op (which may equal xp).
void normalize_rows(const float* xp, const float* g, const float* b, float* op, float* mp, float* rp, int64_t r0,
                    int64_t r1, int64_t w, float eps, bool emulate) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = xp + r * w;
    double s = 0;
    for (int64_t j = 0; j < w; j++) s += xr[j];
    const double mu = w ? s / static_cast<double>(w) : 0.0;
    double ss = 0;
    for (int64_t j = 0; j < w; j++) {
      double d = xr[j] - mu;
      ss += d * d;
    }
    const double var = w ? ss / static_cast<double>(w) : 0.0;
    const float m = static_cast<float>(mu);
    const float rs = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    mp[r] = m;
    rp[r] = rs;
    float* orow = op + r * w;
    for (int64_t j = 0; j < w; j++) orow[j] = maybe_round_bf16((xr[j] - m) * rs * g[j] + b[j], emulate);
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
  const RowDims d = check_layernorm_backward(check_cpu, dout, x, gamma, mean, rstd, dx, dgamma, dbeta);
  const int64_t rows = d.rows, w = d.width;

  const float* dop = dout.data<float>();
  const float* xp = x.data<float>();
  const float* g = gamma.data<float>();
  const float* mp = mean.data<float>();
  const float* rp = rstd.data<float>();

  // One pass over the rows, split between threads: each row's dgamma/dbeta terms go into
  // its thread's partial sums (float64), then dx is written (dx may be dout: the row is read
  // in full first). The partials are added in thread order. (Splitting columns instead, as
  // before, left one thread working at width ≤ 64.)
  float* dg = dgamma ? dgamma->data<float>() : nullptr;
  float* db = dbeta ? dbeta->data<float>() : nullptr;
  float* dxp = dx.data<float>();
  const bool params = dg || db;
  const int nt = static_cast<int>(
      std::min<int64_t>(num_threads(), std::max<int64_t>(1, rows * w / (1 << 14))));
  static thread_local std::vector<double> partial;  // kept: a training step reuses the sizes
  if (params) partial.assign(static_cast<size_t>(nt) * 2 * w, 0.0);
  double* const part = partial.data();  // the workers' own thread_local would be a different vector
  auto run_rows = [&](int t, int n_threads) {
    const int64_t r0 = rows * t / n_threads, r1 = rows * (t + 1) / n_threads;
    double* ag = params ? part + static_cast<size_t>(t) * 2 * w : nullptr;
    double* ab = params ? ag + w : nullptr;
    for (int64_t r = r0; r < r1; r++) {
      const float* dr = dop + r * w;
      const float* xr = xp + r * w;
      float* dxr = dxp + r * w;
      const float m = mp[r], rs = rp[r];
      // dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dout·gamma
      // Four running sums each (float64 adds are a chain of dependent latencies otherwise).
      double sg4[4] = {0, 0, 0, 0}, sgx4[4] = {0, 0, 0, 0};
      for (int64_t j = 0; j < w; j++) {
        const float xh = (xr[j] - m) * rs;
        const double gj = static_cast<double>(dr[j]) * g[j];
        sg4[j & 3] += gj;
        sgx4[j & 3] += gj * xh;
      }
      if (params)
        for (int64_t j = 0; j < w; j++) {
          ag[j] += static_cast<double>(dr[j]) * ((xr[j] - m) * rs);
          ab[j] += dr[j];
        }
      const double sg = (sg4[0] + sg4[1]) + (sg4[2] + sg4[3]), sgx = (sgx4[0] + sgx4[1]) + (sgx4[2] + sgx4[3]);
      const float a = static_cast<float>(w ? sg / w : 0.0);
      const float bcoef = static_cast<float>(w ? sgx / w : 0.0);
      for (int64_t j = 0; j < w; j++) {
        const float xh = (xr[j] - m) * rs;
        dxr[j] = rs * (dr[j] * g[j] - a - xh * bcoef);
      }
    }
  };
  if (nt <= 1) run_rows(0, 1);
  else parallel_run(nt, run_rows);
  if (params) {
    for (int64_t j = 0; j < w; j++) {
      double sg = 0, sb = 0;
      for (int t = 0; t < nt; t++) {
        sg += part[static_cast<size_t>(t) * 2 * w + j];
        sb += part[static_cast<size_t>(t) * 2 * w + w + j];
      }
      if (dg) dg[j] = static_cast<float>(sg);
      if (db) db[j] = static_cast<float>(sb);
    }
  }
}

}  // namespace cs::cpu
