// The addon's entry point: exports the tensor class and every registered binding,
// each wrapped so that C++ exceptions become JS errors.
#include <napi.h>

#include "napi/guard.h"
#include "napi/registry.h"
#include "napi/tensor_wrap.h"

namespace cs::napi {

std::vector<Binding>& bindings() {
  static std::vector<Binding> all;
  return all;
}

static Napi::Value trampoline(const Napi::CallbackInfo& info) {
  auto fn = reinterpret_cast<BindingFn>(info.Data());
  return guarded(info.Env(), [&] { return fn(info); });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", TensorWrap::Init(env));
  for (const Binding& b : bindings()) {
    exports.Set(b.name, Napi::Function::New(env, trampoline, b.name, reinterpret_cast<void*>(b.fn)));
  }
  return exports;
}

}  // namespace cs::napi

static Napi::Object InitClipscale(Napi::Env env, Napi::Object exports) { return cs::napi::Init(env, exports); }

NODE_API_MODULE(clipscale, InitClipscale)
