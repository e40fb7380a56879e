// Argument checks of layernorm and residual + layernorm, shared by the CPU op and the
// CUDA dispatch. Each returns the rows and width the kernels need.
#pragma once
#include "core/checks.h"

namespace cs {

// layernormForward: x [..., w], gamma/beta [w], out like x, mean/rstd one value per row.
// out16 (CUDA bf16/fp16 runs): out is 16-bit (bf16 or f16; the caller checks which) and shares no memory with x.
RowDims check_layernorm_forward(DeviceCheck device, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                const Tensor& out, const Tensor& mean, const Tensor& rstd, float eps,
                                bool out16 = false);

// residualLayernormForward: as layernormForward, plus residual and sumOut shaped like x.
RowDims check_residual_layernorm_forward(DeviceCheck device, const Tensor& x, const Tensor& residual,
                                         const Tensor& sum_out, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& out, const Tensor& mean, const Tensor& rstd, float eps,
                                         bool out16 = false);

// layernormBackward: dgamma, dbeta and dadd (added to dx; like x, may be dx or dout) are optional.
RowDims check_layernorm_backward(DeviceCheck device, const Tensor& dout, const Tensor& x, const Tensor& gamma,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& dx, const Tensor* dgamma,
                                 const Tensor* dbeta, const Tensor* dadd = nullptr);

}  // namespace cs
