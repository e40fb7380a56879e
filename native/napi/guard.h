// Runs a binding body and turns any C++ exception into a JS Error, so native code
// never terminates the process.
#pragma once
#include <napi.h>

#include <exception>
#include <new>

#include "core/error.h"

namespace cs::napi {

template <typename F>
Napi::Value guarded(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "clipscale: out of host memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  } catch (...) {
    throw Napi::Error::New(env, "clipscale: unknown native error");
  }
}

}  // namespace cs::napi
