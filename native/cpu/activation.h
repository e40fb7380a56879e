// Element-wise activations of the transformer MLP, fp32 math.
//   GELU (erf form):  y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))
//   QuickGELU:        y = x · σ(1.702 · x)   (OpenAI CLIP's, `quick_gelu` in OpenCLIP configs)
// With bf16 emulation on, y is rounded to bf16 as the GPU stores it.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

// out may be x itself. Backward: dx = dout · y'(x); dx may be dout itself.
void gelu_forward(const Tensor& x, Tensor& out);
void gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx);
void quick_gelu_forward(const Tensor& x, Tensor& out);
void quick_gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx);

// The same math over n contiguous values, fp32 (no bf16 rounding), for fused ops
// (linear_activation.cpp): out[i] = f(x[i]); dx[i] = dout[i] · f'(x[i]) (dx may be dout).
enum class Activation { Gelu, QuickGelu };
void activation_span(Activation kind, const float* x, float* out, int64_t n);
void activation_grad_span(Activation kind, const float* x, const float* dout, float* dx, int64_t n);

}  // namespace cs::cpu
