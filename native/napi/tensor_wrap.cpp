#include "napi/tensor_wrap.h"

#include <cstring>

#include "core/error.h"
#include "napi/args.h"
#include "napi/guard.h"
#include "napi/registry.h"

namespace cs::napi {

namespace {
struct InstanceData {
  Napi::FunctionReference tensor_ctor;
};
// Passed to the constructor so JS code cannot call `new Tensor()` directly.
const int kConstructToken = 0x5eed;
Tensor g_pending;  // the tensor handed to the constructor being run
}  // namespace

Napi::Function TensorWrap::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeTensor", {
    InstanceAccessor<&TensorWrap::Shape>("shape"),
    InstanceAccessor<&TensorWrap::DType>("dtype"),
    InstanceAccessor<&TensorWrap::Device>("device"),
    InstanceAccessor<&TensorWrap::Bytes>("nbytes"),
    InstanceAccessor<&TensorWrap::Disposed>("disposed"),
    InstanceMethod<&TensorWrap::View>("view"),
    InstanceMethod<&TensorWrap::Dispose>("dispose"),
    InstanceMethod<&TensorWrap::Reshape>("reshape"),
    InstanceMethod<&TensorWrap::Slice>("slice"),
  });
  auto* data = new InstanceData();
  data->tensor_ctor = Napi::Persistent(ctor);
  env.SetInstanceData(data);
  return ctor;
}

Napi::Object TensorWrap::Create(Napi::Env env, Tensor t) {
  g_pending = std::move(t);
  auto* data = env.GetInstanceData<InstanceData>();
  return data->tensor_ctor.New({Napi::Number::New(env, kConstructToken)});
}

bool TensorWrap::IsTensor(Napi::Value v) {
  if (!v.IsObject()) return false;
  auto* data = v.Env().GetInstanceData<InstanceData>();
  return v.As<Napi::Object>().InstanceOf(data->tensor_ctor.Value());
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() != kConstructToken || !g_pending.storage) {
    throw Napi::TypeError::New(info.Env(), "NativeTensor cannot be constructed directly; use clipscale's tensor functions");
  }
  tensor_ = std::move(g_pending);
  g_pending = Tensor();
  // Only the first handle on a storage reports it, so views are not counted twice.
  if (tensor_.storage.use_count() == 1 && tensor_.device().is_cpu()) {
    reported_ = static_cast<int64_t>(tensor_.storage->bytes);
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_);
  }
}

TensorWrap::~TensorWrap() {
  // The env may be tearing down; memory accounting is skipped there.
  tensor_ = Tensor();
}

void TensorWrap::release(Napi::Env env) {
  if (reported_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
    reported_ = 0;
  }
  tensor_ = Tensor();
}

Tensor& TensorWrap::tensor(const char* op, const char* arg) {
  if (!tensor_.storage) fail(op, ": ", arg, " is a disposed tensor");
  return tensor_;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!tensor_.storage) return env.Null();
  Napi::Array a = Napi::Array::New(env, tensor_.shape.size());
  for (size_t i = 0; i < tensor_.shape.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(tensor_.shape[i])));
  return a;
}

Napi::Value TensorWrap::DType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(tensor_.dtype));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  if (!tensor_.storage) return info.Env().Null();
  return Napi::String::New(info.Env(), tensor_.device().str());
}

Napi::Value TensorWrap::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), tensor_.storage ? static_cast<double>(tensor_.nbytes()) : 0);
}

Napi::Value TensorWrap::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.storage);
}

// A zero-copy ArrayBuffer over the tensor's memory. The buffer holds its own
// reference to the storage, so it stays valid after dispose().
Napi::Value TensorWrap::View(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Tensor& t = tensor("view", "tensor");
    if (!t.device().is_cpu()) fail("view: tensor is on ", t.device().str(), "; copy it to the CPU first");
    auto* keep = new std::shared_ptr<Storage>(t.storage);
    size_t n = t.nbytes();
    void* ptr = t.raw();
    if (n == 0) {
      delete keep;
      return Napi::ArrayBuffer::New(info.Env(), 0);
    }
    return Napi::ArrayBuffer::New(info.Env(), ptr, n, [](Napi::Env, void*, std::shared_ptr<Storage>* hint) { delete hint; }, keep);
  });
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

// A tensor over the same storage with another shape of the same element count.
Napi::Value TensorWrap::Reshape(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Tensor& t = tensor("reshape", "tensor");
    cs::Shape s = arg_shape(info, 0, "reshape", "shape");
    if (shape_numel(s) != t.numel())
      fail("reshape: cannot view ", t.describe(), " as shape ", shape_str(s), " (", t.numel(), " vs ", shape_numel(s), " elements)");
    Tensor v = t;
    v.shape = s;
    return Create(info.Env(), v);
  });
}

// slice(offset, shape): a tensor over numel(shape) elements of the same storage, starting
// `offset` elements into this tensor (parameters as views of one flat buffer).
Napi::Value TensorWrap::Slice(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Tensor& t = tensor("slice", "tensor");
    const int64_t offset = arg_int(info, 0, "slice", "offset");
    cs::Shape s = arg_shape(info, 1, "slice", "shape");
    if (offset < 0 || offset + shape_numel(s) > t.numel())
      fail("slice: elements [", offset, ", ", offset + shape_numel(s), ") are outside ", t.describe());
    Tensor v = t;
    v.offset = t.offset + static_cast<size_t>(offset) * dtype_size(t.dtype);
    v.shape = s;
    return Create(info.Env(), v);
  });
}

// tensorEmpty(shape, dtype, device): uninitialised memory.
static Napi::Value TensorEmpty(const Napi::CallbackInfo& info) {
  Shape s = arg_shape(info, 0, "empty", "shape");
  DType d = arg_dtype(info, 1, "empty", "dtype");
  cs::Device dev = arg_device(info, 2, "empty", "device");
  return TensorWrap::Create(info.Env(), make_tensor(s, d, dev));
}
CS_BINDING("tensorEmpty", TensorEmpty);

// tensorFromBuffer(shape, dtype, typedArray): copies the array's bytes into a new CPU tensor.
static Napi::Value TensorFromBuffer(const Napi::CallbackInfo& info) {
  Shape s = arg_shape(info, 0, "fromArray", "shape");
  DType d = arg_dtype(info, 1, "fromArray", "dtype");
  if (info.Length() < 3 || !info[2].IsTypedArray()) fail("fromArray: data must be a typed array");
  Napi::TypedArray ta = info[2].As<Napi::TypedArray>();
  size_t want = static_cast<size_t>(shape_numel(s)) * dtype_size(d);
  if (ta.ByteLength() != want)
    fail("fromArray: shape ", shape_str(s), " of ", dtype_name(d), " needs ", want, " bytes, the array has ", ta.ByteLength());
  Tensor t = make_tensor(s, d, cs::Device{});
  const char* src = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (want) std::memcpy(t.raw(), src, want);
  return TensorWrap::Create(info.Env(), t);
}
CS_BINDING("tensorFromBuffer", TensorFromBuffer);

}  // namespace cs::napi
