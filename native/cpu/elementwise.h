// Element-wise utilities: fill, copy, scale, axpy, dtype conversion.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

void fill(Tensor& x, double value);                        // any dtype
void copy(const Tensor& src, Tensor& dst);                 // same dtype, same element count
void scale(Tensor& x, float alpha);                        // f32: x *= alpha
void clamp(Tensor& x, float lo, float hi);                 // f32: x = min(max(x, lo), hi); NaN stays NaN
void axpy(float alpha, const Tensor& x, Tensor& y);        // f32: y += alpha * x
void convert(const Tensor& src, Tensor& dst);              // any dtype to any dtype, same element count
void add(const Tensor& a, const Tensor& b, Tensor& out);   // f32: out = a + b (out may alias a or b)

}  // namespace cs::cpu
