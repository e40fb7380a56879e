// A linear layer and the activation after it in one pass (the transformer MLP's c_fc → GELU):
//   forward:  h = x·wᵀ + b, a = f(h)       — f applied to each block of h as the GEMM finishes it
//   backward: dh = da · f'(h), db (+)= Σ_rows dh — one pass over da, the bias gradient with it
// The results equal the separate ops' (linear_forward then gelu_forward; gelu_backward then the
// bias gradient of linear_backward) bit for bit: the same math per element and the same
// summation order. With bf16 emulation on, the forward runs the separate ops (same rounding
// points), and the bias gradient sums the bf16-rounded dh as linear_backward does.
// dh may be da itself. CPU only.
#pragma once
#include "core/tensor.h"
#include "cpu/activation.h"

namespace cs::cpu {

// `packed`: w prepacked, as linear_forward's (nullable).
void linear_activation_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& h, Tensor& a,
                               Activation kind, const Tensor* packed = nullptr);

void activation_backward_bias(const Tensor& h, const Tensor& da, Tensor& dh, Tensor* db, bool accumulate,
                              Activation kind);

}  // namespace cs::cpu
