#include "cpu/sigmoid_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/sigmoid_loss_checks.h"
#include "core/thread_pool.h"
#include "cpu/gemm.h"

namespace cs::cpu {

double sigmoid_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias,
                    int64_t off, Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* dlogit_bias,
                    Tensor* workspace, float grad_scale) {
  const char* op = "sigmoidLoss";
  const SigmoidLossDims d = check_sigmoid_loss(check_cpu, image, text, logit_scale, logit_bias, off, dimage, dtext,
                                               dlogit_scale, dlogit_bias, nullptr, workspace, grad_scale);
  const int64_t R = d.R, C = d.C, D = d.D;
  const float t = logit_scale.data<float>()[0];
  const float s = std::exp(t);
  if (!std::isfinite(s)) fail(op, ": exp(logitScale) overflows (logitScale = ", t, ")");
  const float b = logit_bias.data<float>()[0];
  std::vector<float> own;
  float* L = workspace ? workspace->data<float>() : (own.resize(static_cast<size_t>(R * C)), own.data());
  const float* I = image.data<float>();
  const float* T = text.data<float>();
  // L = s·I·Tᵀ in fp32: the logits less the bias.
  sgemm(false, true, R, C, D, s, I, D, T, D, 0.0f, L, C);
  const bool want_grad = dimage || dtext || dlogit_scale || dlogit_bias;
  const double inv_r = 1.0 / static_cast<double>(R);
  // Per row: loss, Σ g·(z − b) (d/dt) and Σ g (d/db); summed in row order afterwards.
  std::vector<double> row_loss(R), row_dt(R), row_db(R);
  parallel_for(R, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      float* row = L + i * C;
      double l = 0, dt = 0, db = 0;
      for (int64_t j = 0; j < C; j++) {
        const double sl = row[j];
        const double z = sl + b;
        const double y = off >= 0 && j == i + off ? 1.0 : -1.0;
        const double m = -y * z;  // −log σ(y z) = softplus(−y z)
        l += std::max(m, 0.0) + std::log1p(std::exp(-std::abs(m)));
        if (!want_grad) continue;
        // d/dz = −y·σ(−y z), σ written without overflow.
        const double sig = m >= 0 ? 1.0 / (1.0 + std::exp(-m)) : std::exp(m) / (1.0 + std::exp(m));
        const double g = -y * sig * inv_r;
        dt += g * sl;
        db += g;
        row[j] = static_cast<float>(g * grad_scale);  // times s in the GEMMs below
      }
      row_loss[i] = l;
      row_dt[i] = dt;
      row_db[i] = db;
    }
  });
  double loss = 0, dt = 0, db = 0;
  for (int64_t i = 0; i < R; i++) {
    loss += row_loss[i];
    dt += row_dt[i];
    db += row_db[i];
  }
  if (dimage) sgemm(false, false, R, D, C, s, L, C, T, D, 0.0f, dimage->data<float>(), D);
  if (dtext) sgemm(true, false, C, D, R, s, L, C, I, D, 0.0f, dtext->data<float>(), D);
  if (dlogit_scale) dlogit_scale->data<float>()[0] = static_cast<float>(dt * grad_scale);
  if (dlogit_bias) dlogit_bias->data<float>()[0] = static_cast<float>(db * grad_scale);
  return loss * inv_r;
}

}  // namespace cs::cpu
