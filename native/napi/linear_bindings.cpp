#include "core/backend.h"
#include "core/error.h"
#include "cuda_dispatch/cuda_layers.h"
#include "cpu/activation.h"
#include "cpu/linear.h"
#include "napi/args.h"
#include "napi/registry.h"
#include "napi/tensor_wrap.h"

namespace cs::napi {

// linearForward(x, w, b | null, y, w16?, packed?): y = x·wᵀ + b. w16 (optional): bf16(w), which a
// bf16 run on CUDA reads in place of converting w (the CPU computes from w: the same values).
// packed (optional, CPU): w prepacked by packLinearWeight, read instead of packing w per call.
static Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  const char* op = "linearForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& w = arg_tensor(info, 1, op, "w");
  Tensor* b = arg_optional_tensor(info, 2, op, "b");
  Tensor& y = arg_tensor(info, 3, op, "y");
  Tensor* w16 = arg_optional_tensor(info, 4, op, "w16");
  Tensor* packed = arg_optional_tensor(info, 5, op, "packed");
  if (on_cuda(op, {&x, &w, b, &y, w16, packed})) {
    if (packed) fail(op, ": packed weights are for the CPU backend");
    cuda::linear_forward(x, w, b, y, w16);
  } else {
    cpu::linear_forward(x, w, b, y, packed);
  }
  return info.Env().Undefined();
}
CS_BINDING("linearForward", LinearForward);

// packLinearWeight(w) → w [N, K] packed for the CPU GEMM's active kernel (linearForward's `packed`).
static Napi::Value PackLinearWeight(const Napi::CallbackInfo& info) {
  Tensor& w = arg_tensor(info, 0, "packLinearWeight", "w");
  return TensorWrap::Create(info.Env(), cpu::pack_linear_weight(w));
}
CS_BINDING("packLinearWeight", PackLinearWeight);

// linearGeluForward(x, w, b | null, pre, y, form, w16?): pre = x·wᵀ + b and y = GELU(pre), form 'erf'
// (nn.GELU()) or 'tanh' (CUDA only: the CPU's tanh GELU is lib/nn/gelu_tanh.ts). On CUDA one
// GEMM with the GELU in its epilogue; on the CPU the linear then the GELU (the same values).
static Napi::Value LinearGeluForward(const Napi::CallbackInfo& info) {
  const char* op = "linearGeluForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& w = arg_tensor(info, 1, op, "w");
  Tensor* b = arg_optional_tensor(info, 2, op, "b");
  Tensor& pre = arg_tensor(info, 3, op, "pre");
  Tensor& y = arg_tensor(info, 4, op, "y");
  const std::string form = arg_string(info, 5, op, "form");
  Tensor* w16 = arg_optional_tensor(info, 6, op, "w16");
  if (form != "erf" && form != "tanh") fail(op, ": form must be 'erf' or 'tanh', got '", form, "'");
  if (pre.raw() == y.raw()) fail(op, ": pre and y must be different tensors");
  if (on_cuda(op, {&x, &w, b, &pre, &y, w16})) {
    cuda::linear_gelu_forward(x, w, b, pre, y, form == "erf" ? 1 : 2, w16);
  } else {
    if (form != "erf") fail(op, ": the tanh form runs on CUDA only (on the CPU: linearForward, then geluTanhForward)");
    cpu::linear_forward(x, w, b, pre);
    cpu::gelu_forward(pre, y);
  }
  return info.Env().Undefined();
}
CS_BINDING("linearGeluForward", LinearGeluForward);

// linearBackward(x, w, dy, dx | null, dw | null, db | null, accumulate, w16?): w16 as linearForward's
static Napi::Value LinearBackward(const Napi::CallbackInfo& info) {
  const char* op = "linearBackward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& w = arg_tensor(info, 1, op, "w");
  Tensor& dy = arg_tensor(info, 2, op, "dy");
  Tensor* dx = arg_optional_tensor(info, 3, op, "dx");
  Tensor* dw = arg_optional_tensor(info, 4, op, "dw");
  Tensor* db = arg_optional_tensor(info, 5, op, "db");
  bool accumulate = arg_bool(info, 6, op, "accumulate");
  Tensor* w16 = arg_optional_tensor(info, 7, op, "w16");
  if (on_cuda(op, {&x, &w, &dy, dx, dw, db, w16})) cuda::linear_backward(x, w, dy, dx, dw, db, accumulate, w16);
  else cpu::linear_backward(x, w, dy, dx, dw, db, accumulate);
  return info.Env().Undefined();
}
CS_BINDING("linearBackward", LinearBackward);

}  // namespace cs::napi
