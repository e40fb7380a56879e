// The CUDA runtime's own state seen from JavaScript: the caching allocator's accounting
// (memory stats, peak reset).
#include <napi.h>

#include "core/error.h"
#include "cuda/abi.h"
#include "cuda_dispatch/cuda_backend.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

namespace {

// The optional device argument ('cuda' or 'cuda:N'; absent means cuda:0), as an index.
int cuda_index_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return 0;
  cs::Device d = arg_device(info, i, op, "device");
  if (d.is_cpu()) fail(op, ": device must be a CUDA device ('cuda' or 'cuda:N'), got 'cpu'");
  return d.index;
}

}  // namespace

// cudaMemoryStats(device?) → {allocatedBytes, cachedBytes, peakAllocatedBytes, driverAllocs, driverFrees, allocs}
static Napi::Value CudaMemoryStats(const Napi::CallbackInfo& info) {
  const char* op = "cudaMemoryStats";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  CsCudaMemoryStats s{};
  cuda_check(op, cuda_fn<decltype(cs_cuda_memory_stats)>("memory_stats", op)(device, &s));
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocatedBytes", static_cast<double>(s.allocated_bytes));
  o.Set("cachedBytes", static_cast<double>(s.cached_bytes));
  o.Set("peakAllocatedBytes", static_cast<double>(s.peak_allocated_bytes));
  o.Set("driverAllocs", static_cast<double>(s.driver_allocs));
  o.Set("driverFrees", static_cast<double>(s.driver_frees));
  o.Set("allocs", static_cast<double>(s.allocs));
  return o;
}
CS_BINDING("cudaMemoryStats", CudaMemoryStats);

// cudaResetPeakMemory(device?): the peak starts again from the bytes allocated now.
static Napi::Value CudaResetPeakMemory(const Napi::CallbackInfo& info) {
  const char* op = "cudaResetPeakMemory";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_reset_peak_memory)>("reset_peak_memory", op)(device));
  return info.Env().Undefined();
}
CS_BINDING("cudaResetPeakMemory", CudaResetPeakMemory);

}  // namespace cs::napi
