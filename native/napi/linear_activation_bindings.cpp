#include <string>

#include "core/backend.h"
#include "core/error.h"
#include "cpu/linear_activation.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

static cpu::Activation arg_activation(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const std::string name = arg_string(info, i, op, "activation");
  if (name == "gelu") return cpu::Activation::Gelu;
  if (name == "quick_gelu") return cpu::Activation::QuickGelu;
  fail(op, ": activation must be 'gelu' or 'quick_gelu', got '", name, "'");
}

// linearActivationForward(x, w, b | null, h, a, activation, packed?): h = x·wᵀ + b, a = activation(h); packed as linearForward's
static Napi::Value LinearActivationForward(const Napi::CallbackInfo& info) {
  const char* op = "linearActivationForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& w = arg_tensor(info, 1, op, "w");
  Tensor* b = arg_optional_tensor(info, 2, op, "b");
  Tensor& h = arg_tensor(info, 3, op, "h");
  Tensor& a = arg_tensor(info, 4, op, "a");
  const cpu::Activation kind = arg_activation(info, 5, op);
  Tensor* packed = arg_optional_tensor(info, 6, op, "packed");
  if (on_cuda(op, {&x, &w, b, &h, &a, packed})) fail(op, ": CPU only (on CUDA, run linearForward and the activation)");
  cpu::linear_activation_forward(x, w, b, h, a, kind, packed);
  return info.Env().Undefined();
}
CS_BINDING("linearActivationForward", LinearActivationForward);

// activationBackwardBias(h, da, dh, db | null, accumulate, activation): dh = da·activation'(h), db (+)= Σ rows dh
static Napi::Value ActivationBackwardBias(const Napi::CallbackInfo& info) {
  const char* op = "activationBackwardBias";
  Tensor& h = arg_tensor(info, 0, op, "h");
  Tensor& da = arg_tensor(info, 1, op, "da");
  Tensor& dh = arg_tensor(info, 2, op, "dh");
  Tensor* db = arg_optional_tensor(info, 3, op, "db");
  const bool accumulate = arg_bool(info, 4, op, "accumulate");
  const cpu::Activation kind = arg_activation(info, 5, op);
  if (on_cuda(op, {&h, &da, &dh, db})) fail(op, ": CPU only (on CUDA, run the activation's backward and linearBackward)");
  cpu::activation_backward_bias(h, da, dh, db, accumulate, kind);
  return info.Env().Undefined();
}
CS_BINDING("activationBackwardBias", ActivationBackwardBias);

}  // namespace cs::napi
