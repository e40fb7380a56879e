// Each binding file registers its functions with a static BindingRegistration;
// module.cpp exports everything registered. Adding an op never edits a shared file.
#pragma once
#include <napi.h>

#include <vector>

namespace cs::napi {

using BindingFn = Napi::Value (*)(const Napi::CallbackInfo&);

struct Binding {
  const char* name;
  BindingFn fn;
};

std::vector<Binding>& bindings();

struct BindingRegistration {
  BindingRegistration(const char* name, BindingFn fn) { bindings().push_back({name, fn}); }
};

}  // namespace cs::napi

#define CS_BINDING(js_name, fn) static ::cs::napi::BindingRegistration cs_binding_##fn(js_name, fn)
