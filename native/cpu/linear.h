// Fully connected layer with PyTorch's weight layout: w is [out, in].
//   forward:  y = x·wᵀ + b            x [..., in], y [..., out] (leading dimensions flattened)
//   backward: dx = dy·w, dw = dyᵀ·x, db = Σ_rows dy
// dx is always overwritten. dw and db are overwritten, or added to when `accumulate`
// is set (gradient accumulation over micro-batches).
// With bf16 emulation on, x, w, b and dy are rounded to bf16 before use, y and dx are
// stored rounded, and dw, db stay fp32 (the GPU keeps parameter gradients in fp32).
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate);

}  // namespace cs::cpu
