#include "core/backend.h"
#include "core/error.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/activation.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

using Forward = void (*)(const Tensor&, Tensor&);
using Backward = void (*)(const Tensor&, const Tensor&, Tensor&);

// name(x, out); F the CPU op, G the CUDA op.
template <Forward F, Forward G>
static Napi::Value forward(const Napi::CallbackInfo& info, const char* op) {
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& out = arg_tensor(info, 1, op, "out");
  if (on_cuda(op, {&x, &out}))
    G(x, out);
  else
    F(x, out);
  return info.Env().Undefined();
}

// name(x, dout, dx); B the CPU op, C the CUDA op.
template <Backward B, Backward C>
static Napi::Value backward(const Napi::CallbackInfo& info, const char* op) {
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& dout = arg_tensor(info, 1, op, "dout");
  Tensor& dx = arg_tensor(info, 2, op, "dx");
  if (on_cuda(op, {&x, &dout, &dx}))
    C(x, dout, dx);
  else
    B(x, dout, dx);
  return info.Env().Undefined();
}

static Napi::Value GeluForward(const Napi::CallbackInfo& info) { return forward<cpu::gelu_forward, cuda::gelu_forward>(info, "geluForward"); }
CS_BINDING("geluForward", GeluForward);
static Napi::Value GeluBackward(const Napi::CallbackInfo& info) { return backward<cpu::gelu_backward, cuda::gelu_backward>(info, "geluBackward"); }
CS_BINDING("geluBackward", GeluBackward);
// The tanh form on CUDA (the CPU's is lib/nn/gelu_tanh.ts, on the host).
static void cpu_gelu_tanh_forward(const Tensor&, Tensor&) {
  fail("geluTanhForward: the native op runs on CUDA; on the CPU use lib/nn/gelu_tanh.ts's geluTanhForward");
}
static void cpu_gelu_tanh_backward(const Tensor&, const Tensor&, Tensor&) {
  fail("geluTanhBackward: the native op runs on CUDA; on the CPU use lib/nn/gelu_tanh.ts's geluTanhBackward");
}
static Napi::Value GeluTanhForward(const Napi::CallbackInfo& info) {
  return forward<cpu_gelu_tanh_forward, cuda::gelu_tanh_forward>(info, "geluTanhForward");
}
CS_BINDING("geluTanhForward", GeluTanhForward);
static Napi::Value GeluTanhBackward(const Napi::CallbackInfo& info) {
  return backward<cpu_gelu_tanh_backward, cuda::gelu_tanh_backward>(info, "geluTanhBackward");
}
CS_BINDING("geluTanhBackward", GeluTanhBackward);
static Napi::Value QuickGeluForward(const Napi::CallbackInfo& info) {
  return forward<cpu::quick_gelu_forward, cuda::quick_gelu_forward>(info, "quickGeluForward");
}
CS_BINDING("quickGeluForward", QuickGeluForward);
static Napi::Value QuickGeluBackward(const Napi::CallbackInfo& info) {
  return backward<cpu::quick_gelu_backward, cuda::quick_gelu_backward>(info, "quickGeluBackward");
}
CS_BINDING("quickGeluBackward", QuickGeluBackward);

}  // namespace cs::napi
