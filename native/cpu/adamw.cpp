#include "cpu/adamw.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/pointwise_checks.h"

namespace cs::cpu {

namespace {
constexpr int64_t kGrain = 1 << 14;
}

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor* param_bf16, const AdamWConfig& cfg) {
  const char* op = "adamwStep";
  check_f32(op, "param", param);
  check_f32(op, "grad", grad);
  check_f32(op, "m", m);
  check_f32(op, "v", v);
  const int64_t n = param.numel();
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"grad", &grad}, {"m", &m}, {"v", &v}})
    if (t->numel() != n)
      fail(op, ": ", name, " must have as many elements as param (", param.describe(), "), got ", t->describe());
  check_no_alias(op, "param", param, "grad", grad);
  check_no_alias(op, "m", m, "grad", grad);
  check_no_alias(op, "v", v, "grad", grad);
  check_no_alias(op, "m", m, "param", param);
  check_no_alias(op, "v", v, "param", param);
  check_no_alias(op, "v", v, "m", m);
  if (param_bf16) {
    check_cpu(op, "paramBf16", *param_bf16);
    check_dtype(op, "paramBf16", *param_bf16, DType::BF16);
    if (param_bf16->numel() != n)
      fail(op, ": paramBf16 must have as many elements as param (", param.describe(), "), got ",
           param_bf16->describe());
    for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &grad, &m, &v})
      check_no_alias(op, "paramBf16", *param_bf16, "another argument", *t);
  }
  if (cfg.step < 1) fail(op, ": step must be a 1-based step number, got ", cfg.step);
  if (!(cfg.lr >= 0) || !std::isfinite(cfg.lr)) fail(op, ": lr must be a finite number >= 0, got ", cfg.lr);
  if (!(cfg.beta1 >= 0 && cfg.beta1 < 1)) fail(op, ": beta1 must be in [0, 1), got ", cfg.beta1);
  if (!(cfg.beta2 >= 0 && cfg.beta2 < 1)) fail(op, ": beta2 must be in [0, 1), got ", cfg.beta2);
  if (!(cfg.eps > 0)) fail(op, ": eps must be positive, got ", cfg.eps);
  if (!(cfg.weight_decay >= 0) || !std::isfinite(cfg.weight_decay))
    fail(op, ": weightDecay must be a finite number >= 0, got ", cfg.weight_decay);
  if (!std::isfinite(cfg.grad_scale)) fail(op, ": gradScale must be finite, got ", cfg.grad_scale);

  const double t = static_cast<double>(cfg.step);
  const float b1 = static_cast<float>(cfg.beta1), b2 = static_cast<float>(cfg.beta2);
  const float decay = static_cast<float>(1.0 - cfg.lr * cfg.weight_decay);
  const float step_size = static_cast<float>(cfg.lr / (1.0 - std::pow(cfg.beta1, t)));
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(cfg.beta2, t)));
  const float eps = static_cast<float>(cfg.eps), gs = static_cast<float>(cfg.grad_scale);
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  uint16_t* pb = param_bf16 ? param_bf16->data<uint16_t>() : nullptr;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float gi = g[i] * gs;
      const float mi = b1 * mp[i] + (1.0f - b1) * gi;
      const float vi = b2 * vp[i] + (1.0f - b2) * gi * gi;
      mp[i] = mi;
      vp[i] = vi;
      const float pi = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
      p[i] = pi;
      if (pb) pb[i] = f32_to_bf16_bits(pi);
    }
  });
}

double grad_norm(const std::vector<const Tensor*>& grads, const char* op) {
  for (size_t k = 0; k < grads.size(); k++) {
    std::string name = "grads[" + std::to_string(k) + "]";
    check_f32(op, name.c_str(), *grads[k]);
  }
  double total = 0;
  for (const Tensor* t : grads) {
    const float* p = t->data<float>();
    const int64_t n = t->numel();
    // Fixed chunking (not per thread count), so the sum does not change with threads.
    const int64_t chunk = 1 << 16, chunks = (n + chunk - 1) / chunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c++) {
        double s = 0;
        for (int64_t i = c * chunk, e = std::min(n, (c + 1) * chunk); i < e; i++) s += static_cast<double>(p[i]) * p[i];
        part[c] = s;
      }
    });
    for (double s : part) total += s;
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor*>& grads, double max_norm) {
  const char* op = "clipGradNorm";
  if (!(max_norm > 0)) fail(op, ": maxNorm must be positive, got ", max_norm);
  std::vector<const Tensor*> cg(grads.begin(), grads.end());
  const double norm = grad_norm(cg, op);
  if (!std::isfinite(norm)) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  const float c = static_cast<float>(coef);
  for (Tensor* t : grads) {
    float* p = t->data<float>();
    parallel_for(t->numel(), kGrain, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) p[i] *= c; });
  }
  return norm;
}

}  // namespace cs::cpu
