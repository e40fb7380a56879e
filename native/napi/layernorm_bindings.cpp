#include "core/backend.h"
#include "core/error.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/layernorm.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// layernormForward(x, gamma, beta, out, mean, rstd, eps)
static Napi::Value LayernormForward(const Napi::CallbackInfo& info) {
  const char* op = "layernormForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& g = arg_tensor(info, 1, op, "gamma");
  Tensor& b = arg_tensor(info, 2, op, "beta");
  Tensor& out = arg_tensor(info, 3, op, "out");
  Tensor& mean = arg_tensor(info, 4, op, "mean");
  Tensor& rstd = arg_tensor(info, 5, op, "rstd");
  double eps = arg_number(info, 6, op, "eps");
  if (on_cuda(op, {&x, &g, &b, &out, &mean, &rstd}))
    cuda::layernorm_forward(x, g, b, out, mean, rstd, static_cast<float>(eps));
  else
    cpu::layernorm_forward(x, g, b, out, mean, rstd, static_cast<float>(eps));
  return info.Env().Undefined();
}
CS_BINDING("layernormForward", LayernormForward);

// residualLayernormForward(x, residual, sumOut, gamma, beta, out, mean, rstd, eps)
static Napi::Value ResidualLayernormForward(const Napi::CallbackInfo& info) {
  const char* op = "residualLayernormForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& r = arg_tensor(info, 1, op, "residual");
  Tensor& sum = arg_tensor(info, 2, op, "sumOut");
  Tensor& g = arg_tensor(info, 3, op, "gamma");
  Tensor& b = arg_tensor(info, 4, op, "beta");
  Tensor& out = arg_tensor(info, 5, op, "out");
  Tensor& mean = arg_tensor(info, 6, op, "mean");
  Tensor& rstd = arg_tensor(info, 7, op, "rstd");
  double eps = arg_number(info, 8, op, "eps");
  if (on_cuda(op, {&x, &r, &sum, &g, &b, &out, &mean, &rstd}))
    cuda::residual_layernorm_forward(x, r, sum, g, b, out, mean, rstd, static_cast<float>(eps));
  else
    cpu::residual_layernorm_forward(x, r, sum, g, b, out, mean, rstd, static_cast<float>(eps));
  return info.Env().Undefined();
}
CS_BINDING("residualLayernormForward", ResidualLayernormForward);

// layernormBackward(dout, x, gamma, mean, rstd, dx, dgamma | null, dbeta | null[, dadd | null, accumulate])
static Napi::Value LayernormBackward(const Napi::CallbackInfo& info) {
  const char* op = "layernormBackward";
  Tensor& dout = arg_tensor(info, 0, op, "dout");
  Tensor& x = arg_tensor(info, 1, op, "x");
  Tensor& g = arg_tensor(info, 2, op, "gamma");
  Tensor& mean = arg_tensor(info, 3, op, "mean");
  Tensor& rstd = arg_tensor(info, 4, op, "rstd");
  Tensor& dx = arg_tensor(info, 5, op, "dx");
  Tensor* dg = arg_optional_tensor(info, 6, op, "dgamma");
  Tensor* db = arg_optional_tensor(info, 7, op, "dbeta");
  Tensor* dadd = info.Length() > 8 ? arg_optional_tensor(info, 8, op, "dadd") : nullptr;
  const bool accumulate = info.Length() > 9 && arg_bool(info, 9, op, "accumulate");
  if (on_cuda(op, {&dout, &x, &g, &mean, &rstd, &dx, dg, db, dadd})) {
    if (dadd || accumulate)
      fail(op, ": dadd and accumulate are CPU-only (the CUDA backend's layernorm backward overwrites dx, dgamma and dbeta)");
    cuda::layernorm_backward(dout, x, g, mean, rstd, dx, dg, db);
  } else {
    cpu::layernorm_backward_add(dout, x, g, mean, rstd, dx, dg, db, dadd, accumulate);
  }
  return info.Env().Undefined();
}
CS_BINDING("layernormBackward", LayernormBackward);

}  // namespace cs::napi
