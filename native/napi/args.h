// Reading JS arguments in bindings, with errors that name the op and the argument.
#pragma once
#include <napi.h>

#include <string>

#include "core/tensor.h"

namespace cs::napi {

Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// null or undefined gives nullptr
Tensor* arg_optional_tensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
Shape arg_shape(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
DType arg_dtype(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
cs::Device arg_device(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);

}  // namespace cs::napi
