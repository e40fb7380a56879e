#include "cpu/normalize.h"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "core/normalize_checks.h"

namespace cs::cpu {

static int64_t row_grain(int64_t w) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(w, 1)); }

void l2normalize_forward(const Tensor& x, Tensor& out, Tensor& norms) {
  const RowDims d = check_l2normalize_forward(check_cpu, x, out, norms);
  const int64_t rows = d.rows, w = d.width;
  const float* xp = x.data<float>();
  float* o = out.data<float>();
  float* np = norms.data<float>();
  parallel_for(rows, row_grain(w), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = xp + r * w;
      double ss = 0;
      for (int64_t j = 0; j < w; j++) ss += static_cast<double>(xr[j]) * xr[j];
      const double n = std::sqrt(ss);
      np[r] = static_cast<float>(n);
      const float inv = static_cast<float>(1.0 / std::max(n, static_cast<double>(kL2NormalizeEps)));
      for (int64_t j = 0; j < w; j++) o[r * w + j] = xr[j] * inv;
    }
  });
}

void l2normalize_backward(const Tensor& dout, const Tensor& out, const Tensor& norms, Tensor& dx) {
  const RowDims d = check_l2normalize_backward(check_cpu, dout, out, norms, dx);
  const int64_t rows = d.rows, w = d.width;
  const float* dp = dout.data<float>();
  const float* yp = out.data<float>();
  const float* np = norms.data<float>();
  float* gp = dx.data<float>();
  parallel_for(rows, row_grain(w), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* dr = dp + r * w;
      const float* yr = yp + r * w;
      float* gr = gp + r * w;
      const float n = np[r];
      if (n > kL2NormalizeEps) {
        double yd = 0;
        for (int64_t j = 0; j < w; j++) yd += static_cast<double>(yr[j]) * dr[j];
        const float c = static_cast<float>(yd), inv = 1.0f / n;
        for (int64_t j = 0; j < w; j++) gr[j] = (dr[j] - yr[j] * c) * inv;
      } else {
        // The clamp makes y = x / eps, a linear map.
        for (int64_t j = 0; j < w; j++) gr[j] = dr[j] / kL2NormalizeEps;
      }
    }
  });
}

}  // namespace cs::cpu
