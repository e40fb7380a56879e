#include "core/activation_checks.h"

namespace cs {

void check_activation_forward(DeviceCheck device, const char* op, const Tensor& x, const Tensor& out) {
  check_f32(device, op, "x", x);
  check_f32(device, op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  check_same_or_disjoint(op, "out", out, "x", x);
}

void check_activation_backward(DeviceCheck device, const char* op, const Tensor& x, const Tensor& dout,
                               const Tensor& dx) {
  check_f32(device, op, "x", x);
  check_f32(device, op, "dout", dout);
  check_f32(device, op, "dx", dx);
  check_same_shape(op, "x", x, "dout", dout);
  check_same_shape(op, "x", x, "dx", dx);
  check_same_or_disjoint(op, "dx", dx, "dout", dout);
  check_same_or_disjoint(op, "dx", dx, "x", x);
}

}  // namespace cs
