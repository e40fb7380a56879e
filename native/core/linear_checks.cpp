#include "core/linear_checks.h"

#include <utility>

namespace cs {

namespace {

// x is [..., in] and w is [out, in].
LinearDims check_x_and_w(DeviceCheck device, const char* op, const Tensor& x, const Tensor& w) {
  check_f32(device, op, "x", x);
  if (x.ndim() < 1) fail(op, ": x must have at least 1 dimension [..., in], got ", x.describe());
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.ndim(); i++) rows *= x.shape[i];
  const int64_t K = x.dim(-1);
  check_f32(device, op, "w", w);
  check_shape(op, "w", w, {-1, K});
  return {rows, K, w.dim(0)};
}

// t must be [lead..., last] where lead are x's leading dimensions.
void check_rows_like(const char* op, const char* name, const Tensor& t, const Tensor& x, int64_t last) {
  Shape want(x.shape.begin(), x.shape.end() - 1);
  want.push_back(last);
  check_shape(op, name, t, want);
}

}  // namespace

LinearDims check_linear_forward(DeviceCheck device, const Tensor& x, const Tensor& w, const Tensor* b,
                                const Tensor& y) {
  const char* op = "linearForward";
  const LinearDims d = check_x_and_w(device, op, x, w);
  if (b) {
    check_f32(device, op, "b", *b);
    check_shape(op, "b", *b, {d.N});
  }
  check_f32(device, op, "y", y);
  check_rows_like(op, "y", y, x, d.N);
  check_no_alias(op, "y", y, "x", x);
  check_no_alias(op, "y", y, "w", w);
  if (b) check_no_alias(op, "y", y, "b", *b);
  return d;
}

LinearDims check_linear_backward(DeviceCheck device, const Tensor& x, const Tensor& w, const Tensor& dy,
                                 const Tensor* dx, const Tensor* dw, const Tensor* db) {
  const char* op = "linearBackward";
  const LinearDims d = check_x_and_w(device, op, x, w);
  check_f32(device, op, "dy", dy);
  check_rows_like(op, "dy", dy, x, d.N);
  if (dx) {
    check_f32(device, op, "dx", *dx);
    check_same_shape(op, "dx", *dx, "x", x);
    check_no_alias(op, "dx", *dx, "dy", dy);
    check_no_alias(op, "dx", *dx, "w", w);
    check_no_alias(op, "dx", *dx, "x", x);  // dW reads x's rows while threads write dx's
  }
  if (dw) {
    check_f32(device, op, "dw", *dw);
    check_same_shape(op, "dw", *dw, "w", w);
    check_no_alias(op, "dw", *dw, "dy", dy);
    check_no_alias(op, "dw", *dw, "x", x);
    check_no_alias(op, "dw", *dw, "w", w);  // dX reads w while dW is written
    if (dx) check_outputs_apart(op, "dx", *dx, "dw", *dw);
  }
  if (db) {
    check_f32(device, op, "db", *db);
    check_shape(op, "db", *db, {d.N});
    check_no_alias(op, "db", *db, "dy", dy);
    check_no_alias(op, "db", *db, "x", x);
    check_no_alias(op, "db", *db, "w", w);
    if (dx) check_outputs_apart(op, "dx", *dx, "db", *db);
    if (dw) check_outputs_apart(op, "dw", *dw, "db", *db);
  }
  return d;
}

}  // namespace cs
