#include "core/normalize_checks.h"

namespace cs {

RowDims check_l2normalize_forward(DeviceCheck device, const Tensor& x, const Tensor& out, const Tensor& norms) {
  const char* op = "l2normalizeForward";
  check_f32(device, op, "x", x);
  const int64_t w = row_width(op, "x", x);
  check_f32(device, op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  check_same_or_disjoint(op, "out", out, "x", x);
  const int64_t rows = row_count(x);
  check_per_row(device, op, "norms", norms, rows);
  check_no_alias(op, "norms", norms, "x", x);
  check_no_alias(op, "norms", norms, "out", out);
  return {rows, w};
}

RowDims check_l2normalize_backward(DeviceCheck device, const Tensor& dout, const Tensor& out, const Tensor& norms,
                                   const Tensor& dx) {
  const char* op = "l2normalizeBackward";
  check_f32(device, op, "dout", dout);
  check_f32(device, op, "out", out);
  const int64_t w = row_width(op, "out", out);
  check_same_shape(op, "dout", dout, "out", out);
  const int64_t rows = row_count(out);
  check_per_row(device, op, "norms", norms, rows);
  check_f32(device, op, "dx", dx);
  check_same_shape(op, "dx", dx, "out", out);
  check_same_or_disjoint(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "out", out);
  check_no_alias(op, "dx", dx, "norms", norms);
  return {rows, w};
}

}  // namespace cs
