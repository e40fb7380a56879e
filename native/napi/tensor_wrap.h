// The JS-visible tensor handle. It holds a reference to native storage, reports
// that memory to V8, and can be disposed early; typed-array views keep the storage
// alive on their own, so disposing never leaves a view dangling.
#pragma once
#include <napi.h>

#include "core/tensor.h"

namespace cs::napi {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Tensor t);
  static bool IsTensor(Napi::Value v);
  TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  // The tensor behind a handle; throws if disposed.
  Tensor& tensor(const char* op, const char* arg);
  bool disposed() const { return !tensor_.storage; }

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DType(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Reshape(const Napi::CallbackInfo& info);
  Napi::Value Slice(const Napi::CallbackInfo& info);
  void release(Napi::Env env);

  Tensor tensor_;
  int64_t reported_ = 0;
};

}  // namespace cs::napi
