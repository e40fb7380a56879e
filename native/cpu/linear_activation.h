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

void linear_activation_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& h, Tensor& a,
                               Activation kind);

void activation_backward_bias(const Tensor& h, const Tensor& da, Tensor& dh, Tensor* db, bool accumulate,
                              Activation kind);

// The MLP's backward from c_proj down to c_fc's pre-activation, in one GEMM pass: c_proj's
// linear_backward (x = a, the activation's output; dw, db as there), with dh = (dy·w) · f'(h)
// applied to each block of dy·w as the GEMM finishes it (still in cache) instead of a second
// pass over memory, and c_fc's bias gradient db_fc (+)= Σ_rows dh summed there too. dh, dw and
// c_proj's db equal linear_backward then activation_backward_bias bit for bit; db_fc is the same
// sum in another order (blocks of rows, then the blocks in order), so it agrees to fp32 rounding.
// With bf16 emulation on, it runs those two ops. dh must not alias x, h or dy.
void linear_backward_activation(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& h, Tensor& dh,
                                Tensor* dw, Tensor* db, Tensor* db_fc, bool accumulate, Activation kind);

}  // namespace cs::cpu
