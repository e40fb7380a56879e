// Layer normalisation over the last dimension, fp32 statistics.
//   out = (x − mean) · rstd · gamma + beta,   rstd = 1 / sqrt(var + eps)
// Leading dimensions are rows. mean and rstd (one f32 per row) are saved for the
// backward pass. With bf16 emulation on, `out` (and the residual sum) are rounded to
// bf16 as the GPU stores them; mean/rstd stay fp32.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

// out may be x itself (in place).
void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& out, Tensor& mean,
                       Tensor& rstd, float eps);

// sum_out = x + residual, then out = layernorm(sum_out). sum_out may be x or residual
// itself (the usual in-place residual stream). Backward: run layernorm_backward with
// sum_out as x; the gradient of x and of residual is then dx plus whatever gradient
// flows into sum_out from elsewhere (the caller adds it).
void residual_layernorm_forward(const Tensor& x, const Tensor& residual, Tensor& sum_out, const Tensor& gamma,
                                const Tensor& beta, Tensor& out, Tensor& mean, Tensor& rstd, float eps);

// dx, and optionally dgamma/dbeta (nullptr skips them). All three are OVERWRITTEN,
// not accumulated. dx may be dout itself.
void layernorm_backward(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta);

// layernorm_backward with a residual stream's two gradients joined in the same pass: dx =
// layernorm's input gradient + dadd (nullable; the gradient reaching the residual sum from its
// other use; may be dx or dout itself), and dgamma/dbeta added to instead of overwritten when
// `accumulate` (a parameter's gradient directly).
void layernorm_backward_add(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                            const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta, const Tensor* dadd,
                            bool accumulate);

}  // namespace cs::cpu
