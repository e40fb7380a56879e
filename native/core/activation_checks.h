// Argument checks of the element-wise activations (GELU, QuickGELU), shared by the CPU
// ops and the CUDA dispatch. op is the entry point's name (e.g. "geluForward").
#pragma once
#include "core/checks.h"

namespace cs {

// x and out: f32 of one shape; out may be x itself.
void check_activation_forward(DeviceCheck device, const char* op, const Tensor& x, const Tensor& out);

// x, dout and dx: f32 of one shape; dx may be dout or x itself.
void check_activation_backward(DeviceCheck device, const char* op, const Tensor& x, const Tensor& dout,
                               const Tensor& dx);

}  // namespace cs
