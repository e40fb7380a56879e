#include "cpu/adamw.h"
#include "cpu/adamw_update.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/adamw_checks.h"
#include "core/lane_fold.h"
#include "core/numerics.h"
#include "core/target_clones.h"
#include "core/thread_pool.h"

namespace cs::cpu {

namespace {
constexpr int64_t kGrain = 1 << 14;
}

namespace {
bool gate_open(const AdamWGate& gate) {
  double norm;
  std::memcpy(&norm, gate.norm->data<int64_t>(), sizeof norm);
  return std::isfinite(gate.loss->data<float>()[0]) && std::isfinite(norm);
}
}  // namespace

void adamw_commit(const AdamWGate& gate) {
  check_adamw_gate(check_cpu, "adamwCommit", gate);
  if (gate_open(gate)) gate.applied->data<int64_t>()[0] += 1;
}

void adamw_step(Tensor& param, Tensor& grad, Tensor& m, Tensor& v, Tensor* param_bf16, const AdamWConfig& cfg,
                const AdamWGate* gate) {
  const int64_t n = check_adamw_step(check_cpu, param, grad, m, v, param_bf16, cfg);
  if (gate && cfg.zero_grad)
    fail("adamwStep: zeroGrad with a gate: a step the gate closes must leave the gradients as they are");
  int64_t step = cfg.step;
  if (gate) {
    check_adamw_gate(check_cpu, "adamwStep", *gate);
    if (!gate_open(*gate)) return;
    step = gate->applied->data<int64_t>()[0] + 1;
    if (step != cfg.step && step != cfg.step + 1)
      fail("adamwStep: gate.applied is ", step - 1, " but the step given allows only ", cfg.step - 1, " or ", cfg.step);
  }

  const double t = static_cast<double>(step);
  const float b1 = static_cast<float>(cfg.beta1), b2 = static_cast<float>(cfg.beta2);
  const float decay = static_cast<float>(1.0 - cfg.lr * cfg.weight_decay);
  const float step_size = static_cast<float>(cfg.lr / (1.0 - std::pow(cfg.beta1, t)));
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(cfg.beta2, t)));
  const float eps = static_cast<float>(cfg.eps), gs = static_cast<float>(cfg.grad_scale);
  float* p = param.data<float>();
  float* g = grad.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  uint16_t* pb = param_bf16 ? param_bf16->data<uint16_t>() : nullptr;
  const bool f16 = param_bf16 && param_bf16->dtype == DType::F16;
  const AdamWScalars scalars{b1, b2, decay, step_size, inv_sqrt_bc2, eps, gs};
  const bool zero = cfg.zero_grad;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    adamw_update_range(scalars, p, g, mp, vp, pb, f16, b, e);
    if (zero) std::memset(g + b, 0, static_cast<size_t>(e - b) * sizeof(float));  // its lines still in cache
  });
}

namespace {

// Σ x² in fp64 over 8 fixed lanes folded in halves, then the tail: every instruction set adds in
// the same order (a float's square is exact in fp64, so a fused multiply-add rounds the same), and
// no single dependent add per element bounds the speed.
CS_TARGET_CLONES double sum_of_squares(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) lane[l] += static_cast<double>(x[i + l]) * x[i + l];
  double s = fold_sum<kLanes>(lane);
  for (; i < n; i++) s += static_cast<double>(x[i]) * x[i];
  return s;
}

}  // namespace

double grad_norm(const std::vector<const Tensor*>& grads, const char* op) {
  check_grads(check_cpu, op, grads);
  double total = 0;
  for (const Tensor* t : grads) {
    const float* p = t->data<float>();
    const int64_t n = t->numel();
    // Fixed chunking (not per thread count), so the sum does not change with threads.
    const int64_t chunk = 1 << 16, chunks = (n + chunk - 1) / chunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c++) part[c] = sum_of_squares(p + c * chunk, std::min(n, (c + 1) * chunk) - c * chunk);
    });
    for (double s : part) total += s;
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor*>& grads, double max_norm) {
  check_max_norm(max_norm);
  std::vector<const Tensor*> cg(grads.begin(), grads.end());
  const double norm = grad_norm(cg, "clipGradNorm");
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
