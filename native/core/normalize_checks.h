// Argument checks of row-wise L2 normalisation, shared by the CPU ops and the CUDA dispatch.
#pragma once
#include "core/checks.h"

namespace cs {

// l2normalizeForward: x [..., w], out like x (may be x itself), norms one value per row.
RowDims check_l2normalize_forward(DeviceCheck device, const Tensor& x, const Tensor& out, const Tensor& norms);
// l2normalizeBackward: dout and dx like out (dx may be dout itself), norms one value per row.
RowDims check_l2normalize_backward(DeviceCheck device, const Tensor& dout, const Tensor& out, const Tensor& norms,
                                   const Tensor& dx);

}  // namespace cs
