#include "core/backend.h"
#include "cpu/activation.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

using Forward = void (*)(const Tensor&, Tensor&);
using Backward = void (*)(const Tensor&, const Tensor&, Tensor&);

// name(x, out)
template <Forward F>
static Napi::Value forward(const Napi::CallbackInfo& info, const char* op) {
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& out = arg_tensor(info, 1, op, "out");
  require_cpu_backend(op, {&x, &out});
  F(x, out);
  return info.Env().Undefined();
}

// name(x, dout, dx)
template <Backward B>
static Napi::Value backward(const Napi::CallbackInfo& info, const char* op) {
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& dout = arg_tensor(info, 1, op, "dout");
  Tensor& dx = arg_tensor(info, 2, op, "dx");
  require_cpu_backend(op, {&x, &dout, &dx});
  B(x, dout, dx);
  return info.Env().Undefined();
}

static Napi::Value GeluForward(const Napi::CallbackInfo& info) { return forward<cpu::gelu_forward>(info, "geluForward"); }
CS_BINDING("geluForward", GeluForward);
static Napi::Value GeluBackward(const Napi::CallbackInfo& info) { return backward<cpu::gelu_backward>(info, "geluBackward"); }
CS_BINDING("geluBackward", GeluBackward);
static Napi::Value QuickGeluForward(const Napi::CallbackInfo& info) {
  return forward<cpu::quick_gelu_forward>(info, "quickGeluForward");
}
CS_BINDING("quickGeluForward", QuickGeluForward);
static Napi::Value QuickGeluBackward(const Napi::CallbackInfo& info) {
  return backward<cpu::quick_gelu_backward>(info, "quickGeluBackward");
}
CS_BINDING("quickGeluBackward", QuickGeluBackward);

}  // namespace cs::napi
