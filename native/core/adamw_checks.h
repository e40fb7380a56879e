// AdamW's settings and the argument checks of AdamW, the gradient norm and clipping,
// shared by the CPU ops and the CUDA dispatch.
#pragma once
#include <vector>

#include "core/checks.h"

namespace cs {

struct AdamWConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  int64_t step = 1;         // 1-based
  double grad_scale = 1.0;  // multiplies grad first (e.g. 1 / loss scale)
  // CPU, ungated: grad is left zero, cleared as it is read (the next step's gradients then need no
  // zeroing pass, which at a step's start found cold lines and a sleeping worker: 140-150 µs of a
  // tiny step for 1.2 MB).
  bool zero_grad = false;
};

// adamwStep: param, grad, m, v f32 of one element count, paramBf16 (optional) bf16 or f16 of that
// count, none overlapping; the settings in range. Returns the element count.
int64_t check_adamw_step(DeviceCheck device, const Tensor& param, const Tensor& grad, const Tensor& m,
                         const Tensor& v, const Tensor* param_bf16, const AdamWConfig& cfg);

// A step gated on the device (a step's outcome is read a step late): the update is applied
// only when *loss (f32 [1]) and *norm (i64 [1] holding an f64's bits: tensors have no f64
// dtype) are both finite, and otherwise leaves param, m, v (and paramBf16) untouched.
// `applied` (i64 [1]) counts the updates applied so far; the step number used is
// applied + 1, which the host, knowing the count only up to the previous step, gives as
// cfg.step (= known + 1) with known + 1 or known + 2 allowed. adamwCommit increments
// `applied` when the gate passed, after every parameter's update of the step.
struct AdamWGate {
  const Tensor* loss = nullptr;
  const Tensor* norm = nullptr;
  const Tensor* applied = nullptr;
};

// The gate's three tensors on `device`, of the dtypes and sizes above.
void check_adamw_gate(DeviceCheck device, const char* op, const AdamWGate& gate);

// Every gradient an f32 tensor (named grads[k] in errors).
void check_grads(DeviceCheck device, const char* op, const std::vector<const Tensor*>& grads);

// clipGradNorm's maxNorm.
void check_max_norm(double max_norm);

}  // namespace cs
