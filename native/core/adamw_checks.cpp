#include "core/adamw_checks.h"

#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>

namespace cs {

int64_t check_adamw_step(DeviceCheck device, const Tensor& param, const Tensor& grad, const Tensor& m,
                         const Tensor& v, const Tensor* param_bf16, const AdamWConfig& cfg) {
  const char* op = "adamwStep";
  check_f32(device, op, "param", param);
  check_f32(device, op, "grad", grad);
  check_f32(device, op, "m", m);
  check_f32(device, op, "v", v);
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
    device(op, "paramBf16", *param_bf16);
    if (param_bf16->dtype != DType::BF16 && param_bf16->dtype != DType::F16)
      fail(op, ": paramBf16 (the 16-bit copy) must be bf16 or f16, got ", param_bf16->describe());
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
  return n;
}

void check_grads(DeviceCheck device, const char* op, const std::vector<const Tensor*>& grads) {
  for (size_t k = 0; k < grads.size(); k++) {
    std::string name = "grads[" + std::to_string(k) + "]";
    check_f32(device, op, name.c_str(), *grads[k]);
  }
}

void check_adamw_gate(DeviceCheck device, const char* op, const AdamWGate& gate) {
  if (!gate.loss || !gate.norm || !gate.applied) fail(op, ": a gated step needs loss, norm and applied tensors");
  device(op, "gate.loss", *gate.loss);
  device(op, "gate.norm", *gate.norm);
  device(op, "gate.applied", *gate.applied);
  if (gate.loss->dtype != DType::F32 || gate.loss->numel() != 1)
    fail(op, ": gate.loss must be a 1-element f32 tensor, got ", gate.loss->describe());
  if (gate.norm->dtype != DType::I64 || gate.norm->numel() != 1)
    fail(op, ": gate.norm must be a 1-element i64 tensor (holding an f64), got ", gate.norm->describe());
  if (gate.applied->dtype != DType::I64 || gate.applied->numel() != 1)
    fail(op, ": gate.applied must be a 1-element i64 tensor, got ", gate.applied->describe());
}

void check_max_norm(double max_norm) {
  if (!(max_norm > 0)) fail("clipGradNorm: maxNorm must be positive, got ", max_norm);
}

}  // namespace cs
