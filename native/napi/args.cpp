#include "napi/args.h"

#include <cmath>

#include "core/error.h"
#include "napi/tensor_wrap.h"

namespace cs::napi {

static Napi::Value at(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

static const char* js_type(Napi::Value v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_object: return "object";
    case napi_function: return "function";
    default: return "value";
  }
}

Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = at(info, i);
  if (!TensorWrap::IsTensor(v)) fail(op, ": ", name, " must be a Tensor, got ", js_type(v));
  return TensorWrap::Unwrap(v.As<Napi::Object>())->tensor(op, name);
}

Tensor* arg_optional_tensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = at(info, i);
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return &arg_tensor(info, i, op, name);
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = at(info, i);
  if (!v.IsNumber()) fail(op, ": ", name, " must be a number, got ", js_type(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) fail(op, ": ", name, " must be a number, got NaN");
  return d;
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  double d = arg_number(info, i, op, name);
  if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0) fail(op, ": ", name, " must be an integer, got ", d);
  return static_cast<int64_t>(d);
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = at(info, i);
  if (!v.IsBoolean()) fail(op, ": ", name, " must be a boolean, got ", js_type(v));
  return v.As<Napi::Boolean>().Value();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = at(info, i);
  if (!v.IsString()) fail(op, ": ", name, " must be a string, got ", js_type(v));
  return v.As<Napi::String>().Utf8Value();
}

Shape arg_shape(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = at(info, i);
  if (!v.IsArray()) fail(op, ": ", name, " must be an array of dimensions, got ", js_type(v));
  Napi::Array a = v.As<Napi::Array>();
  Shape s;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value d = a.Get(k);
    if (!d.IsNumber()) fail(op, ": ", name, "[", k, "] must be a number, got ", js_type(d));
    double x = d.As<Napi::Number>().DoubleValue();
    if (x < 0 || x != std::floor(x) || x > 1e15) fail(op, ": ", name, "[", k, "] must be a non-negative integer, got ", x);
    s.push_back(static_cast<int64_t>(x));
  }
  return s;
}

DType arg_dtype(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  std::string s = arg_string(info, i, op, name);
  DType d;
  if (!parse_dtype(s, &d)) fail(op, ": ", name, " must be one of f32, bf16, f16, i32, i64, got '", s, "'");
  return d;
}

cs::Device arg_device(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  std::string s = arg_string(info, i, op, name);
  cs::Device d;
  if (!parse_device(s, &d)) fail(op, ": ", name, " must be 'cpu' or 'cuda:N', got '", s, "'");
  return d;
}

}  // namespace cs::napi
