// Argument checks of the pooling ops (gather one row per batch entry, argmax of ids),
// shared by the CPU ops and the CUDA dispatch. The CPU ops also check the index values,
// which the CUDA kernels report themselves.
#pragma once
#include "core/checks.h"

namespace cs {

// gatherRows: x [b, s, w], index i32 [b], out [b, w]; returns x's sizes.
TokenDims check_gather_rows(DeviceCheck device, const Tensor& x, const Tensor& index, const Tensor& out);
// gatherRowsBackward: dout [b, w], index i32 [b], dx [b, s, w]; returns dx's sizes.
TokenDims check_gather_rows_backward(DeviceCheck device, const Tensor& dout, const Tensor& index, const Tensor& dx);

struct IdRows {
  int64_t batch, tokens;
};
// argmaxIds: ids i32 [b, s] with s ≥ 1, out i32 [b].
IdRows check_argmax_ids(DeviceCheck device, const Tensor& ids, const Tensor& out);

}  // namespace cs
