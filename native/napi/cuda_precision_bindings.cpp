// The CUDA backend's precision switch (cuda_dispatch/cuda_precision.h).
#include "cuda_dispatch/cuda_precision.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// cudaPrecision(): 'fp32' | 'bf16' | 'fp16' (loads the CUDA backend).
static Napi::Value CudaPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cuda::precision());
}
CS_BINDING("cudaPrecision", CudaPrecision);

// cudaSetPrecision(name): sets it; returns the previous one.
static Napi::Value CudaSetPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cuda::set_precision(arg_string(info, 0, "cudaSetPrecision", "precision")));
}
CS_BINDING("cudaSetPrecision", CudaSetPrecision);

}  // namespace cs::napi
