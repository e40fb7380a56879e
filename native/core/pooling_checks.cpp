#include "core/pooling_checks.h"

namespace cs {

namespace {

void check_index_shape(DeviceCheck device, const char* op, const Tensor& index, int64_t batch) {
  check_i32(device, op, "index", index);
  check_shape(op, "index", index, {batch});
}

}  // namespace

TokenDims check_gather_rows(DeviceCheck device, const Tensor& x, const Tensor& index, const Tensor& out) {
  const char* op = "gatherRows";
  check_f32(device, op, "x", x);
  check_ndim(op, "x", x, 3);
  const int64_t batch = x.dim(0), s = x.dim(1), w = x.dim(2);
  check_f32(device, op, "out", out);
  check_shape(op, "out", out, {batch, w});
  check_no_alias(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "index", index);
  check_index_shape(device, op, index, batch);
  return {batch, s, w};
}

TokenDims check_gather_rows_backward(DeviceCheck device, const Tensor& dout, const Tensor& index, const Tensor& dx) {
  const char* op = "gatherRowsBackward";
  check_f32(device, op, "dx", dx);
  check_ndim(op, "dx", dx, 3);
  const int64_t batch = dx.dim(0), s = dx.dim(1), w = dx.dim(2);
  check_f32(device, op, "dout", dout);
  check_shape(op, "dout", dout, {batch, w});
  check_no_alias(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "index", index);
  check_index_shape(device, op, index, batch);
  return {batch, s, w};
}

IdRows check_argmax_ids(DeviceCheck device, const Tensor& ids, const Tensor& out) {
  const char* op = "argmaxIds";
  check_i32(device, op, "ids", ids);
  check_ndim(op, "ids", ids, 2);
  const int64_t batch = ids.dim(0), s = ids.dim(1);
  if (s == 0) fail(op, ": ids must have at least one token a row, got ", ids.describe());
  check_i32(device, op, "out", out);
  check_shape(op, "out", out, {batch});
  check_no_alias(op, "out", out, "ids", ids);
  return {batch, s};
}

}  // namespace cs
