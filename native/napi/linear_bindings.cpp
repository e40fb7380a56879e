#include "core/backend.h"
#include "cuda_dispatch/cuda_layers.h"
#include "cpu/linear.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// linearForward(x, w, b | null, y): y = x·wᵀ + b
static Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  const char* op = "linearForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& w = arg_tensor(info, 1, op, "w");
  Tensor* b = arg_optional_tensor(info, 2, op, "b");
  Tensor& y = arg_tensor(info, 3, op, "y");
  if (on_cuda(op, {&x, &w, b, &y})) cuda::linear_forward(x, w, b, y);
  else cpu::linear_forward(x, w, b, y);
  return info.Env().Undefined();
}
CS_BINDING("linearForward", LinearForward);

// linearBackward(x, w, dy, dx | null, dw | null, db | null, accumulate)
static Napi::Value LinearBackward(const Napi::CallbackInfo& info) {
  const char* op = "linearBackward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& w = arg_tensor(info, 1, op, "w");
  Tensor& dy = arg_tensor(info, 2, op, "dy");
  Tensor* dx = arg_optional_tensor(info, 3, op, "dx");
  Tensor* dw = arg_optional_tensor(info, 4, op, "dw");
  Tensor* db = arg_optional_tensor(info, 5, op, "db");
  bool accumulate = arg_bool(info, 6, op, "accumulate");
  if (on_cuda(op, {&x, &w, &dy, dx, dw, db})) cuda::linear_backward(x, w, dy, dx, dw, db, accumulate);
  else cpu::linear_backward(x, w, dy, dx, dw, db, accumulate);
  return info.Env().Undefined();
}
CS_BINDING("linearBackward", LinearBackward);

}  // namespace cs::napi
