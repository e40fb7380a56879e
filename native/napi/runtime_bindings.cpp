// Process-level settings and facts: threads, numeric mode, build information.
#include <napi.h>

#include "core/numerics.h"
#include "cpu/gemm.h"
#include "core/thread_pool.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

static Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}
CS_BINDING("numThreads", NumThreads);

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(arg_int(info, 0, "setNumThreads", "n")));
  return info.Env().Undefined();
}
CS_BINDING("setNumThreads", SetNumThreads);

static Napi::Value Bf16Emulation(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), bf16_emulation());
}
CS_BINDING("bf16Emulation", Bf16Emulation);

static Napi::Value SetBf16Emulation(const Napi::CallbackInfo& info) {
  set_bf16_emulation(arg_bool(info, 0, "setBf16Emulation", "on"));
  return info.Env().Undefined();
}
CS_BINDING("setBf16Emulation", SetBf16Emulation);

static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#if defined(__VERSION__)
  o.Set("compiler", __VERSION__);
#endif
  o.Set("napiVersion", NAPI_VERSION);
  o.Set("cpuBackend", true);
  o.Set("gemmKernel", cs::cpu::gemm_kernel_name());
  return o;
}
CS_BINDING("buildInfo", BuildInfo);

}  // namespace cs::napi
