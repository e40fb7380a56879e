// Argument checks of the element-wise ops (fill, copy, scale, axpy, add, convert), shared
// by the CPU ops and the CUDA dispatch. Overlap rules differ by backend (the CPU copies
// with memmove, CUDA with cudaMemcpy), so copy's overlap check stays with CUDA.
#pragma once
#include "core/checks.h"

namespace cs {

// fill: an integer tensor takes only whole values.
void check_fill(DeviceCheck device, const Tensor& x, double value);
// copy: src and dst of one dtype and element count.
void check_copy(DeviceCheck device, const Tensor& src, const Tensor& dst);
// scale: x f32.
void check_scale(DeviceCheck device, const Tensor& x);
// clamp: x f32, lo <= hi (NaN bounds refused).
void check_clamp(DeviceCheck device, const Tensor& x, double lo, double hi);
// axpy: x and y f32 of one element count.
void check_axpy(DeviceCheck device, const Tensor& x, const Tensor& y);
// add: a, b and out f32 of one shape.
void check_add(DeviceCheck device, const Tensor& a, const Tensor& b, const Tensor& out);
// convert: src and dst of one element count.
void check_convert(DeviceCheck device, const Tensor& src, const Tensor& dst);

}  // namespace cs
