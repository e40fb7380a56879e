// Argument checks of the linear layer (y = x·wᵀ + b), shared by the CPU ops and the CUDA
// dispatch.
#pragma once
#include "core/checks.h"

namespace cs {

struct LinearDims {
  int64_t M, K, N;  // rows of x, in features, out features
};

// linearForward: x [..., in], w [out, in], b [out] (optional), y [..., out].
LinearDims check_linear_forward(DeviceCheck device, const Tensor& x, const Tensor& w, const Tensor* b,
                                const Tensor& y);

// linearBackward: dy [..., out]; dx like x, dw like w, db [out], each optional.
LinearDims check_linear_backward(DeviceCheck device, const Tensor& x, const Tensor& w, const Tensor& dy,
                                 const Tensor* dx, const Tensor* dw, const Tensor* db);

}  // namespace cs
