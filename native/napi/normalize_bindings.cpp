#include "core/backend.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/normalize.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// l2normalizeForward(x, out, norms)
static Napi::Value L2normalizeForward(const Napi::CallbackInfo& info) {
  const char* op = "l2normalizeForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& out = arg_tensor(info, 1, op, "out");
  Tensor& norms = arg_tensor(info, 2, op, "norms");
  if (on_cuda(op, {&x, &out, &norms}))
    cuda::l2normalize_forward(x, out, norms);
  else
    cpu::l2normalize_forward(x, out, norms);
  return info.Env().Undefined();
}
CS_BINDING("l2normalizeForward", L2normalizeForward);

// l2normalizeBackward(dout, out, norms, dx)
static Napi::Value L2normalizeBackward(const Napi::CallbackInfo& info) {
  const char* op = "l2normalizeBackward";
  Tensor& dout = arg_tensor(info, 0, op, "dout");
  Tensor& out = arg_tensor(info, 1, op, "out");
  Tensor& norms = arg_tensor(info, 2, op, "norms");
  Tensor& dx = arg_tensor(info, 3, op, "dx");
  if (on_cuda(op, {&dout, &out, &norms, &dx}))
    cuda::l2normalize_backward(dout, out, norms, dx);
  else
    cpu::l2normalize_backward(dout, out, norms, dx);
  return info.Env().Undefined();
}
CS_BINDING("l2normalizeBackward", L2normalizeBackward);

}  // namespace cs::napi
