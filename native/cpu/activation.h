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

}  // namespace cs::cpu
