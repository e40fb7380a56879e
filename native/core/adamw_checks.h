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
};

// adamwStep: param, grad, m, v f32 of one element count, paramBf16 (optional) bf16 of that
// count, none overlapping; the settings in range. Returns the element count.
int64_t check_adamw_step(DeviceCheck device, const Tensor& param, const Tensor& grad, const Tensor& m,
                         const Tensor& v, const Tensor* param_bf16, const AdamWConfig& cfg);

// Every gradient an f32 tensor (named grads[k] in errors).
void check_grads(DeviceCheck device, const char* op, const std::vector<const Tensor*>& grads);

// clipGradNorm's maxNorm.
void check_max_norm(double max_norm);

}  // namespace cs
