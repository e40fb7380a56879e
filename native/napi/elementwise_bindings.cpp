#include "core/backend.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/elementwise.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// fill(x, value)
static Napi::Value Fill(const Napi::CallbackInfo& info) {
  Tensor& x = arg_tensor(info, 0, "fill", "x");
  double v = arg_number(info, 1, "fill", "value");
  if (on_cuda("fill", {&x}))
    cuda::fill(x, v);
  else
    cpu::fill(x, v);
  return info.Env().Undefined();
}
CS_BINDING("fill", Fill);

// copy(src, dst)
static Napi::Value Copy(const Napi::CallbackInfo& info) {
  Tensor& s = arg_tensor(info, 0, "copy", "src");
  Tensor& d = arg_tensor(info, 1, "copy", "dst");
  if (on_cuda("copy", {&s, &d}))
    cuda::copy(s, d);
  else
    cpu::copy(s, d);
  return info.Env().Undefined();
}
CS_BINDING("copy", Copy);

// clamp(x, lo, hi): x = min(max(x, lo), hi) in place (NaN stays NaN)
static Napi::Value Clamp(const Napi::CallbackInfo& info) {
  Tensor& x = arg_tensor(info, 0, "clamp", "x");
  double lo = arg_number(info, 1, "clamp", "lo");
  double hi = arg_number(info, 2, "clamp", "hi");
  if (on_cuda("clamp", {&x}))
    cuda::clamp(x, static_cast<float>(lo), static_cast<float>(hi));
  else
    cpu::clamp(x, static_cast<float>(lo), static_cast<float>(hi));
  return info.Env().Undefined();
}
CS_BINDING("clamp", Clamp);

// scale(x, alpha): x *= alpha
static Napi::Value Scale(const Napi::CallbackInfo& info) {
  Tensor& x = arg_tensor(info, 0, "scale", "x");
  double a = arg_number(info, 1, "scale", "alpha");
  if (on_cuda("scale", {&x}))
    cuda::scale(x, static_cast<float>(a));
  else
    cpu::scale(x, static_cast<float>(a));
  return info.Env().Undefined();
}
CS_BINDING("scale", Scale);

// axpy(alpha, x, y): y += alpha * x
static Napi::Value Axpy(const Napi::CallbackInfo& info) {
  double a = arg_number(info, 0, "axpy", "alpha");
  Tensor& x = arg_tensor(info, 1, "axpy", "x");
  Tensor& y = arg_tensor(info, 2, "axpy", "y");
  if (on_cuda("axpy", {&x, &y}))
    cuda::axpy(static_cast<float>(a), x, y);
  else
    cpu::axpy(static_cast<float>(a), x, y);
  return info.Env().Undefined();
}
CS_BINDING("axpy", Axpy);

// add(a, b, out)
static Napi::Value Add(const Napi::CallbackInfo& info) {
  Tensor& a = arg_tensor(info, 0, "add", "a");
  Tensor& b = arg_tensor(info, 1, "add", "b");
  Tensor& o = arg_tensor(info, 2, "add", "out");
  if (on_cuda("add", {&a, &b, &o}))
    cuda::add(a, b, o);
  else
    cpu::add(a, b, o);
  return info.Env().Undefined();
}
CS_BINDING("add", Add);

// convert(src, dst): dtype conversion (bf16 rounds to nearest even)
static Napi::Value Convert(const Napi::CallbackInfo& info) {
  Tensor& s = arg_tensor(info, 0, "convert", "src");
  Tensor& d = arg_tensor(info, 1, "convert", "dst");
  if (on_cuda("convert", {&s, &d}))
    cuda::convert(s, d);
  else
    cpu::convert(s, d);
  return info.Env().Undefined();
}
CS_BINDING("convert", Convert);

}  // namespace cs::napi
