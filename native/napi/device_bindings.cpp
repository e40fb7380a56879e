// Moving tensors between the CPU and CUDA devices, and what the CUDA backend is doing.
#include <cstring>

#include "cuda_dispatch/cuda_backend.h"
#include "core/error.h"
#include "cuda/abi.h"
#include "napi/args.h"
#include "napi/registry.h"
#include "napi/tensor_wrap.h"

namespace cs::napi {

// tensorTo(t, device) → a copy of t on `device` (t itself is left as it is; the same
// device gives a copy too, so the result never shares memory with t).
static Napi::Value TensorTo(const Napi::CallbackInfo& info) {
  const char* op = "tensorTo";
  Tensor& src = arg_tensor(info, 0, op, "tensor");
  cs::Device dev = arg_device(info, 1, op, "device");
  Tensor dst = make_tensor(src.shape, src.dtype, dev);
  const size_t n = src.nbytes();
  const bool from_cpu = src.device().is_cpu(), to_cpu = dev.is_cpu();
  if (n == 0) {
    // nothing to copy
  } else if (from_cpu && to_cpu) {
    std::memcpy(dst.raw(), src.raw(), n);
  } else if (from_cpu) {
    cuda_memcpy_h2d(op, dst.raw(), src.raw(), n, dev.index);
  } else if (to_cpu) {
    cuda_memcpy_d2h(op, dst.raw(), src.raw(), n, src.device().index);
  } else if (src.device() == dev) {
    cuda_memcpy_d2d(op, dst.raw(), src.raw(), n, dev.index);
  } else {
    // Between two GPUs, through the host (peer copies are a later optimisation).
    Tensor tmp = make_tensor(src.shape, src.dtype, cs::Device{});
    cuda_memcpy_d2h(op, tmp.raw(), src.raw(), n, src.device().index);
    cuda_memcpy_h2d(op, dst.raw(), tmp.raw(), n, dev.index);
  }
  return TensorWrap::Create(info.Env(), dst);
}
CS_BINDING("tensorTo", TensorTo);

// copyAcross(src, dst): copies src into the existing tensor dst, which may be on another
// device (host → GPU uploads of batches and checkpoints into tensors a model already holds).
// Same dtype and shape; h2d and d2d are queued on the device's stream, d2h waits for it.
static Napi::Value CopyAcross(const Napi::CallbackInfo& info) {
  const char* op = "copyAcross";
  Tensor& src = arg_tensor(info, 0, op, "src");
  Tensor& dst = arg_tensor(info, 1, op, "dst");
  if (src.dtype != dst.dtype || src.shape != dst.shape)
    fail(op, ": src and dst must have one dtype and shape, got src ", dtype_name(src.dtype), shape_str(src.shape),
         " and dst ", dtype_name(dst.dtype), shape_str(dst.shape));
  const size_t n = src.nbytes();
  if (n == 0 || src.raw() == dst.raw()) return info.Env().Undefined();
  const bool from_cpu = src.device().is_cpu(), to_cpu = dst.device().is_cpu();
  if (from_cpu && to_cpu) {
    std::memmove(dst.raw(), src.raw(), n);
  } else if (from_cpu) {
    cuda_memcpy_h2d(op, dst.raw(), src.raw(), n, dst.device().index);
  } else if (to_cpu) {
    cuda_memcpy_d2h(op, dst.raw(), src.raw(), n, src.device().index);
  } else if (src.device() == dst.device()) {
    cuda_memcpy_d2d(op, dst.raw(), src.raw(), n, dst.device().index);
  } else {
    Tensor tmp = make_tensor(src.shape, src.dtype, cs::Device{});
    cuda_memcpy_d2h(op, tmp.raw(), src.raw(), n, src.device().index);
    cuda_memcpy_h2d(op, dst.raw(), tmp.raw(), n, dst.device().index);
  }
  return info.Env().Undefined();
}
CS_BINDING("copyAcross", CopyAcross);

// cudaSynchronize(device): waits for the device's stream; reports errors that kernels
// recorded (ids out of range, an overflowing logit scale).
static Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  cs::Device dev = arg_device(info, 0, "cudaSynchronize", "device");
  if (!dev.is_cpu()) cuda_synchronize("cudaSynchronize", dev.index);
  return info.Env().Undefined();
}
CS_BINDING("cudaSynchronize", CudaSynchronize);

// cudaBackendStatus(): whether the CUDA library loaded, from where, and why not.
static Napi::Value CudaBackendStatusBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CudaBackendStatus& s = cuda_backend_status();
  Napi::Object o = Napi::Object::New(env);
  o.Set("loaded", s.loaded);
  o.Set("emulated", s.emulated);
  if (!s.path.empty()) o.Set("path", s.path);
  if (!s.loaded) o.Set("reason", s.reason);
  o.Set("searched", s.searched);
  o.Set("abiVersion", s.abi_version);
  o.Set("expectedAbiVersion", CS_CUDA_ABI_VERSION);
  o.Set("devicesUsable", s.devices_ok);
  o.Set("deviceCount", s.device_count);
  if (!s.device_error.empty()) o.Set("deviceError", s.device_error);
  o.Set("verifiedOnGpu", kCudaBackendVerifiedOnGpu);
  if (!kCudaBackendVerifiedOnGpu)
    o.Set("note", "built but not yet verified on a GPU: its kernels compile, and their tests have not run on a GPU yet");
  return o;
}
CS_BINDING("cudaBackendStatus", CudaBackendStatusBinding);

}  // namespace cs::napi
