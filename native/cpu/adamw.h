// AdamW with decoupled weight decay on fp32 master weights (PyTorch's torch.optim.AdamW):
//   p ← p − lr·wd·p
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²      (g = grad · grad_scale)
//   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
// t is the 1-based step. Optionally writes a bf16 copy of the new parameter (what the
// GPU's matrix work reads). Plus the global gradient norm and norm clipping.
#pragma once
#include <vector>

#include "core/adamw_checks.h"
#include "core/tensor.h"

namespace cs::cpu {

using AdamWConfig = cs::AdamWConfig;  // core/adamw_checks.h: shared with the CUDA dispatch

// param, grad, m, v: f32 of the same element count; param_bf16 (optional): bf16 or f16, same
// count, receives the updated parameter rounded to its type.
// With a gate (core/adamw_checks.h), the step is applied only when the gate's loss and norm
// are finite, at step number applied + 1.
// cfg.zero_grad: grad is zeroed in the same pass (not with a gate, whose closed step leaves it).
void adamw_step(Tensor& param, Tensor& grad, Tensor& m, Tensor& v, Tensor* param_bf16, const AdamWConfig& cfg,
                const AdamWGate* gate = nullptr);

// The gate's outcome: applied += 1 when its loss and norm are finite.
void adamw_commit(const AdamWGate& gate);

// sqrt(Σ over every tensor of Σ g²), summed in double.
double grad_norm(const std::vector<const Tensor*>& grads, const char* op = "gradNorm");

// Scales every gradient by min(1, max_norm / (norm + 1e-6)) and returns the norm before
// clipping (as torch.nn.utils.clip_grad_norm_). A non-finite norm leaves the gradients
// untouched and is returned as it is, so the caller can skip the step.
double clip_grad_norm(const std::vector<Tensor*>& grads, double max_norm);

}  // namespace cs::cpu
