#include "cuda_dispatch/gpu_probe.h"
#include "napi/registry.h"

namespace cs::napi {

// probeGpu(): what the driver, cuBLASLt and NCCL look like on this machine.
static Napi::Value ProbeGpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GpuProbe p = probe_gpu();
  Napi::Object o = Napi::Object::New(env);
  Napi::Object drv = Napi::Object::New(env);
  drv.Set("found", p.driver_found);
  drv.Set("version", p.driver_version);
  if (!p.driver_error.empty()) drv.Set("error", p.driver_error);
  Napi::Array devs = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", static_cast<double>(i));
    d.Set("name", p.devices[i]);
    d.Set("capability", p.device_capabilities[i]);
    d.Set("memoryGiB", p.device_memory_gib[i]);
    devs.Set(static_cast<uint32_t>(i), d);
  }
  drv.Set("devices", devs);
  o.Set("driver", drv);
  Napi::Object lt = Napi::Object::New(env);
  lt.Set("found", !p.cublaslt_path.empty());
  if (!p.cublaslt_path.empty()) { lt.Set("path", p.cublaslt_path); lt.Set("version", static_cast<double>(p.cublaslt_version)); }
  else lt.Set("error", p.cublaslt_error);
  o.Set("cublasLt", lt);
  Napi::Object nc = Napi::Object::New(env);
  nc.Set("found", !p.nccl_path.empty());
  if (!p.nccl_path.empty()) { nc.Set("path", p.nccl_path); nc.Set("version", p.nccl_version); }
  else nc.Set("error", p.nccl_error);
  o.Set("nccl", nc);
  return o;
}
CS_BINDING("probeGpu", ProbeGpu);

}  // namespace cs::napi
